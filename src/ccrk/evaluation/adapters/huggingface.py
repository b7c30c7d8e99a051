"""Hugging Face dual encoders: ``--model hf:DIR``, a local ``save_pretrained`` directory with its processor.

Any ``transformers`` model exposing ``get_image_features`` and
``get_text_features`` (``CLIPModel``, ``AltCLIPModel``, ``SiglipModel``,
``ChineseCLIPModel``, ...), loaded with ``AutoModel`` and preprocessed by the
directory's own image processor and tokenizer (``AutoProcessor``, or
``AutoImageProcessor`` + ``AutoTokenizer`` where no combined processor was
saved). ``HF_HUB_OFFLINE=1``: only the directory is read.
"""
from __future__ import annotations

import inspect
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ccrk.evaluation.adapters.base import RetrievalModel, encode_image_features, encode_text_features
from ccrk.evaluation.encode import ImageEncoding, TextEncoding
from ccrk.provenance import config_hash

#: Families trained on captions padded to the full context (SigLIP): padding to the longest would change them.
PAD_TO_MAX_LENGTH = ("siglip", "siglip2")


def fetch_hint(directory: Path) -> str:
    return (f"on a machine with network: huggingface-cli download <repo, e.g. openai/clip-vit-base-patch32> "
            f"--local-dir {directory}")


def features(output: Any) -> torch.Tensor:
    """``get_*_features`` returns a tensor (transformers < 5) or an output whose pooler holds the projection."""
    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        raise TypeError(f"get_*_features returned {type(output).__name__} without pooler_output")
    return pooled


class _ImageProcessor:
    """A Hugging Face image processor as a one-image transform (picklable for loader workers)."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]


class HFDualEncoder(RetrievalModel):
    """A dual encoder saved with ``save_pretrained`` (no matching head)."""

    kind = "hf"

    def __init__(self, directory: str | os.PathLike[str], device: torch.device) -> None:
        super().__init__(device)
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        self.directory = Path(directory)
        if not (self.directory / "config.json").is_file():
            raise FileNotFoundError(f"Hugging Face model directory {self.directory} has no config.json "
                                    f"({fetch_hint(self.directory)})")
        try:
            model = AutoModel.from_pretrained(self.directory)
            tokenizer = AutoTokenizer.from_pretrained(self.directory)
            image_processor = AutoImageProcessor.from_pretrained(self.directory)
        except (OSError, ValueError, KeyError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(f"cannot load a model, tokenizer and image processor from {self.directory}: {reason} "
                             f"({fetch_hint(self.directory)})") from err
        for method in ("get_image_features", "get_text_features"):
            if not callable(getattr(model, method, None)):
                raise ValueError(f"{self.directory} holds a {type(model).__name__}, which has no {method}: not a "
                                 f"dual encoder (CLIPModel, AltCLIPModel, SiglipModel, ...)")
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.transform = _ImageProcessor(image_processor)
        self.model_type = str(getattr(model.config, "model_type", ""))
        self.max_length = _max_length(model, tokenizer)
        accepted = inspect.signature(model.get_text_features).parameters
        self._text_keys = [k for k in ("input_ids", "attention_mask", "token_type_ids", "position_ids")
                           if k in accepted]

    def _tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        padding = "max_length" if self.model_type in PAD_TO_MAX_LENGTH else "longest"
        enc = self.tokenizer(texts, padding=padding, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return {k: enc[k] for k in self._text_keys if k in enc}

    def encode_images(self, paths: Sequence[Path], batch_size: int, num_workers: int = 0) -> ImageEncoding:
        return encode_image_features(paths, self.transform,
                                     lambda pixels: features(self.model.get_image_features(pixel_values=pixels)),
                                     batch_size, self.device, num_workers)

    def encode_texts(self, texts: Sequence[str], batch_size: int) -> TextEncoding:
        return encode_text_features(texts, self._tokenize,
                                    lambda **inputs: features(self.model.get_text_features(**inputs)),
                                    batch_size, self.device)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.directory), "class": type(self.model).__name__,
                "config_hash": config_hash(json.loads(self.model.config.to_json_string()))}

    @property
    def tokenizer_label(self) -> str:
        return f"{type(self.tokenizer).__name__} of {self.directory}"


def _max_length(model: Any, tokenizer: Any) -> int:
    """Captions are cut where the text tower's position embeddings end (CLIP: 77 tokens)."""
    text_config = getattr(model.config, "text_config", model.config)
    positions = getattr(text_config, "max_position_embeddings", None)
    declared = getattr(tokenizer, "model_max_length", None)
    candidates = [n for n in (positions, declared) if isinstance(n, int) and 0 < n < 100_000]
    if not candidates:
        raise ValueError("cannot tell the text tower's maximum length (no max_position_embeddings or "
                         "tokenizer model_max_length)")
    return min(candidates)
