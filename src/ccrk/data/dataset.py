"""Deterministic datasets and the epoch sampler.

Reproducibility contract: sample ``i`` of epoch ``e`` under seed ``s`` is a
pure function of ``(s, e, i)`` - crop, flip, which caption of several, and
the cross-modal language all come from :func:`sample_generator`. It does not
depend on the number of DataLoader workers, on which worker gets the index,
or on what was loaded before, so a resumed or re-sharded run sees exactly
the samples the original run saw.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from ccrk.data.languages import is_iso639_1
from ccrk.data.manifest import ManifestError, Record


def _seed_from(*entropy: int) -> int:
    for value in entropy:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"seed, epoch and index must be non-negative integers, got {entropy!r}")
    state = np.random.SeedSequence([int(v) for v in entropy]).generate_state(1, dtype=np.uint64)[0]
    # SeedSequence hashes its whole input, so (1, 0) and (0, 1) are unrelated
    # streams - unlike seed + epoch, where they would collide.
    return int(state) & ((1 << 63) - 1)


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A fresh CPU generator for one sample, seeded by hashing (seed, epoch, index)."""
    generator = torch.Generator()
    generator.manual_seed(_seed_from(seed, epoch, index))
    return generator


class PairedTransform(Protocol):
    def __call__(
        self, image: Image.Image, captions: dict[str, str], generator: torch.Generator
    ) -> tuple[Tensor, dict[str, str]]: ...


def _check_languages(languages: Sequence[str]) -> list[str]:
    if isinstance(languages, str):
        raise TypeError(f"languages must be a list of codes, not the string {languages!r}")
    langs = list(languages)
    if not langs:
        raise ValueError("languages is empty; configure at least one language")
    bad = [code for code in langs if not is_iso639_1(code)]
    if bad:
        raise ValueError(f"languages: not ISO 639-1 code(s): {', '.join(map(repr, bad))}")
    if len(set(langs)) != len(langs):
        raise ValueError(f"languages: duplicate codes in {langs}")
    return langs


def draw_captions(captions: dict[str, list[str]], languages: Sequence[str],
                  generator: torch.Generator) -> tuple[dict[str, str], str]:
    """One caption a language (uniform among several) and the cross-modal language, from ``generator``.

    The draw order is fixed (captions in configured order, then the modal
    language) and the transform draws after it, so every dataset that uses
    this one function gives the same sample for the same generator.
    """
    counts = torch.tensor([len(captions[lang]) for lang in languages], dtype=torch.float64)
    picks = (torch.rand(len(languages), generator=generator, dtype=torch.float64) * counts).long()
    picks = torch.minimum(picks, counts.long() - 1).tolist()
    chosen = {lang: captions[lang][j] for lang, j in zip(languages, picks)}
    modal_lang = languages[int(torch.randint(len(languages), (), generator=generator))]
    return chosen, modal_lang


