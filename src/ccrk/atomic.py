"""Write files so a crash never leaves half of one behind.

Everything the suite produces (manifests, images, checkpoints, metrics) goes
through these helpers: the content is written to a temporary sibling and
renamed into place, which POSIX makes atomic within one file system. A killed
job therefore leaves either the old file, the new file, or nothing - never a
truncated file that a later step would read as valid.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - some file systems refuse
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    if "r" in mode or "a" in mode or "+" in mode:
        raise ValueError(f"atomic_open writes whole files; mode {mode!r} is not allowed")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        # mkstemp creates 0600; give the result the mode a plain open() would, so outputs stay shareable.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def recover_directory(path: str | os.PathLike[str]) -> list[Path]:
    """Undo what a killed :func:`atomic_directory` left beside ``path``; the leftovers removed.

    A kill between its two renames leaves the previous output as ``.<name>.old``
    and no ``<name>``: the previous output is put back. A kill while building
    leaves ``.<name>.<random>.tmp``: deleted (one writer an output at a time,
    as everywhere in ccrk).
    """
    target = Path(path)
    old = target.with_name(f".{target.name}.old")
    removed = []
    if old.is_dir() and not target.exists():
        os.replace(old, target)
    elif old.is_dir():
        shutil.rmtree(old)
        removed.append(old)
    if target.parent.is_dir():
        for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
                removed.append(stale)
    return removed


def check_writable(path: str | os.PathLike[str], *, directory: bool = False) -> None:
    """Refuse, before any work, an output that could not be written: the answer at the end of a long job is
    too late. Looks at the nearest existing ancestor (nothing is created): it must be a directory this
    process may write into (a read-only file system counts as not writable). ``directory``: the output is
    a directory, so an existing file at ``path`` is refused too (a file output may replace a file)."""
    target = Path(path)
    if target.exists() and target.is_dir() != directory:
        kind = "is a directory" if target.is_dir() else "is a file"
        raise ValueError(f"{target} {kind}: the output here must be a {'directory' if directory else 'file'}")
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"cannot write {target}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "not writable (permissions or a read-only file system)", str(ancestor))


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a directory under a temporary name; swap it into place on success.

    An existing directory at ``path`` is replaced only once the new one is
    complete, so a crash mid-way leaves the previous output intact; what a
    killed earlier write left behind is cleaned up first
    (:func:`recover_directory`). A file at ``path`` is refused.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        # Checked first: swapping a directory in would rename the user's file out of the way.
        raise ValueError(f"{target} exists and is not a directory: refusing to replace a file with an output "
                         "directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
