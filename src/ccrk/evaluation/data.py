"""The test set as evaluation needs it: every image once, the captions of each language with their image.

Per language the retrieval gallery is the set of images that have a caption
in that language. For Multi30K and the synthetic split that is every image;
in xFlickr&CO it is every image but one in German and in Indonesian (each
has one empty upstream caption, dropped: 1,999 of 2,000); for sets whose
languages cover different images (WIT, COCO-CN) it keeps a language from
being scored on images it has no caption for.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ccrk.data.manifest import read_manifest


@dataclass(frozen=True)
class LanguageCaptions:
    """Captions of one language in manifest order; ``txt2img[t]`` indexes ``EvalData.image_ids``."""

    texts: list[str]
    txt2img: np.ndarray

    @property
    def gallery(self) -> np.ndarray:
        """Sorted indices of the images with at least one caption in this language."""
        return np.unique(self.txt2img)


@dataclass(frozen=True)
class EvalData:
    manifest: Path
    image_ids: list[str]
    image_paths: list[Path]
    languages: list[str]
    captions: dict[str, LanguageCaptions]

    @property
    def n_images(self) -> int:
        return len(self.image_ids)

    def n_captions(self) -> dict[str, int]:
        return {lang: len(self.captions[lang].texts) for lang in self.languages}


def load_eval_data(
    manifest: str | os.PathLike[str],
    image_root: str | os.PathLike[str] | None = None,
    languages: Sequence[str] | None = None,
    check_images: bool = True,
) -> EvalData:
    """Read and validate a test manifest; ``languages=None`` takes every language it names.

    A language with no caption at all is an error rather than an empty row of
    the results table: it is almost always a wrong code or a filtering bug
    upstream. Missing or unreadable images fail here (with file and line),
    before any model is loaded.
    """
    path = Path(manifest)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} does not exist")
    records = read_manifest(path, image_root=image_root, languages=languages, check_images=check_images)
    root = Path(image_root) if image_root is not None else path.parent
    if languages is None:
        # Keys in order of first appearance (the manifests list English first).
        langs = list(dict.fromkeys(lang for r in records for lang in r.captions))
        if not langs:
            raise ValueError(f"{path}: no record has captions in any language")
    else:
        langs = list(languages)
    captions: dict[str, LanguageCaptions] = {}
    for lang in langs:
        texts: list[str] = []
        owners: list[int] = []
        for index, record in enumerate(records):
            got = record.captions.get(lang, [])
            texts.extend(got)
            owners.extend([index] * len(got))
        if not texts:
            raise ValueError(
                f"{path}: language {lang!r} has no captions (none of its {len(records)} records has one); "
                f"remove it from --languages / evaluate.languages"
            )
        captions[lang] = LanguageCaptions(texts=texts, txt2img=np.asarray(owners, dtype=np.int64))
    return EvalData(
        manifest=path,
        image_ids=[r.image_id for r in records],
        image_paths=[root / r.image for r in records],
        languages=langs,
        captions=captions,
    )


def check_mrv_coverage(data: EvalData, mrv_languages: Sequence[str]) -> None:
    """MRV needs at most one caption of an instance in each MRV language; name the first that has more.

    Instances lacking a language are left out of MRV (and listed in
    ``metrics.json``), not refused: real test sets have such holes.

    Checked before any model work so that a test set unfit for MRV fails in
    seconds. Instances are scanned in manifest order, languages in the given
    order, so the error names the first problem a reader of the file meets.
    """
    langs = list(mrv_languages)
    absent = [lang for lang in langs if lang not in data.captions]
    if absent:
        raise ValueError(
            f"MRV languages {langs} include {absent}, which are not evaluated (languages {data.languages}); "
            "pass --mrv-languages with evaluated languages, or none"
        )
    counts = np.stack([np.bincount(data.captions[lang].txt2img, minlength=data.n_images) for lang in langs])
    bad = np.argwhere(counts.T > 1)  # rows: instance, then language, in scan order
    if bad.size:
        inst, li = (int(v) for v in bad[0])
        raise ValueError(
            f"{data.manifest}: MRV over {langs} needs at most one caption per instance in each language, but "
            f"image_id {data.image_ids[inst]!r} has {int(counts[li, inst])} captions in language {langs[li]!r}; "
            "pass --mrv-languages none (or other languages) to evaluate without MRV"
        )
    complete = int((counts == 1).all(axis=0).sum())
    if complete < 2:
        raise ValueError(
            f"{data.manifest}: MRV over {langs} needs instances with a caption in each of them, but only "
            f"{complete} of {data.n_images} have one; pass --mrv-languages none (or other languages)"
        )
