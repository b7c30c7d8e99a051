"""Training checkpoints: atomic writes, newest-complete lookup, pruning, provenance.

A checkpoint is one ``torch.save`` file ``checkpoints/step_XXXXXXX.pt``
written to a temporary sibling and renamed (``ccrk.atomic``), so a job
killed mid-save leaves the previous checkpoints and a stray ``.tmp`` file,
never a truncated ``step_*.pt``. Loading uses ``weights_only=True``: the
payload holds only tensors and plain containers, so a resumed job never runs
pickled code from a file on a shared file system.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from ccrk.atomic import atomic_open

log = logging.getLogger(__name__)

FORMAT = "ccrk.checkpoint/1"
REQUIRED_KEYS = ("format", "model", "optimizer", "scheduler", "scaler", "state", "rng", "config", "git_revision")
_NAME = re.compile(r"^step_(\d{7,})\.pt$")

#: Called with (step, open temporary file) once a checkpoint is written and before it is renamed into place.
#: Empty in production; the tests install a kill -9 here (``tests/faults``) to check that a half-saved
#: checkpoint is never loaded.
BEFORE_RENAME_HOOKS: list[Callable[[int, IO[bytes]], None]] = []


def checkpoint_path(directory: str | os.PathLike[str], step: int) -> Path:
    return Path(directory) / f"step_{step:07d}.pt"


def list_checkpoints(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """Complete checkpoints (by name; temporary files never match), oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def remove_temp_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the ``.step_*.pt.*.tmp`` leftovers of saves that were killed (call only with no writer alive)."""
    directory = Path(directory)
    removed = []
    if directory.is_dir():
        for path in directory.glob(".step_*.tmp"):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def save_checkpoint(directory: str | os.PathLike[str], step: int, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (which must satisfy :data:`REQUIRED_KEYS`) atomically as the checkpoint of ``step``."""
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    path = checkpoint_path(directory, step)
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)
        for hook in BEFORE_RENAME_HOOKS:
            hook(step, handle)
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check one checkpoint; a truncated or foreign file raises ValueError naming it."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises many types for corrupt zip/pickle data
        raise ValueError(f"{path}: not a loadable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: format is {found!r}, expected {FORMAT!r}")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {missing}")
    return payload


def load_latest(
    directory: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads, or None; unloadable ones are reported and skipped."""
    for _, path in reversed(list_checkpoints(directory)):
        try:
            return path, load_checkpoint(path, map_location)
        except ValueError as exc:
            log.warning("skipping unusable checkpoint: %s", exc)
    return None


def prune_checkpoints(directory: str | os.PathLike[str], keep_last: int) -> list[Path]:
    """Delete all but the ``keep_last`` newest checkpoints; returns what was deleted."""
    if keep_last < 1:
        raise ValueError(f"keep_last must be >= 1, got {keep_last}")
    doomed = [path for _, path in list_checkpoints(directory)[:-keep_last]]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
