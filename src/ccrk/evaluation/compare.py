"""Paired comparison of two evaluation runs from their saved ranks.

Both runs must rank the same captions of the same images; the difference of
each metric (A - B) is bootstrapped over images with the same resamples for
both runs (:func:`ccrk.metrics.paired_bootstrap`), which cancels the
between-image variance the runs share and gives far tighter intervals than
two independent ones.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ccrk.evaluation.rankset import RankSet
from ccrk.evaluation.summary import metrics_of
from ccrk.layout import RANKS_FILE
from ccrk.metrics import paired_bootstrap

FORMAT = "ccrk.compare/1"


def load_run(run: str | os.PathLike[str]) -> RankSet:
    """The rank set of a run directory (or of a ``ranks.npz`` given directly)."""
    path = Path(run)
    if path.is_dir():
        path = path / RANKS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {run} is not a ccrk evaluate run directory")
    return RankSet.load(path)


def check_comparable(a: RankSet, b: RankSet, names: tuple[str, str] = ("A", "B")) -> None:
    """Refuse runs that did not rank the same captions of the same images, galleries and languages."""
    na, nb = names
    if a.image_ids != b.image_ids:
        if len(a.image_ids) != len(b.image_ids):
            raise ValueError(
                f"runs rank different test sets: {na} has {len(a.image_ids)} images, {nb} {len(b.image_ids)}"
            )
        i = next(j for j, (x, y) in enumerate(zip(a.image_ids, b.image_ids)) if x != y)
        raise ValueError(
            f"runs rank different test sets: image {i} is {a.image_ids[i]!r} in {na}, {b.image_ids[i]!r} in {nb}"
        )
    if a.folds != b.folds:
        raise ValueError(f"runs rank in galleries of different sizes: {na} in {a.folds} fold(s), {nb} in {b.folds}")
    if a.languages != b.languages:
        raise ValueError(f"runs evaluate different languages: {na} {a.languages}, {nb} {b.languages}")
    for lang in a.languages:
        if not np.array_equal(a.txt2img[lang], b.txt2img[lang]):
            raise ValueError(f"runs rank different {lang!r} captions (caption-to-image indices differ)")
    if a.mrv_languages != b.mrv_languages:
        raise ValueError(
            f"runs computed MRV over different languages: {na} {a.mrv_languages}, {nb} {b.mrv_languages}"
        )


def compare_ranksets(
    a: RankSet, b: RankSet, n_resamples: int = 1000, alpha: float = 0.05, seed: int = 0
) -> list[dict[str, Any]]:
    """One entry a metric (R@1 per language and direction and averaged, mR, MRV): values, A - B, CI, p."""
    check_comparable(a, b)
    rows = []
    for ma, mb in zip(metrics_of(a, compare=True), metrics_of(b, compare=True), strict=True):
        if ma.key != mb.key:  # pragma: no cover - same languages give the same metric list
            raise AssertionError(f"metric lists differ: {ma.key} vs {mb.key}")
        result = paired_bootstrap(
            ma.statistic, ma.rows, mb.rows, n_resamples=n_resamples, alpha=alpha, seed=seed, vectorized=True
        )
        rows.append({"metric": ma.label, "key": list(ma.key), "a": ma.value(), "b": mb.value(), **result})
    return rows


def compare_runs(
    run_a: str | os.PathLike[str],
    run_b: str | os.PathLike[str],
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """The JSON document ``ccrk compare`` writes."""
    a, b = load_run(run_a), load_run(run_b)
    try:
        check_comparable(a, b, names=(str(run_a), str(run_b)))
    except ValueError as err:
        raise ValueError(f"cannot compare {run_a} with {run_b}: {err}") from err
    return {
        "format": FORMAT,
        "run_a": str(run_a),
        "run_b": str(run_b),
        "languages": list(a.languages),
        "mrv_languages": list(a.mrv_languages),
        "n_images": a.n_images,
        "bootstrap": {"n_resamples": n_resamples, "alpha": alpha, "seed": seed, "unit": "image", "paired": True},
        "metrics": compare_ranksets(a, b, n_resamples=n_resamples, alpha=alpha, seed=seed),
    }


def format_comparison(doc: dict[str, Any]) -> str:
    """A fixed-width table: metric, A, B, A - B, CI, p."""
    level = round(100 * (1 - doc["bootstrap"]["alpha"]))
    head = f"{'metric':<16} {'A':>8} {'B':>8} {'A-B':>8}  {str(level) + '% CI':<19} {'p':>6}"
    lines = [f"A = {doc['run_a']}", f"B = {doc['run_b']}", "", head, "-" * len(head)]
    for row in doc["metrics"]:
        ci = f"[{row['low']:+.2f}, {row['high']:+.2f}]"
        lines.append(
            f"{row['metric']:<16} {row['a']:>8.2f} {row['b']:>8.2f} {row['diff']:>+8.2f}  "
            f"{ci:<19} {row['p_value']:>6.3f}"
        )
    lines.append("")
    lines.append(
        f"paired bootstrap over {doc['n_images']} images, {doc['bootstrap']['n_resamples']} resamples; "
        "recall in %, MRV in ranks (lower is better)"
    )
    return "\n".join(lines)
