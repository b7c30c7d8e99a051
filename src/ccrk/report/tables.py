"""The paper's tables from evaluation runs, each written as ``.csv``, ``.md`` and ``.tex``.

- ``table1``: Table 1's layout for the datasets that ran: the paper's
  published rows (as printed, from :func:`ccrk.report.paper.load_table1`)
  beside the reproduced ones, one a setting and objective. Reproduced cells
  read ``value [low, high]`` (``value ± std [low, high]`` over 2+ seeds).
- ``per_language``: R@1 per language, direction and objective, with the
  spread across languages (max - min and std) of ``metrics.json``.
- ``mrv``: MRV per objective and direction (t2i, i2t, mean of both).

  Both also hold a row group per external model (setting ``external``, the
  model's name in the objective column): the models a user evaluated beside
  the trained ones (``workflow``'s ``external_models``).
- ``significance``: 1-to-K minus each baseline (``ccrk compare``) in R@1,
  mR and MRV, with the paired-bootstrap CI and p-value.
- ``seeds``: how far apart the training seeds land: each seed's headline
  R@1 (the mean of IR and TR R@1 over the run's languages) and the range
  across seeds, beside the width of one run's test-draw interval. The
  other tables' ``std`` says the same for two seeds only up to a factor
  (range = std x sqrt(2)); this one names the seeds.

Beside them, for DVC: a flat ``<objective>.json`` of headline numbers per
objective (``dvc metrics show``) and ``recall_per_language.csv`` in long
format (``dvc plots``).

Several seeds: every number is the mean over seeds of the per-seed point
value, the interval is the mean of the per-seed bootstrap bounds, and
``seeds`` and the across-seed sample standard deviation (ddof=1) are added.
In ``significance`` the p-value is the largest per-seed one (the difference
must hold in every seed). Settings fine-tuned per language
(``single_language.<lang>``, ``few_shot.<lang>.<shots>``) fill Table 1's
``few_shot_or_single_language`` rows: each language's column comes from its
own run, and averages are means over those runs (value and bounds alike).
"""
from __future__ import annotations

import json
import math
import os
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ccrk.atomic import atomic_write_text
from ccrk.layout import OBJECTIVES, TABLES
from ccrk.report.runs import DIRECTIONS, Comparison, Results, Run
from ccrk.report.table import (
    Stat,
    Table,
    by_group,
    ci_level,
    common_notes,
    display_frame,
    fmt,
    fmt_ci,
    revisions,
    seed_mean,
)
from ccrk.report.table1 import build_table1

PLOTS_FILE = "recall_per_language.csv"
PLOT_COLUMNS = ("dataset", "setting", "objective", "language", "direction", "R@1", "low", "high")


