"""What a training run reports: JSON-lines metrics, TensorBoard events, a progress bar.

On resume, records logged after the checkpoint (the work the kill threw
away) are dropped, so ``metrics.jsonl`` of a resumed run reads exactly like
that of an uninterrupted one (the loss sums of the logging window in progress
are checkpointed by the engine); TensorBoard's ``purge_step`` does the same for
the event files.

The one exception to the suite's write-to-a-temporary-then-rename rule:
records are appended in place, a line at a time (rewriting the file every
step would cost more than the step). A kill can leave a torn last line;
:meth:`JsonLines.read` skips it, and a resumed run rewrites the file
atomically before appending again.
"""
from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccrk.atomic import atomic_write_text


class JsonLines:
    """Append-only JSON-lines log keyed by ``step``; a no-op when ``enabled`` is False (non-main ranks)."""

    def __init__(self, path: str | os.PathLike[str], enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def read(self) -> list[dict[str, Any]]:
        """Every complete record; a torn last line (killed mid-write) is ignored."""
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def truncate_after(self, step: int) -> None:
        """Keep only the records with ``step <= step`` (rewritten atomically)."""
        self.retain(lambda record: int(record.get("step", 0)) <= step)

    def retain(self, keep: Callable[[dict[str, Any]], bool]) -> None:
        """Rewrite the log (atomically) with only the records ``keep`` accepts."""
        if not self.enabled or not self.path.exists():
            return
        kept = [r for r in self.read() if keep(r)]
        atomic_write_text(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))

    def reset(self) -> None:
        if self.enabled and self.path.exists():
            self.path.unlink()

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()


class TensorBoard:
    """A lazily created ``SummaryWriter``; ``purge_step`` discards events a resumed run will redo."""

    def __init__(self, log_dir: str | os.PathLike[str], enabled: bool = True, purge_step: int | None = None) -> None:
        self.log_dir = Path(log_dir)
        self.enabled = enabled
        self.purge_step = purge_step
        self._writer: Any = None

    def _get(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=self.purge_step)
        return self._writer

    def scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        if not self.enabled:
            return
        writer = self._get()
        for key, value in values.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                writer.add_scalar(f"{prefix}{key}", value, global_step=step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class Progress:
    """A tqdm bar on stderr with the latest loss terms, lr and samples/s; off when stderr is not a TTY."""

    def __init__(self, total: int, initial: int, enabled: bool, desc: str) -> None:
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, file=sys.stderr, dynamic_ncols=True,
                            unit="step")

    def update(self, n: int = 1, postfix: dict[str, float] | None = None) -> None:
        if self.bar is None:
            return
        if postfix:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
