"""xFlickr&CO (IGLUE): 2000 test images with one caption in each of 8 languages.

Upstream: ``datasets/xFlickrCO/annotations/<lang>/{test,train_<shots>}.jsonl``
in github.com/e-bug/iglue, downloaded to ``<root>/xflickrco/annotations/``.
Each line is ``{"sentences": [...], "id": ..., "img_path": "..."}``.

Quirks kept or handled here, deliberately:

* ``id`` is a string for Flickr30k images (``"1007129816"``) and an integer
  for COCO images (``391895``). The manifest's ``image_id`` is always the
  string, so the two never compare unequal at evaluation.
* ``img_path`` is a bare file name, 1000 of them Flickr30k and 1000 COCO
  val2014. The manifest's ``image`` is relative to the *data root*:
  ``flickr30k/images/<name>`` or ``mscoco/images/val2014/<name>`` (see
  :func:`ccrk.datasets._io.resolve_image_name`), so one ``image_root``
  serves both collections.
* The Japanese sentences carry stray digit markers (``1男が、3メガネを...``),
  remnants of the translators' alignment tool. They are kept as published:
  the paper's numbers were measured on these exact strings, and cleaning
  them would silently change the benchmark.
* German test line 1960 (COCO 122239) and Indonesian test line 901 (Flickr
  6312211170) have an empty sentence. Empty captions are dropped (the paper's
  code skips them too) and reported as a note; the image stays in the merged
  test set with the languages that do describe it, so MRV over en/de/ja/zh
  has 1999 complete instances, not 2000.

The test files of the languages are line-parallel (same ids, same order);
:func:`merge_parallel` checks that and builds one record an image with one
caption a language, the structure MRV needs.
"""
from __future__ import annotations

import re
from pathlib import Path

from ccrk.data.manifest import Record
from ccrk.datasets._io import (
    Prepared,
    clean_captions,
    coco_id_from_name,
    fail,
    get_field,
    iter_jsonl,
    require_file,
    resolve_image_name,
)
from ccrk.layout import XFLICKRCO_FEW_SHOT_LANGUAGES, XFLICKRCO_FEW_SHOT_SIZES

#: Test languages, English first (the order the objectives rely on).
LANGUAGES: tuple[str, ...] = ("en", "de", "es", "id", "ja", "ru", "tr", "zh")
#: Few-shot training languages and the shot counts of IGLUE's protocol (declared with the other shared names).
FEW_SHOT_LANGUAGES, FEW_SHOT_SIZES = XFLICKRCO_FEW_SHOT_LANGUAGES, XFLICKRCO_FEW_SHOT_SIZES
#: Where ``ccrk download`` puts the annotations, relative to the data root.
ANNOTATION_DIR = "xflickrco/annotations"

_FEW_SHOT_FILE = re.compile(r"^train_([0-9]+(?:x[0-9]+)?)\.jsonl$")


def read_iglue_retrieval(path: str | Path, lang: str, notes: list[str] | None = None) -> list[Record]:
    """Parse one IGLUE retrieval file (xFlickr&CO or the Flickr30k ``*_ann.jsonl``).

    Returns one record an image, captions under ``lang``. An image whose
    captions are all empty keeps a record with no captions (so parallel
    files still line up); ``notes`` receives one line per dropped caption set.
    """
    path = Path(path)
    records: list[Record] = []
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        sentences = get_field(obj, "sentences", list, path, lineno)
        for j, text in enumerate(sentences):
            if not isinstance(text, str):
                fail(path, lineno, f"sentences[{j}] must be a string, got {type(text).__name__}")
        raw_id = get_field(obj, "id", (str, int), path, lineno)
        image_id = str(raw_id)
        if not image_id.strip():
            fail(path, lineno, "field 'id' is empty")
        name = get_field(obj, "img_path", str, path, lineno)
        try:
            image = resolve_image_name(name)
        except ValueError as exc:
            fail(path, lineno, f"field 'img_path': {exc}")
        coco_id = coco_id_from_name(name)
        expected = str(coco_id) if coco_id is not None else Path(name).stem
        if image_id != expected:
            # The id decides the ground truth across languages, the file what
            # the model sees: if they disagree one of them is wrong.
            fail(path, lineno, f"id {raw_id!r} does not match img_path {name!r} (expected id {expected!r})")
        if image_id in first_line:
            fail(path, lineno, f"duplicate image id {image_id!r} (first on line {first_line[image_id]})")
        first_line[image_id] = lineno
        kept, dropped = clean_captions(sentences)
        if dropped and notes is not None:
            notes.append(f"{path}:{lineno}: dropped {dropped} empty caption(s) of image {image_id} ({lang})")
        records.append(Record(image_id=image_id, image=image, captions={lang: kept} if kept else {}))
    if not records:
        fail(path, 1, "no annotations in file")
    return records


