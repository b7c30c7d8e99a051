"""Encode the test images once and the captions of one language at a time.

Both keep the token states the matching head needs (image tokens for every
image, text tokens for the current language's captions) on the evaluation
device, next to the L2-normalised contrastive features. Text tokens are
stored padded only to the longest caption of the language, not to the
model's ``max_length``, and batches are formed from captions of similar
length so that little compute goes into padding.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ccrk.data.transforms import build_eval_transform
from ccrk.models import CCRModel


@dataclass
class ImageEncoding:
    """Features of every test image; ``tokens`` only for a model with a matching head to feed."""

    feats: torch.Tensor  # [I, embed_dim], L2-normalised
    tokens: torch.Tensor | None = None  # [I, N, vision_width]

    def rows(self, index: slice) -> ImageEncoding:
        """The images of ``index`` (a slice: views, no copy), e.g. one fold's gallery."""
        return ImageEncoding(self.feats[index], None if self.tokens is None else self.tokens[index])


@dataclass
class TextEncoding:
    """Features of one language's captions; token states, mask and ends only for a matching head."""

    feats: torch.Tensor  # [T, embed_dim], L2-normalised
    tokens: torch.Tensor | None = None  # [T, L, hidden]; states at padding positions are arbitrary (masked)
    mask: torch.Tensor | None = None  # [T, L], 1 = real token
    ends: np.ndarray | None = None  # [T] on the host: 1 + position of the last real token

    def rows(self, index: np.ndarray) -> TextEncoding:
        """The captions at positions ``index`` (int64, in that order), e.g. those of one fold's images."""
        at = torch.from_numpy(index).to(self.feats.device)
        return TextEncoding(
            self.feats.index_select(0, at),
            None if self.tokens is None else self.tokens.index_select(0, at),
            None if self.mask is None else self.mask.index_select(0, at),
            None if self.ends is None else self.ends[index],
        )


class ImageFiles(Dataset):
    """Images read from ``paths`` in order, each through ``transform`` (a PIL RGB image -> a ``[3, H, W]`` tensor).

    Every model family brings its own evaluation preprocessing; an unreadable
    file is a ``ValueError`` naming it.
    """

    def __init__(self, paths: Sequence[Path], transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        path = self.paths[index]
        try:
            with Image.open(path) as img:
                image = img.convert("RGB")
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read image {path}: {err}") from err
        return self.transform(image)


def image_batches(
    paths: Sequence[Path], transform: Callable[[Image.Image], torch.Tensor], batch_size: int, device: torch.device,
    num_workers: int = 0,
) -> DataLoader:
    """Batches of :class:`ImageFiles`, in ``paths`` order."""
    return DataLoader(
        ImageFiles(paths, transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )


class _EvalTransform:
    """ccrk's evaluation transform as a one-argument callable (picklable for loader workers)."""

    def __init__(self, image_size: int) -> None:
        self.transform = build_eval_transform(image_size)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image, {})[0]


@torch.no_grad()
def encode_images(
    model: CCRModel, paths: Sequence[Path], batch_size: int, device: torch.device, num_workers: int = 0
) -> ImageEncoding:
    """Tokens and features of every image, in ``paths`` order, with the evaluation transform."""
    loader = image_batches(paths, _EvalTransform(model.config.image_size), batch_size, device, num_workers)
    tokens = feats = None
    start = 0
    for images in loader:
        tok, feat = model.encode_image(images.to(device, non_blocking=True))
        if tokens is None:
            tokens = torch.empty((len(paths), *tok.shape[1:]), dtype=tok.dtype, device=device)
            feats = torch.empty((len(paths), feat.shape[1]), dtype=feat.dtype, device=device)
        tokens[start : start + len(tok)] = tok
        feats[start : start + len(tok)] = feat
        start += len(tok)
    if tokens is None or feats is None:
        raise ValueError("there are no images to encode")
    return ImageEncoding(tokens=tokens, feats=feats)


def token_ends(mask: torch.Tensor) -> np.ndarray:
    """``1 +`` the position of each row's last real token (any padding side).

    A batch needs columns only up to its largest end: trailing padding columns
    are masked and change no output, and cutting them is most of the speed of
    a batch of short captions.
    """
    positions = torch.arange(1, mask.shape[1] + 1)
    return (mask.cpu().long() * positions).amax(dim=1).clamp_min(1).numpy()


@torch.no_grad()
def encode_texts(
    model: CCRModel, tokenizer: Any, texts: Sequence[str], batch_size: int, device: torch.device
) -> TextEncoding:
    """Tokens, mask and features of ``texts`` (truncated to the model's ``max_length``), in order."""
    enc = tokenizer(
        list(texts), padding="longest", truncation=True, max_length=model.config.max_length, return_tensors="pt"
    )
    ids, mask = enc["input_ids"], enc["attention_mask"]
    ends = token_ends(mask)
    order = torch.from_numpy(np.argsort(ends, kind="stable"))
    mask_dev = mask.to(device)
    tokens = torch.zeros((len(texts), ids.shape[1], model.hidden_size), device=device)
    feats = torch.empty((len(texts), model.config.embed_dim), device=device)
    for start in range(0, len(texts), batch_size):
        rows = order[start : start + batch_size]
        length = int(ends[rows.numpy()].max())
        rows_dev = rows.to(device)
        tok, feat = model.encode_text(ids[rows, :length].to(device), mask_dev[rows_dev, :length])
        tokens[rows_dev, :length] = tok.to(tokens.dtype)
        feats[rows_dev] = feat.to(feats.dtype)
    return TextEncoding(tokens=tokens, mask=mask_dev, feats=feats, ends=ends)
