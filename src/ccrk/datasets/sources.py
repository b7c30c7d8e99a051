"""The registry of every upstream source the paper's benchmarks need: where each file is, and what it weighs.

Checksums: none of the upstream projects publishes one. The registry records
a SHA-256 and size only where they were actually measured: the files fetched
from a pinned Git commit (IGLUE, Multi30K) that are also kept byte for byte
in ``tests/fixtures`` (:data:`KNOWN_FILES`; a test recomputes them). The
others are ``None`` rather than a guess; ``ccrk download`` prints the digest
of each file it fetches, and DVC then versions the bytes.

Sources behind a login or a licence form are ``manual``: their
:class:`ManualCheck` says which directory to fill and what it must contain.
Which sources each benchmark reads is :data:`ccrk.layout.DATASET_SOURCES`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ccrk.layout import DATASET_SOURCES

IGLUE_COMMIT = "43cbac91513388d40b2c6d93925f00ca9fc08a98"
MULTI30K_COMMIT = "a3d2e0d26b56f3846f66a952536ffed4e401d05a"


#: SHA-256 and size of pinned-commit files, measured on the copies in tests/fixtures (local path -> value).
KNOWN_FILES: dict[str, tuple[str, int]] = {
    "xflickrco/annotations/de/test.jsonl": (
        "647785be2836736b0065199424898aeec964a5cc4b436ec26e371026e8509d87", 274250),
    "xflickrco/annotations/de/train_1.jsonl": (
        "d58a11b825d4ea7cd494e2f47a3ff570c3eda298e8782bf766c9133b0b667924", 115),
    "xflickrco/annotations/de/train_10.jsonl": (
        "8dbc1f56f6c6fa0d74dafb8505776c5c1d7d4ea171985719671f71cfb3fe5b1c", 1172),
    "xflickrco/annotations/de/train_100.jsonl": (
        "6c65edcab6de224a39e0081dfd5037f612fe8cb17c69a8d135c9a17cb49aa158", 11859),
    "xflickrco/annotations/de/train_5.jsonl": (
        "3bbdfe39c5e9990780b89a109111b713689677e24184e65d47864e7ff19551ec", 578),
    "xflickrco/annotations/en/test.jsonl": (
        "96f102fceef19da2d35a905a42970de88bd6d0d3d8182b05e496bb11a27ee6cd", 294122),
    "xflickrco/annotations/ja/test.jsonl": (
        "b5a08a6ce93a4184b94ff94c87e34794fee828d3414b85fe2b52bb8a19689636", 342667),
    "xflickrco/annotations/zh/test.jsonl": (
        "393319895e096f81e376460bcd1289d2664c592b2a9b6f3bf5bdc17c51499698", 263125),
    "flickr30k/annotations/valid_ann.jsonl": (
        "a438cca967f3c7f6af413fcd2cce4de0869dbc63b8f1d462d682b2b3230e25db", 411025),
    "multi30k/task1/image_splits/test_2016_flickr.txt": (
        "871e8ecafc66fb13e044ecccf669d04a865b4c58553227df86b933f0337a1563", 14756),
    "multi30k/task1/image_splits/val.txt": (
        "db26f03eaf833ec47bfaea129ed053b68cbcfc5d1f9a09c4cdf7c88fbfea7108", 14966),
    "multi30k/task1/raw/test_2016_flickr.cs.gz": (
        "200a4a74cc9560f051924abb9803be008d1908d77f747e9141aeb86dfd2797f1", 22572),
    "multi30k/task1/raw/test_2016_flickr.de.gz": (
        "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8", 22890),
    "multi30k/task1/raw/test_2016_flickr.en.gz": (
        "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9", 21077),
    "multi30k/task1/raw/test_2016_flickr.fr.gz": (
        "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90", 22310),
    "multi30k/task1/raw/val.cs.gz": (
        "b63226e05c4bd5dd6a42897d74b86a1b9d2c31498252c572b1ea7f7996927fcc", 22096),
    "multi30k/task1/raw/val.de.gz": (
        "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a", 24681),
    "multi30k/task1/raw/val.en.gz": (
        "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28", 21650),
    "multi30k/task1/raw/val.fr.gz": (
        "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9", 23001),
}


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch. ``path``/``extract_to`` are relative to the data root."""

    url: str
    path: str
    sha256: str | None = None
    size: int | None = None
    extract_to: str | None = None


@dataclass(frozen=True)
class ManualCheck:
    """What a manually filled directory must hold (``directory`` relative to the data root)."""

    directory: str
    pattern: str = ""
    min_count: int = 0
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """A named upstream source; ``kind`` is ``annotations`` or ``images``."""

    name: str
    description: str
    kind: str
    homepage: str
    files: tuple[RemoteFile, ...] = ()
    manual: bool = False
    instructions: str = ""
    check: ManualCheck | None = None
    note: str = ""


