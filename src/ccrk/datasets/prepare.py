"""Turn downloaded annotations into manifests: ``<out>/<split>.jsonl`` + ``prepare_info.json``.

Every manifest's ``image`` is relative to the *data root* (the ``--root`` of
``ccrk download``/``ccrk prepare``, ``data/`` by default); pass that
directory as ``image_root`` to :func:`ccrk.data.manifest.read_manifest`.
``prepare_info.json`` records it with the counts and the SHA-256 of every
annotation file read, so a manifest can be traced to the bytes it came from.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccrk.atomic import atomic_write_text
from ccrk.data.manifest import Record, write_manifest
from ccrk.datasets._io import Prepared
from ccrk.datasets.http import file_sha256


def _xflickrco(root: Path, **kw: Any) -> Prepared:
    from ccrk.datasets import xflickrco
    return xflickrco.prepare(root, languages=kw.get("languages"))


def _multi30k(root: Path, **kw: Any) -> Prepared:
    from ccrk.datasets import multi30k
    return multi30k.prepare(root, splits=kw.get("splits"), languages=kw.get("languages"))


def _flickr30k(root: Path, **kw: Any) -> Prepared:
    from ccrk.datasets import flickr30k
    return flickr30k.prepare(root, splits=kw.get("splits") or ("train", "val", "test"))


def _wit(root: Path, **kw: Any) -> Prepared:
    from ccrk.datasets import wit
    return wit.prepare(root)


def _mscoco(root: Path, **kw: Any) -> Prepared:
    from ccrk.datasets import mscoco
    return mscoco.prepare(root, ja_source=kw.get("ja_source") or "stair", chinese=kw.get("chinese", True))


#: dataset name -> ``f(root, **options) -> Prepared``.
PREPARERS: dict[str, Callable[..., Prepared]] = {
    "xflickrco": _xflickrco,
    "multi30k": _multi30k,
    "flickr30k": _flickr30k,
    "wit": _wit,
    "mscoco": _mscoco,
}


def split_counts(records: list[Record]) -> dict[str, Any]:
    """Images, and per language the images described and the captions."""
    langs: dict[str, dict[str, int]] = {}
    for rec in records:
        for lang, texts in rec.captions.items():
            entry = langs.setdefault(lang, {"images": 0, "captions": 0})
            entry["images"] += 1
            entry["captions"] += len(texts)
    return {"images": len(records), "languages": langs}


def missing_images(records: list[Record], root: Path) -> list[str]:
    return [rec.image for rec in records if not (root / rec.image).is_file()]


class MissingImagesError(FileNotFoundError):
    """Images referenced by a manifest that are not under the data root."""


def check_images(prepared: Prepared, root: Path) -> None:
    """Fail before writing anything if an image is missing, naming a few and the directory."""
    problems = []
    for name, records in prepared.splits.items():
        missing = missing_images(records, root)
        if missing:
            folders = sorted({str(Path(m).parent) for m in missing})
            problems.append(
                f"{name}: {len(missing)} of {len(records)} images missing under {root} "
                f"(e.g. {', '.join(missing[:3])}; folders: {', '.join(folders[:4])})"
            )
    if problems:
        raise MissingImagesError(
            "; ".join(problems) + f". Fill them with `ccrk download --dataset {prepared.dataset} --root {root}`"
        )


def write_prepared(prepared: Prepared, out: Path, root: Path) -> dict[str, Any]:
    """Write each split's manifest atomically and the provenance summary; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, records in prepared.splits.items():
        write_manifest(out / f"{name}.jsonl", records)
        counts[name] = split_counts(records)
    summary = {
        "dataset": prepared.dataset,
        "image_root": os.path.relpath(root.resolve(), out.resolve()),
        "data_root": str(root),
        "splits": counts,
        "inputs": {str(p): file_sha256(p) for p in prepared.inputs},
        "notes": prepared.notes,
    }
    if prepared.caption_ids:
        summary["caption_ids"] = prepared.caption_ids
    atomic_write_text(out / "prepare_info.json", json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return summary


def format_counts(summary: dict[str, Any]) -> str:
    """A table: split, images, then images/captions per language."""
    langs: list[str] = []
    for counts in summary["splits"].values():
        for lang in counts["languages"]:
            if lang not in langs:
                langs.append(lang)
    head = f"{'split':<28}{'images':>9}" + "".join(f"{lang:>16}" for lang in langs)
    rows = [head, "-" * len(head)]
    for name, counts in summary["splits"].items():
        cells = []
        for lang in langs:
            entry = counts["languages"].get(lang)
            cells.append(f"{entry['images']}/{entry['captions']}" if entry else "-")
        rows.append(f"{name:<28}{counts['images']:>9}" + "".join(f"{c:>16}" for c in cells))
    rows.append("(per language: images with a caption / captions)")
    return "\n".join(rows)


def prepare_dataset(dataset: str, root: str | os.PathLike[str], out: str | os.PathLike[str], *,
                    check: bool = False, **options: Any) -> dict[str, Any]:
    """Parse ``dataset`` under ``root`` and write its manifests to ``out``; returns the summary."""
    if dataset not in PREPARERS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(PREPARERS)}")
    root, out = Path(root), Path(out)
    prepared = PREPARERS[dataset](root, **options)
    if check:
        check_images(prepared, root)
    return write_prepared(prepared, out, root)
