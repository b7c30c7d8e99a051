"""HTTP downloads that resume, retry and verify, and archives unpacked without leaving half a tree.

Benchmarks are tens of gigabytes served by university web servers and
GitHub; a cluster job that dies at 90 % must not start over, and a file cut
short must never be mistaken for a complete one. So :func:`download_file`
writes to ``<file>.part``, resumes it with an HTTP ``Range`` request, retries
transient failures with exponential backoff, checks size and SHA-256 when
they are known, and only then renames the file into place.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from ccrk import __version__

USER_AGENT = f"ccrk/{__version__} (research benchmark downloader; python-urllib)"
#: HTTP statuses worth retrying: the server (or a proxy) may answer later.
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class DownloadError(RuntimeError):
    """A download that failed for good; the message names the URL and the file."""

    def __init__(self, message: str, *, url: str, path: Path | None = None, status: int | None = None):
        super().__init__(message)
        self.url, self.path, self.status = url, path, status


class _Retry(Exception):
    """A transient failure: back off, then resume from the ``.part`` file."""


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total) of a ``Content-Range: bytes a-b/total`` header."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    start = span.split("-", 1)[0]
    return (int(start) if start.isdigit() else None), (int(total) if total.isdigit() else None)


def _fetch_into(url: str, part: Path, dest: Path, timeout: float, chunk_size: int) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            _, total = _content_range(exc.headers.get("Content-Range"))
            if total == offset:
                return  # the part file already holds everything
            part.unlink()
            raise _Retry("server cannot resume this partial file (HTTP 416); starting over") from exc
        if exc.code in RETRY_STATUS:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from exc
        raise DownloadError(
            f"{url}: HTTP {exc.code} {exc.reason} (downloading to {dest})", url=url, path=dest, status=exc.code
        ) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # DNS, refused, reset, timeout
        raise _Retry(str(getattr(exc, "reason", exc)) or type(exc).__name__) from exc

    with response:
        mode = "wb"
        if offset and response.status == 206:
            start, _ = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _Retry(f"server resumed at byte {start}, not {offset}; starting over")
            mode = "ab"
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        received = 0
        with open(part, mode) as handle:
            while True:
                try:
                    block = response.read(chunk_size)
                except (OSError, http.client.HTTPException) as exc:  # IncompleteRead, reset, timeout mid-body
                    raise _Retry(f"connection lost after {received} bytes: {exc}") from exc
                if not block:
                    break
                handle.write(block)
                received += len(block)
            handle.flush()
            os.fsync(handle.fileno())
    if length is not None and received < length:
        raise _Retry(f"connection closed after {received} of {length} bytes")


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    size: int | None = None,
    retries: int = 5,
    backoff: float = 2.0,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part``; returns ``dest``.

    An existing ``dest`` that matches the known size/checksum is kept. On a
    checksum or size mismatch the partial data is deleted and nothing is
    written at ``dest``. Transient errors are retried ``retries`` times,
    waiting ``backoff * 2**k`` seconds; the ``.part`` file survives a final
    failure so the next run resumes it.
    """
    dest = Path(dest)
    say = log or (lambda message: None)
    if dest.is_file():
        if (size is None or dest.stat().st_size == size) and (sha256 is None or file_sha256(dest) == sha256.lower()):
            return dest
        say(f"{dest}: does not match the registry's size/checksum; downloading it again")
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    while True:
        try:
            _fetch_into(url, part, dest, timeout, chunk_size)
            break
        except _Retry as exc:
            attempt += 1
            if attempt > retries:
                raise DownloadError(
                    f"{url}: giving up after {attempt} attempts ({exc}); {part} keeps the bytes received, "
                    "run again to resume", url=url, path=dest,
                ) from exc
            delay = backoff * 2 ** (attempt - 1)
            say(f"{url}: {exc}; retry {attempt}/{retries} in {delay:.0f} s")
            time.sleep(delay)
    got = part.stat().st_size if part.exists() else 0
    if size is not None and got != size:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: got {got} bytes, expected {size}; {dest} not written", url=url, path=dest)
    if sha256 is not None:
        digest = file_sha256(part)
        if digest != sha256.lower():
            part.unlink()
            raise DownloadError(
                f"{url}: SHA-256 mismatch for {dest}: expected {sha256.lower()}, got {digest}; the download was "
                "deleted (a changed upstream file or a corrupted transfer)", url=url, path=dest,
            )
    os.replace(part, dest)
    return dest


def fetch_bytes(url: str, *, retries: int = 3, backoff: float = 2.0, timeout: float = 60.0) -> bytes:
    """A small file into memory, with the same retry policy (for many tiny images)."""
    attempt = 0
    while True:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRY_STATUS or attempt >= retries:
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}", url=url, status=exc.code) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if attempt >= retries:
                raise DownloadError(f"{url}: {getattr(exc, 'reason', exc)}", url=url) from exc
        attempt += 1
        time.sleep(backoff * 2 ** (attempt - 1))


# ------------------------------------------------------------------ archives


def _safe_members(names: list[str], archive: Path) -> None:
    for name in names:
        parts = Path(name).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise DownloadError(f"{archive}: refusing unsafe member path {name!r}", url=str(archive), path=archive)


def extract_archive(archive: str | os.PathLike[str], dest_dir: str | os.PathLike[str]) -> Path:
    """Unpack a zip or tar(.gz) into ``dest_dir``, all or nothing; returns ``dest_dir``.

    Members are unpacked into a temporary sibling first and moved into place
    at the end; a stamp file (``.<archive>.extracted``) makes reruns free.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    stamp = dest_dir / f".{archive.name}.extracted"
    if stamp.is_file():
        return dest_dir
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{archive.name}.", suffix=".extracting", dir=dest_dir))
    try:
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf:
                    _safe_members(zf.namelist(), archive)
                    zf.extractall(tmp)
            else:
                with tarfile.open(archive) as tf:
                    _safe_members(tf.getnames(), archive)
                    if hasattr(tarfile, "data_filter"):
                        tf.extractall(tmp, filter="data")
                    else:  # pragma: no cover - Python < 3.10.12
                        tf.extractall(tmp)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
            raise DownloadError(
                f"{archive}: cannot unpack ({type(exc).__name__}: {exc}); delete it and run `ccrk download` again",
                url=str(archive), path=archive,
            ) from exc
        for entry in sorted(tmp.iterdir()):
            target = dest_dir / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
        stamp.write_text(f"{archive.name} {file_sha256(archive)}\n", encoding="utf-8")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir
