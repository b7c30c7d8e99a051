"""``ccrk download`` and ``ccrk prepare``: the real benchmarks, from upstream bytes to manifests.

::

    ccrk download --dataset xflickrco --root data/          # or multi30k | wit | mscoco | flickr30k | all
    ccrk download --list                                     # the registry: URLs, pins, manual steps
    ccrk prepare --dataset xflickrco --root data/ --out resources/manifests/xflickrco/ --check-images

``download`` exits 1 when a file could not be fetched or a manual source
(Flickr30k images, COCO-CN, WIT pixels) is not in place yet, after printing
which directory to fill and with what; rerunning it resumes partial files.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ccrk.cli import add_config_args

DATASETS = ("xflickrco", "flickr30k", "multi30k", "wit", "mscoco")
_OPTION_KEYS = {"root", "ja_source"}


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``datasets`` config section (keys: root, ja_source), strictly checked."""
    from ccrk.config import check_keys, load_config, section

    return check_keys(section(load_config(args.config, args.overrides), "datasets"), _OPTION_KEYS, "datasets")


def _root(args: argparse.Namespace, options: dict[str, Any]) -> Path:
    return Path(args.root if args.root is not None else options.get("root", "data"))


def _list_sources() -> None:
    from ccrk.datasets.sources import SOURCES
    from ccrk.layout import DATASET_SOURCES

    for name, source in SOURCES.items():
        used_by = [d for d, names in DATASET_SOURCES.items() if name in names]
        print(f"{name} [{source.kind}{', manual' if source.manual else ''}] {source.description}")
        print(f"    used by: {', '.join(used_by) or '(only with --source)'}; homepage: {source.homepage}")
        if source.note:
            print(f"    note: {source.note}")
        for remote in source.files:
            pin = f" sha256={remote.sha256}" if remote.sha256 else " sha256=unknown"
            print(f"    {remote.url} -> {remote.path}{pin}")
        if source.check is not None:
            print(f"    fill: {source.check.directory}/")


def _wit_images(root: Path, wikimedia: bool, workers: int, log: Any) -> int:
    """Decode/fetch the images of every WIT annotation split present (train_en.jsonl once unpacked: Table 1's
    WIT column fine-tunes on it, and ``prepare --check-images`` checks every split); returns how many are
    still missing."""
    from ccrk.datasets import wit
    from ccrk.datasets.http import fetch_bytes

    if "test" not in wit.annotation_files(root):
        # Zero of zero would be a silent empty dataset: the images are read off the annotations.
        raise FileNotFoundError(
            f"no WIT test/val annotations under {root / 'wit'}: the images to decode are listed there; "
            f"fetch them first (ccrk download --source iglue-wit --root {root})")
    splits = [split for split in ("train", "val", "test") if split in wit.annotation_files(root)]
    targets = wit.image_targets(root, splits)
    notes: list[str] = []
    remaining = {u: d for u, d in targets.items() if not d.is_file()}
    files = wit.pixel_files(root / wit.KAGGLE_DIR)
    if files and remaining:
        remaining = wit.extract_kaggle_pixels(files, remaining, notes)
    if wikimedia and remaining:
        log(f"  fetching {len(remaining)} WIT image(s) from Wikimedia Commons")
        # One retry only: a thumbnail wider than its original fails for good,
        # and the original is the next candidate anyway.
        remaining = wit.fetch_wikimedia(remaining, lambda url: fetch_bytes(url, retries=1, backoff=1.0),
                                        workers=workers, notes=notes)
    for note in notes[:20]:
        log(f"  note: {note}")
    log(f"  WIT images ({'/'.join(splits)}): {len(targets) - len(remaining)} of {len(targets)} present under "
        f"{root / 'wit/images'}")
    return len(remaining)


def cmd_download(args: argparse.Namespace) -> int:
    from ccrk.datasets.download import check_manual, fetch_source, manual_message
    from ccrk.datasets.http import DownloadError
    from ccrk.datasets.sources import sources_for

    if args.list:
        _list_sources()
        return 0
    options = _options(args)
    root = _root(args, options)
    if not args.dataset and not args.source:
        raise ValueError("name what to download: --dataset {" + ",".join(DATASETS) + ",all} and/or --source NAME")
    chosen = sources_for(args.dataset or [], args.source, annotations_only=args.annotations_only)
    failed: list[str] = []
    manual_missing: list[str] = []
    start = time.perf_counter()
    for source in chosen:
        if source.manual:
            status = check_manual(source, root)
            if status.ok:
                print(f"{source.name}: ok ({status.directory})")
            else:
                print(manual_message(source, root, status), file=sys.stderr)
                manual_missing.append(source.name)
            continue
        print(f"{source.name}: {source.description}")
        try:
            fetch_source(source, root, retries=args.retries, delete_archives=args.delete_archives)
        except DownloadError as exc:
            print(f"ccrk download: error: {exc}", file=sys.stderr)
            failed.append(source.name)
    wants_wit = ("wit" in (args.dataset or []) or "all" in (args.dataset or [])
                 or "wit-kaggle-pixels" in (args.source or []))
    if wants_wit and not args.annotations_only and "iglue-wit" not in failed:
        missing = _wit_images(root, args.wit_wikimedia, args.workers, print)
        if missing and args.stamp is not None:
            failed.append(f"wit images ({missing} still missing)")
    print(f"done in {time.perf_counter() - start:.0f} s under {root}")
    if failed:
        print(f"ccrk download: failed: {', '.join(failed)} (rerun to resume)", file=sys.stderr)
    if manual_missing:
        print(f"ccrk download: manual steps outstanding: {', '.join(manual_missing)} (see above)", file=sys.stderr)
    if failed or manual_missing:
        return 1
    if args.stamp is not None:
        write_stamp(args.stamp, root, chosen)
    return 0


