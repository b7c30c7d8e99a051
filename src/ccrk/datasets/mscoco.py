"""Multilingual MSCOCO: English (Karpathy), Japanese (STAIR or YJ) and Chinese (COCO-CN).

Each language comes from a different project with different annotators, so
the captions of one image are *not* translations of each other and MRV does
not apply (the paper reports none for COCO). The manifests still hold one
record an image, with whichever languages describe it in that split.

Sources under the data root:

* ``karpathy/dataset_coco.json``: Karpathy splits; ``restval`` is folded into
  ``train`` (113,287 / 5,000 / 5,000 images). English = ``sentences[].raw``.
* Japanese, ``ja_source="stair"`` (default): STAIR Captions v1.2,
  ``mscoco/stair/stair_captions_v1.2_{train,val}.json`` (COCO caption format:
  ``{"annotations": [{"image_id": int, "caption": str}, ...]}``), covering all
  COCO 2014 train+val images. STAIR has no split of its own, so Japanese
  follows the Karpathy split of each image.
  ``ja_source="yjcaptions"``: YJ Captions 26k (``yjcaptions26k_clean.json``
  under ``mscoco/yjcaptions/``, same COCO format), the source the paper's
  public README links; it covers ~26k train2014 images only.
* Chinese: COCO-CN (``mscoco/coco-cn/``, released on request by its authors):
  ``coco-cn_{train,val,test}.txt`` (one ``COCO_<split>2014_<12 digits>`` a
  line) and ``imageid.human-written-caption.txt`` (``<name>#<k><TAB><caption>``).
  Chinese follows COCO-CN's own split (18,341 / 1,000 / 1,000). FORMAT NOTE:
  this layout is taken from public descriptions of the
  ``coco-cn-version1805v1.1`` archive, not from a file we could inspect; the
  parser checks it strictly and says what it expected when it differs.

Because the Chinese split is COCO-CN's and the others are Karpathy's, an
image can be in ``test`` for zh and ``train`` for en/ja; prepare reports how
many (the published splits overlap; nothing is moved, to keep each
language's test set exactly as published).

``image`` is ``mscoco/images/{train2014,val2014}/<name>`` relative to the data root.
"""
from __future__ import annotations

from pathlib import Path

from ccrk.data.manifest import Record
from ccrk.datasets._io import (
    Prepared,
    clean_captions,
    coco_id_from_name,
    fail,
    load_json,
    read_text_lines,
    resolve_image_name,
)
from ccrk.datasets.karpathy import find_file, read_karpathy

STAIR_DIR = "mscoco/stair"
YJ_DIR = "mscoco/yjcaptions"
COCO_CN_DIR = "mscoco/coco-cn"
JA_SOURCES = ("stair", "yjcaptions", "none")
SPLITS = ("train", "val", "test")


def read_coco_captions(path: str | Path, notes: list[str] | None = None) -> dict[str, list[str]]:
    """Captions by COCO image id (as a string) from a COCO-format caption file."""
    path = Path(path)
    doc = load_json(path)
    anns = doc.get("annotations") if isinstance(doc, dict) else None
    if not isinstance(anns, list):
        fail(path, None, "expected an object with an 'annotations' array (COCO caption format)")
    out: dict[str, list[str]] = {}
    dropped = 0
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict):
            fail(path, None, f"annotations[{i}]: expected an object, got {type(ann).__name__}")
        image_id, caption = ann.get("image_id"), ann.get("caption")
        if isinstance(image_id, bool) or not isinstance(image_id, int):
            fail(path, None, f"annotations[{i}]: 'image_id' must be an integer, got {image_id!r}")
        if not isinstance(caption, str):
            fail(path, None, f"annotations[{i}]: 'caption' must be a string, got {caption!r}")
        kept, n = clean_captions([caption])
        dropped += n
        if kept:
            out.setdefault(str(image_id), []).extend(kept)
    if dropped and notes is not None:
        notes.append(f"{path}: dropped {dropped} empty caption(s)")
    return out


def _find(base: Path, pattern: str, hint: str) -> list[Path]:
    found = sorted(p for p in base.rglob(pattern) if p.is_file()) if base.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no {pattern} under {base} ({hint})")
    return found


