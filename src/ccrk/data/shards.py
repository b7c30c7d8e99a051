"""Webdataset shards: the pre-training corpus as tar files, read by seeking or by streaming.

A corpus of millions of images does not live well as millions of files on a
cluster's shared file system; `img2dataset` therefore writes Conceptual
Captions as webdataset shards (``00000.tar`` holding ``<key>.jpg``,
``<key>.txt`` and ``<key>.json`` for each sample), and open_clip-style
loaders read them sequentially. ccrk reads the same layout two ways:

* :func:`read_shard_corpus` indexes the tar headers once and gives
  :class:`~ccrk.data.manifest.Record` objects plus a picklable image reader,
  so the map-style :class:`~ccrk.data.dataset.CaptionDataset`, its epoch
  sampler and the trainer's exact resume work unchanged on shards;
* :class:`~ccrk.data.shard_stream.ShardStream` streams samples (``tarfile`` stream mode: works on a
  pipe or an object-store download too), splitting shards across ranks and
  DataLoader workers, with a seeded shuffle buffer.

Both yield the sample dict of ``CaptionDataset`` and so feed the same
:class:`~ccrk.data.collate.Collator`.

Captions of a sample, first source that has them: a sidecar file
``<captions dir>/<shard stem>.jsonl`` (``captions/`` beside the shards unless
``captions_dir`` says otherwise; lines
``{"key": ..., "captions": {lang: [text, ...]}}``, what ``ccrk translate``
writes), the ``captions`` object of ``<key>.json`` (what :func:`write_shards`
writes), else ``<key>.txt`` as the English caption (img2dataset's output).
"""
from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ccrk.atomic import atomic_open
from ccrk.data.manifest import ManifestError, Record

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
CAPTIONS_DIR = "captions"


class ShardError(ManifestError):
    """A shard that cannot be trusted; the message names the tar file and the member."""


def shard_paths(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The ``*.tar`` files of a directory (sorted), or the given list of files."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            found = sorted(path.glob("*.tar"))
            if not found:
                raise ShardError(f"{path}: no *.tar shards in this directory")
            return found
        if not path.is_file():
            raise FileNotFoundError(f"shard or shard directory not found: {path}")
        return [path]
    paths = [Path(p) for p in source]
    if not paths:
        raise ShardError("no shards given")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"shard not found: {path}")
    return paths


def is_shard_source(path: str | os.PathLike[str]) -> bool:
    """A ``.tar`` file or a directory holding ``*.tar`` files (what ``--manifest`` may also name)."""
    path = Path(path)
    return (path.is_file() and path.suffix == ".tar") or (path.is_dir() and any(path.glob("*.tar")))


def split_name(name: str) -> tuple[str, str]:
    """Webdataset keys: everything before the first dot of the base name is the key."""
    directory, _, base = name.rpartition("/")
    key, dot, ext = base.partition(".")
    if not dot:
        return name, ""
    return (f"{directory}/{key}" if directory else key), ext.lower()


def sidecar_path(shard: Path, captions_dir: str | os.PathLike[str] | None = None) -> Path:
    directory = Path(captions_dir) if captions_dir is not None else shard.parent / CAPTIONS_DIR
    return directory / f"{shard.stem}.jsonl"


