"""Figures of the near-duplicate diagnostic: how often each objective prefers its own image, per attribute."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ccrk.layout import DATASETS, OBJECTIVE_LABELS, OBJECTIVES
from ccrk.report.attribute_runs import AttributeRun
from ccrk.report.attributes import ALL, ATTRIBUTES, SCORES
from ccrk.report.table import DATASET_NAMES, seed_mean
from ccrk.report.figure_style import (
    COLORS,
    GROUP_ORDER,
    legend_handles,
    new_figure,
    seeds_note,
    setting_label,
)


_SCORE_LABELS = {"itc": "contrastive similarity (ITC)", "itm": "matching head (ITM)"}


def _attribute_groups(runs: Sequence[AttributeRun]) -> dict[tuple[str, str], dict[str, list[AttributeRun]]]:
    """(dataset, setting) -> objective -> runs (seeds in order), settings in the other figures' order."""
    out: dict[tuple[str, str], dict[str, list[AttributeRun]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        out[r.dataset, r.setting.name][r.objective].append(r)
    order = sorted(out, key=lambda k: (DATASETS.index(k[0]) if k[0] in DATASETS else len(DATASETS),
                                       GROUP_ORDER.index(k[1].split(".")[0]), k[1]))
    return {k: {o: out[k][o] for o in OBJECTIVES if o in out[k]} for k in order}


def _seed_cell(
    runs: Sequence[AttributeRun], language: str | None, attribute: str, score: str
) -> dict[str, float] | None:
    """Seed mean of a cell's value and bounds (as the tables average seeds); None where no seed has a caption."""
    stats = [r.cell(language, attribute)[score] for r in runs
             if language is None or language in r.doc["per_language"]]
    stats = [s for s in stats if s is not None]
    return seed_mean(stats) if stats else None


def _interval_note(runs: Sequence[AttributeRun]) -> str:
    alphas = sorted({float(r.doc["interval"]["alpha"]) for r in runs})
    level = f"{100 * (1 - alphas[0]):g}% " if len(alphas) == 1 else ""
    return f"{level}bootstrap CI over near-duplicate pairs, mean over seeds"


def attribute_figure(runs: Sequence[AttributeRun]) -> Figure:
    groups = _attribute_groups(runs)
    names = [*ATTRIBUTES, ALL]
    fig = new_figure(figsize=(12.0, 1.2 + 3.6 * len(groups)), layout="constrained")
    axes = fig.subplots(len(groups), len(SCORES), squeeze=False, sharey=True)
    for row, ((dataset, setting), by_obj) in enumerate(groups.items()):
        objectives = list(by_obj)
        bar = 0.8 / len(objectives)
        x = np.arange(len(names))
        first = next(iter(by_obj.values()))[0]
        n = [first.cell(None, name)["n"] for name in names]
        seeds = {r.seed for rs in by_obj.values() for r in rs}
        languages = list(dict.fromkeys(lang for rs in by_obj.values() for r in rs for lang in r.doc["languages"]))
        for col, score in enumerate(SCORES):
            ax = axes[row, col]
            for k, o in enumerate(objectives):
                cells = [_seed_cell(by_obj[o], None, name, score) for name in names]
                present = [i for i, c in enumerate(cells) if c is not None]
                v = np.array([cells[i]["value"] for i in present])
                lo = np.array([cells[i]["low"] for i in present])
                hi = np.array([cells[i]["high"] for i in present])
                ax.bar(x[present] + (k - (len(objectives) - 1) / 2) * bar, v, bar * 0.92, color=COLORS[o],
                       yerr=np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)]),
                       error_kw={"elinewidth": 0.9, "capsize": 2, "ecolor": "0.2"}, label=OBJECTIVE_LABELS[o])
            ax.axhline(0.5, color="0.25", linestyle="--", linewidth=1.1, zorder=0)
            ax.axvline(len(ATTRIBUTES) - 0.5, color="0.75", linewidth=0.8)
            ax.set_xticks(x, [f"{name}\n(n={c})" for name, c in zip(names, n)])
            ax.set_xlim(-0.6, len(names) - 0.4)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("attribute that differs from the near-duplicate (n: captions)")
            ax.set_ylabel("fraction preferring own image")
            ax.set_title(f"{DATASET_NAMES.get(dataset, dataset)}, {setting_label(setting)} "
                         f"({seeds_note(seeds)}; {','.join(languages)} pooled)\n{_SCORE_LABELS[score]}")
            ax.grid(axis="x", visible=False)
    handles: list[Any] = legend_handles([o for o in OBJECTIVES if any(r.objective == o for r in runs)])
    handles.append(Line2D([], [], color="0.25", linestyle="--", linewidth=1.1, label="chance (0.5)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    fig.suptitle("How often a caption scores its own image above the near-duplicate that differs in one attribute\n"
                 f"(error bars: {_interval_note(runs)})")
    return fig


def attribute_language_figure(runs: Sequence[AttributeRun]) -> Figure:
    groups = _attribute_groups(runs)
    ncols = max(len(by_obj) for by_obj in groups.values())
    rows = [(key, score) for key in groups for score in SCORES]
    n_lang = max(len(r.doc["languages"]) for r in runs)
    fig = new_figure(figsize=(0.8 + 4.6 * ncols, 1.0 + (0.9 + 0.32 * n_lang) * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    cmap = sns.color_palette("vlag_r", as_cmap=True)  # red below chance, white at 0.5, blue above
    image = None
    for (key, score), ax_row in zip(rows, axes):
        dataset, setting = key
        by_obj = groups[key]
        languages = list(dict.fromkeys(lang for rs in by_obj.values() for r in rs for lang in r.doc["languages"]))
        seeds = {r.seed for rs in by_obj.values() for r in rs}
        for col, (ax, o) in enumerate(zip(ax_row, by_obj)):
            columns = [*ATTRIBUTES, ALL]
            grid = np.full((len(languages), len(columns)), np.nan)
            for i, lang in enumerate(languages):
                for j, name in enumerate(columns):
                    cell = _seed_cell(by_obj[o], lang, name, score)
                    if cell is None:
                        continue
                    grid[i, j] = cell["value"]
                    off_chance = cell["low"] > 0.5 or cell["high"] < 0.5
                    ax.text(j, i, f"{cell['value']:.2f}" + ("*" if off_chance else ""), ha="center", va="center",
                            fontsize="small", color="white" if abs(cell["value"] - 0.5) > 0.35 else "black")
            image = ax.imshow(grid, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
            ax.axvline(len(ATTRIBUTES) - 0.5, color="white", linewidth=3)
            ax.set_xticks(np.arange(len(columns)), columns)
            ax.set_yticks(np.arange(len(languages)), languages)
            ax.grid(False)
            ax.set_title(f"{OBJECTIVE_LABELS[o]}, {score.upper()}", fontsize="medium")
            if col == 0:
                ax.set_ylabel(f"{DATASET_NAMES.get(dataset, dataset)}, {setting_label(setting)}\n"
                              f"({seeds_note(seeds)})\ncaption language")
        for ax in ax_row[len(by_obj):]:
            ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="prefers its own image (0.5 = chance)")
    fig.suptitle("Own image over its near-duplicate, per caption language and differing attribute (all: every "
                 "attribute)\n"
                 f"(* : the {_interval_note(runs)} excludes 0.5)")
    return fig