def _iglue(path: str, local: str, extract_to: str | None = None) -> RemoteFile:
    # github.com/<repo>/raw/<commit>/... redirects to the raw file, or to the
    # media server when a repository keeps a large file in Git LFS; the
    # raw.githubusercontent.com address would hand back the LFS pointer.
    sha256, size = KNOWN_FILES.get(local, (None, None))
    return RemoteFile(
        f"https://github.com/e-bug/iglue/raw/{IGLUE_COMMIT}/datasets/{path}", local, sha256=sha256, size=size,
        extract_to=extract_to,
    )


def _xflickrco_files() -> tuple[RemoteFile, ...]:
    from ccrk.datasets.xflickrco import FEW_SHOT_LANGUAGES, FEW_SHOT_SIZES, LANGUAGES

    files = [_iglue(f"xFlickrCO/annotations/{lang}/test.jsonl", f"xflickrco/annotations/{lang}/test.jsonl")
             for lang in LANGUAGES]
    files += [
        _iglue(f"xFlickrCO/annotations/{lang}/train_{n}.jsonl", f"xflickrco/annotations/{lang}/train_{n}.jsonl")
        for lang in FEW_SHOT_LANGUAGES for n in FEW_SHOT_SIZES
    ]
    return tuple(files)


def _wit_files() -> tuple[RemoteFile, ...]:
    from ccrk.datasets.wit import LANGUAGES

    files = [_iglue(f"wit/annotations/test_{lang}.jsonl", f"wit/annotations/test_{lang}.jsonl") for lang in LANGUAGES]
    files.append(_iglue("wit/annotations/val_en.jsonl", "wit/annotations/val_en.jsonl"))
    files.append(_iglue("wit/annotations/train_en.jsonl.zip", "wit/annotations/train_en.jsonl.zip",
                        extract_to="wit/annotations"))
    return tuple(files)


def _multi30k_files() -> tuple[RemoteFile, ...]:
    from ccrk.datasets.multi30k import LANGUAGES, SPLITS

    base = f"https://github.com/multi30k/dataset/raw/{MULTI30K_COMMIT}/data/task1"
    def pinned(url: str, local: str) -> RemoteFile:
        sha256, size = KNOWN_FILES.get(local, (None, None))
        return RemoteFile(url, local, sha256=sha256, size=size)

    files = [pinned(f"{base}/image_splits/{s}.txt", f"multi30k/task1/image_splits/{s}.txt") for s in SPLITS]
    files += [pinned(f"{base}/raw/{s}.{lang}.gz", f"multi30k/task1/raw/{s}.{lang}.gz")
              for s in SPLITS for lang in LANGUAGES]
    return tuple(files)