def _interval_frames(
    rows: list[dict[str, Any]], key: str, directions: Sequence[str], metric: str, multi: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of ``{d} {metric}/low/high/std`` per direction -> the numeric frame and its "value [low, high]" display."""
    ids = ["dataset", "setting", "objective", key]
    cols = ids + [f"{d} {k}" for d in directions for k in (metric, "low", "high")]
    if multi:
        cols += [f"{d} std" for d in directions] + ["seeds"]
    frame = pd.DataFrame(rows)[cols] if rows else pd.DataFrame(columns=cols)
    display = display_frame(frame[ids])
    for d in directions:
        display[f"{metric} {d}"] = [fmt_ci({"value": v, "low": lo, "high": hi})
                                    for v, lo, hi in zip(frame[f"{d} {metric}"], frame[f"{d} low"], frame[f"{d} high"])]
    if multi:
        for d in directions:
            display[f"{d} std"] = [fmt(x) for x in frame[f"{d} std"]]
        display["seeds"] = frame["seeds"]
    return frame, display


def _put_seed_mean(row: dict[str, Any], direction: str, metric: str, stats: Sequence[Stat]) -> None:
    """The seed mean of ``stats`` as the columns ``_interval_frames`` reads: value, low, high, std, seeds."""
    s = seed_mean(stats)
    row |= {f"{direction} {metric}": s["value"], f"{direction} low": s["low"], f"{direction} high": s["high"],
            f"{direction} std": s["std"], "seeds": s["seeds"]}


def _external_note(results: Results) -> list[str]:
    if not results.external:
        return []
    names = ", ".join(dict.fromkeys(r.objective for r in results.external))
    return [f"Setting 'external': models trained elsewhere ({names}), evaluated as they are with ccrk evaluate "
            f"(no matching head: ranked by similarity alone); the objective column holds the model's name."]


def build_per_language(results: Results) -> Table:
    groups = by_group([*results.runs, *results.external])
    multi = any(len(g) > 1 for g in groups.values())
    rows = []
    for (dataset, setting, objective), runs in groups.items():
        languages = list(dict.fromkeys(lang for r in runs for lang in r.languages))
        entries: list[tuple[str, Callable[[Run, str], Stat]]] = [
            (lang, lambda r, d, lang=lang: r.stat("per_language", lang, d, "R@1")) for lang in languages
        ]
        if len(languages) > 1:
            entries += [
                ("spread: max-min", lambda r, d: r.stat("recall_spread", d, "R@1", "max_minus_min")),
                ("spread: std", lambda r, d: r.stat("recall_spread", d, "R@1", "std")),
            ]
        for label, get in entries:
            row: dict[str, Any] = {"dataset": dataset, "setting": setting, "objective": objective, "language": label}
            for d in DIRECTIONS:
                have = [r for r in runs if label.startswith("spread") or label in r.languages]
                _put_seed_mean(row, d, "R@1", [get(r, d) for r in have])
            rows.append(row)
    frame, display = _interval_frames(rows, "language", DIRECTIONS, "R@1", multi)
    notes = common_notes(results, multi)
    notes.append("R@1 in %. 'spread' rows: max - min and std of R@1 across the run's languages (metrics.json "
                 "recall_spread), the paper's consistency across languages; lower is more consistent.")
    notes += _external_note(results)
    return Table("per_language", "Recall@1 per language and objective", frame, display, notes)


# -- MRV -----------------------------------------------------------------------

MRV_DIRECTIONS: tuple[str, ...] = (*DIRECTIONS, "mean")


def build_mrv(results: Results) -> Table:
    groups = by_group([*results.runs, *results.external])
    multi = any(len(g) > 1 for g in groups.values())
    rows = []
    for (dataset, setting, objective), runs in groups.items():
        with_mrv = [r for r in runs if r.mrv_languages]
        if not with_mrv:
            continue
        for langs in dict.fromkeys(tuple(r.mrv_languages) for r in with_mrv):
            same = [r for r in with_mrv if tuple(r.mrv_languages) == langs]
            row: dict[str, Any] = {"dataset": dataset, "setting": setting, "objective": objective,
                                   "languages": ",".join(langs)}
            for d in MRV_DIRECTIONS:
                _put_seed_mean(row, d, "MRV", [r.stat("mrv", d) for r in same])
            rows.append(row)
    frame, display = _interval_frames(rows, "languages", MRV_DIRECTIONS, "MRV", multi)
    notes = common_notes(results, multi)
    notes.append("MRV: mean over test images of the population std of the image's 0-based rank across the "
                 "listed languages (ccrk.metrics, as the paper's code); 'mean' averages both directions. "
                 "Lower is more consistent. Runs tested on one language (single_language, few_shot) have none.")
    notes += _external_note(results)
    if not rows:
        notes.append("No run computed MRV.")
    return Table("mrv", "Mean Rank Variance per objective and direction", frame, display, notes)


# -- significance --------------------------------------------------------------


def build_significance(results: Results) -> Table:
    groups: dict[tuple[str, str, str, str], list[Comparison]] = defaultdict(list)
    for c in results.comparisons:
        groups[c.dataset, c.setting.name, c.a, c.b].append(c)
    multi = any(len(g) > 1 for g in groups.values())
    rows = []
    for (dataset, setting, a, b), comps in groups.items():
        metrics: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for c in comps:
            for m in c.doc["metrics"]:
                metrics[m["metric"]].append(m)
        # headline numbers (averages, MRV) first, then each language
        ordered = sorted(metrics.items(), key=lambda kv: kv[1][0]["key"][0] == "per_language")
        for name, per_seed in ordered:
            diff = seed_mean([{"value": m["diff"], "low": m["low"], "high": m["high"]} for m in per_seed])
            rows.append({
                "dataset": dataset, "setting": setting, "a": a, "b": b, "metric": name,
                "value a": statistics.fmean(m["a"] for m in per_seed),
                "value b": statistics.fmean(m["b"] for m in per_seed),
                "diff": diff["value"], "low": diff["low"], "high": diff["high"],
                "p_value": max(m["p_value"] for m in per_seed),
                "diff std": diff["std"], "seeds": diff["seeds"],
            })
    cols = ["dataset", "setting", "a", "b", "metric", "value a", "value b", "diff", "low", "high", "p_value"]
    if multi:
        cols += ["diff std", "seeds"]
    frame = pd.DataFrame(rows)[cols] if rows else pd.DataFrame(columns=cols)
    display = display_frame(frame[["dataset", "setting", "a", "b", "metric"]]).rename(
        columns={"a": "objective", "b": "baseline"})
    display["objective value"] = [fmt(x) for x in frame["value a"]]
    display["baseline value"] = [fmt(x) for x in frame["value b"]]
    display["difference [CI]"] = [
        f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]" for d, lo, hi in zip(frame["diff"], frame["low"], frame["high"])
    ]
    display["p"] = [f"{p:.3f}" for p in frame["p_value"]]
    if multi:
        display["diff std"] = [fmt(x) for x in frame["diff std"]]
        display["seeds"] = frame["seeds"]
    alphas = sorted({float(c.doc["bootstrap"]["alpha"]) for c in results.comparisons})
    notes = [f"From {len(results.comparisons)} ccrk compare files under {results.metrics_dir}."]
    if results.comparisons:
        notes.append(f"Paired bootstrap over test images ({ci_level(alphas)}); p: two-sided bootstrap p-value"
                     + (", the largest over seeds" if multi else "") + ".")
    if multi:
        notes.append("Values, differences and bounds are means over seeds; 'diff std' is the std across seeds.")
    notes.append("difference = objective - baseline (a - b of ccrk compare). Recall and mR in %: positive = 1-to-K "
                 "better. MRV in ranks: negative = 1-to-K more consistent.")
    if not rows:
        notes.append("No comparisons were found (ccrk compare writes <dataset>/<setting>/compare/seed<N>/"
                     "one_to_k-vs-<baseline>.json).")
    return Table("significance", "1-to-K against each baseline: paired differences", frame, display, notes)


# -- seed agreement ------------------------------------------------------------


def _headline(run: Run) -> float:
    """A run's headline R@1: the mean of IR (t2i) and TR (i2t) R@1, each averaged over the run's languages."""
    return statistics.fmean(run.stat("average", d, "R@1")["value"] for d in DIRECTIONS)


def _half_width(run: Run) -> float:
    """Half the width of the run's bootstrap interval of R@1, averaged over both directions."""
    return statistics.fmean((run.stat("average", d, "R@1")["high"] - run.stat("average", d, "R@1")["low"]) / 2
                            for d in DIRECTIONS)


def build_seeds(results: Results) -> Table:
    """Each training seed's headline R@1 per dataset, setting and objective, and the range across the seeds.

    Why a table of its own: whether two seeds of one recipe agree is what
    says if a difference between objectives is more than training noise, and
    the seed means elsewhere hide which seed is where. The mean half-width
    of one run's interval is the scale of the test draw alone.
    """
    seeds = sorted({r.seed for r in results.runs if r.seed is not None})
    rows = []
    for (dataset, setting, objective), runs in by_group(results.runs).items():
        row: dict[str, Any] = {"dataset": dataset, "setting": setting, "objective": objective}
        heads = {r.seed: _headline(r) for r in runs}
        for seed in seeds:
            row[f"seed{seed}"] = heads.get(seed, math.nan)
        several = len(runs) > 1
        row["range"] = max(heads.values()) - min(heads.values()) if several else math.nan
        for d, label in zip(DIRECTIONS, ("IR", "TR")):
            values = [r.stat("average", d, "R@1")["value"] for r in runs]
            row[f"{label} range"] = max(values) - min(values) if several else math.nan
        row["CI half-width"] = statistics.fmean(_half_width(r) for r in runs)
        row["seeds"] = len(runs)
        rows.append(row)
    cols = ["dataset", "setting", "objective", *(f"seed{s}" for s in seeds),
            "range", "IR range", "TR range", "CI half-width", "seeds"]
    frame = pd.DataFrame(rows)[cols] if rows else pd.DataFrame(columns=cols)
    display = display_frame(frame[["dataset", "setting", "objective"]])
    for s in seeds:
        display[f"seed {s}"] = [fmt(x) for x in frame[f"seed{s}"]]
    for col in ("range", "IR range", "TR range", "CI half-width"):
        display[col] = [fmt(x) for x in frame[col]]
    display["seeds"] = frame["seeds"]
    notes = [f"From {len(results.runs)} evaluation runs under {results.metrics_dir} (code: {revisions(results.runs)}).",
             "seed N: that seed's headline R@1 in %, the mean of IR and TR R@1 averaged over the run's languages "
             "(the ranking validation chose: contrastive order or re-ranked). range: largest minus smallest over "
             "the seeds (IR range, TR range: the same per direction); a dash where one seed ran.",
             f"CI half-width: half the width of one run's {ci_level(results.alphas)} of R@1 over test images, "
             "mean over runs and directions: how far the test draw alone moves one number."]
    if not rows:
        notes.append("No evaluation runs were found.")
    return Table("seeds", "Seed agreement: each training seed's headline R@1", frame, display, notes)


# -- DVC metrics and plots -----------------------------------------------------


def summary_metrics(results: Results) -> dict[str, dict[str, float]]:
    """Per objective, a flat ``{"<dataset>/<setting>/<metric>": seed mean}`` (R@1 per direction, mR, MRV)."""
    out: dict[str, dict[str, float]] = {}
    for (dataset, setting, objective), runs in by_group(results.runs).items():
        flat = out.setdefault(objective, {})
        prefix = f"{dataset}/{setting}"
        for d in DIRECTIONS:
            flat[f"{prefix}/{d}_R@1"] = round(seed_mean([r.stat("average", d, "R@1") for r in runs])["value"], 4)
        flat[f"{prefix}/mR"] = round(seed_mean([r.stat("average", "mR") for r in runs])["value"], 4)
        with_mrv = [r for r in runs if r.mrv_languages]
        if with_mrv:
            flat[f"{prefix}/MRV"] = round(seed_mean([r.stat("mrv", "mean") for r in with_mrv])["value"], 4)
    return {o: out[o] for o in OBJECTIVES if o in out}


def recall_long(results: Results) -> pd.DataFrame:
    """R@1 per dataset, setting, objective, language and direction (seed means), for ``dvc plots``."""
    rows = []
    for (dataset, setting, objective), runs in by_group(results.runs).items():
        for lang in dict.fromkeys(lang for r in runs for lang in r.languages):
            for d in DIRECTIONS:
                s = seed_mean([r.stat("per_language", lang, d, "R@1") for r in runs if lang in r.languages])
                rows.append({"dataset": dataset, "setting": setting, "objective": objective, "language": lang,
                             "direction": d, "R@1": s["value"], "low": s["low"], "high": s["high"]})
    return pd.DataFrame(rows, columns=list(PLOT_COLUMNS))


# -- all of it -----------------------------------------------------------------


def build_tables(results: Results) -> list[Table]:
    tables = {"table1": build_table1, "per_language": build_per_language, "mrv": build_mrv,
              "significance": build_significance, "seeds": build_seeds}
    return [tables[name](results) for name in TABLES]


def write_tables(
    results: Results,
    out_dir: str | os.PathLike[str],
    summary_dir: str | os.PathLike[str] | None = None,
    plots_dir: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Write every table (and the DVC metrics / plots files when asked); returns the paths written.

    Everything is computed before the first file is written, and each file
    is replaced atomically.
    """
    tables = build_tables(results)
    summary = summary_metrics(results) if summary_dir is not None else None
    plots = recall_long(results) if plots_dir is not None else None
    written: list[Path] = []
    for table in tables:
        written += table.write(Path(out_dir))
    if summary is not None:
        for objective, flat in summary.items():
            path = Path(summary_dir) / f"{objective}.json"
            atomic_write_text(path, json.dumps(flat, indent=2, sort_keys=True, allow_nan=False) + "\n")
            written.append(path)
    if plots is not None:
        path = Path(plots_dir) / PLOTS_FILE
        atomic_write_text(path, plots.to_csv(index=False, lineterminator="\n"))
        written.append(path)
    return written
