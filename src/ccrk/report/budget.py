"""The budget study: one comparison at several pre-training lengths, R@1 and MRV against steps.

A comparison at one pre-training length can say which objective is ahead
there, not whether the order holds as pre-training grows. The budget study
(the workflow's ``budget.smk``) runs the whole comparison — every objective,
seed and setting — once per length; this module puts the runs side by side:
one table row per (dataset, setting, objective, length) with the seed means
of R@1 and MRV and the paired 1-to-K-minus-baseline differences of
``ccrk compare``, and a figure of R@1 and MRV against pre-training steps.

Each length is a ``(metrics_dir, pretrain_dir)`` pair in the layout of
:mod:`ccrk.report.runs`. Its number of steps is read from its pre-training
logs (the last step any record of ``metrics.jsonl`` or ``val.jsonl`` names),
never from a configuration that may differ from what ran; every evaluated
run needs its pre-training log, and the lengths must differ.
"""
from __future__ import annotations

import os
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ccrk.layout import OBJECTIVE_LABELS, OBJECTIVES
from ccrk.report.logs import PretrainLog, discover_pretrain
from ccrk.report.runs import DIRECTIONS, Results, ResultsError, discover

#: The metrics of the study: each direction's R@1 averaged over languages, their mean, and MRV.
R1_KEYS = {d: ("average", d, "R@1") for d in DIRECTIONS}
MRV_KEY = ("mrv", "mean")
#: What the significance columns compare (keys of ``ccrk compare``'s metrics).
COMPARED = {"IR R@1": ("average", "t2i", "R@1"), "TR R@1": ("average", "i2t", "R@1"), "MRV": MRV_KEY}
BUDGET_TABLE = "budget"
BUDGET_FIGURE = "budget"


def pretrain_steps(log: PretrainLog) -> int:
    """Optimiser steps the run took: the last step its logs name (validation runs after the last one)."""
    steps = [int(r["step"]) for r in (*log.records, *log.validation)]
    if not steps:
        raise ResultsError(f"{log.path}: no records, so the length of pre-training is unknown")
    return max(steps)


def collect(lengths: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]]) -> pd.DataFrame:
    """One row per evaluated run of every length: its steps, IR/TR/mean R@1 and MRV.

    ``lengths`` is a ``(metrics_dir, pretrain_dir)`` pair per pre-training
    length. Raises :class:`ResultsError` naming the path when a run has no
    pre-training log, or when two lengths pre-trained an objective for the
    same number of steps (the same run given twice).
    """
    if len(lengths) < 2:
        raise ValueError(f"a budget study needs at least two pre-training lengths, got {len(lengths)}")
    rows = []
    seen: dict[tuple[str, int], tuple[int, Path]] = {}
    for index, (metrics_dir, pretrain_dir) in enumerate(lengths):
        results = discover(metrics_dir)
        logs = {(log.objective, log.seed): log for log in discover_pretrain(pretrain_dir)}
        for (objective, _), log in logs.items():
            steps = pretrain_steps(log)
            other = seen.setdefault((objective, steps), (index, Path(pretrain_dir)))
            if other[0] != index:
                raise ResultsError(f"{pretrain_dir} and {other[1]} both pre-trained {objective} for {steps} steps: "
                                   "each length of a budget study must differ")
        for run in results.runs:
            log = logs.get((run.objective, run.seed))
            if log is None:
                raise ResultsError(f"{run.metrics_path}: no pre-training log of {run.objective} seed {run.seed} "
                                   f"under {pretrain_dir}")
            r1 = {d: run.stat(*key)["value"] for d, key in R1_KEYS.items()}
            rows.append({
                "dataset": run.dataset, "setting": run.setting.name, "objective": run.objective, "seed": run.seed,
                "steps": pretrain_steps(log), "IR R@1": r1["t2i"], "TR R@1": r1["i2t"],
                "mean R@1": (r1["t2i"] + r1["i2t"]) / 2,
                # Runs tested on one language have no MRV.
                "MRV": run.stat(*MRV_KEY)["value"] if run.mrv_languages else None, "metrics_dir": str(metrics_dir),
            })
    return pd.DataFrame(rows)


def _differences(results: Results) -> dict[tuple[str, str, str], dict[str, str]]:
    """(dataset, setting, baseline) -> {"<metric> diff": "+d [lo, hi] p"} as seed means of ``ccrk compare``."""
    per: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for comp in results.comparisons:
        if comp.a != "one_to_k":
            continue
        for m in comp.doc["metrics"]:
            for name, key in COMPARED.items():
                if tuple(m["key"]) == key:
                    per[comp.dataset, comp.setting.name, comp.b, name].append(m)
    out: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    for (dataset, setting, baseline, name), ms in per.items():
        mean = {k: statistics.fmean(m[k] for m in ms) for k in ("diff", "low", "high")}
        p = max(m["p_value"] for m in ms)
        out[dataset, setting, baseline][f"1-to-K - {OBJECTIVE_LABELS[baseline]}: {name}"] = (
            f"{mean['diff']:+.2f} [{mean['low']:+.2f}, {mean['high']:+.2f}] p={p:.3f}")
    return out


