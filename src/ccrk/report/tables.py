"""The paper's tables from evaluation runs, each written as ``.csv``, ``.md`` and ``.tex``.

- ``table1``: Table 1's layout for the datasets that ran: the paper's
  published rows (as printed, from :func:`ccrk.report.paper.load_table1`)
  beside the reproduced ones, one a setting and objective. Reproduced cells
  read ``value [low, high]`` (``value ± std [low, high]`` over 2+ seeds).
- ``per_language``: R@1 per language, direction and objective, with the
  spread across languages (max - min and std) of ``metrics.json``.
- ``mrv``: MRV per objective and direction (t2i, i2t, mean of both).
- ``significance``: 1-to-K minus each baseline (``ccrk compare``) in R@1,
  mR and MRV, with the paired-bootstrap CI and p-value.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from ccrk.atomic import atomic_write_text
from ccrk.report.paper import COLUMNS, SOURCE, load_table1
from ccrk.report.runs import (
    DIRECTIONS,
    OBJECTIVE_LABELS,
    OBJECTIVES,
    Comparison,
    Results,
    Run,
)

TABLES: tuple[str, ...] = ("table1", "per_language", "mrv", "significance")
PLOTS_FILE = "recall_per_language.csv"
PLOT_COLUMNS = ("dataset", "setting", "objective", "language", "direction", "R@1", "low", "high")
DATASET_NAMES = {"xflickrco": "xFlickr&CO", "wit": "WIT", "multi30k": "Multi30K", "mscoco": "COCO", "synth": "synth"}
PAPER_SETTINGS: tuple[str, ...] = ("zero_shot", "few_shot_or_single_language", "all_languages")
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


def _mean_stat(stats: Sequence[Stat]) -> Stat:
    return {k: statistics.fmean(s[k] for s in stats) for k in ("value", "low", "high")}


def _groups(runs: Iterable[Run]) -> dict[tuple[str, str, str], list[Run]]:
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


def _ci_level(alphas: Sequence[float]) -> str:
    if len(alphas) == 1:
        return f"{100 * (1 - alphas[0]):g}% bootstrap CI"
    return "bootstrap CI (levels differ across runs: " + ", ".join(f"{100 * (1 - a):g}%" for a in alphas) + ")"


def _revisions(runs: Iterable[Run]) -> str:
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


def _display(frame: pd.DataFrame, drop: Sequence[str] = ()) -> pd.DataFrame:
    out = frame.drop(columns=[c for c in drop if c in frame.columns]).copy()
    for col in ("objective", "a", "b"):
        if col in out.columns:
            out[col] = out[col].map(OBJECTIVE_LABELS)
    return out


def _common_notes(results: Results, multi: bool) -> list[str]:
    notes = [
        f"From {len(results.runs)} evaluation runs under {results.metrics_dir} (code: {_revisions(results.runs)})."
    ]
    notes.append(f"Intervals: {_ci_level(results.alphas)} over test images.")
    if multi:
        notes.append(
            "Values are means over seeds, intervals the means of the per-seed bounds, std the sample "
            "standard deviation across seeds."
        )
    return notes


# -- Table 1 -------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A Table 1 column: ``kind`` is ``r1`` (avg R@1 of ``arg`` = direction), ``mR`` (of language ``arg``),
    ``mR_avg`` or ``mrv`` (over languages ``arg``; ``None`` = whatever the run used)."""

    id: str
    dataset: str
    header: str
    kind: str
    arg: Any = None


def table1_columns(datasets: Sequence[str]) -> list[Column]:
    cols = []
    for cid, (dataset, metric, lang) in COLUMNS.items():
        if dataset not in datasets:
            continue
        name = DATASET_NAMES[dataset]
        if metric in ("t2i_r1", "i2t_r1"):
            d = metric[:3]
            cols.append(Column(cid, dataset, f"{name} {'IR' if d == 't2i' else 'TR'} R@1", "r1", d))
        elif metric == "mR":
            cols.append(Column(cid, dataset, f"{name} mR {lang}", "mR", lang))
        elif metric == "mrv":
            langs = tuple(lang.split(","))
            cols.append(Column(cid, dataset, f"{name} MRV{len(langs)}", "mrv", langs))
        else:  # pragma: no cover - COLUMNS is fixed
            raise AssertionError(metric)
    if "synth" in datasets:
        cols += [
            Column("synth_ir_r1", "synth", "synth IR R@1", "r1", "t2i"),
            Column("synth_tr_r1", "synth", "synth TR R@1", "r1", "i2t"),
            Column("synth_mr", "synth", "synth mR avg", "mR_avg"),
            Column("synth_mrv", "synth", "synth MRV", "mrv", None),
        ]
    return cols


def _mrv_matches(run: Run, langs: tuple[str, ...] | None) -> bool:
    return bool(run.mrv_languages) and (langs is None or sorted(run.mrv_languages) == sorted(langs))


