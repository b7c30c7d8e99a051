"""Fault injection for the tests' training subprocesses, installed at interpreter start-up.

The tests put this directory on ``PYTHONPATH`` of the ``ccrk`` (and Slurm job)
processes they start; with one of the variables below set, Python imports this
module first and it installs a hook into the training engine. Production code
has no fault switches of its own: only the hook lists
``ccrk.train.engine.STEP_END_HOOKS`` and ``ccrk.train.checkpoint.BEFORE_RENAME_HOOKS``.

- ``CCRK_TRAIN_KILL_AFTER_STEP=N``: SIGKILL right after optimiser step N (and its checkpoint, if one is due).
- ``CCRK_TRAIN_KILL_IN_SAVE=N``: SIGKILL once the checkpoint of step N is written to its temporary file,
  before it is renamed into place.
- ``CCRK_TRAIN_PAUSE_AFTER_STEP=N``: after step N, say so on stderr and wait to be pre-empted, in a Slurm
  job's first run only (``SLURM_RESTART_COUNT`` unset or 0), so a test can requeue it at a known point.
"""
from __future__ import annotations

import os
import signal
import sys
import time

KILL_AFTER_STEP = "CCRK_TRAIN_KILL_AFTER_STEP"
KILL_IN_SAVE = "CCRK_TRAIN_KILL_IN_SAVE"
PAUSE_AFTER_STEP = "CCRK_TRAIN_PAUSE_AFTER_STEP"


def _step(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def _install() -> None:
    kill_after, kill_in_save, pause_after = _step(KILL_AFTER_STEP), _step(KILL_IN_SAVE), _step(PAUSE_AFTER_STEP)
    if pause_after is not None and int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) != 0:
        pause_after = None
    if kill_after is None and kill_in_save is None and pause_after is None:
        return
    from ccrk.train import checkpoint, engine

    def after_step(run: engine.Engine) -> None:
        if run.state.step == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        if run.state.step == pause_after:
            print(f"pausing after step {run.state.step} ({PAUSE_AFTER_STEP}) until pre-empted", file=sys.stderr,
                  flush=True)
            time.sleep(600)

    def before_rename(step: int, handle) -> None:  # noqa: ANN001
        if step == kill_in_save:
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    engine.STEP_END_HOOKS.append(after_step)
    checkpoint.BEFORE_RENAME_HOOKS.append(before_rename)


_install()
