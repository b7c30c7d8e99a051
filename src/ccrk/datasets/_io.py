"""Reading upstream annotation files with errors that point at the bad byte.

Every benchmark ships its annotations in a different container (JSON Lines,
one big JSON document, gzip'd line-aligned text, tab-separated text). The
failures are the same everywhere, though: a download cut mid-line, a gzip
stream without its end marker, a field that changed type between releases.
These helpers turn each of them into one :class:`AnnotationError` whose
message starts with ``"{file}:{line}: "`` like :class:`ManifestError` (it is
one), so the ``ccrk`` command line reports it as a user error in one line.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from ccrk.data.manifest import ManifestError, Record

#: Image roots, relative to the data root (``--root``, ``data/`` by default).
#: Every manifest's ``image`` is relative to the data root, so a single
#: ``image_root`` serves datasets whose images live in two collections
#: (xFlickr&CO mixes Flickr30k and COCO val2014).
FLICKR30K_IMAGES = "flickr30k/images"
COCO_IMAGES = "mscoco/images"
WIT_IMAGES = "wit/images"


class AnnotationError(ManifestError):
    """An upstream annotation file that cannot be parsed; message starts with ``"{path}:{line}: "``."""


def fail(path: str | os.PathLike[str], line: int | None, message: str) -> NoReturn:
    where = f"{path}:{line}" if line is not None else f"{path}"
    raise AnnotationError(f"{where}: {message}")


def require_file(path: Path, hint: str = "") -> Path:
    if not path.is_file():
        extra = f" ({hint})" if hint else ""
        raise FileNotFoundError(f"annotation file not found: {path}{extra}")
    return path


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSON Lines file.

    A last line without its newline that fails to parse is reported as a
    truncated file: that is what an interrupted download looks like.
    """
    path = Path(path)
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            # Only the last line can lack its newline; if it is also broken,
            # the likeliest story is an interrupted download.
            cut = "" if raw.endswith(b"\n") else " (the file looks truncated: its last line is cut off)"
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                fail(path, lineno, f"not valid UTF-8 at byte {exc.start}{cut}")
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                fail(path, lineno, f"malformed JSON at column {exc.colno}: {exc.msg}{cut}")
            if not isinstance(obj, dict):
                fail(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def load_json(path: str | os.PathLike[str]) -> Any:
    """One JSON document; a cut-off file is named as such."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(path, None, f"not valid UTF-8 at byte {exc.start}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # Our documents are objects or arrays: one that does not end with a
        # closing bracket was cut off, whatever the parser tripped over.
        cut = exc.pos >= len(text.rstrip()) or not text.rstrip().endswith(("}", "]"))
        why = " (the file ends early: truncated download?)" if cut else ""
        fail(path, exc.lineno, f"malformed JSON at column {exc.colno}: {exc.msg}{why}")


def read_text_lines(path: str | os.PathLike[str]) -> list[str]:
    """Lines of a UTF-8 text file (``.gz`` transparently), without their line endings.

    gzip damage is reported with the file name: Python's own messages
    ("Compressed file ended before the end-of-stream marker was reached")
    do not say which of forty files was cut.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        fail(path, None, f"corrupt or truncated gzip file: {exc}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        fail(path, line, f"not valid UTF-8 at byte {exc.start}")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def get_field(obj: dict[str, Any], key: str, types: type | tuple[type, ...], path: Path, lineno: int) -> Any:
    """``obj[key]``, checked against ``types`` (``bool`` never passes as ``int``)."""
    if key not in obj:
        fail(path, lineno, f"missing field {key!r} (fields present: {', '.join(sorted(obj)) or 'none'})")
    value = obj[key]
    wanted = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in wanted or not isinstance(value, wanted):
        names = " or ".join(t.__name__ for t in wanted)
        fail(path, lineno, f"field {key!r} must be {names}, got {type(value).__name__} {value!r}")
    return value


_COCO_NAME = re.compile(r"^COCO_(train|val)2014_(\d{12})\.jpg$")


def coco_id_from_name(name: str) -> int | None:
    """The COCO image id in ``COCO_val2014_000000391895.jpg``, or None for other names."""
    match = _COCO_NAME.match(name)
    return int(match.group(2)) if match else None


def resolve_image_name(name: str) -> str:
    """Place a bare image file name under its collection's image root.

    COCO 2014 names carry their split (``COCO_val2014_...``); every other
    bare name in these benchmarks is a Flickr30k file (``1007129816.jpg``).
    """
    if not name or "/" in name or "\\" in name or name in {".", ".."}:
        raise ValueError(f"expected a bare image file name, got {name!r}")
    match = _COCO_NAME.match(name)
    if match:
        return f"{COCO_IMAGES}/{match.group(1)}2014/{name}"
    if name.startswith("COCO_"):
        raise ValueError(f"unrecognised COCO image name {name!r} (expected COCO_train2014_/COCO_val2014_ + 12 digits)")
    return f"{FLICKR30K_IMAGES}/{name}"


def clean_captions(texts: list[str]) -> tuple[list[str], int]:
    """Keep captions with visible text, unchanged; returns (kept, dropped).

    Captions are never normalised: stripping or lower-casing here would make
    the prepared benchmark differ from the published one.
    """
    kept = [t for t in texts if t.strip()]
    return kept, len(texts) - len(kept)


def merge_records(groups: list[list[Record]]) -> list[Record]:
    """Union records by ``image_id``, concatenating captions per language.

    Order: first appearance. Records for the same id must agree on ``image``.
    """
    merged: dict[str, tuple[str, dict[str, list[str]]]] = {}
    for records in groups:
        for rec in records:
            if rec.image_id not in merged:
                merged[rec.image_id] = (rec.image, {})
            image, captions = merged[rec.image_id]
            if image != rec.image:
                raise ValueError(f"image_id {rec.image_id!r} points at both {image!r} and {rec.image!r}")
            for lang, texts in rec.captions.items():
                captions.setdefault(lang, []).extend(texts)
    return [Record(image_id=i, image=img, captions=caps) for i, (img, caps) in merged.items()]


@dataclass
class Prepared:
    """What a dataset's ``prepare`` produced: manifests by output name, plus provenance.

    ``splits`` maps an output name (``test``, ``few_shot/de/train_5``) to its
    records; ``inputs`` are the annotation files read (their checksums go into
    the prepare summary); ``notes`` are warnings a user should see, such as
    captions dropped because they were empty upstream; ``caption_ids`` keeps
    the upstream caption ids a manifest has no field for.
    """

    dataset: str
    splits: dict[str, list[Record]] = field(default_factory=dict)
    inputs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Upstream caption ids by output name and image id, where the upstream files carry them (Multi30K's
    #: ``test_2017_mscoco`` names the COCO caption each translation was made from); ``prepare_info.json``.
    caption_ids: dict[str, dict[str, list[int]]] = field(default_factory=dict)
