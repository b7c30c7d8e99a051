"""Where a result came from: the code's git revision and a hash of the model's configuration.

docs/design.md ("Artefacts and provenance") asks every result to record its revision and config,
so that a number in a table can be traced to the code and the model that
produced it. Checkpoints, resolved run configs, metrics and attribute files all
take their revision from :func:`git_revision`.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ccrk


def _git(args: list[str], cwd: Path) -> str | None:
    # GIT_OPTIONAL_LOCKS=0: `git status` must not rewrite the index of a repository it only reads.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@dataclass(frozen=True)
class Revision:
    """A git commit and whether tracked files differed from it; ``None`` where it cannot be known."""

    sha: str | None
    dirty: bool | None

    def __str__(self) -> str:
        """The commit, or ``unknown`` outside git (how checkpoints and resolved configs record it)."""
        return self.sha or "unknown"


def git_revision(path: str | os.PathLike[str] | None = None) -> Revision:
    """The revision of the repository holding ``path``.

    Defaults to the repository of the ``ccrk`` package itself (the code that
    computed the result), then the working directory.
    """
    candidates = [Path(path)] if path is not None else [Path(ccrk.__file__).resolve().parent, Path.cwd()]
    for cwd in candidates:
        sha = _git(["rev-parse", "HEAD"], cwd)
        if sha:
            status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
            return Revision(sha, None if status is None else bool(status))
    return Revision(None, None)


def config_hash(config: Any) -> str:
    """SHA-256 of the canonical JSON of ``config`` (sorted keys, no whitespace)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
