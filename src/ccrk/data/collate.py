"""Batching samples into the row layout each contrastive objective expects.

The losses (docs/design.md, "Objectives"; ``ccrk.losses``) index text rows by position, not by
label: with K languages the captions of image ``i`` are rows
``i*K ... i*K+K-1`` in the configured language order, English first. The
collator is the one place that layout is made, so it checks the language
order instead of trusting it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from ccrk.data.tokens import TokenCache
from ccrk.layout import OBJECTIVES


@dataclass
class Batch:
    """One training or evaluation batch.

    ``texts`` holds ``k`` rows per image (image ``i`` owns rows
    ``i*k ... i*k+k-1``) and ``text_langs`` the language of each row.
    """

    images: Tensor
    image_ids: list[str]
    texts: list[str]
    text_langs: list[str]
    k: int
    input_ids: Tensor | None = None
    attention_mask: Tensor | None = None

    def __post_init__(self) -> None:
        """The parts agree in size: checked once, where a batch is built, instead of in every loss."""
        if self.images.ndim != 4:
            raise ValueError(f"batch.images must be [B, 3, H, W], got shape {tuple(self.images.shape)}")
        b, k = self.images.shape[0], self.k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"batch.k must be a positive int, got {k!r}")
        if len(self.image_ids) != b:
            raise ValueError(f"batch has {b} images but {len(self.image_ids)} image ids")
        rows = {"texts": len(self.texts), "text_langs": len(self.text_langs) or b * k}
        if (self.input_ids is None) != (self.attention_mask is None):
            raise ValueError("batch.input_ids and attention_mask come together")
        if self.input_ids is not None:
            if self.input_ids.ndim != 2 or self.attention_mask.shape != self.input_ids.shape:
                raise ValueError(f"batch.input_ids and attention_mask must both be [B*k, L], got "
                                 f"{tuple(self.input_ids.shape)} and {tuple(self.attention_mask.shape)}")
            rows["input_ids"] = self.input_ids.shape[0]
        for name, n in rows.items():
            if n != b * k:
                raise ValueError(f"batch has {b} images and k={k} captions each, so {b * k} text rows are "
                                 f"expected, got {n} in {name}")

    def __len__(self) -> int:
        return len(self.image_ids)

    def _map(self, fn: Callable[[Tensor], Tensor]) -> Batch:
        return replace(
            self,
            images=fn(self.images),
            input_ids=None if self.input_ids is None else fn(self.input_ids),
            attention_mask=None if self.attention_mask is None else fn(self.attention_mask),
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True) on custom batch types."""
        return self._map(lambda t: t.pin_memory())


class Collator:
    """Turn dataset samples into a :class:`Batch` for one objective.

    - ``one_to_k``, ``cross_lingual``: every image with all K captions, B*K rows.
    - ``cross_modal``: one caption an image, in the language the dataset drew
      for it (``modal_lang``), B rows.

    ``tokenizer`` is any Hugging Face tokenizer; when given, the texts are
    padded to the longest row (at most ``max_length`` tokens), each distinct
    caption tokenized once (:class:`ccrk.data.tokens.TokenCache`).
    """

    def __init__(
        self,
        objective: str,
        languages: Sequence[str],
        tokenizer: Callable[..., Any] | None = None,
        max_length: int = 40,
    ) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}")
        if isinstance(languages, str):
            raise TypeError(f"languages must be a list of codes, not the string {languages!r}")
        langs = list(languages)
        if not langs or len(set(langs)) != len(langs):
            raise ValueError(f"languages must be non-empty and without duplicates, got {langs}")
        if objective == "cross_lingual" and langs[0] != "en":
            raise ValueError(
                f"objective 'cross_lingual' pivots through English: languages must start with 'en', got {langs}"
            )
        if objective == "one_to_k" and "en" in langs and langs[0] != "en":
            raise ValueError(f"languages must list 'en' first (rows i*K are English), got {langs}")
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.objective = objective
        self.languages = langs
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.tokens = TokenCache(tokenizer, self.max_length) if tokenizer is not None else None

    def _missing(self, samples: Sequence[dict[str, Any]], langs_of: Callable[[dict], Sequence[str]]) -> str:
        # Only on the error path: find which sample lacks what, for the message.
        for sample in samples:
            for lang in langs_of(sample):
                if lang not in sample["captions"]:
                    return f"sample {sample.get('image_id')!r} has no caption in {lang!r}"
        return "a sample lacks a caption"

    def __call__(self, samples: Sequence[dict[str, Any]]) -> Batch:
        if not samples:
            raise ValueError("cannot collate an empty list of samples")
        images = torch.stack([s["image"] for s in samples])
        image_ids = [s["image_id"] for s in samples]
        if self.objective == "cross_modal":
            text_langs = [s["modal_lang"] for s in samples]
            stray = set(text_langs) - set(self.languages)
            if stray:
                raise ValueError(f"modal_lang {sorted(stray)} not among the configured languages {self.languages}")
            try:
                texts = [s["captions"][s["modal_lang"]] for s in samples]
            except KeyError:
                raise ValueError(self._missing(samples, lambda s: [s["modal_lang"]])) from None
            k = 1
        else:
            try:
                texts = [s["captions"][lang] for s in samples for lang in self.languages]
            except KeyError:
                raise ValueError(self._missing(samples, lambda s: self.languages)) from None
            text_langs = self.languages * len(samples)
            k = len(self.languages)
        ids, mask = self.tokens(texts) if self.tokens is not None else (None, None)
        return Batch(images=images, image_ids=image_ids, texts=texts, text_langs=text_langs, k=k,
                     input_ids=ids, attention_mask=mask)
