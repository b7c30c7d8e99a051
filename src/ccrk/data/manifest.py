"""The one manifest format every dataset is prepared into (docs/design.md, "Manifests").

JSON Lines, one record an image::

    {"image_id": "1007129816", "image": "<path relative to an image root>",
     "captions": {"en": ["..."], "de": ["..."]}}
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn

from PIL import Image

from ccrk.atomic import atomic_open
from ccrk.data.languages import is_iso639_1


@dataclass(frozen=True)
class Record:
    """One image and its captions, by ISO 639-1 language code."""

    image_id: str
    image: str
    captions: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"image_id": self.image_id, "image": self.image, "captions": self.captions},
            ensure_ascii=False,
        )


def write_manifest(path: str | os.PathLike[str], records: Iterable[Record]) -> int:
    """Write ``records`` atomically as JSON Lines; returns how many were written."""
    n = 0
    with atomic_open(path, "w") as handle:
        for record in records:
            handle.write(record.to_json())
            handle.write("\n")
            n += 1
    return n


class ManifestError(ValueError):
    """A manifest that cannot be trusted; the message starts with ``"{path}:{line}: "``.

    The file:line prefix is what editors and CI logs turn into a link, so a
    bad record among 100k is one click away instead of a bisection.
    """


_KEYS = ("image_id", "image", "captions")


def _type_name(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _check_language_arg(name: str, languages: Sequence[str] | None) -> list[str] | None:
    if languages is None:
        return None
    if isinstance(languages, str):
        raise TypeError(f"{name} must be a sequence of language codes, not the string {languages!r}")
    langs = list(languages)
    bad = [code for code in langs if not is_iso639_1(code)]
    if bad:
        raise ValueError(f"{name}: not ISO 639-1 code(s): {', '.join(map(repr, bad))}")
    if len(set(langs)) != len(langs):
        raise ValueError(f"{name}: duplicate language codes in {langs}")
    return langs


def _parse_record(obj: object, fail: Callable[[str], NoReturn]) -> Record:
    """Check one decoded line against the manifest schema (docs/design.md, "Manifests")."""
    if not isinstance(obj, dict):
        fail(f"expected a JSON object, got {_type_name(obj)}")
    missing = [key for key in _KEYS if key not in obj]
    if missing:
        fail(f"missing key(s) {', '.join(map(repr, missing))}")
    unknown = sorted(set(obj) - set(_KEYS))
    if unknown:
        fail(f"unknown key(s) {', '.join(map(repr, unknown))}; a record has exactly {', '.join(_KEYS)}")

    image_id = obj["image_id"]
    if not isinstance(image_id, str):
        is_int = isinstance(image_id, int) and not isinstance(image_id, bool)
        hint = f' (write it quoted: "{image_id}")' if is_int else ""
        fail(f"key 'image_id' must be a string, got {_type_name(image_id)} {image_id!r}{hint}")
    if not image_id.strip():
        fail("key 'image_id' is an empty string")

    image = obj["image"]
    if not isinstance(image, str) or not image.strip():
        fail(f"key 'image' must be a non-empty string, got {_type_name(image)} {image!r}")

    captions = obj["captions"]
    if not isinstance(captions, dict):
        fail(f"key 'captions' must be an object of language -> list of strings, got {_type_name(captions)}")
    for lang, texts in captions.items():
        if not is_iso639_1(lang):
            hint = f" (did you mean {lang.lower()!r}?)" if is_iso639_1(lang.lower()) else ""
            fail(f"captions: language code {lang!r} is not ISO 639-1{hint}")
        if not isinstance(texts, list):
            fail(f"captions[{lang!r}] must be a list of strings, got {_type_name(texts)}")
        for j, text in enumerate(texts):
            if not isinstance(text, str):
                fail(f"captions[{lang!r}][{j}] must be a string, got {_type_name(text)}")
            if not text.strip():
                fail(f"captions[{lang!r}][{j}] is empty or whitespace only")
    return Record(image_id=image_id, image=image, captions={k: list(v) for k, v in captions.items()})


def _check_image(path: Path, fail: Callable[[str], NoReturn]) -> None:
    if not path.is_file():
        fail(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as exc:  # PIL raises many types for corrupt files
        fail(f"unreadable image {path}: {type(exc).__name__}: {exc}")


def read_manifest(
    path: str | os.PathLike[str],
    *,
    image_root: str | os.PathLike[str] | None = None,
    languages: Sequence[str] | None = None,
    check_images: bool = True,
    require_languages: Sequence[str] | None = None,
) -> list[Record]:
    """Read and validate a JSON Lines manifest; the first problem raises :class:`ManifestError`.

    Validation happens here, once, so that training never dies at step 40k on
    a missing image or an integer ``image_id`` that silently mismatches a
    string one at evaluation.

    ``languages`` keeps only those captions, in that order (the order the
    objectives rely on); a record may still lack some unless
    ``require_languages`` names them. ``image_root`` defaults to the
    manifest's directory. Blank lines are skipped. ``check_images`` opens
    every image (cheap header checks via PIL ``verify``); pass False where a
    previous step already validated them.
    """
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    langs = _check_language_arg("languages", languages)
    required = _check_language_arg("require_languages", require_languages)
    if langs is not None and required is not None:
        dropped = [code for code in required if code not in langs]
        if dropped:
            raise ValueError(f"require_languages {dropped} are filtered out by languages={langs}")

    records: list[Record] = []
    first_line: dict[str, int] = {}
    with path.open("rb") as handle:  # a missing file is an OSError, as callers expect
        for lineno, raw in enumerate(handle, start=1):

            def fail(message: str, _lineno: int = lineno) -> NoReturn:
                raise ManifestError(f"{path}:{_lineno}: {message}")

            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                fail(f"not valid UTF-8 at byte {exc.start}")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                fail(f"malformed JSON at column {exc.colno}: {exc.msg}")
            record = _parse_record(obj, fail)

            if record.image_id in first_line:
                fail(f"duplicate image_id {record.image_id!r} (first on line {first_line[record.image_id]})")
            first_line[record.image_id] = lineno
            if required is not None:
                for code in required:
                    if not record.captions.get(code):
                        fail(f"image_id {record.image_id!r} has no caption in required language {code!r}")
            if check_images:
                _check_image(root / record.image, fail)
            if langs is not None:
                record = replace(record, captions={c: record.captions[c] for c in langs if c in record.captions})
            records.append(record)

    if not records:
        raise ManifestError(f"{path}:1: manifest is empty (no records)")
    return records
