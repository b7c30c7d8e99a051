"""The look every figure shares: one palette per objective, the seaborn style, labels and legends.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg
canvas (no pyplot state, no display needed).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import matplotlib
import matplotlib.ticker
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ccrk.layout import OBJECTIVE_LABELS
from ccrk.report.runs import Results


def new_figure(**kwargs: Any) -> Figure:
    """A figure on its own Agg canvas: no pyplot, no global backend switch, no display needed."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


PALETTE = sns.color_palette("colorblind")
COLORS: dict[str, Any] = {"one_to_k": PALETTE[3], "cross_lingual": PALETTE[0], "cross_modal": PALETTE[2]}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    rc = {
        **sns.axes_style("whitegrid"),
        **sns.plotting_context("paper", font_scale=1.15),
        "axes.titleweight": "bold",
        "figure.titlesize": "large",
        "legend.frameon": False,
        "pdf.fonttype": 42,  # TrueType: text stays text in the PDF
        "svg.hashsalt": "ccrk",
    }
    with matplotlib.rc_context(rc):
        yield


def setting_label(group: str) -> str:
    if group.startswith("few_shot."):
        return f"few-shot ({group.split('.')[1]} shots)"
    return group.replace("_", " ")


def ci_level(results: Results) -> str:
    alphas = results.alphas
    return f"{100 * (1 - alphas[0]):g}% bootstrap CI" if len(alphas) == 1 else "bootstrap CI"


def legend_handles(objectives: Sequence[str]) -> list[Patch]:
    return [Patch(color=COLORS[o], label=OBJECTIVE_LABELS[o]) for o in objectives]


GROUP_ORDER = ("zero_shot", "all_languages", "single_language", "few_shot")


def seeds_note(seeds: set[int]) -> str:
    return f"mean of {len(seeds)} seeds" if len(seeds) > 1 else f"seed {next(iter(seeds))}"
