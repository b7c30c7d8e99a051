"""Per-instance ranks of a run: what ``ranks.npz`` holds and what tables and tests are computed from.

Keeping every rank (not only the recalls) lets significance tests, MRV over
another language set or a new table be computed without running a model
again. Keys of ``ranks.npz``::

    format          "ccrk.ranks/1"
    image_ids       [I] str, manifest order
    languages       [L] str, evaluation order
    mrv_languages   [M] str (empty: no MRV)
    t2i/<lang>      [T_lang] int64, 0-based rank of each caption's image
    txt2img/<lang>  [T_lang] int64, index into image_ids of each caption's image
    i2t/<lang>      [I] int64, 0-based rank of each image's best caption; -1 where the image has none in <lang>
    folds           int, the number of equal, contiguous galleries the images were ranked in
                    (``evaluate.folds``; absent in files written before it existed: 1)

Captions of a language are in manifest order (record by record, each
record's captions in order). Only plain arrays are stored, so the file loads
with ``allow_pickle=False``.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ccrk.atomic import atomic_open

FORMAT = "ccrk.ranks/1"
DIRECTIONS: tuple[str, ...] = ("t2i", "i2t")


@dataclass(frozen=True)
class RankSet:
    image_ids: list[str]
    languages: list[str]
    mrv_languages: list[str]
    t2i: dict[str, np.ndarray]
    txt2img: dict[str, np.ndarray]
    i2t: dict[str, np.ndarray]
    folds: int = 1

    def __post_init__(self) -> None:
        n = len(self.image_ids)
        if n == 0:
            raise ValueError("a rank set needs at least one image")
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 1 or n % self.folds:
            raise ValueError(f"folds {self.folds!r} does not split the {n} images into equal galleries")
        if len(set(self.image_ids)) != n:
            raise ValueError("image_ids must be unique")
        if not self.languages:
            raise ValueError("a rank set needs at least one language")
        stray = [lang for lang in self.mrv_languages if lang not in self.languages]
        if stray:
            raise ValueError(f"mrv_languages {stray} are not among the languages {self.languages}")
        for lang in self.languages:
            for name, table in (("t2i", self.t2i), ("txt2img", self.txt2img), ("i2t", self.i2t)):
                if lang not in table:
                    raise ValueError(f"no {name} array for language {lang!r}")
            t2i, owner, i2t = self.t2i[lang], self.txt2img[lang], self.i2t[lang]
            if t2i.ndim != 1 or t2i.shape != owner.shape or t2i.size == 0:
                raise ValueError(
                    f"language {lang!r}: t2i {t2i.shape} and txt2img {owner.shape} must be the same non-empty 1-D shape"
                )
            if i2t.shape != (n,):
                raise ValueError(f"language {lang!r}: i2t has shape {i2t.shape}, expected ({n},) = one per image")
            if owner.min() < 0 or owner.max() >= n:
                raise ValueError(f"language {lang!r}: txt2img points outside the {n} images")
            if t2i.min() < 0:
                raise ValueError(f"language {lang!r}: t2i holds a negative rank")
            has_caption = np.bincount(owner, minlength=n) > 0
            if not np.array_equal(i2t >= 0, has_caption):
                i = int(np.flatnonzero((i2t >= 0) != has_caption)[0])
                raise ValueError(
                    f"language {lang!r}: image {self.image_ids[i]!r} has i2t rank {int(i2t[i])} but "
                    f"{'a' if has_caption[i] else 'no'} caption"
                )

    @property
    def n_images(self) -> int:
        return len(self.image_ids)

    def mrv_table(self, direction: str) -> tuple[np.ndarray, np.ndarray]:
        """``([M, I] float ranks, [I] bool complete)`` over the MRV languages, columns in ``image_ids`` order.

        An instance without a caption in some MRV language (xFlickr&CO's German
        test line 1960 is empty upstream) has NaN there and ``complete`` False:
        MRV is the mean over the complete instances, as the paper's code skips
        empty captions; recall still counts every caption there is.
        """
        if len(self.mrv_languages) < 2:
            raise ValueError("this run has no MRV languages")
        table = np.full((len(self.mrv_languages), self.n_images), np.nan)
        for row, lang in enumerate(self.mrv_languages):
            if direction == "t2i":
                owners = self.txt2img[lang]
                if len(np.unique(owners)) != len(owners):
                    raise ValueError(f"MRV needs at most one {lang} caption an image; some image has several")
                table[row, owners] = self.t2i[lang]
            elif direction == "i2t":
                present = self.i2t[lang] >= 0
                table[row, present] = self.i2t[lang][present]
            else:
                raise ValueError(f"direction must be 't2i' or 'i2t', got {direction!r}")
        complete = ~np.isnan(table).any(axis=0)
        if complete.sum() < 2:
            raise ValueError(f"MRV needs at least 2 instances with a caption in every MRV language "
                             f"{self.mrv_languages}; {int(complete.sum())} have one")
        return table, complete

    def mrv_ranks(self, direction: str) -> np.ndarray:
        """``[M, C]`` integer ranks of the complete instances (see :meth:`mrv_table`), in ``image_ids`` order."""
        table, complete = self.mrv_table(direction)
        return table[:, complete].astype(np.int64)

    def mrv_excluded(self) -> list[str]:
        """Image ids left out of MRV: lacking a caption (t2i) or a query (i2t) in some MRV language."""
        _, a = self.mrv_table("t2i")
        _, b = self.mrv_table("i2t")
        return [iid for iid, keep in zip(self.image_ids, a & b) if not keep]

    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "format": np.asarray(FORMAT),
            "image_ids": np.asarray(self.image_ids, dtype=str),
            "languages": np.asarray(self.languages, dtype=str),
            "mrv_languages": np.asarray(self.mrv_languages, dtype=str).reshape(-1),
            "folds": np.asarray(self.folds, dtype=np.int64),
        }
        for lang in self.languages:
            out[f"t2i/{lang}"] = np.asarray(self.t2i[lang], dtype=np.int64)
            out[f"txt2img/{lang}"] = np.asarray(self.txt2img[lang], dtype=np.int64)
            out[f"i2t/{lang}"] = np.asarray(self.i2t[lang], dtype=np.int64)
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``path`` (an ``.npz``) atomically."""
        with atomic_open(path, "wb") as handle:
            np.savez_compressed(handle, **self.arrays())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RankSet:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ranks file {path} does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # truncated: BadZipFile or EOFError
            raise ValueError(f"{path}: not a readable .npz file (truncated or corrupt): {err}") from err
        found = str(arrays["format"]) if "format" in arrays else None
        if found != FORMAT:
            raise ValueError(f"{path}: format is {found!r}, expected {FORMAT!r} (a ranks.npz written by ccrk evaluate)")
        for key in ("image_ids", "languages", "mrv_languages"):
            if key not in arrays:
                raise ValueError(f"{path}: missing array {key!r}")
        languages = [str(v) for v in arrays["languages"]]
        table: dict[str, dict[str, np.ndarray]] = {"t2i": {}, "txt2img": {}, "i2t": {}}
        for lang in languages:
            for name in table:
                key = f"{name}/{lang}"
                if key not in arrays:
                    raise ValueError(f"{path}: missing array {key!r}")
                if arrays[key].dtype.kind not in "iu":
                    raise ValueError(f"{path}: array {key!r} must hold integers, got {arrays[key].dtype}")
                table[name][lang] = arrays[key].astype(np.int64, copy=False)
        try:
            return cls(
                image_ids=[str(v) for v in arrays["image_ids"]],
                languages=languages,
                mrv_languages=[str(v) for v in arrays["mrv_languages"]],
                t2i=table["t2i"],
                txt2img=table["txt2img"],
                i2t=table["i2t"],
                folds=int(arrays["folds"]) if "folds" in arrays else 1,
            )
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err