def read_japanese(root: Path, source: str, notes: list[str], inputs: list[Path]) -> dict[str, list[str]]:
    if source == "stair":
        paths = [p for p in _find(root / STAIR_DIR, "stair_captions_v1.2_*.json",
                                  "run `ccrk download --source stair-captions`")
                 if "tokenized" not in p.name]
    elif source == "yjcaptions":
        paths = _find(root / YJ_DIR, "yjcaptions26k*.json", "run `ccrk download --source yjcaptions`")
    else:
        raise ValueError(f"unknown Japanese source {source!r}; expected one of {JA_SOURCES}")
    captions: dict[str, list[str]] = {}
    for path in paths:
        inputs.append(path)
        for image_id, texts in read_coco_captions(path, notes).items():
            captions.setdefault(image_id, []).extend(texts)
    return captions


def read_coco_cn(base: str | Path) -> tuple[dict[str, list[str]], dict[str, list[str]], list[Path]]:
    """COCO-CN: (captions by COCO id, image names by split, files read)."""
    base = Path(base)
    hint = "COCO-CN is released on request; see `ccrk download --dataset mscoco`"
    caption_path = _find(base, "imageid.human-written-caption.txt", hint)[0]
    files = [caption_path]
    captions: dict[str, list[str]] = {}
    for lineno, line in enumerate(read_text_lines(caption_path), start=1):
        if not line.strip():
            continue
        key, sep, text = line.partition("\t")
        if not sep:
            fail(caption_path, lineno, "expected '<image name>#<k><TAB><caption>'")
        name = key.split("#", 1)[0]
        coco_id = coco_id_from_name(name + ".jpg")
        if coco_id is None:
            fail(caption_path, lineno, f"{name!r} is not a COCO 2014 image name (COCO_train2014_<12 digits>)")
        if text.strip():
            captions.setdefault(str(coco_id), []).append(text)
    splits: dict[str, list[str]] = {}
    for split in SPLITS:
        path = _find(base, f"coco-cn_{split}.txt", hint)[0]
        files.append(path)
        names = []
        for lineno, name in enumerate(read_text_lines(path), start=1):
            name = name.strip()
            if not name:
                continue
            if coco_id_from_name(name + ".jpg") is None:
                fail(path, lineno, f"{name!r} is not a COCO 2014 image name (COCO_train2014_<12 digits>)")
            names.append(name)
        splits[split] = names
    return captions, splits, files


def prepare(root: str | Path, ja_source: str = "stair", chinese: bool = True) -> Prepared:
    """Manifests ``train``/``val``/``test`` with en, ja (``ja_source``) and zh (COCO-CN)."""
    root = Path(root)
    out = Prepared(dataset="mscoco")
    kpath = find_file(root, "dataset_coco.json")
    out.inputs.append(kpath)
    english = read_karpathy(kpath, "en", out.notes)
    japanese = read_japanese(root, ja_source, out.notes, out.inputs) if ja_source != "none" else {}

    split_of = {r.image_id: split for split, recs in english.items() for r in recs}
    by_split: dict[str, dict[str, Record]] = {}
    for split in SPLITS:
        records = {}
        for rec in english.get(split, []):
            captions = dict(rec.captions)
            if rec.image_id in japanese:
                captions["ja"] = list(japanese[rec.image_id])
            records[rec.image_id] = Record(rec.image_id, rec.image, captions)
        by_split[split] = records

    if chinese:
        zh_captions, zh_splits, files = read_coco_cn(root / COCO_CN_DIR)
        out.inputs.extend(files)
        for split, names in zh_splits.items():
            moved = 0
            for name in names:
                image_id = str(coco_id_from_name(name + ".jpg"))
                texts = zh_captions.get(image_id)
                if not texts:
                    out.notes.append(f"COCO-CN {split}: image {name} has no human-written caption; skipped")
                    continue
                record = by_split[split].get(image_id)
                if record is None:
                    moved += split_of.get(image_id, split) != split
                    record = Record(image_id, resolve_image_name(name + ".jpg"), {})
                record.captions["zh"] = list(texts)
                by_split[split][image_id] = record
            if moved:
                out.notes.append(
                    f"COCO-CN {split}: {moved} image(s) are in a different Karpathy split; their zh captions are "
                    f"in {split} and their en/ja captions where Karpathy puts them (published splits overlap)"
                )
    for split in SPLITS:
        out.splits[split] = [r for r in by_split[split].values() if r.captions]
    return out
