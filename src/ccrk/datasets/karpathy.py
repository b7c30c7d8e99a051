"""Karpathy's caption splits (``dataset_coco.json``, ``dataset_flickr30k.json``).

Source: https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip,
extracted to ``<root>/karpathy/``. Format (one JSON document)::

    {"dataset": "coco", "images": [{"filepath": "val2014",
      "filename": "COCO_val2014_000000391895.jpg", "split": "test",
      "cocoid": 391895, "sentences": [{"raw": "...", "tokens": [...]}, ...]}]}

Flickr30k entries have no ``filepath``/``cocoid``; the id is the file stem.
``restval`` (COCO val2014 images outside the 5k val/test) is training data in
every paper that uses these splits, so it is folded into ``train``.
"""
from __future__ import annotations

from pathlib import Path

from ccrk.data.manifest import Record
from ccrk.datasets._io import clean_captions, fail, load_json, resolve_image_name

KARPATHY_DIR = "karpathy"
SPLIT_NAMES = {"train": "train", "restval": "train", "val": "val", "test": "test"}


def find_file(root: str | Path, name: str) -> Path:
    """``<root>/karpathy/<name>``, also found one folder down (archive layouts vary)."""
    base = Path(root) / KARPATHY_DIR
    direct = base / name
    if direct.is_file():
        return direct
    nested = sorted(base.glob(f"*/{name}")) if base.is_dir() else []
    if nested:
        return nested[0]
    raise FileNotFoundError(f"annotation file not found: {direct} (run `ccrk download --source karpathy-splits`)")


def read_karpathy(path: str | Path, lang: str = "en", notes: list[str] | None = None) -> dict[str, list[Record]]:
    """Records by split (``train``/``val``/``test``) with the raw English sentences."""
    path = Path(path)
    doc = load_json(path)
    images = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(images, list):
        fail(path, None, "expected an object with an 'images' array (Karpathy split format)")
    out: dict[str, list[Record]] = {}
    seen: dict[str, int] = {}
    for i, entry in enumerate(images):
        where = f"images[{i}]"
        if not isinstance(entry, dict):
            fail(path, None, f"{where}: expected an object, got {type(entry).__name__}")
        for key in ("filename", "split", "sentences"):
            if key not in entry:
                fail(path, None, f"{where}: missing field {key!r}")
        filename, split, sentences = entry["filename"], entry["split"], entry["sentences"]
        if split not in SPLIT_NAMES:
            fail(path, None, f"{where}: unknown split {split!r} (expected one of {sorted(SPLIT_NAMES)})")
        if not isinstance(filename, str):
            fail(path, None, f"{where}: 'filename' must be a string")
        try:
            image = resolve_image_name(filename)
        except ValueError as exc:
            fail(path, None, f"{where}: {exc}")
        filepath = entry.get("filepath")
        if filepath is not None and f"/{filepath}/" not in f"/{image}":
            fail(path, None, f"{where}: filepath {filepath!r} disagrees with file name {filename!r}")
        cocoid = entry.get("cocoid")
        if cocoid is not None and (isinstance(cocoid, bool) or not isinstance(cocoid, int)):
            fail(path, None, f"{where}: 'cocoid' must be an integer, got {cocoid!r}")
        image_id = str(cocoid) if cocoid is not None else Path(filename).stem
        if image_id in seen:
            fail(path, None, f"{where}: duplicate image {image_id!r} (first at images[{seen[image_id]}])")
        seen[image_id] = i
        if not isinstance(sentences, list):
            fail(path, None, f"{where}: 'sentences' must be an array")
        texts = []
        for j, sent in enumerate(sentences):
            raw = sent.get("raw") if isinstance(sent, dict) else None
            if not isinstance(raw, str):
                fail(path, None, f"{where}.sentences[{j}]: missing string field 'raw'")
            texts.append(raw)
        kept, dropped = clean_captions(texts)
        if dropped and notes is not None:
            notes.append(f"{path}: {where}: dropped {dropped} empty caption(s) of image {image_id}")
        out.setdefault(SPLIT_NAMES[split], []).append(
            Record(image_id=image_id, image=image, captions={lang: kept} if kept else {})
        )
    return out
