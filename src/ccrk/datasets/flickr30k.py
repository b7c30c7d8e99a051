"""Flickr30k English (5 captions an image): the zero-shot fine-tuning set of xFlickr&CO.

IGLUE fine-tunes on Flickr30k English and tests every language of xFlickr&CO.
Sources, in order of preference, under ``<root>/flickr30k/annotations/``:

* ``{train,valid,test}_ann.jsonl`` in IGLUE's retrieval format (the same
  ``{"sentences", "id", "img_path"}`` lines as xFlickr&CO). IGLUE's GitHub
  repository ships only ``valid_ann.jsonl`` (1014 images), which ``ccrk
  download`` fetches; a user who has the other two (VOLTA's data release)
  can drop them in.
* otherwise Karpathy's ``dataset_flickr30k.json`` (``<root>/karpathy/``),
  whose train/val/test splits (29000/1014/1000) are the ones IGLUE's files
  were derived from.

``image`` is ``flickr30k/images/<name>`` relative to the data root.
"""
from __future__ import annotations

from pathlib import Path

from ccrk.data.manifest import Record
from ccrk.datasets._io import Prepared
from ccrk.datasets.karpathy import find_file, read_karpathy
from ccrk.datasets.xflickrco import read_iglue_retrieval

ANNOTATION_DIR = "flickr30k/annotations"
IGLUE_FILES = {"train": "train_ann.jsonl", "val": "valid_ann.jsonl", "test": "test_ann.jsonl"}


def read_annotations(path: str | Path, notes: list[str] | None = None) -> list[Record]:
    """An IGLUE ``*_ann.jsonl`` file: one record an image, English captions."""
    return [r for r in read_iglue_retrieval(path, "en", notes) if r.captions]


def prepare(root: str | Path, splits: tuple[str, ...] | list[str] = ("train", "val", "test")) -> Prepared:
    root = Path(root)
    out = Prepared(dataset="flickr30k")
    karpathy: dict[str, list[Record]] | None = None
    for split in splits:
        path = root / ANNOTATION_DIR / IGLUE_FILES[split]
        if path.is_file():
            out.splits[split] = read_annotations(path, out.notes)
            out.inputs.append(path)
            continue
        if karpathy is None:
            kpath = find_file(root, "dataset_flickr30k.json")
            karpathy = read_karpathy(kpath, "en", out.notes)
            out.inputs.append(kpath)
        out.splits[split] = [r for r in karpathy.get(split, []) if r.captions]
    return out
