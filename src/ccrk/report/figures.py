"""The paper's figures from evaluation runs and pre-training logs, as PNG and PDF.

- ``recall_per_language``: R@1 per test language, one bar per objective with
  its bootstrap CI, one panel per direction (a row per dataset and setting).
- ``rank_std``: distribution over test images of the std of an image's rank
  across the MRV languages (the per-instance quantity MRV averages), per
  objective, from ``ranks.npz`` via :mod:`ccrk.metrics`.
- ``rank_scatter``: each test image's text-to-image rank in English against
  its rank in the MRV language contributing most rank variance, log-log,
  one panel per objective.
- ``loss_curves``: pre-training loss (total and each term) against step,
  per objective, every seed a thin line (and their mean a thick one).
- ``attribute_preference`` (only with ``ccrk attributes`` outputs): how
  often a caption scores higher with its own image than with its
  near-duplicate partner, per differing attribute and objective, pooled over
  languages, the mean over seeds with interval bars; the contrastive
  similarity (ITC) and the matching head (ITM) side by side, chance dashed.
- ``attribute_preference_per_language``: the same rates per language x
  attribute as heat maps, one per objective and score.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg
canvas (no pyplot state, no display needed) and saved without time stamps,
so the same inputs give the same files.
"""
from __future__ import annotations

import math
import os
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ccrk.atomic import atomic_open
from ccrk.evaluation.rankset import RankSet
from ccrk.layout import ATTRIBUTE_FIGURES, DATASETS, FIGURES, LEARNING_FIGURES, OBJECTIVE_LABELS, OBJECTIVES
from ccrk.metrics import per_instance_rank_std
from ccrk.report.attribute_runs import AttributeRun
from ccrk.report.logs import PretrainLog
from ccrk.report.runs import DIRECTION_LABELS, DIRECTIONS, Results, Run
from ccrk.report.table import DATASET_NAMES, seed_mean
from ccrk.report.figure_style import (
    COLORS,
    GROUP_ORDER,
    ci_level,
    figure_style,
    legend_handles,
    new_figure,
    seeds_note,
    setting_label,
)
from ccrk.report.attribute_figures import attribute_figure, attribute_language_figure
from ccrk.report.training_figures import learning_figure, loss_figure

FORMATS: tuple[str, ...] = ("png", "pdf")

# -- (a) recall per language ---------------------------------------------------




def _group_key(dataset: str, group: str) -> tuple[int, int, str]:
    return (DATASETS.index(dataset), GROUP_ORDER.index(group.split(".")[0]), group)


