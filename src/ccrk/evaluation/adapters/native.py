"""ccrk's own models: a saved model directory and the tokenizer it was trained with.

The only family with a matching head: its encodings keep the token states
the head fuses, and ``k_test`` may be the one fine-tuning chose on
validation (``auto``, the model directory's ``retrieval.json``).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ccrk.evaluation.adapters.base import RetrievalModel
from ccrk.evaluation.encode import ImageEncoding, TextEncoding, encode_images, encode_texts
from ccrk.evaluation.retrieval import PairScorer, itm_scorer
from ccrk.models import CCRModel, load_model, read_model_config
from ccrk.models.io import saved_tokenizer
from ccrk.provenance import config_hash
from ccrk.tokenizer import check_model_tokenizer, load_tokenizer


def read_model_meta(model_dir: Path) -> dict[str, Any]:
    """The saved model's ``config.json``; a missing directory is an error that says what one holds."""
    if not model_dir.is_dir():
        raise FileNotFoundError(
            f"model directory {model_dir} does not exist (a saved ccrk model is a directory with "
            "config.json and model.safetensors, written by save_model / ccrk finetune)"
        )
    return read_model_config(model_dir)


class NativeModel(RetrievalModel):
    """A model ``ccrk pretrain``/``finetune`` saved, with its tokenizer (checked to be the one it was trained with)."""

    kind = "ccrk"

    def __init__(self, model_dir: str | os.PathLike[str], tokenizer: str | os.PathLike[str],
                 device: torch.device) -> None:
        super().__init__(device)
        self.model_dir = Path(model_dir)
        self.meta = read_model_meta(self.model_dir)
        self.tokenizer_path = str(tokenizer)
        self.tokenizer = load_tokenizer(tokenizer)
        self.model: CCRModel = load_model(self.model_dir, map_location=device)
        check_model_tokenizer(self.tokenizer, self.tokenizer_path, self.model, saved_tokenizer(self.meta),
                              str(self.model_dir))

    def encode_images(self, paths: Sequence[Path], batch_size: int, num_workers: int = 0) -> ImageEncoding:
        return encode_images(self.model, paths, batch_size, self.device, num_workers)

    def encode_texts(self, texts: Sequence[str], batch_size: int) -> TextEncoding:
        return encode_texts(self.model, self.tokenizer, texts, batch_size, self.device)

    @property
    def match(self) -> PairScorer:
        return itm_scorer(self.model)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.model_dir), "config_hash": config_hash(self.meta["config"])}

    @property
    def tokenizer_label(self) -> str:
        return self.tokenizer_path