def merge_parallel(per_language: dict[str, list[Record]], paths: dict[str, Path]) -> list[Record]:
    """One record an image with the captions of every language, in ``per_language`` order.

    All languages must describe the same images; a difference names the file
    and a few of the ids, which is how a half-downloaded language shows up.
    """
    langs = list(per_language)
    if not langs:
        raise ValueError("merge_parallel needs at least one language")
    ref_lang = langs[0]
    ref = per_language[ref_lang]
    ref_ids = {r.image_id: r for r in ref}
    for lang in langs[1:]:
        ids = {r.image_id: r for r in per_language[lang]}
        missing = [i for i in ref_ids if i not in ids]
        extra = [i for i in ids if i not in ref_ids]
        if missing or extra:
            fail(
                paths[lang], None,
                f"not parallel to {paths[ref_lang]}: {len(missing)} image id(s) missing"
                f"{' (e.g. ' + ', '.join(missing[:3]) + ')' if missing else ''}, {len(extra)} extra"
                f"{' (e.g. ' + ', '.join(extra[:3]) + ')' if extra else ''}",
            )
        for image_id, rec in ids.items():
            if rec.image != ref_ids[image_id].image:
                fail(paths[lang], None,
                     f"image {image_id!r} is {rec.image!r} here but {ref_ids[image_id].image!r} in {ref_lang}")
    by_lang = {lang: {r.image_id: r for r in per_language[lang]} for lang in langs}
    merged = []
    for rec in ref:
        captions = {}
        for lang in langs:
            texts = by_lang[lang][rec.image_id].captions.get(lang)
            if texts:
                captions[lang] = list(texts)
        merged.append(Record(image_id=rec.image_id, image=rec.image, captions=captions))
    return merged


def read_test(ann_dir: str | Path, languages: tuple[str, ...] | list[str] = LANGUAGES,
              notes: list[str] | None = None) -> tuple[list[Record], dict[str, Path]]:
    """The merged multilingual test set from ``<ann_dir>/<lang>/test.jsonl``."""
    ann_dir = Path(ann_dir)
    paths = {
        lang: require_file(ann_dir / lang / "test.jsonl", "run `ccrk download --dataset xflickrco`")
        for lang in languages
    }
    per_language = {lang: read_iglue_retrieval(p, lang, notes) for lang, p in paths.items()}
    return merge_parallel(per_language, paths), paths


def few_shot_files(ann_dir: str | Path) -> dict[tuple[str, str], Path]:
    """``(language, shots) -> path`` for every ``<lang>/train_<shots>.jsonl`` present."""
    ann_dir = Path(ann_dir)
    found: dict[tuple[str, str], Path] = {}
    for lang_dir in sorted(p for p in ann_dir.iterdir() if p.is_dir()):
        for path in sorted(lang_dir.iterdir()):
            match = _FEW_SHOT_FILE.match(path.name)
            if match:
                found[(lang_dir.name, match.group(1))] = path
    # 1, 5, 10, 100 rather than 1, 10, 100, 5
    return dict(sorted(found.items(), key=lambda kv: (kv[0][0], [int(n) for n in kv[0][1].split("x")])))


def prepare(root: str | Path, languages: list[str] | None = None) -> Prepared:
    """Manifests ``test`` (merged, parallel) and ``few_shot/<lang>/train_<shots>``.

    ``languages`` defaults to every language whose ``test.jsonl`` is present,
    English first; English is required (it is the pivot every run uses).
    """
    ann_dir = Path(root) / ANNOTATION_DIR
    out = Prepared(dataset="xflickrco")
    if languages is None:
        languages = [lang for lang in LANGUAGES if (ann_dir / lang / "test.jsonl").is_file()]
        if "en" not in languages:
            require_file(ann_dir / "en" / "test.jsonl", "run `ccrk download --dataset xflickrco`")
    test, paths = read_test(ann_dir, languages, out.notes)
    out.splits["test"] = test
    out.inputs.extend(paths.values())
    for (lang, shots), path in few_shot_files(ann_dir).items():
        if lang not in languages:
            continue
        records = [r for r in read_iglue_retrieval(path, lang, out.notes) if r.captions]
        out.splits[f"few_shot/{lang}/train_{shots}"] = records
        out.inputs.append(path)
    return out