def read_sidecar(path: Path) -> dict[str, dict[str, list[str]]]:
    """``key -> captions`` of a sidecar file; a malformed line names the file and line."""
    out: dict[str, dict[str, list[str]]] = {}
    with path.open("r", encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                key, captions = obj["key"], obj["captions"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ShardError(f"{path}:{lineno}: expected {{\"key\": ..., \"captions\": {{...}}}} ({exc})") from exc
            out[str(key)] = _check_captions(captions, f"{path}:{lineno}")
    return out


def _check_captions(captions: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(captions, dict) or not captions:
        raise ShardError(f"{where}: captions must be a non-empty object of language -> list of strings")
    out = {}
    for lang, texts in captions.items():
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ShardError(f"{where}: captions[{lang!r}] must be a non-empty list of non-empty strings")
        out[str(lang)] = list(texts)
    return out


def sample_captions(shard: Path, key: str, parts: dict[str, bytes],
                     sidecar: dict[str, dict[str, list[str]]] | None) -> dict[str, list[str]]:
    where = f"{shard}: sample {key!r}"
    if sidecar is not None and key in sidecar:
        return sidecar[key]
    if "json" in parts:
        try:
            meta = json.loads(parts["json"].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ShardError(f"{where}: {key}.json is not valid JSON ({exc})") from exc
        if isinstance(meta, dict) and "captions" in meta:
            return _check_captions(meta["captions"], where)
    if "txt" in parts:
        text = parts["txt"].decode("utf-8", errors="strict").strip()
        if not text:
            raise ShardError(f"{where}: {key}.txt is empty")
        return {"en": [text]}
    raise ShardError(f"{where}: no captions (no sidecar line, no 'captions' in {key}.json, no {key}.txt)")


def image_ext(parts: dict[str, Any]) -> str | None:
    return next((ext for ext in IMAGE_EXTENSIONS if ext in parts), None)


def open_tar(path: Path, mode: str = "r:") -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ShardError(f"{path}: not a readable tar shard ({type(exc).__name__}: {exc})") from exc


# ---------------------------------------------------------------------- indexed (map-style) access


@dataclass
class ShardImages:
    """Reads one sample's image bytes straight from its tar file: (shard, offset, size) per image name.

    Picklable (paths and integers only), so DataLoader workers get their own
    copy and open the file themselves.
    """

    locations: dict[str, tuple[str, int, int]] = field(default_factory=dict)

    def __call__(self, record: Record) -> Image.Image:
        try:
            shard, offset, size = self.locations[record.image]
        except KeyError as exc:
            raise ShardError(f"image {record.image!r} is in no indexed shard") from exc
        with open(shard, "rb") as handle:
            handle.seek(offset)
            data = handle.read(size)
        if len(data) != size:
            raise ShardError(f"{shard}: member {record.image!r} cut short ({len(data)} of {size} bytes)")
        try:
            with Image.open(io.BytesIO(data)) as img:
                return img.convert("RGB")
        except Exception as exc:  # PIL raises many types for corrupt data
            raise ShardError(f"{shard}: image {record.image!r} is unreadable ({type(exc).__name__}: {exc})") from exc


@dataclass
class ShardCorpus:
    """Records of every sample in a set of shards and the reader for their images."""

    records: list[Record]
    images: ShardImages
    shards: list[Path]


def read_shard_corpus(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                      languages: Sequence[str] | None = None,
                      require_languages: Sequence[str] | None = None,
                      captions_dir: str | os.PathLike[str] | None = None) -> ShardCorpus:
    """Index every sample of ``source`` (a shard directory or files) without decoding any image.

    Only the small members (``.json``/``.txt``) are read; an image member is
    located by its offset. A sample without an image or without captions, a
    duplicate key, or a sample lacking a required language is an error naming
    the shard.
    """
    langs = list(languages) if languages is not None else None
    required = list(require_languages or [])
    records: list[Record] = []
    images = ShardImages()
    seen: dict[str, Path] = {}
    paths = shard_paths(source)
    for shard in paths:
        side_path = sidecar_path(shard, captions_dir)
        sidecar = read_sidecar(side_path) if side_path.is_file() else None
        samples: dict[str, dict[str, Any]] = {}
        with open_tar(shard) as tar:
            try:
                for member in tar:
                    if not member.isfile():
                        continue
                    key, ext = split_name(member.name)
                    entry = samples.setdefault(key, {})
                    if ext in IMAGE_EXTENSIONS:
                        entry[ext] = (member.name, member.offset_data, member.size)
                    elif ext in ("json", "txt"):
                        handle = tar.extractfile(member)
                        assert handle is not None
                        entry[ext] = handle.read()
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise ShardError(f"{shard}: corrupt or truncated tar ({type(exc).__name__}: {exc})") from exc
        for key, parts in samples.items():
            ext = image_ext(parts)
            if ext is None:
                raise ShardError(f"{shard}: sample {key!r} has no image member ({', '.join(IMAGE_EXTENSIONS)})")
            captions = sample_captions(shard, key, parts, sidecar)
            for code in required:
                if not captions.get(code):
                    raise ShardError(f"{shard}: sample {key!r} has no caption in required language {code!r}")
            if langs is not None:
                captions = {c: captions[c] for c in langs if c in captions}
            if key in seen:
                raise ShardError(f"{shard}: duplicate sample key {key!r} (also in {seen[key]})")
            seen[key] = shard
            name, offset, size = parts[ext]
            image = f"{shard.name}/{name}"
            images.locations[image] = (str(shard), offset, size)
            records.append(Record(image_id=key, image=image, captions=captions))
    if not records:
        raise ShardError(f"{paths[0].parent}: the shards hold no samples")
    return ShardCorpus(records, images, paths)


# ---------------------------------------------------------------------- writing


def write_shards(records: Sequence[Record], image_root: str | os.PathLike[str], out: str | os.PathLike[str], *,
                 samples_per_shard: int = 1000, prefix: str = "") -> list[Path]:
    """Write ``records`` as webdataset shards ``<out>/<prefix>00000.tar``, ...; returns the shard paths.

    Each sample is ``<key>.<image ext>`` (the image file's bytes, not
    re-encoded), ``<key>.json`` (``image_id`` and every caption) and
    ``<key>.txt`` (the first English caption, for webdataset tools that read
    only that). Keys are the record's position, zero-padded, since image ids
    may contain dots or slashes that webdataset would split on. Each shard is
    written atomically; a missing image fails naming it, before that shard
    appears.
    """
    if samples_per_shard < 1:
        raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
    root, out = Path(image_root), Path(out)
    missing = [(i, r) for i, r in enumerate(records) if not (root / r.image).is_file()]
    if missing:  # before any shard is written
        i, r = missing[0]
        raise FileNotFoundError(f"image not found: {root / r.image} (record {i}, {r.image_id!r}; "
                                f"{len(missing)} missing in all)")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    width = max(9, len(str(len(records))))
    for start in range(0, len(records), samples_per_shard):
        path = out / f"{prefix}{start // samples_per_shard:05d}.tar"
        with atomic_open(path, "wb") as handle, tarfile.open(fileobj=handle, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for index in range(start, min(start + samples_per_shard, len(records))):
                record = records[index]
                key = f"{index:0{width}d}"
                image_path = root / record.image
                if not image_path.is_file():
                    raise FileNotFoundError(f"image not found: {image_path} (record {index}, {record.image_id!r})")
                ext = image_path.suffix.lstrip(".").lower() or "jpg"
                if ext not in IMAGE_EXTENSIONS:
                    raise ValueError(f"{image_path}: image extension {ext!r} is not one of {IMAGE_EXTENSIONS}")
                meta = json.dumps({"image_id": record.image_id, "captions": record.captions}, ensure_ascii=False)
                parts = [(f"{key}.{ext}", image_path.read_bytes()), (f"{key}.json", meta.encode("utf-8"))]
                english = record.captions.get("en")
                if english:
                    parts.append((f"{key}.txt", english[0].encode("utf-8")))
                for name, data in parts:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    info.mode = 0o644
                    tar.addfile(info, io.BytesIO(data))
        written.append(path)
    return written
