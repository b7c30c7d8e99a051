"""``ccrk corpus``, ``ccrk translate`` and ``ccrk shards``: the pre-training corpus as webdataset shards.

::

    ccrk corpus --tsv data/cc3m/Train_GCC-training.tsv --out data/cc3m/shards     # img2dataset crawl
    ccrk translate --shards data/cc3m/shards --out resources/corpus/captions      # M2M100, K languages
    ccrk shards --manifest resources/synth/pretrain.jsonl --out resources/synth/shards
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ccrk.cli import add_config_args


def cmd_corpus(args: argparse.Namespace) -> int:
    from ccrk.atomic import atomic_write_text
    from ccrk.corpus.conceptual import fetch_conceptual

    start = time.perf_counter()
    shards = fetch_conceptual(args.tsv, args.out, image_size=args.image_size, processes=args.processes,
                              threads=args.threads, samples_per_shard=args.samples_per_shard, limit=args.limit,
                              extra=args.extra or [])
    summary = {"tsv": str(args.tsv), "shards": len(shards), "seconds": round(time.perf_counter() - start, 1)}
    atomic_write_text(Path(args.out) / "fetch_done.json", json.dumps(summary, indent=2) + "\n")
    print(f"{len(shards)} shard(s) in {args.out}")
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from ccrk.config import load_config, section
    from ccrk.corpus.translate import TranslateConfig, translate_shards

    given = dict(section(load_config(args.config, args.overrides), "translate"))
    if args.model is not None:
        given["model"] = str(args.model)
    from ccrk.launch import RestartableJob, launch_from_args

    cfg = TranslateConfig.from_dict(given)
    # Resumable by itself (finished shards are skipped), so a requeued job just runs again.
    report = launch_from_args(RestartableJob(translate_shards, (args.shards, args.out, cfg)), args,
                              load_config(args.config, args.overrides), "translate", single_device=True)
    print(json.dumps(report, indent=2))
    return 0


def cmd_shards(args: argparse.Namespace) -> int:
    from ccrk.data.manifest import read_manifest
    from ccrk.data.shards import write_shards

    image_root = args.image_root if args.image_root is not None else args.manifest.parent
    records = read_manifest(args.manifest, image_root=image_root, check_images=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # All or nothing: shards go to a temporary sibling that replaces --out at the end.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the result should be as shareable as a plain mkdir
    try:
        paths = write_shards(records, image_root, tmp, samples_per_shard=args.samples_per_shard)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"{len(records)} samples in {len(paths)} shard(s) under {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("corpus", help="crawl Conceptual Captions into webdataset shards with img2dataset (resumable)")
    p.add_argument("--tsv", type=Path, required=True, help="Train_GCC-training.tsv (caption<TAB>url, no header)")
    p.add_argument("--out", type=Path, required=True, help="shard directory")
    p.add_argument("--image-size", type=int, default=384, help="longer side after resizing (keep_ratio)")
    p.add_argument("--processes", type=int, default=16)
    p.add_argument("--threads", type=int, default=64)
    p.add_argument("--samples-per-shard", type=int, default=10_000)
    p.add_argument("--limit", type=int, default=None, help="crawl only the first N rows (a trial run)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, help="further img2dataset arguments, passed as given")
    p.set_defaults(func=cmd_corpus)

    p = sub.add_parser("translate", help="translate shard captions into K languages with M2M100 (resumable)")
    add_config_args(p)
    p.add_argument("--shards", type=Path, required=True, help="a shard directory or .tar")
    p.add_argument("--out", type=Path, required=True, help="captions directory: <shard stem>.jsonl per shard")
    p.add_argument("--model", default=None, help="overrides translate.model (hub name or local directory)")
    from ccrk.launch import add_launcher_args

    add_launcher_args(p)
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("shards", help="write a manifest as webdataset shards (image bytes + captions JSON)")
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--image-root", type=Path, default=None, help="default: the manifest's directory")
    p.add_argument("--out", type=Path, required=True, help="shard directory (replaced atomically)")
    p.add_argument("--samples-per-shard", type=int, default=1000)
    p.set_defaults(func=cmd_shards)