def _cell_of_seed(col: Column, runs: list[Run]) -> Stat | None:
    """One seed's value of ``col`` from its runs (one, or one a language for per-language settings)."""
    if runs[0].setting.per_language:
        if col.kind == "r1":
            return _mean_stat([r.stat("per_language", r.setting.language, col.arg, "R@1") for r in runs])
        if col.kind == "mR_avg":
            return _mean_stat([r.stat("per_language", r.setting.language, "mR") for r in runs])
        if col.kind == "mR":
            own = [r for r in runs if r.setting.language == col.arg]
            return own[0].stat("per_language", col.arg, "mR") if own else None
        with_mrv = [r.stat("mrv", "mean") for r in runs if _mrv_matches(r, col.arg)]
        return _mean_stat(with_mrv) if with_mrv else None
    (run,) = runs
    if col.kind == "r1":
        return run.stat("average", col.arg, "R@1")
    if col.kind == "mR_avg":
        return run.stat("average", "mR")
    if col.kind == "mR":
        return run.stat("per_language", col.arg, "mR") if col.arg in run.languages else None
    return run.stat("mrv", "mean") if _mrv_matches(run, col.arg) else None


def _variant_detail(group: str, runs: list[Run]) -> str:
    langs = sorted({r.setting.language for r in runs if r.setting.language})
    if group == "single_language":
        return f"single language ({', '.join(langs)})"
    if group.startswith("few_shot."):
        return f"few-shot, {group.split('.')[1]} shots ({', '.join(langs)})"
    return ""


def _paper_text() -> pd.DataFrame:
    """Table 1 with every cell as printed (``50.60`` stays ``50.60``); '' where the paper has no number."""
    numeric = load_table1()  # validates the shipped file
    with resources.files("ccrk.resources.paper").joinpath("table1.csv").open("r", encoding="utf-8") as handle:
        text = pd.read_csv(handle, dtype=str, keep_default_na=False)
    if text.shape != numeric.shape:  # pragma: no cover - the same file
        raise ValueError("paper table1.csv read twice with different shapes")
    return text