def _build_sources() -> dict[str, Source]:
    sources = [
        Source(
            "iglue-xflickrco", "IGLUE xFlickr&CO test (8 languages) and few-shot train files (7 languages)",
            "annotations", "https://github.com/e-bug/iglue", _xflickrco_files(),
            note=f"pinned to IGLUE commit {IGLUE_COMMIT}",
        ),
        Source(
            "iglue-flickr30k", "IGLUE Flickr30k English validation annotations (1014 images, 5 captions each)",
            "annotations", "https://github.com/e-bug/iglue",
            (_iglue("flickr30k/annotations/valid_ann.jsonl", "flickr30k/annotations/valid_ann.jsonl"),),
            note="IGLUE's repository has no train/test_ann.jsonl; those splits come from karpathy-splits",
        ),
        Source(
            "karpathy-splits",
            "Karpathy's COCO and Flickr30k caption splits (dataset_coco.json, dataset_flickr30k.json)",
            "annotations", "https://cs.stanford.edu/people/karpathy/deepimagesent/",
            (RemoteFile("https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip",
                        "karpathy/caption_datasets.zip", extract_to="karpathy"),),
        ),
        Source(
            "multi30k", "Multi30K task 1 raw captions (en de fr cs) and image splits: train, val, test_2016_flickr",
            "annotations", "https://github.com/multi30k/dataset", _multi30k_files(),
            note=f"pinned to multi30k/dataset commit {MULTI30K_COMMIT}",
        ),
        Source(
            "iglue-wit", "IGLUE WIT test annotations (11 languages), English val and train",
            "annotations", "https://github.com/e-bug/iglue", _wit_files(),
            note="train_en.jsonl.zip (named in the paper's and CCLM's instructions) is not in this registry yet",
        ),
        Source(
            "stair-captions", "STAIR Captions v1.2 (Japanese captions for COCO 2014 train+val)",
            "annotations", "https://github.com/STAIR-Lab-CIT/STAIR-captions",
            (RemoteFile("https://github.com/STAIR-Lab-CIT/STAIR-captions/raw/master/stair_captions_v1.2.tar.gz",
                        "mscoco/stair/stair_captions_v1.2.tar.gz", extract_to="mscoco/stair"),),
            note="not pinned: the repository's default branch",
        ),
        Source(
            "yjcaptions", "YJ Captions 26k (Japanese COCO captions; the source the paper's README links)",
            "annotations", "https://github.com/yahoojapan/YJCaptions",
            (RemoteFile("https://github.com/yahoojapan/YJCaptions/raw/master/yjcaptions26k.zip",
                        "mscoco/yjcaptions/yjcaptions26k.zip", extract_to="mscoco/yjcaptions"),),
            note="not pinned; archive name from the repository's listing as we know it (unverified)",
        ),
        Source(
            "coco-val2014", "COCO 2014 validation images (40,504 JPEGs, ~6 GB)",
            "images", "https://cocodataset.org/#download",
            (RemoteFile("http://images.cocodataset.org/zips/val2014.zip", "mscoco/val2014.zip",
                        extract_to="mscoco/images"),),
        ),
        Source(
            "coco-train2014", "COCO 2014 training images (82,783 JPEGs, ~13 GB)",
            "images", "https://cocodataset.org/#download",
            (RemoteFile("http://images.cocodataset.org/zips/train2014.zip", "mscoco/train2014.zip",
                        extract_to="mscoco/images"),),
        ),
        Source(
            "flickr30k-images", "Flickr30k images (31,783 JPEGs)", "images",
            "https://shannon.cs.illinois.edu/DenotationGraph/", manual=True,
            instructions=(
                "Flickr30k images are distributed only after accepting their terms of use: request them at "
                "https://shannon.cs.illinois.edu/DenotationGraph/ (form), download flickr30k-images.tar.gz and "
                "extract it so that the JPEGs lie directly in this directory (e.g. 1000092795.jpg, 1007129816.jpg)."
            ),
            check=ManualCheck("flickr30k/images", "*.jpg", 31783, ("1000092795.jpg", "1007129816.jpg")),
        ),
        Source(
            "coco-cn", "COCO-CN human-written Chinese captions and splits (version 201805)", "annotations",
            "https://github.com/li-xirong/coco-cn", manual=True,
            instructions=(
                "COCO-CN is released on request by its authors (see https://github.com/li-xirong/coco-cn). "
                "Extract coco-cn-version1805v1.1.tar.gz here, so that this directory holds "
                "coco-cn_train.txt, coco-cn_val.txt, coco-cn_test.txt and imageid.human-written-caption.txt "
                "(directly or in one sub-folder)."
            ),
            check=ManualCheck("mscoco/coco-cn", "**/imageid.human-written-caption.txt", 1,
                              ("coco-cn_train.txt", "coco-cn_val.txt", "coco-cn_test.txt")),
        ),
        Source(
            "wit-kaggle-pixels", "WIT image pixels of the Kaggle 'Wikipedia - Image/Caption Matching' competition",
            "images", "https://www.kaggle.com/c/wikipedia-image-caption/data", manual=True,
            instructions=(
                "Kaggle needs a login and acceptance of the competition rules. From "
                "https://www.kaggle.com/c/wikipedia-image-caption/data download image_data_train (the link is in "
                "'Data Description') and image_data_test, and place their image_pixels/*.csv[.gz] files anywhere "
                "under this directory (e.g. image_data_train/image_pixels/train_image_pixels_part-00000.csv.gz). "
                "`ccrk download --dataset wit` then decodes the images the annotations need into data/wit/images/. "
                "IGLUE also lists a public share of WIT images (https://sid.erda.dk/sharelink/CwTySJlPdB), and "
                "`--wit-wikimedia` fetches missing images from Wikimedia Commons."
            ),
            check=ManualCheck("wit/kaggle", "**/*image_pixels*.csv*", 1),
        ),
        Source(
            "cc3m-urls", "Conceptual Captions 3M training list (Train_GCC-training.tsv: 3,318,333 caption/URL rows)",
            "annotations", "https://ai.google.com/research/ConceptualCaptions/download", manual=True,
            instructions=(
                "Google serves the list only after a sign-in: download 'Training split' (Train_GCC-training.tsv, "
                "about 560 MB) from https://ai.google.com/research/ConceptualCaptions/download and put it in this "
                "directory. `ccrk corpus` then crawls the images into webdataset shards with img2dataset."
            ),
            check=ManualCheck("cc3m", "Train_GCC-training.tsv", 1),
            note="the pre-training corpus, not a benchmark: the workflow's corpus rule needs it",
        ),
    ]
    return {source.name: source for source in sources}


SOURCES: dict[str, Source] = _build_sources()

def sources_for(datasets: list[str], names: list[str] | None = None, annotations_only: bool = False) -> list[Source]:
    """Sources of ``datasets`` (``all`` = every benchmark) plus ``names``, deduplicated, in order."""
    wanted: list[str] = []
    for dataset in datasets:
        keys = list(DATASET_SOURCES) if dataset == "all" else [dataset]
        for key in keys:
            if key not in DATASET_SOURCES:
                raise ValueError(f"unknown dataset {key!r}; expected one of {sorted(DATASET_SOURCES)} or 'all'")
            wanted.extend(DATASET_SOURCES[key])
    for name in names or []:
        if name not in SOURCES:
            raise ValueError(f"unknown source {name!r}; expected one of {sorted(SOURCES)}")
        wanted.append(name)
    chosen = [SOURCES[name] for name in dict.fromkeys(wanted)]
    return [s for s in chosen if not (annotations_only and s.kind == "images")]


