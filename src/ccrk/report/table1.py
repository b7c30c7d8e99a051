"""Table 1: the paper's published rows beside the reproduced ones, one row a setting and objective.

Reproduced cells read ``value [low, high]`` (``value ± std [low, high]`` over
2+ seeds). Settings fine-tuned per language (``single_language.<lang>``,
``few_shot.<lang>.<shots>``) fill the ``few_shot_or_single_language`` rows:
each language's column comes from its own run, and averages are means over
those runs (value and bounds alike).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pandas as pd

from ccrk.layout import OBJECTIVE_LABELS, OBJECTIVES
from ccrk.report.paper import COLUMNS, SOURCE, load_table1
from ccrk.report.runs import Results, Run
from ccrk.report.table import (
    DATASET_NAMES,
    EMPTY,
    Stat,
    Table,
    by_group,
    common_notes,
    fmt_ci,
    mean_stat,
    revisions,
    seed_mean,
)

PAPER_SETTINGS: tuple[str, ...] = ("zero_shot", "few_shot_or_single_language", "all_languages")


@dataclass(frozen=True)
class Column:
    """A Table 1 column: ``kind`` is ``r1`` (average R@1 in ``direction``), ``mR`` (of ``language``),
    ``mR_avg``, or ``mrv`` (over ``mrv_languages``; ``None``: whichever languages the run used)."""

    id: str
    dataset: str
    header: str
    kind: str
    direction: str | None = None
    language: str | None = None
    mrv_languages: tuple[str, ...] | None = None


def table1_columns(datasets: Sequence[str]) -> list[Column]:
    cols = []
    for cid, (dataset, metric, lang) in COLUMNS.items():
        if dataset not in datasets:
            continue
        name = DATASET_NAMES[dataset]
        if metric in ("t2i_r1", "i2t_r1"):
            d = metric[:3]
            cols.append(Column(cid, dataset, f"{name} {'IR' if d == 't2i' else 'TR'} R@1", "r1", direction=d))
        elif metric == "mR":
            cols.append(Column(cid, dataset, f"{name} mR {lang}", "mR", language=lang))
        elif metric == "mrv":
            langs = tuple(lang.split(","))
            cols.append(Column(cid, dataset, f"{name} MRV{len(langs)}", "mrv", mrv_languages=langs))
        else:  # pragma: no cover - COLUMNS is fixed
            raise AssertionError(metric)
    if "synth" in datasets:
        cols += [
            Column("synth_ir_r1", "synth", "synth IR R@1", "r1", direction="t2i"),
            Column("synth_tr_r1", "synth", "synth TR R@1", "r1", direction="i2t"),
            Column("synth_mr", "synth", "synth mR avg", "mR_avg"),
            Column("synth_mrv", "synth", "synth MRV", "mrv"),
        ]
    return cols


def _mrv_matches(run: Run, langs: tuple[str, ...] | None) -> bool:
    return bool(run.mrv_languages) and (langs is None or sorted(run.mrv_languages) == sorted(langs))


def _cell_of_seed(col: Column, runs: list[Run]) -> Stat | None:
    """One seed's value of ``col`` from its runs (one, or one a language for per-language settings)."""
    if runs[0].setting.per_language:
        if col.kind == "r1":
            return mean_stat([r.stat("per_language", r.setting.language, col.direction, "R@1") for r in runs])
        if col.kind == "mR_avg":
            return mean_stat([r.stat("per_language", r.setting.language, "mR") for r in runs])
        if col.kind == "mR":
            own = [r for r in runs if r.setting.language == col.language]
            return own[0].stat("per_language", col.language, "mR") if own else None
        with_mrv = [r.stat("mrv", "mean") for r in runs if _mrv_matches(r, col.mrv_languages)]
        return mean_stat(with_mrv) if with_mrv else None
    (run,) = runs
    if col.kind == "r1":
        return run.stat("average", col.direction, "R@1")
    if col.kind == "mR_avg":
        return run.stat("average", "mR")
    if col.kind == "mR":
        return run.stat("per_language", col.language, "mR") if col.language in run.languages else None
    return run.stat("mrv", "mean") if _mrv_matches(run, col.mrv_languages) else None


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
    multi = any(len(g) > 1 for g in by_group(results.runs).values())
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
                row["reference"] = f"ccrk {revisions(all_runs)}"
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
    notes += common_notes(results, multi)
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
    mrv_note = {c.dataset for c in cols if c.kind == "mrv" and c.mrv_languages is not None}
    for ds in sorted(mrv_note):
        langs = next(c.mrv_languages for c in cols if c.dataset == ds and c.kind == "mrv")
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