def write_stamp(stamp: Path, root: Path, sources: list) -> None:
    """What the workflow's download rule leaves: the sources and the size of every file they put in place."""
    import json

    from ccrk.atomic import atomic_write_text

    entries = []
    for source in sources:
        files = []
        for remote in source.files:
            path = root / remote.path
            if path.is_file():
                files.append({"path": remote.path, "bytes": path.stat().st_size})
            elif remote.extract_to:
                files.append({"path": remote.path, "unpacked_to": remote.extract_to})
        checked = source.check.directory if source.check is not None else None
        entries.append({"source": source.name, "manual": source.manual, "files": files, "checked_directory": checked})
    atomic_write_text(stamp, json.dumps({"root": str(root), "sources": entries}, indent=2) + "\n")


def cmd_prepare(args: argparse.Namespace) -> int:
    from ccrk.datasets.prepare import format_counts, prepare_dataset

    options = _options(args)
    root = _root(args, options)
    out = args.out if args.out is not None else Path("resources/manifests") / args.dataset
    kwargs: dict[str, Any] = {}
    if args.languages:
        kwargs["languages"] = args.languages
    if args.splits:
        kwargs["splits"] = args.splits
    if args.dataset == "mscoco":
        kwargs["ja_source"] = args.coco_ja or options.get("ja_source", "stair")
        kwargs["chinese"] = not args.no_coco_cn
    start = time.perf_counter()
    summary = prepare_dataset(args.dataset, root, out, check=args.check_images, **kwargs)
    print(f"{args.dataset}: manifests in {out} (image root: {root})")
    print(format_counts(summary))
    for note in summary["notes"]:
        print(f"note: {note}")
    checked = " (all images present)" if args.check_images else ""
    print(f"wrote {len(summary['splits'])} manifest(s){checked} in {time.perf_counter() - start:.1f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "download", help="download the real benchmarks' annotations and images (resumable)",
        description="Fetch every source a benchmark needs into the data root; image archives are large "
        "(COCO val2014 ~6 GB, train2014 ~13 GB): --annotations-only skips them.",
    )
    add_config_args(p)
    p.add_argument("--dataset", action="append", choices=[*DATASETS, "all"],
                   help="benchmark whose sources to fetch (repeatable)")
    p.add_argument("--source", action="append", metavar="NAME", help="one registry source by name (see --list)")
    p.add_argument("--root", type=Path, default=None, help="data root (default: data/, DVC-tracked)")
    p.add_argument("--annotations-only", action="store_true", help="skip image archives and manual image sources")
    p.add_argument("--list", action="store_true", help="print the source registry and exit")
    p.add_argument("--retries", type=int, default=5, help="retries per file on transient errors (default 5)")
    p.add_argument("--delete-archives", action="store_true", help="delete zip/tar files once unpacked")
    p.add_argument("--wit-wikimedia", action="store_true",
                   help="fetch WIT images (every annotated split) missing from the Kaggle pixels from Wikimedia Commons")
    p.add_argument("--workers", type=int, default=4, help="parallel Wikimedia downloads (default 4)")
    p.add_argument("--stamp", type=Path, default=None,
                   help="on success, write this JSON record of what is in place (the workflow's rule output)")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("prepare", help="parse downloaded annotations into manifests (<split>.jsonl)")
    add_config_args(p)
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--root", type=Path, default=None, help="data root = image root of the manifests (default: data/)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: resources/manifests/<dataset>/)")
    p.add_argument("--check-images", action="store_true", help="fail unless every referenced image exists")
    p.add_argument("--languages", nargs="+", metavar="LANG", help="xflickrco/multi30k: languages to keep (en first)")
    p.add_argument("--splits", nargs="+", metavar="SPLIT", help="multi30k/flickr30k: upstream splits to prepare")
    p.add_argument("--coco-ja", choices=["stair", "yjcaptions", "none"], default=None,
                   help="mscoco: Japanese caption source (default stair)")
    p.add_argument("--no-coco-cn", action="store_true", help="mscoco: leave out Chinese (COCO-CN)")
    p.set_defaults(func=cmd_prepare)
