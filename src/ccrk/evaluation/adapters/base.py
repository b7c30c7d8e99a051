"""What ``ccrk evaluate`` needs of a model, whoever trained it.

Ranking, Recall@K, MRV and the bootstrap only need two things: L2-normalised
features of every test image and of every caption of one language. A model
with a matching head (ccrk's own, ALBEF-style) can also re-rank the top
``k_test`` candidates from the same encodings. :class:`RetrievalModel` is
that contract; :mod:`ccrk.evaluation.adapters.native` (ccrk's models),
:mod:`.openclip` and :mod:`.huggingface` implement it, so any of them gives
the same ``metrics.json`` and ``ranks.npz``.
"""
from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ccrk.evaluation.encode import ImageEncoding, TextEncoding, image_batches

class RetrievalModel(abc.ABC):
    """A model ``ccrk evaluate`` can rank a test set with.

    ``encode_images``/``encode_texts`` return features in input order on
    :attr:`device`. ``match`` is the optional re-ranking head
    (:data:`ccrk.evaluation.retrieval.PairScorer`); a dual encoder has none
    and is ranked at ``k_test = 1``, i.e. by its similarity order.
    """

    #: One of :data:`ccrk.layout.MODEL_KINDS`.
    kind: str = ""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    @abc.abstractmethod
    def encode_images(self, paths: Sequence[Path], batch_size: int, num_workers: int = 0) -> ImageEncoding:
        """Features (and what ``match`` needs) of the images at ``paths``."""

    @abc.abstractmethod
    def encode_texts(self, texts: Sequence[str], batch_size: int) -> TextEncoding:
        """Features (and what ``match`` needs) of ``texts``."""

    @property
    def match(self) -> Callable[[ImageEncoding, np.ndarray, TextEncoding, np.ndarray, int], np.ndarray] | None:
        """The re-ranking head as a ``PairScorer``, or ``None`` (the default: a dual encoder)."""
        return None

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """What ``metrics.json`` records as ``model``: at least ``kind``, ``path`` and ``config_hash``."""

    @property
    def tokenizer_label(self) -> str:
        """What ``metrics.json`` records as ``tokenizer``."""
        return f"the {self.kind} model's own"


def normalised(features: Any) -> torch.Tensor:
    """Float32, L2-normalised rows (cosine similarity is what every family ranks by)."""
    return F.normalize(features.float(), dim=-1)


@torch.no_grad()
def encode_image_features(
    paths: Sequence[Path],
    transform: Callable[[Image.Image], torch.Tensor],
    encode: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
) -> ImageEncoding:
    """A dual encoder's image features: ``encode`` over batches of ``transform``-ed images, normalised."""
    if not paths:
        raise ValueError("there are no images to encode")
    parts = [normalised(encode(images.to(device, non_blocking=True)))
             for images in image_batches(paths, transform, batch_size, device, num_workers)]
    return ImageEncoding(feats=torch.cat(parts))


@torch.no_grad()
def encode_text_features(
    texts: Sequence[str], tokenize: Callable[[list[str]], dict[str, torch.Tensor]],
    encode: Callable[..., torch.Tensor], batch_size: int, device: torch.device,
) -> TextEncoding:
    """A dual encoder's caption features: ``encode(**tokenize(batch))`` batch by batch, normalised."""
    texts = list(texts)
    parts = []
    for start in range(0, len(texts), batch_size):
        inputs = {k: v.to(device) for k, v in tokenize(texts[start : start + batch_size]).items()}
        parts.append(normalised(encode(**inputs)))
    if not parts:
        raise ValueError("there are no captions to encode")
    return TextEncoding(feats=torch.cat(parts))
