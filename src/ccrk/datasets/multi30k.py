"""Multi30K task 1: Flickr30k images with one caption each in en, de, fr and cs.

Upstream (github.com/multi30k/dataset, ``data/task1/``), downloaded to
``<root>/multi30k/task1/``:

* ``image_splits/<split>.txt``: one Flickr30k file name a line;
* ``raw/<split>.<lang>.gz``: gzip'd text, line *i* is the caption of the
  image on line *i* of the split file.

Nothing but line position ties a caption to its image, so a file that lost
its tail (a cut download, a truncated gzip stream) would shift nothing but
still pair the surviving lines correctly *and* silently lose images; a file
with one extra or missing line in the middle would mis-pair everything after
it. Both are refused: every language must have exactly as many lines as the
split has images, and an empty caption line is an error naming file and line.

The manifest's ``image`` is ``flickr30k/images/<name>``, relative to the data
root (COCO names, as in ``test_2017_mscoco``, go to ``mscoco/images/``).
``image_id`` is the file name without ``.jpg``. The four captions of an image
are translations of each other, so MRV applies.

Output names: ``train``, ``val`` and ``test`` (= ``test_2016_flickr``, the
test set the paper reports); other test years keep their upstream name.
"""
from __future__ import annotations

from pathlib import Path

from ccrk.data.manifest import Record
from ccrk.datasets._io import Prepared, fail, read_text_lines, require_file, resolve_image_name

LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "cs")
#: Splits the paper uses (Czech exists for these, not for the 2017 tests).
SPLITS: tuple[str, ...] = ("train", "val", "test_2016_flickr")
OUTPUT_NAMES: dict[str, str] = {"train": "train", "val": "val", "test_2016_flickr": "test"}
TASK_DIR = "multi30k/task1"


def read_image_split(path: str | Path) -> list[str]:
    """Image file names of one split, in line order."""
    path = Path(path)
    names = read_text_lines(path)
    for lineno, name in enumerate(names, start=1):
        if not name.strip():
            fail(path, lineno, "empty line in an image split file (every line must name an image)")
        if name != name.strip():
            fail(path, lineno, f"image name {name!r} has surrounding whitespace")
    if not names:
        fail(path, 1, "image split file is empty")
    return names


def split_caption_ref(name: str) -> tuple[str, int | None]:
    """``COCO_train2014_000000117071.jpg#367178`` -> the file name and the COCO caption id after ``#``.

    ``test_2017_mscoco`` lists each image with the id of the COCO caption its
    translations were made from; the other splits list bare file names.
    """
    file, sep, ref = name.partition("#")
    if not sep:
        return name, None
    if not ref.isdigit():
        raise ValueError(f"image {name!r}: what follows '#' must be a COCO caption id (digits), got {ref!r}")
    return file, int(ref)


def read_split(task_dir: str | Path, split: str, languages: tuple[str, ...] | list[str] = LANGUAGES,
               caption_ids: dict[str, list[int]] | None = None) -> list[Record]:
    """One record an image with its line-aligned caption in every language.

    An image listed twice in a split keeps one record whose caption lists
    grow in step, so position *k* of every language is still one translation
    tuple. ``caption_ids``, when given, receives each image's upstream
    caption ids in the same order (``test_2017_mscoco``'s ``#<id>`` tails).
    """
    task_dir = Path(task_dir)
    split_path = require_file(task_dir / "image_splits" / f"{split}.txt", "run `ccrk download --dataset multi30k`")
    names = read_image_split(split_path)
    captions: dict[str, list[str]] = {}
    for lang in languages:
        path = require_file(task_dir / "raw" / f"{split}.{lang}.gz", "run `ccrk download --dataset multi30k`")
        lines = read_text_lines(path)
        if len(lines) != len(names):
            fail(
                path, min(len(lines), len(names)) + 1,
                f"{len(lines)} caption lines but {split_path} lists {len(names)} images; the files must be"
                " line-aligned (a truncated or mismatched download?)",
            )
        for lineno, text in enumerate(lines, start=1):
            if not text.strip():
                fail(path, lineno, f"empty caption for image {names[lineno - 1]}")
        captions[lang] = lines

    merged: dict[str, tuple[str, dict[str, list[str]]]] = {}
    for i, name in enumerate(names):
        try:
            file, ref = split_caption_ref(name)
            image = resolve_image_name(file)
        except ValueError as exc:
            fail(split_path, i + 1, str(exc))
        image_id = Path(file).stem
        _, caps = merged.setdefault(image_id, (image, {}))
        for lang in languages:
            caps.setdefault(lang, []).append(captions[lang][i])
        if ref is not None and caption_ids is not None:
            caption_ids.setdefault(image_id, []).append(ref)
    return [Record(image_id=i, image=img, captions=caps) for i, (img, caps) in merged.items()]


def available_languages(task_dir: str | Path, split: str) -> list[str]:
    raw = Path(task_dir) / "raw"
    return [lang for lang in LANGUAGES if (raw / f"{split}.{lang}.gz").is_file()]


def prepare(root: str | Path, splits: tuple[str, ...] | list[str] | None = None,
            languages: list[str] | None = None) -> Prepared:
    """Manifests for ``splits`` (default: the paper's train/val/test_2016_flickr that are present).

    ``languages`` defaults to all four; a split missing one of them fails,
    since a silently trilingual split would change what MRV means.
    """
    task_dir = Path(root) / TASK_DIR
    out = Prepared(dataset="multi30k")
    if splits is None:
        present = [s for s in SPLITS if (task_dir / "image_splits" / f"{s}.txt").is_file()]
        if not present:
            require_file(task_dir / "image_splits" / "test_2016_flickr.txt", "run `ccrk download --dataset multi30k`")
        splits = present
    langs = tuple(languages) if languages is not None else LANGUAGES
    for split in splits:
        ids: dict[str, list[int]] = {}
        name = OUTPUT_NAMES.get(split, split)
        out.splits[name] = read_split(task_dir, split, langs, caption_ids=ids)
        if ids:
            out.caption_ids[name] = ids
        out.inputs.append(task_dir / "image_splits" / f"{split}.txt")
        out.inputs.extend(task_dir / "raw" / f"{split}.{lang}.gz" for lang in langs)
    return out
