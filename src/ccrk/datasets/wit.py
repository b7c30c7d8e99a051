"""WIT (IGLUE's Wikipedia image-text retrieval), 11 test languages.

Annotations (github.com/e-bug/iglue, ``datasets/wit/annotations/``), under
``<root>/wit/annotations/``: ``test_<lang>.jsonl`` for ar bg da el en et id
ja ko tr vi, ``val_en.jsonl``, and ``train_en.jsonl.zip`` (extracted next to
it). One line per (image, caption) pair::

    {"image_url": "https://upload.wikimedia.org/...", "caption_reference_description": "...",
     "language": "en", "wit_ix": "wit-test_4", "image_idx": 20, ...}

An image can have several captions in the same language (it appears on
several pages) but its captions in different languages are *not*
translations of each other, and most images have one language only: WIT has
no one-to-many image-text relation, so MRV does not apply. Images are
grouped by ``image_url``, as the paper's code does; the merged ``test``
manifest holds each image once with the captions of every language that
describes it, and each language must be evaluated on the records that have
captions in it (IGLUE's per-language image pools).

``image_id`` is the first 20 hex digits of SHA-1(image_url) (the training
file's lines are not known to carry ``wit_ix``, and a URL is the one key
every source shares); ``image`` is ``wit/images/<id[:2]>/<id>.jpg`` relative
to the data root. Captions that are empty upstream are skipped (as the
paper's code does) and counted in the prepare notes.

Pixels: the paper used the Kaggle "Wikipedia - Image/Caption Matching"
pixel files (login and rules acceptance needed, so a manual source):
tab-separated ``image_url, base64 image, metadata_url`` rows in
``image_data_{train,test}/image_pixels/*.csv[.gz]``, to be placed under
``<root>/wit/kaggle/``; :func:`extract_kaggle_pixels` writes the images the
annotations need. Kaggle left out images showing people, so
:func:`fetch_wikimedia` can fetch the remaining (public) images straight from
Wikimedia Commons; those are not byte-identical to the paper's pixels.
"""
from __future__ import annotations

import base64
import binascii
import csv
import gzip
import hashlib
import io
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import unquote

from PIL import Image

from ccrk.atomic import atomic_write_bytes
from ccrk.data.manifest import Record
from ccrk.datasets._io import WIT_IMAGES, Prepared, fail, get_field, iter_jsonl, merge_records

LANGUAGES: tuple[str, ...] = ("ar", "bg", "da", "el", "en", "et", "id", "ja", "ko", "tr", "vi")
ANNOTATION_DIR = "wit/annotations"
KAGGLE_DIR = "wit/kaggle"


def image_id_for(url: str) -> str:
    return hashlib.sha1(url.encode("utf-8")).hexdigest()[:20]


def image_path_for(url: str) -> str:
    key = image_id_for(url)
    return f"{WIT_IMAGES}/{key[:2]}/{key}.jpg"


def read_wit(path: str | Path, lang: str, notes: list[str] | None = None) -> list[Record]:
    """One record an image URL with its ``lang`` captions, in order of first appearance."""
    path = Path(path)
    captions: dict[str, list[str]] = {}
    empty = 0
    for lineno, obj in iter_jsonl(path):
        url = get_field(obj, "image_url", str, path, lineno)
        if not url.strip():
            fail(path, lineno, "field 'image_url' is empty")
        if "caption_reference_description" not in obj:
            present = ", ".join(sorted(obj))
            fail(path, lineno, f"missing field 'caption_reference_description' (fields present: {present})")
        text = obj["caption_reference_description"]
        if text is not None and not isinstance(text, str):
            fail(path, lineno, f"field 'caption_reference_description' must be a string or null, got {text!r}")
        line_lang = obj.get("language")
        if line_lang is not None and line_lang != lang:
            fail(path, lineno, f"language {line_lang!r} in a file of language {lang!r}")
        texts = captions.setdefault(url, [])
        if text and text.strip():
            texts.append(text)
        else:
            empty += 1
    if not captions:
        fail(path, 1, "no annotations in file")
    if empty and notes is not None:
        notes.append(f"{path}: skipped {empty} line(s) with an empty caption")
    return [
        Record(image_id=image_id_for(url), image=image_path_for(url), captions={lang: texts})
        for url, texts in captions.items() if texts
    ]


def urls_in(path: str | Path) -> list[str]:
    """Distinct image URLs of an annotation file, in order."""
    return list(dict.fromkeys(get_field(obj, "image_url", str, Path(path), n) for n, obj in iter_jsonl(path)))


def annotation_files(root: str | Path) -> dict[str, list[tuple[str, Path]]]:
    """Output split -> [(language, file)] for the annotation files present."""
    ann = Path(root) / ANNOTATION_DIR
    files: dict[str, list[tuple[str, Path]]] = {}
    for lang in LANGUAGES:
        if (ann / f"test_{lang}.jsonl").is_file():
            files.setdefault("test", []).append((lang, ann / f"test_{lang}.jsonl"))
    if (ann / "val_en.jsonl").is_file():
        files["val"] = [("en", ann / "val_en.jsonl")]
    train = sorted(ann.rglob("train_en.jsonl")) if ann.is_dir() else []
    if train:
        files["train"] = [("en", train[0])]
    return files


