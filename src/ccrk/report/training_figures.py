"""Figures from the pre-training logs: the loss terms, and the validation learning curves."""
from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ccrk.layout import OBJECTIVE_LABELS, OBJECTIVES
from ccrk.report.logs import PretrainLog
from ccrk.report.figure_style import COLORS, new_figure

#: What the learning curves show, each a panel: validation value -> (title, y label).
VALIDATION_CURVES: dict[str, tuple[str, str]] = {
    "r1": ("validation R@1 (contrastive, both directions)", "R@1 (%)"),
    "mrv": ("validation MRV (rank std across languages; lower is more consistent)", "MRV (ranks)"),
    "itm_auc": ("matching head: AUC, own caption vs another image's", "AUC (0.5 = chance)"),
}
LOSS_TERMS: dict[str, str] = {
    "loss": "total loss",
    "loss_itc": "ITC (contrastive; differs per objective)",
    "loss_itm": "ITM (image-text matching)",
    "loss_mlm": "MLM (masked language modelling)",
}


def loss_figure(logs: Sequence[PretrainLog]) -> Figure:
    frames = []
    for log in logs:
        df = pd.DataFrame(log.records)
        df["objective"], df["seed"] = log.objective, log.seed
        frames.append(df)
    data = pd.concat(frames, ignore_index=True).sort_values(["objective", "seed", "step"], kind="stable")
    terms = [t for t in LOSS_TERMS if t in data.columns and data[t].notna().any()]
    objectives = [o for o in OBJECTIVES if o in set(data["objective"])]
    ncols = 2 if len(terms) > 1 else 1
    nrows = math.ceil(len(terms) / ncols)
    fig = new_figure(figsize=(5.6 * ncols, 0.9 + 3.5 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    multi = data.groupby("objective")["seed"].nunique().max() > 1
    for ax, term in zip(axes, terms):
        for o in objectives:
            sub = data[data["objective"] == o]
            for _, one in sub.groupby("seed"):
                ax.plot(one["step"], one[term], color=COLORS[o], linewidth=0.8 if multi else 1.6,
                        alpha=0.45 if multi else 1.0)
            if sub["seed"].nunique() > 1:
                wide = sub.pivot_table(index="step", columns="seed", values=term, aggfunc="last").dropna()
                ax.plot(wide.index, wide.mean(axis=1), color=COLORS[o], linewidth=2.2)
        ax.set_title(LOSS_TERMS[term])
        ax.set_xlabel("pre-training step")
        ax.set_ylabel("loss")
    for ax in axes[len(terms):]:
        ax.axis("off")
    handles: list[Any] = [Line2D([], [], color=COLORS[o], linewidth=2.2, label=OBJECTIVE_LABELS[o]) for o in objectives]
    if multi:
        handles += [Line2D([], [], color="0.3", linewidth=0.8, alpha=0.6, label="one seed"),
                    Line2D([], [], color="0.3", linewidth=2.2, label="mean over seeds")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    seeds = sorted(set(data["seed"]))
    fig.suptitle(f"Pre-training losses ({'seeds' if len(seeds) > 1 else 'seed'} {','.join(map(str, seeds))})")
    return fig


def _per_objective_curves(ax: Any, data: pd.DataFrame, value: str, objectives: Sequence[str], multi: bool) -> None:
    """Every seed a thin line, their mean a thick one, one colour an objective."""
    for o in objectives:
        sub = data[data["objective"] == o]
        for _, one in sub.groupby("seed"):
            ax.plot(one["step"], one[value], color=COLORS[o], linewidth=0.8 if multi else 1.6,
                    alpha=0.45 if multi else 1.0, marker="." if not multi else None)
        if sub["seed"].nunique() > 1:
            wide = sub.pivot_table(index="step", columns="seed", values=value, aggfunc="last").dropna()
            ax.plot(wide.index, wide.mean(axis=1), color=COLORS[o], linewidth=2.2)


def learning_figure(logs: Sequence[PretrainLog]) -> Figure:
    """Validation R@1, MRV and ITM AUC against pre-training step, per objective (``val.jsonl`` of each run)."""
    frames = []
    for log in logs:
        if log.validation:
            df = pd.DataFrame([{k: r.get(k) for k in ("step", *VALIDATION_CURVES)} for r in log.validation])
            df["objective"], df["seed"] = log.objective, log.seed
            frames.append(df)
    if not frames:
        raise ValueError("no pre-training run logged validation (ccrk pretrain --val-manifest): no learning curves")
    data = pd.concat(frames, ignore_index=True).sort_values(["objective", "seed", "step"], kind="stable")
    values = [v for v in VALIDATION_CURVES if data[v].notna().any()]
    objectives = [o for o in OBJECTIVES if o in set(data["objective"])]
    multi = data.groupby("objective")["seed"].nunique().max() > 1
    fig = new_figure(figsize=(5.2 * len(values), 4.4), layout="constrained")
    axes = fig.subplots(1, len(values), squeeze=False).ravel()
    for ax, value in zip(axes, values):
        _per_objective_curves(ax, data.astype({value: float}), value, objectives, multi)
        title, ylabel = VALIDATION_CURVES[value]
        ax.set_title("\n".join(textwrap.wrap(title, 40)))
        ax.set_xlabel("pre-training step")
        ax.set_ylabel(ylabel)
        if value == "itm_auc":
            ax.axhline(0.5, color="0.4", linestyle="--", linewidth=1)
    handles: list[Any] = [Line2D([], [], color=COLORS[o], linewidth=2.2, label=OBJECTIVE_LABELS[o]) for o in objectives]
    if multi:
        handles += [Line2D([], [], color="0.3", linewidth=0.8, alpha=0.6, label="one seed"),
                    Line2D([], [], color="0.3", linewidth=2.2, label="mean over seeds")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    fig.suptitle("Learning curves: validation after every pre-training epoch (step 0: the initial weights)")
    return fig