def recall_figure(results: Results) -> Figure:
    stats: dict[tuple[str, str], dict[tuple[str, str, str], list[dict[str, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    langs: dict[tuple[str, str], dict[str, None]] = defaultdict(dict)
    seeds: dict[tuple[str, str], set[int]] = defaultdict(set)
    for r in results.runs:
        key = (r.dataset, r.setting.group)
        seeds[key].add(r.seed)
        for lang in [r.setting.language] if r.setting.per_language else r.languages:
            langs[key][lang] = None
            for d in DIRECTIONS:
                stats[key][r.objective, lang, d].append(r.stat("per_language", lang, d, "R@1"))
    keys = sorted(stats, key=lambda k: _group_key(*k))
    n_lang = max(len(langs[k]) for k in keys)
    width = min(18.0, max(9.0, 2 * (1.0 + 0.28 * n_lang * (1 + len(results.objectives)))))
    fig = new_figure(figsize=(width, 1.0 + 3.5 * len(keys)), layout="constrained")
    axes = fig.subplots(len(keys), 2, squeeze=False)
    for row, key in enumerate(keys):
        languages = list(langs[key])
        objectives = [o for o in OBJECTIVES if any(k[0] == o for k in stats[key])]
        bar = 0.8 / len(objectives)
        x = np.arange(len(languages))
        top = 0.0
        for col, d in enumerate(DIRECTIONS):
            ax = axes[row, col]
            for n, o in enumerate(objectives):
                present = [i for i, lang in enumerate(languages) if stats[key].get((o, lang, d))]
                cells = [seed_mean(stats[key][o, languages[i], d]) for i in present]
                v = np.array([c["value"] for c in cells])
                lo = np.array([c["low"] for c in cells])
                hi = np.array([c["high"] for c in cells])
                top = max(top, float(hi.max()))
                ax.bar(x[present] + (n - (len(objectives) - 1) / 2) * bar, v, bar * 0.92, color=COLORS[o],
                       yerr=np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)]),
                       error_kw={"elinewidth": 0.9, "capsize": 2, "ecolor": "0.2"}, label=OBJECTIVE_LABELS[o])
            ax.set_xticks(x, languages)
            pad = max(0.0, (4 - len(languages)) / 2)  # a few languages: narrow bars, not wide ones
            ax.set_xlim(-0.6 - pad, len(languages) - 0.4 + pad)
            ax.set_xlabel("test language")
            ax.set_ylabel("R@1 (%)")
            ax.set_title(f"{DATASET_NAMES[key[0]]}, {setting_label(key[1])} ({seeds_note(seeds[key])})\n"
                         f"{DIRECTION_LABELS[d]}")
            ax.grid(axis="x", visible=False)
        for col in range(2):
            axes[row, col].set_ylim(0, max(top * 1.08, 1.0))
    fig.legend(handles=legend_handles(results.objectives), loc="outside lower center",
               ncols=len(results.objectives))
    fig.suptitle(f"Recall@1 per test language (error bars: {ci_level(results)} over test images)")
    return fig


# -- ranks ---------------------------------------------------------------------


class _Ranks:
    """``ranks.npz`` of each run, loaded once."""

    def __init__(self) -> None:
        self._cache: dict[Path, RankSet] = {}

    def __call__(self, run: Run) -> RankSet:
        if run.ranks_path not in self._cache:
            self._cache[run.ranks_path] = run.rankset()
        return self._cache[run.ranks_path]


def _mrv_groups(results: Results) -> dict[tuple[str, str], dict[str, list[Run]]]:
    """(dataset, setting) -> objective -> runs (seeds in order) of the runs that computed MRV."""
    out: dict[tuple[str, str], dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for r in results.runs:
        if len(r.mrv_languages) >= 2:
            out[r.dataset, r.setting.name][r.objective].append(r)
    return out


def _no_mrv(fig: Figure, what: str) -> Figure:
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, f"No run computed MRV, so there is no {what} to show.\n"
            "(MRV needs a run tested on 2+ languages with --mrv-languages.)", ha="center", va="center")
    return fig


_STD_TICKS = (0, 0.5, 1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000, 2000, 3000, 5000, 10000)


def rank_std_figure(results: Results, ranks: _Ranks) -> Figure:
    groups = _mrv_groups(results)
    if not groups:
        return _no_mrv(new_figure(figsize=(8, 3), layout="constrained"), "rank-std distribution")
    fig = new_figure(figsize=(11, 0.8 + 3.6 * len(groups)), layout="constrained")
    axes = fig.subplots(len(groups), 2, squeeze=False)
    for row, ((dataset, setting), by_obj) in enumerate(groups.items()):
        langs = by_obj[next(iter(by_obj))][0].mrv_languages
        for col, d in enumerate(DIRECTIONS):
            ax = axes[row, col]
            values = {}
            for o in OBJECTIVES:
                if o in by_obj:
                    values[o] = np.concatenate([per_instance_rank_std(ranks(r).mrv_ranks(d)) for r in by_obj[o]])
            hi = max(float(v.max()) for v in values.values())
            # ranks are heavy-tailed: linear below 1 rank, logarithmic above
            edges = np.concatenate([[0.0, 0.25, 0.5, 0.75], np.geomspace(1.0, max(hi, 2.0) * 1.001, 28)])
            handles = []
            for o, v in values.items():
                sns.histplot(x=v, bins=edges, stat="probability", element="step", fill=True, alpha=0.12,
                             linewidth=1.6, color=COLORS[o], ax=ax)
                mean = float(v.mean())
                ax.axvline(mean, color=COLORS[o], linestyle="--", linewidth=1.3)
                handles.append(Line2D([], [], color=COLORS[o], linewidth=1.6,
                                      label=f"{OBJECTIVE_LABELS[o]} (MRV {mean:.2f})"))
            handles.append(Line2D([], [], color="0.3", linestyle="--", linewidth=1.3, label="MRV = mean (dashed)"))
            ax.legend(handles=handles, loc="best")
            ax.set_xscale("symlog", linthresh=1.0, linscale=0.4)
            ax.set_xlim(0, edges[-1])
            ticks = [t for t in _STD_TICKS if t <= edges[-1]]
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_xlabel(f"std of the image's rank across {','.join(langs)} (log scale above 1)")
            ax.set_ylabel("fraction of test images")
            n_img = next(iter(by_obj.values()))[0].metrics.get("n_images", "?")
            seeds = {r.seed for runs in by_obj.values() for r in runs}
            pooled = f"pooled over {len(seeds)} seeds" if len(seeds) > 1 else f"seed {next(iter(seeds))}"
            ax.set_title(f"{DATASET_NAMES[dataset]}, {setting_label(setting)} ({n_img} images, {pooled})\n"
                         f"{DIRECTION_LABELS[d]}")
    fig.suptitle("How differently each test image is ranked across languages (lower is more consistent)")
    return fig


def mrv_contributions(matrix: np.ndarray) -> np.ndarray:
    """``[L]``: each language's mean squared deviation from the image's mean rank, its share of the rank variance."""
    m = np.asarray(matrix, dtype=np.float64)
    return ((m - m.mean(axis=0)) ** 2).mean(axis=1)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def _plain_log_ticks(axis: Any) -> None:
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:g}"))