def prepare(root: str | Path) -> Prepared:
    out = Prepared(dataset="wit")
    files = annotation_files(root)
    if "test" not in files:
        raise FileNotFoundError(
            f"annotation file not found: {Path(root) / ANNOTATION_DIR / 'test_en.jsonl'} "
            "(run `ccrk download --dataset wit`)"
        )
    if "train" not in files:
        out.notes.append("no train_en.jsonl (extract train_en.jsonl.zip): train manifest not written")
    for split, pairs in files.items():
        groups = [read_wit(path, lang, out.notes) for lang, path in pairs]
        out.splits[split] = merge_records(groups)
        out.inputs.extend(path for _, path in pairs)
    return out


# --------------------------------------------------------------------- pixels


def save_as_jpeg(data: bytes, dest: Path) -> None:
    """Write image bytes as a JPEG (re-encoding other formats), atomically.

    A fixed ``.jpg`` name lets the manifest be written without knowing which
    format each source delivered; JPEGs pass through untouched.
    """
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        if img.format == "JPEG" and img.mode in ("RGB", "L"):
            atomic_write_bytes(dest, data)
            return
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=95)
    atomic_write_bytes(dest, buf.getvalue())


def pixel_files(kaggle_dir: str | Path) -> list[Path]:
    base = Path(kaggle_dir)
    return sorted(p for p in base.rglob("*image_pixels*.csv*") if p.is_file()) if base.is_dir() else []


def extract_kaggle_pixels(files: Iterable[Path], wanted: dict[str, Path],
                          notes: list[str] | None = None) -> dict[str, Path]:
    """Decode the rows of ``files`` whose URL is in ``wanted`` to ``wanted[url]``.

    Returns the URLs still missing afterwards. Existing destinations are not
    rewritten, so a second run only decodes what the first one lacked.
    """
    remaining = {url: dest for url, dest in wanted.items() if not dest.is_file()}
    csv.field_size_limit(sys.maxsize)
    for path in files:
        if not remaining:
            break
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8", newline="") as handle:
                for lineno, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
                    if len(row) < 2:
                        fail(path, lineno,
                             f"expected 'image_url<TAB>base64 image<TAB>metadata_url', got {len(row)} field(s)")
                    dest = remaining.get(row[0])
                    if dest is None:
                        continue
                    try:
                        save_as_jpeg(base64.b64decode(row[1], validate=False), dest)
                    except (binascii.Error, OSError, ValueError) as exc:
                        if notes is not None:
                            notes.append(f"{path}:{lineno}: undecodable image for {row[0]}: {exc}")
                        continue
                    del remaining[row[0]]
        except (EOFError, gzip.BadGzipFile) as exc:
            fail(path, None, f"corrupt or truncated gzip file: {exc}")
    return remaining


_UPLOAD = re.compile(r"^https?://upload\.wikimedia\.org/wikipedia/([^/]+)/([0-9a-f])/([0-9a-f]{2})/([^/]+)$")
#: Formats PIL cannot read (or that are huge) get a rendered thumbnail.
_THUMB_FORMS = {".svg": ("", ".png"), ".tif": ("lossy-page1-", ".jpg"), ".tiff": ("lossy-page1-", ".jpg"),
                ".pdf": ("page1-", ".jpg"), ".djvu": ("page1-", ".jpg")}


def wikimedia_urls(url: str, width: int = 640) -> list[str]:
    """Candidate download URLs for a Wikimedia upload URL: thumbnail first, then the original.

    Thumbnails follow Wikimedia's ``/thumb/<a>/<ab>/<name>/<w>px-<name>``
    scheme; a thumbnail wider than the original is refused by the server,
    hence the fallback to the original (only for formats PIL reads).
    """
    match = _UPLOAD.match(url)
    if not match:
        return [url]
    project, a, ab, name = match.groups()
    suffix = Path(unquote(name)).suffix.lower()
    prefix, extra = _THUMB_FORMS.get(suffix, ("", ""))
    base = f"https://upload.wikimedia.org/wikipedia/{project}"
    thumb = f"{base}/thumb/{a}/{ab}/{name}/{prefix}{width}px-{name}{extra}"
    return [thumb] if suffix in _THUMB_FORMS else [thumb, f"{base}/{a}/{ab}/{name}"]


def fetch_wikimedia(wanted: dict[str, Path], fetch: Callable[[str], bytes], workers: int = 4,
                    notes: list[str] | None = None) -> dict[str, Path]:
    """Download the images of ``wanted`` that are still missing; returns those that failed.

    ``fetch(url) -> bytes`` raises on failure (``ccrk.datasets.http.fetch_bytes``).
    """
    from concurrent.futures import ThreadPoolExecutor

    todo = {url: dest for url, dest in wanted.items() if not dest.is_file()}

    def one(item: tuple[str, Path]) -> tuple[str, str | None]:
        url, dest = item
        error = None
        for candidate in wikimedia_urls(url):
            try:
                save_as_jpeg(fetch(candidate), dest)
                return url, None
            except Exception as exc:  # network, HTTP and decoding errors alike: try the next form
                error = f"{candidate}: {exc}"
        return url, error

    failed: dict[str, Path] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for url, error in pool.map(one, todo.items()):
            if error is not None:
                failed[url] = todo[url]
                if notes is not None:
                    notes.append(error)
    return failed


def image_targets(root: str | Path, splits: Iterable[str] = ("test", "val")) -> dict[str, Path]:
    """``image_url -> destination`` for the images of the given annotation splits."""
    root = Path(root)
    files = annotation_files(root)
    targets: dict[str, Path] = {}
    for split in splits:
        for _, path in files.get(split, []):
            for url in urls_in(path):
                targets[url] = root / image_path_for(url)
    return targets
