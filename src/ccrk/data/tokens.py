"""Token ids of each distinct caption computed once, batches padded from them.

Pre-training sees every caption once an epoch (twice when a flip swaps its
left and right), and a Hugging Face tokenizer call costs about 30 ms for a
batch of 192 short captions on one CPU thread, almost all of it Python
around the Rust encoder: 8 % of an embedded pre-training step. A caption's
ids do not depend on the batch it arrives in, so :class:`TokenCache`
tokenizes each distinct text once (truncated to ``max_length``) and pads a
batch from the stored ids. The tensors are exactly those of
``tokenizer(texts, padding="longest", truncation=True,
max_length=max_length, return_tensors="pt")`` (``tests/test_tokens.py``
compares them), so caching changes no result.

The cache is bounded by ``capacity`` distinct texts (each a small int32
array): past it, new texts are tokenized per batch as before and nothing is
evicted, so memory stays bounded on a corpus of millions of captions while a
benchmark that fits is tokenized once.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

#: Distinct texts kept by default: some 30 MB of ids at paper-scale caption lengths.
DEFAULT_CAPACITY = 1 << 18


class TokenCache:
    """``tokenizer(texts, padding="longest", truncation=True, max_length=...)`` with per-text memoisation."""

    def __init__(self, tokenizer: Any, max_length: int, capacity: int = DEFAULT_CAPACITY) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        pad_id = getattr(tokenizer, "pad_token_id", None)
        if pad_id is None:
            raise ValueError("the tokenizer has no pad token: batches of captions cannot be padded")
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.capacity = int(capacity)
        self.pad_id = int(pad_id)
        self.pad_left = getattr(tokenizer, "padding_side", "right") == "left"
        self._ids: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def _encode(self, texts: list[str]) -> list[np.ndarray]:
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False)
        return [np.asarray(ids, dtype=np.int64) for ids in encoded["input_ids"]]

    def ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The token ids of each text, tokenizing (in one call) only those not seen before."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._ids))
        fresh: dict[str, np.ndarray] = {}
        if missing:
            fresh = dict(zip(missing, self._encode(missing)))
            for text, ids in fresh.items():
                if len(self._ids) >= self.capacity:
                    break
                self._ids[text] = ids
        return [self._ids[t] if t in self._ids else fresh[t] for t in texts]

    def __call__(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """``(input_ids, attention_mask)``, both ``[len(texts), longest]`` int64, padded on the tokenizer's side."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        rows = self.ids(texts)
        width = max((len(r) for r in rows), default=0)
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            if self.pad_left:
                input_ids[i, width - len(row):] = row
                mask[i, width - len(row):] = 1
            else:
                input_ids[i, : len(row)] = row
                mask[i, : len(row)] = 1
        return torch.from_numpy(input_ids), torch.from_numpy(mask)