def budget_table(frame: pd.DataFrame,
                 lengths: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]]) -> pd.DataFrame:
    """Seed means (and the seeds' range) per dataset, setting, length and objective, with 1-to-K's differences."""
    diffs = {str(m): _differences(discover(m)) for m, _ in lengths}
    rows = []
    keys = ["dataset", "setting", "metrics_dir", "objective"]
    for (dataset, setting, metrics_dir, objective), group in frame.groupby(keys, sort=False):
        row: dict[str, Any] = {"dataset": dataset, "setting": setting, "steps": int(group["steps"].max()),
                               "objective": OBJECTIVE_LABELS[objective], "seeds": len(group)}
        for value in ("IR R@1", "TR R@1", "mean R@1", "MRV"):
            v = group[value].dropna()
            row[value] = round(float(v.mean()), 2) if len(v) else None
            if value == "mean R@1" and len(v) > 1:
                row["mean R@1 seed range"] = f"{v.min():.1f}-{v.max():.1f}"
        if objective == "one_to_k":
            for (d, s, _), cells in diffs[metrics_dir].items():
                if (d, s) == (dataset, setting):
                    row.update(cells)
        rows.append(row)
    table = pd.DataFrame(rows)
    order = {o: i for i, o in enumerate(OBJECTIVE_LABELS[o] for o in OBJECTIVES)}
    return table.sort_values(["dataset", "setting", "steps", "objective"],
                             key=lambda c: c.map(order) if c.name == "objective" else c, kind="stable")


def budget_figure(frame: pd.DataFrame) -> Any:
    """Mean (IR+TR)/2 R@1 and MRV against pre-training steps: a line per objective through the seed means."""
    from matplotlib.lines import Line2D

    from ccrk.report.figure_style import COLORS, new_figure, setting_label

    groups = list(dict.fromkeys(zip(frame["dataset"], frame["setting"])))
    values = [v for v in ("mean R@1", "MRV") if frame[v].notna().any()]
    fig = new_figure(figsize=(5.0 * len(values), 3.9 * len(groups)), layout="constrained")
    axes = fig.subplots(len(groups), len(values), squeeze=False)
    objectives = [o for o in OBJECTIVES if o in set(frame["objective"])]
    for row, (dataset, setting) in enumerate(groups):
        sub = frame[(frame["dataset"] == dataset) & (frame["setting"] == setting)]
        for col, value in enumerate(values):
            ax = axes[row, col]
            for objective in objectives:
                runs = sub[sub["objective"] == objective].dropna(subset=[value])
                if runs.empty:
                    continue
                color = COLORS[objective]
                ax.scatter(runs["steps"], runs[value], color=color, s=14, alpha=0.55, linewidths=0)
                means = runs.groupby("steps")[value].mean()
                ax.plot(means.index, means.values, color=color, linewidth=2.0, marker="o", markersize=4)
            ax.set_xscale("log", base=2)
            steps = sorted(set(sub["steps"]))
            ax.set_xticks(steps, [str(s) for s in steps])
            ax.minorticks_off()
            ax.set_xlabel("pre-training steps")
            ax.set_ylabel("R@1 (%), mean of IR and TR" if value == "mean R@1" else "MRV (ranks; lower = consistent)")
            ax.set_title(f"{dataset}, {setting_label(setting)}")
    handles: list[Any] = [Line2D([], [], color=COLORS[o], linewidth=2.0, marker="o", label=OBJECTIVE_LABELS[o])
                          for o in objectives]
    handles.append(Line2D([], [], color="0.3", marker="o", linestyle="none", alpha=0.55, label="one seed"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    fig.suptitle("Budget study: the same comparison at each pre-training length (lines: mean over seeds)")
    return fig


def write_budget(lengths: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
                 out_dir: str | os.PathLike[str], dpi: int = 150) -> list[Path]:
    """Write ``budget.csv``, ``budget.md`` and ``budget.png``/``.pdf`` under ``out_dir``; the paths written.

    Everything is read and checked before the first file is written.
    """
    from ccrk.atomic import atomic_write_text
    from ccrk.report.figure_style import figure_style
    from ccrk.report.figures import save_figure

    frame = collect(lengths)
    if frame.empty:
        raise ResultsError("no evaluation runs under " + ", ".join(str(m) for m, _ in lengths))
    table = budget_table(frame, lengths)
    with figure_style():
        fig = budget_figure(frame)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    csv = out / f"{BUDGET_TABLE}.csv"
    atomic_write_text(csv, table.to_csv(index=False))
    written.append(csv)
    md = out / f"{BUDGET_TABLE}.md"
    notes = ("R@1 in % (each direction averaged over the languages tested), MRV in ranks; seed means. "
             "Differences: 1-to-K minus the baseline, paired bootstrap over test images (ccrk compare), "
             "seed means of the difference and its interval, p the largest over seeds.")
    atomic_write_text(md, "# Budget study\n\n" + table.fillna("").to_markdown(index=False) + f"\n\n{notes}\n")
    written.append(md)
    written += save_figure(fig, out, BUDGET_FIGURE, dpi=dpi)
    return written
