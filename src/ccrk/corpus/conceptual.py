"""Conceptual Captions (CC3M) into webdataset shards with img2dataset.

Google distributes CC3M as a URL list only (``Train_GCC-training.tsv``,
3,318,333 caption/URL pairs, no header, behind a Google sign-in); the paper's
"CC2M" is the 1,863,804 images still reachable when its authors crawled.
img2dataset needs named columns, so :func:`headed_tsv` writes a copy with a
``caption\\turl`` header; its incremental mode makes a rerun continue a
crawl that stopped, shard by shard.

img2dataset is an optional dependency (``pip install img2dataset``, or
``pip install -e .[corpus]``): only this step needs it, and it pulls in a
large stack of its own.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ccrk.atomic import atomic_open

#: What the manual step must leave in place (relative to the data root).
CC3M_TSV = "cc3m/Train_GCC-training.tsv"
CC3M_ROWS = 3_318_333


class CorpusError(RuntimeError):
    """A corpus step that cannot run; the message names the file or tool and the fix."""


def headed_tsv(source: str | os.PathLike[str], dest: str | os.PathLike[str], limit: int | None = None) -> int:
    """Copy the header-less CC TSV (``caption<TAB>url`` rows) to ``dest`` with a header; returns the rows.

    A row that does not split into exactly two non-empty fields is an error
    naming the line: a truncated or wrong file should stop here, not after a
    day of crawling.
    """
    source, rows = Path(source), 0
    if not source.is_file():
        raise CorpusError(
            f"{source} not found: download Train_GCC-training.tsv from "
            "https://ai.google.com/research/ConceptualCaptions/download (Google sign-in) and put it there"
        )
    with source.open("r", encoding="utf-8", newline="") as src, atomic_open(dest, "w") as out:
        out.write("caption\turl\n")
        for lineno, line in enumerate(src, start=1):
            if limit is not None and rows >= limit:
                break
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
                raise CorpusError(f"{source}:{lineno}: expected 'caption<TAB>url', got {len(fields)} field(s)")
            if lineno == 1 and fields == ["caption", "url"]:
                continue  # already headed
            if not fields[1].startswith(("http://", "https://")):
                raise CorpusError(f"{source}:{lineno}: second field is not a URL: {fields[1][:80]!r}")
            out.write(f"{fields[0]}\t{fields[1]}\n")
            rows += 1
    if rows == 0:
        raise CorpusError(f"{source}: no caption/url rows")
    return rows


def img2dataset_command(url_list: Path, out: Path, *, image_size: int, processes: int, threads: int,
                        samples_per_shard: int, resize_mode: str = "keep_ratio",
                        extra: Sequence[str] = ()) -> list[str]:
    """The img2dataset command line: webdataset output, incremental (resumable), no wandb."""
    exe = shutil.which("img2dataset")
    if exe is None:
        raise CorpusError("img2dataset is not installed: `pip install img2dataset` (or `pip install -e .[corpus]`)")
    return [
        exe, "--url_list", str(url_list), "--input_format", "tsv", "--url_col", "url", "--caption_col", "caption",
        "--output_format", "webdataset", "--output_folder", str(out), "--image_size", str(image_size),
        "--resize_mode", resize_mode, "--processes_count", str(processes), "--thread_count", str(threads),
        "--number_sample_per_shard", str(samples_per_shard), "--incremental_mode", "incremental",
        "--enable_wandb", "False", *extra,
    ]


def fetch_conceptual(tsv: str | os.PathLike[str], out: str | os.PathLike[str], *, image_size: int = 384,
                     processes: int = 16, threads: int = 64, samples_per_shard: int = 10_000,
                     limit: int | None = None, extra: Sequence[str] = ()) -> list[Path]:
    """Crawl the CC images into ``out/*.tar``; returns the shards. Rerunning continues an interrupted crawl."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    url_list = out / "_url_list.tsv"
    rows = headed_tsv(tsv, url_list, limit=limit)
    print(f"{rows} caption/url rows from {tsv}", flush=True)
    command = img2dataset_command(url_list, out, image_size=image_size, processes=processes, threads=threads,
                                  samples_per_shard=samples_per_shard, extra=extra)
    print("running: " + " ".join(command), flush=True)
    done = subprocess.run(command, stdout=sys.stdout, stderr=sys.stderr, check=False)
    if done.returncode != 0:
        raise CorpusError(f"img2dataset exited with status {done.returncode}; rerun to continue the crawl")
    shards = sorted(out.glob("*.tar"))
    if not shards:
        raise CorpusError(f"img2dataset finished but wrote no shards in {out}")
    return shards
