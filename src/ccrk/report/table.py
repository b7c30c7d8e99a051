"""What every table shares: seed means, number formatting, and a table written as CSV, Markdown and LaTeX."""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ccrk.atomic import atomic_write_text
from ccrk.layout import OBJECTIVE_LABELS
from ccrk.report.runs import Results, Run

DATASET_NAMES = {"xflickrco": "xFlickr&CO", "wit": "WIT", "multi30k": "Multi30K", "mscoco": "COCO", "synth": "synth"}
EMPTY = "–"

Stat = dict[str, float]


# -- seeds ---------------------------------------------------------------------


def seed_mean(stats: Sequence[Stat]) -> dict[str, float]:
    """Mean value, mean bounds, across-seed std (ddof=1; NaN for one seed) and seed count."""
    if not stats:
        raise ValueError("no values to average")
    values = [s["value"] for s in stats]
    return {
        "value": statistics.fmean(values),
        "low": statistics.fmean(s["low"] for s in stats),
        "high": statistics.fmean(s["high"] for s in stats),
        "std": statistics.stdev(values) if len(values) > 1 else math.nan,
        "seeds": len(stats),
    }


def mean_stat(stats: Sequence[Stat]) -> Stat:
    return {k: statistics.fmean(s[k] for s in stats) for k in ("value", "low", "high")}


def by_group(runs: Iterable[Run]) -> dict[tuple[str, str, str], list[Run]]:
    """Runs of one (dataset, setting, objective), seeds in order."""
    out: dict[tuple[str, str, str], list[Run]] = defaultdict(list)
    for r in runs:
        out[r.dataset, r.setting.name, r.objective].append(r)
    return dict(out)


# -- formatting ----------------------------------------------------------------


def fmt(x: float, digits: int = 2) -> str:
    return EMPTY if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def fmt_ci(s: dict[str, float], digits: int = 2, with_std: bool = False) -> str:
    """``value [low, high]``, or ``value ± std [low, high]`` when ``with_std`` and the std is defined."""
    std = s.get("std", math.nan)
    spread = f" ± {std:.{digits}f}" if with_std and not math.isnan(std) else ""
    return f"{s['value']:.{digits}f}{spread} [{s['low']:.{digits}f}, {s['high']:.{digits}f}]"


def ci_level(alphas: Sequence[float]) -> str:
    if len(alphas) == 1:
        return f"{100 * (1 - alphas[0]):g}% bootstrap CI"
    return "bootstrap CI (levels differ across runs: " + ", ".join(f"{100 * (1 - a):g}%" for a in alphas) + ")"


def revisions(runs: Iterable[Run]) -> str:
    revs = set()
    for r in runs:
        rev = r.metrics.get("git_revision")
        if rev:
            revs.add(str(rev)[:12] + ("+dirty" if r.metrics.get("git_dirty") else ""))
    return ", ".join(sorted(revs)) if revs else "unknown revision"


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
          "<": r"\textless{}", ">": r"\textgreater{}"}


def latex_escape(text: str) -> str:
    """Plain text for a LaTeX caption (pandas escapes the cells, not the caption)."""
    return "".join(_LATEX.get(ch, ch) for ch in text)


@dataclass
class Table:
    """One table: ``frame`` is written as CSV, ``display`` (formatted strings) as Markdown and LaTeX."""

    name: str
    title: str
    frame: pd.DataFrame
    display: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def csv(self) -> str:
        return self.frame.to_csv(index=False, lineterminator="\n")

    def markdown(self) -> str:
        body = self.display.to_markdown(index=False) if len(self.display) else "_(no rows)_"
        notes = "".join(f"- {n}\n" for n in self.notes)
        return f"# {self.title}\n\n{body}\n\n{notes}"

    def latex(self) -> str:
        caption = latex_escape(self.title + (". " + " ".join(self.notes) if self.notes else ""))
        frame = self.display if len(self.display) else pd.DataFrame({"": ["(no rows)"]})
        return frame.to_latex(index=False, escape=True, caption=caption, label=f"tab:{self.name}", longtable=False)

    def write(self, out_dir: Path) -> list[Path]:
        paths = []
        for ext, text in (("csv", self.csv()), ("md", self.markdown()), ("tex", self.latex())):
            path = out_dir / f"{self.name}.{ext}"
            atomic_write_text(path, text)
            paths.append(path)
        return paths


def display_frame(frame: pd.DataFrame, drop: Sequence[str] = ()) -> pd.DataFrame:
    out = frame.drop(columns=[c for c in drop if c in frame.columns]).copy()
    for col in ("objective", "a", "b"):
        if col in out.columns:
            out[col] = [OBJECTIVE_LABELS.get(name, name) for name in out[col]]  # an external model keeps its name
    return out


def common_notes(results: Results, multi: bool) -> list[str]:
    every = [*results.runs, *results.external]
    external = f" ({len(results.external)} of external models)" if results.external else ""
    notes = [
        f"From {len(every)} evaluation runs{external} under {results.metrics_dir} (code: {revisions(every)})."
    ]
    notes.append(f"Intervals: {ci_level(results.alphas)} over test images.")
    if multi:
        notes.append(
            "Values are means over seeds, intervals the means of the per-seed bounds, std the sample "
            "standard deviation across seeds."
        )
    return notes