def rank_scatter_figure(results: Results, ranks: _Ranks) -> Figure:
    groups = _mrv_groups(results)
    if not groups:
        return _no_mrv(new_figure(figsize=(8, 3), layout="constrained"), "rank scatter")
    ncols = max(len(by_obj) for by_obj in groups.values())
    width = 0.8 + 4.0 * ncols
    fig = new_figure(figsize=(width, 1.0 + 4.4 * len(groups)), layout="constrained")
    grid = fig.subplots(len(groups), ncols, squeeze=False)
    for axes, ((dataset, setting), by_obj) in zip(grid, groups.items()):
        first = {o: by_obj[o][0] for o in OBJECTIVES if o in by_obj}  # the lowest seed of each objective
        seeds = sorted({r.seed for r in first.values()})
        langs = next(iter(first.values())).mrv_languages
        ref = "en" if "en" in langs else langs[0]
        mats = {o: ranks(r).mrv_ranks("t2i") for o, r in first.items()}
        share = sum(mrv_contributions(m) for m in mats.values())
        other = max((lang for lang in langs if lang != ref), key=lambda lang: share[langs.index(lang)])
        n_images = max(m.shape[1] for m in mats.values())
        lim = (0.7, n_images * 1.3)
        for col, (ax, o) in enumerate(zip(axes, mats)):
            x, y = mats[o][langs.index(ref)] + 1, mats[o][langs.index(other)] + 1
            pairs, counts = np.unique(np.stack([x, y], axis=1), axis=0, return_counts=True)
            ax.plot(lim, lim, color="0.5", linewidth=0.9, linestyle="--", zorder=1)
            ax.scatter(pairs[:, 0], pairs[:, 1], s=10 * counts, alpha=0.5, color=COLORS[o], linewidths=0,
                       rasterized=True, zorder=2)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(*lim)
            ax.set_ylim(*lim)
            ax.set_box_aspect(1)
            _plain_log_ticks(ax.xaxis)
            _plain_log_ticks(ax.yaxis)
            rho = _spearman(x, y)
            ax.set_title(f"{OBJECTIVE_LABELS[o]}: {ref} vs {other}\n"
                         f"Spearman ρ = {rho:.2f}, same rank for {100 * np.mean(x == y):.0f}%", fontsize="medium")
            ax.set_xlabel(f"rank + 1, {ref} caption")
            row_label = f"{DATASET_NAMES[dataset]}, {setting_label(setting)}, seed {','.join(map(str, seeds))}\n"
            ax.set_ylabel((row_label if col == 0 else "") + f"rank + 1, {other} caption")
        for ax in axes[len(mats):]:
            ax.axis("off")
    text = ("Text→image rank of each test image queried in English (else the first MRV language) and in the MRV "
            "language adding the most rank variance (log-log; marker area ∝ images; dashed: same rank)")
    fig.suptitle("\n".join(textwrap.wrap(text, width=int(8.5 * width))))
    return fig


# -- all of it -----------------------------------------------------------------


def build_figures(
    results: Results, logs: Sequence[PretrainLog], attributes: Sequence[AttributeRun] = ()
) -> dict[str, Figure]:
    ranks = _Ranks()
    with figure_style():
        figures = {
            "recall_per_language": recall_figure(results),
            "rank_std": rank_std_figure(results, ranks),
            "rank_scatter": rank_scatter_figure(results, ranks),
            "loss_curves": loss_figure(logs),
        }
        if any(log.validation for log in logs):
            figures["learning_curves"] = learning_figure(logs)
        if attributes:
            figures["attribute_preference"] = attribute_figure(attributes)
            figures["attribute_preference_per_language"] = attribute_language_figure(attributes)
        return figures


def save_figure(fig: Figure, out_dir: str | os.PathLike[str], name: str, dpi: int = 150) -> list[Path]:
    """``name.png`` and ``name.pdf``, each written atomically and without a time stamp.

    The layout is solved once, for the first format, and kept for the others:
    constrained layout measures every tick label again at each ``savefig``,
    which was a third of ``ccrk figures``' time.
    """
    paths = []
    for ext in FORMATS:
        path = Path(out_dir) / f"{name}.{ext}"
        metadata = {"CreationDate": None} if ext == "pdf" else {}
        with atomic_open(path, "wb") as handle:
            fig.savefig(handle, format=ext, dpi=dpi, metadata=metadata)
        fig.set_layout_engine("none")
        paths.append(path)
    return paths


def write_figures(
    results: Results,
    logs: Sequence[PretrainLog],
    out_dir: str | os.PathLike[str],
    dpi: int = 150,
    attributes: Sequence[AttributeRun] = (),
) -> list[Path]:
    """Draw every figure (all before the first file is written), then save each as PNG and PDF.

    The :data:`ATTRIBUTE_FIGURES` are drawn only when ``attributes`` (``ccrk attributes`` outputs) are given,
    the :data:`LEARNING_FIGURES` only when the pre-training runs logged validation.
    """
    figures = build_figures(results, logs, attributes)
    written = []
    with figure_style():
        for name in (*FIGURES, *LEARNING_FIGURES, *ATTRIBUTE_FIGURES):
            if name in figures:
                written += save_figure(figures[name], out_dir, name, dpi=dpi)
    return written