class CaptionDataset(Dataset):
    """Image-caption records -> one image and one caption per configured language.

    ``__getitem__`` returns ``{"image", "image_id", "captions", "modal_lang"}``:
    ``captions`` maps every configured language to one of the record's
    captions (chosen at random when there are several, e.g. Flickr30k's 5
    English ones), ``modal_lang`` is a language drawn uniformly for the
    cross-modal objective. ``image_reader`` replaces opening
    ``image_root / record.image`` (shards read images out of tar files). Records lacking a configured language are refused
    at construction: finding out mid-epoch wastes the run.

    ``image_cache`` keeps up to that many decoded images in memory (per
    DataLoader process), so a small benchmark is decoded once instead of
    every epoch; the transforms never modify an image in place, so a cached
    image gives the same sample as a fresh decode. 0 decodes every time.
    """

    def __init__(
        self,
        records: Sequence[Record],
        image_root: str | os.PathLike[str],
        languages: Sequence[str],
        transform: PairedTransform,
        seed: int = 0,
        image_reader: Callable[[Record], Image.Image] | None = None,
        image_cache: int = 0,
    ) -> None:
        if isinstance(image_cache, bool) or not isinstance(image_cache, int) or image_cache < 0:
            raise ValueError(f"image_cache must be a non-negative integer, got {image_cache!r}")
        self.languages = _check_languages(languages)
        self.image_cache = image_cache
        self._decoded: dict[int, Image.Image] = {}
        self.image_reader = image_reader
        self.records = list(records)
        self.image_root = Path(image_root)
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        _seed_from(self.seed)  # validate early
        for index, record in enumerate(self.records):
            for lang in self.languages:
                if not record.captions.get(lang):
                    raise ManifestError(
                        f"record {index} (image_id {record.image_id!r}) has no caption in language {lang!r}, "
                        f"which is configured ({', '.join(self.languages)}); drop such records with "
                        f"read_manifest(..., require_languages=...) or change the languages"
                    )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentations ``__getitem__`` returns.

        DataLoader workers copy the dataset when an iterator is created, so
        call this before ``iter(loader)``; with ``persistent_workers=True``
        the copies never see it.
        """
        _seed_from(self.seed, epoch)
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.records):
            raise IndexError(f"index {index} out of range for {len(self.records)} records")
        record = self.records[index]
        generator = sample_generator(self.seed, self.epoch, index)
        captions, modal_lang = draw_captions(record.captions, self.languages, generator)
        image = self._decoded.get(index)
        if image is None:
            image = self._read(record)
            if len(self._decoded) < self.image_cache:
                self._decoded[index] = image
        tensor, captions = self.transform(image, captions, generator)
        return {"image": tensor, "image_id": record.image_id, "captions": captions, "modal_lang": modal_lang}


    def _read(self, record: Record) -> Image.Image:
        if self.image_reader is not None:  # e.g. ccrk.data.shards.ShardImages: bytes from inside a tar
            return self.image_reader(record)
        with Image.open(self.image_root / record.image) as img:
            return img.convert("RGB")


class EpochSampler(Sampler[int]):
    """Seeded per-epoch permutation, sharded across ranks, resumable mid-epoch.

    Each epoch's order is a function of (seed, epoch) only. The order is cut
    (``drop_last``) or padded by wrapping around to a multiple of
    ``world_size`` so that every rank takes the same number of steps, then
    rank ``r`` takes positions ``r, r + world_size, ...``. ``start`` skips
    the first ``start`` indices of this rank's order: a run resumed after
    ``s`` optimiser steps of batch ``b`` per rank passes ``start = s * b``.
    The constructor's ``start`` belongs to the first epoch selected, so the
    usual loop ``for epoch in range(resumed_epoch, n): sampler.set_epoch(epoch)``
    resumes the first epoch mid-way and runs the later ones whole;
    ``set_epoch(epoch, start=...)`` sets it explicitly.
    """

    def __init__(
        self,
        n: int,
        seed: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
        start: int = 0,
    ) -> None:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        _seed_from(seed)
        self.n = int(n)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.drop_last = drop_last
        self.epoch = 0
        self.start = self._check_start(start)
        self._start_pending = True  # the constructor's start survives the first set_epoch

    @property
    def per_rank(self) -> int:
        """Indices one rank visits in a full epoch."""
        if self.drop_last:
            return self.n // self.world_size
        return -(-self.n // self.world_size) if self.n else 0

    def _check_start(self, start: int) -> int:
        if not 0 <= start <= self.per_rank:
            raise ValueError(f"start must be in [0, {self.per_rank}] (indices per rank), got {start}")
        return int(start)

    def set_epoch(self, epoch: int, start: int | None = None) -> None:
        """Select ``epoch``; ``start=None`` keeps the constructor's start on the first call, else 0."""
        _seed_from(self.seed, epoch)
        if start is None:
            start = self.start if self._start_pending else 0
        self.epoch = int(epoch)
        self.start = self._check_start(start)
        self._start_pending = False

    def order(self) -> Tensor:
        """This rank's full order for the current epoch, before ``start`` is applied."""
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(_seed_from(self.seed, self.epoch))
            perm = torch.randperm(self.n, generator=generator)
        else:
            perm = torch.arange(self.n)
        total = self.per_rank * self.world_size
        if total > self.n:  # pad by wrapping around (repeats whole passes if n < world_size)
            perm = perm.repeat(-(-total // self.n))
        return perm[:total][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start :].tolist())

    def __len__(self) -> int:
        return self.per_rank - self.start
