"""``ccrk download``'s work: fetch an automatic source into the data root, or check a manual one.

The HTTP client is :mod:`ccrk.datasets.http`, the registry of sources
:mod:`ccrk.datasets.sources`. Sources behind a login or a licence form are
``manual``: :func:`manual_message` names the directory to fill and what it
must contain, and :func:`check_manual` verifies it.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ccrk.datasets.http import download_file, extract_archive, file_sha256
from ccrk.datasets.sources import Source


@dataclass
class ManualStatus:
    source: str
    directory: Path
    ok: bool
    found: int
    problems: list[str] = field(default_factory=list)


def check_manual(source: Source, root: str | os.PathLike[str]) -> ManualStatus:
    """Whether a manual source's directory holds what the registry says it must."""
    if source.check is None:
        raise ValueError(f"source {source.name!r} has no manual check")
    check = source.check
    directory = Path(root) / check.directory
    if not directory.is_dir():
        return ManualStatus(source.name, directory, False, 0, [f"directory {directory} does not exist"])
    problems = []
    found = 0
    if check.pattern:
        found = sum(1 for p in directory.glob(check.pattern) if p.is_file())
        if found < check.min_count:
            problems.append(f"found {found} file(s) matching {check.pattern!r}, expected at least {check.min_count}")
    for example in check.examples:
        if not (directory / example).is_file() and not any(p.is_file() for p in directory.glob(f"*/{example}")):
            problems.append(f"missing {example}")
    return ManualStatus(source.name, directory, not problems, found, problems)


def manual_message(source: Source, root: str | os.PathLike[str], status: ManualStatus | None = None) -> str:
    """What the user must do for a manual source, naming the directory to fill."""
    status = status or check_manual(source, root)
    check = source.check
    assert check is not None
    wants = []
    if check.pattern:
        wants.append(f"at least {check.min_count} file(s) matching {check.pattern!r}")
    if check.examples:
        wants.append("including " + ", ".join(check.examples))
    lines = [
        f"[manual] {source.name}: {source.description}",
        f"  fill directory: {status.directory}",
        f"  it must contain: {'; '.join(wants)}",
        f"  how: {source.instructions}",
    ]
    lines += [f"  problem: {p}" for p in status.problems]
    return "\n".join(lines)


def fetch_source(source: Source, root: str | os.PathLike[str], *, log: Callable[[str], None] = print,
                 retries: int = 5, backoff: float = 2.0, delete_archives: bool = False) -> list[Path]:
    """Download (and unpack) every file of an automatic source; returns the local files."""
    if source.manual:
        raise ValueError(f"source {source.name!r} is manual; use check_manual/manual_message")
    root = Path(root)
    got = []
    for remote in source.files:
        dest = root / remote.path
        if remote.extract_to and (root / remote.extract_to / f".{dest.name}.extracted").is_file():
            log(f"  ok {remote.path} (already unpacked)")
            continue
        fresh = not dest.is_file()
        download_file(remote.url, dest, sha256=remote.sha256, size=remote.size, retries=retries,
                      backoff=backoff, log=log)
        if fresh:
            log(f"  got {remote.path} sha256={file_sha256(dest)}")
        else:
            log(f"  ok {remote.path}")
        if remote.extract_to:
            extract_archive(dest, root / remote.extract_to)
            log(f"  unpacked {remote.path} -> {remote.extract_to}/")
            if delete_archives:
                dest.unlink()
        got.append(dest)
    return got