def build_table1(results: Results) -> Table:
    cols = table1_columns(results.datasets)
    multi = any(len(g) > 1 for g in _groups(results.runs).values())
    # variant (setting group) -> objective -> seed -> dataset -> runs
    tree: dict[tuple[str, str], dict[str, dict[int, dict[str, list[Run]]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    )
    for r in results.runs:
        tree[r.setting.paper_setting, r.setting.group][r.objective][r.seed][r.dataset].append(r)

    paper = _paper_text()
    real_cols = [c.id for c in cols if c.dataset != "synth"]
    rows: list[dict[str, Any]] = []
    for block in PAPER_SETTINGS:
        if real_cols:
            for _, p in paper[paper.setting == block].iterrows():
                if not any(p[c] for c in real_cols):
                    continue
                row = {"source": "paper", "setting": block, "detail": "", "model": p["model"],
                       "pretrain images+texts": p["pretrain_images_texts"], "seeds": ""}
                row.update({c.id: p[c.id] if c.dataset != "synth" else "" for c in cols})
                row["reference"] = SOURCE
                rows.append(row)
        for (paper_setting, group) in sorted(k for k in tree if k[0] == block):
            by_objective = tree[paper_setting, group]
            for objective in OBJECTIVES:
                if objective not in by_objective:
                    continue
                seeds = by_objective[objective]
                all_runs = [r for per_ds in seeds.values() for rs in per_ds.values() for r in rs]
                row = {"source": "reproduced", "setting": block, "detail": _variant_detail(group, all_runs),
                       "model": f"{OBJECTIVE_LABELS[objective]} (ccrk)", "pretrain images+texts": ""}
                counts = set()
                for c in cols:
                    per_seed = [s for per_ds in seeds.values() if c.dataset in per_ds
                                for s in [_cell_of_seed(c, per_ds[c.dataset])] if s is not None]
                    row[c.id] = fmt_ci(seed_mean(per_seed), with_std=multi) if per_seed else ""
                    if per_seed:
                        counts.add(len(per_seed))
                row["seeds"] = f"{min(counts)}–{max(counts)}" if len(counts) > 1 else "".join(map(str, counts))
                row["reference"] = f"ccrk {_revisions(all_runs)}"
                rows.append(row)
    frame = pd.DataFrame(rows, columns=["source", "setting", "detail", "model", "pretrain images+texts", "seeds",
                                        *(c.id for c in cols), "reference"])
    if not multi:
        frame = frame.drop(columns=["seeds"])
    empty = [c for c in ("detail", "pretrain images+texts") if not frame[c].astype(bool).any()]
    frame = frame.drop(columns=empty)
    display = frame.drop(columns=["reference"]).rename(columns={c.id: c.header for c in cols})
    display = display.replace("", EMPTY)

    notes = []
    if real_cols:
        notes.append(f"Rows marked 'paper': {SOURCE}, as published.")
    notes += _common_notes(results, multi)
    notes.append(
        "Reproduced cells: value [low, high]" + (" (value ± std over seeds)" if multi else "") +
        "; R@1 and mR in %, MRV (mean over test images of the std of the rank across the languages, "
        "mean of both directions; lower is better) in ranks."
    )
    notes.append(
        "IR/TR R@1 and mR avg are means over the languages each run evaluated; per-language settings "
        "(few_shot.<lang>.<shots>, single_language.<lang>) take each language from its own run, and their "
        "averages are means over those runs (values and bounds alike). Those runs are tested on their own "
        "language only, so they have no MRV."
    )
    mrv_note = {c.dataset for c in cols if c.kind == "mrv" and c.arg is not None}
    for ds in sorted(mrv_note):
        langs = next(c.arg for c in cols if c.dataset == ds and c.kind == "mrv")
        notes.append(f"{DATASET_NAMES[ds]} MRV{len(langs)} is over {','.join(langs)}; a run with MRV over other "
                     "languages leaves the cell empty.")
    if "synth" in results.datasets:
        langs = sorted({",".join(r.mrv_languages) for r in results.runs if r.dataset == "synth" and r.mrv_languages})
        notes.append(
            "synth is the embedded synthetic benchmark: the paper has no numbers for it, so its columns "
            "(IR/TR R@1 averaged over languages, mR averaged over languages, MRV over "
            f"{' / '.join(langs) if langs else 'the run’s MRV languages'}) hold reproduced values only."
        )
    title = "Table 1: the paper's numbers beside the reproduced ones"
    return Table("table1", title, frame, display, notes)


# -- per language --------------------------------------------------------------


def _interval_frames(
    rows: list[dict[str, Any]], key: str, directions: Sequence[str], metric: str, multi: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of ``{d} {metric}/low/high/std`` per direction -> the numeric frame and its "value [low, high]" display."""
    ids = ["dataset", "setting", "objective", key]
    cols = ids + [f"{d} {k}" for d in directions for k in (metric, "low", "high")]
    if multi:
        cols += [f"{d} std" for d in directions] + ["seeds"]
    frame = pd.DataFrame(rows)[cols] if rows else pd.DataFrame(columns=cols)
    display = _display(frame[ids])
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


def build_per_language(results: Results) -> Table:
    groups = _groups(results.runs)
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
    notes = _common_notes(results, multi)
    notes.append("R@1 in %. 'spread' rows: max - min and std of R@1 across the run's languages (metrics.json "
                 "recall_spread), the paper's consistency across languages; lower is more consistent.")
    return Table("per_language", "Recall@1 per language and objective", frame, display, notes)


# -- MRV -----------------------------------------------------------------------

MRV_DIRECTIONS: tuple[str, ...] = (*DIRECTIONS, "mean")


def build_mrv(results: Results) -> Table:
    groups = _groups(results.runs)
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
    notes = _common_notes(results, multi)
    notes.append("MRV: mean over test images of the population std of the image's 0-based rank across the "
                 "listed languages (ccrk.metrics, as the paper's code); 'mean' averages both directions. "
                 "Lower is more consistent. Runs tested on one language (single_language, few_shot) have none.")
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
    display = _display(frame[["dataset", "setting", "a", "b", "metric"]]).rename(
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
        notes.append(f"Paired bootstrap over test images ({_ci_level(alphas)}); p: two-sided bootstrap p-value"
                     + (", the largest over seeds" if multi else "") + ".")
    if multi:
        notes.append("Values, differences and bounds are means over seeds; 'diff std' is the std across seeds.")
    notes.append("difference = objective - baseline (a - b of ccrk compare). Recall and mR in %: positive = 1-to-K "
                 "better. MRV in ranks: negative = 1-to-K more consistent.")
    if not rows:
        notes.append("No comparisons were found (ccrk compare writes <dataset>/<setting>/compare/seed<N>/"
                     "one_to_k-vs-<baseline>.json).")
    return Table("significance", "1-to-K against each baseline: paired differences", frame, display, notes)


# -- DVC metrics and plots -----------------------------------------------------


def summary_metrics(results: Results) -> dict[str, dict[str, float]]:
    """Per objective, a flat ``{"<dataset>/<setting>/<metric>": seed mean}`` (R@1 per direction, mR, MRV)."""
    out: dict[str, dict[str, float]] = {}
    for (dataset, setting, objective), runs in _groups(results.runs).items():
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
    for (dataset, setting, objective), runs in _groups(results.runs).items():
        for lang in dict.fromkeys(lang for r in runs for lang in r.languages):
            for d in DIRECTIONS:
                s = seed_mean([r.stat("per_language", lang, d, "R@1") for r in runs if lang in r.languages])
                rows.append({"dataset": dataset, "setting": setting, "objective": objective, "language": lang,
                             "direction": d, "R@1": s["value"], "low": s["low"], "high": s["high"]})
    return pd.DataFrame(rows, columns=list(PLOT_COLUMNS))


# -- all of it -----------------------------------------------------------------


def build_tables(results: Results) -> list[Table]:
    return [build_table1(results), build_per_language(results), build_mrv(results), build_significance(results)]


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
