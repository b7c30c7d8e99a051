"""Streaming webdataset shards: samples read in order from tar files, split across ranks and workers.

``tarfile`` stream mode works on a pipe or an object-store download too.
Shards are dealt to ranks and then to DataLoader workers; a seeded shuffle
buffer mixes samples within a worker. The captions of a sample and its
sample dict are those of :mod:`ccrk.data.shards`, so the same
:class:`~ccrk.data.collate.Collator` batches them.
"""
from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info

from ccrk.data.dataset import PairedTransform, _check_languages, _seed_from, draw_captions, sample_generator
from ccrk.data.shards import (
    IMAGE_EXTENSIONS,
    ShardError,
    image_ext,
    open_tar,
    read_sidecar,
    sample_captions,
    shard_paths,
    sidecar_path,
    split_name,
)


def iter_shard(shard: Path, sidecar: dict[str, dict[str, list[str]]] | None = None
               ) -> Iterator[tuple[str, bytes, dict[str, list[str]]]]:
    """``(key, image bytes, captions)`` of each sample, reading the tar once from start to end.

    Stream mode never seeks, so a sample is complete when the next key
    starts (webdataset's grouping rule: a sample's members are adjacent).
    """
    tar = open_tar(shard, "r|")
    current: str | None = None
    parts: dict[str, bytes] = {}

    def finish() -> tuple[str, bytes, dict[str, list[str]]]:
        assert current is not None
        ext = image_ext(parts)
        if ext is None:
            raise ShardError(f"{shard}: sample {current!r} has no image member ({', '.join(IMAGE_EXTENSIONS)})")
        return current, parts[ext], sample_captions(shard, current, parts, sidecar)

    with tar:
        try:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = split_name(member.name)
                if key != current:
                    if current is not None:
                        yield finish()
                    current, parts = key, {}
                if ext in (*IMAGE_EXTENSIONS, "json", "txt"):
                    handle = tar.extractfile(member)
                    assert handle is not None
                    parts[ext] = handle.read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ShardError(f"{shard}: corrupt or truncated tar ({type(exc).__name__}: {exc})") from exc
    if current is not None:
        yield finish()


class ShardStream(IterableDataset):
    """Streaming webdataset loader yielding ``CaptionDataset``'s sample dicts.

    Shards are permuted per epoch from ``(seed, epoch)``, dealt round-robin to
    the ``world_size * num_workers`` readers (so give at least that many
    shards), and samples pass a shuffle buffer of ``shuffle_buffer``
    (0 = file order). Caption choice and augmentation come from
    ``sample_generator(seed, epoch, n)`` with ``n`` the sample's position in
    its reader's stream, so a run is reproducible for a fixed reader count.
    Samples lacking a configured language are an error naming the shard.
    """

    def __init__(self, shards: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                 languages: Sequence[str], transform: PairedTransform, *, seed: int = 0,
                 shuffle_buffer: int = 1000, rank: int = 0, world_size: int = 1,
                 captions_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.shards = shard_paths(shards)
        self.captions_dir = captions_dir
        self.languages = _check_languages(languages)
        self.transform = transform
        self.seed = int(seed)
        self.shuffle_buffer = int(shuffle_buffer)
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        _seed_from(self.seed, epoch)
        self.epoch = int(epoch)

    def reader_shards(self, worker: int = 0, num_workers: int = 1) -> list[Path]:
        """The shards one (rank, worker) reads this epoch."""
        generator = torch.Generator().manual_seed(_seed_from(self.seed, self.epoch))
        order = [self.shards[i] for i in torch.randperm(len(self.shards), generator=generator).tolist()]
        readers = self.world_size * num_workers
        return order[self.rank * num_workers + worker::readers]

    def _samples(self, shards: list[Path]) -> Iterator[tuple[str, bytes, dict[str, list[str]]]]:
        for shard in shards:
            side_path = sidecar_path(shard, self.captions_dir)
            sidecar = read_sidecar(side_path) if side_path.is_file() else None
            for key, data, captions in iter_shard(shard, sidecar):
                missing = [lang for lang in self.languages if not captions.get(lang)]
                if missing:
                    raise ShardError(f"{shard}: sample {key!r} has no caption in configured language(s) {missing}")
                yield key, data, captions

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        stream = self._samples(self.reader_shards(worker, num_workers))
        reader = self.rank * num_workers + worker
        if self.shuffle_buffer > 1:
            stream = _shuffled(stream, self.shuffle_buffer,
                               torch.Generator().manual_seed(_seed_from(self.seed, self.epoch, reader + 1)))
        for n, (key, data, captions) in enumerate(stream):
            yield self._sample(key, data, captions, n)

    def _sample(self, key: str, data: bytes, captions: dict[str, list[str]], n: int) -> dict[str, Any]:
        generator = sample_generator(self.seed, self.epoch, n)
        chosen, modal_lang = draw_captions(captions, self.languages, generator)
        with Image.open(io.BytesIO(data)) as img:
            image = img.convert("RGB")
        tensor, chosen = self.transform(image, chosen, generator)
        return {"image": tensor, "image_id": key, "captions": chosen, "modal_lang": modal_lang}


def _shuffled(items: Iterator[Any], size: int, generator: torch.Generator) -> Iterator[Any]:
    """Reservoir-style shuffle buffer: fill to ``size``, then emit a random slot for each new item."""
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = int(torch.randint(size, (), generator=generator))
        buffer[j], item = item, buffer[j]
        yield item
    while buffer:
        j = int(torch.randint(len(buffer), (), generator=generator))
        yield buffer.pop(j)

