"""Every reported number as a statistic of per-image features, with bootstrap intervals.

The resampling unit is the test image (the instance): an image is drawn with
all its captions, in every language at once, which is the dependence the
paper's per-instance view (MRV) implies and the correct cluster bootstrap
when an image has several captions (Flickr30k's five English ones).

Each metric is a function of column sums over instances of a small
``[F, N]`` feature matrix, e.g. for Recall@k text-to-image in one language the
rows are "captions of image n ranked below k" and "captions of image n".
Recall is then a ratio of sums, which stays exact for any number of
captions per image, and every bootstrap resample's sums are one matrix
product with how often each image is drawn (:func:`ccrk.metrics.sums_ci`).
The same features serve the paired comparison of two runs
(:func:`ccrk.metrics.paired_bootstrap`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ccrk.evaluation.rankset import DIRECTIONS, RankSet
from ccrk.metrics import per_instance_rank_std, resample_counts, sums_ci

KS: tuple[int, ...] = (1, 5, 10)
#: MRV as the paper's public code computes it (per-instance population std).
MRV_KIND = "std"

Reducer = Callable[[np.ndarray, int], np.ndarray]


def _mean_ratio(sums: np.ndarray, n: int) -> np.ndarray:
    """Rows ``[hits_1..hits_m, den_1..den_m]``: mean over j of ``100 * hits_j / den_j``."""
    m = sums.shape[1] // 2
    return 100.0 * (sums[:, :m] / sums[:, m:]).mean(axis=1)


def _spread_max_min(sums: np.ndarray, n: int) -> np.ndarray:
    m = sums.shape[1] // 2
    r = 100.0 * sums[:, :m] / sums[:, m:]
    return r.max(axis=1) - r.min(axis=1)


def _spread_std(sums: np.ndarray, n: int) -> np.ndarray:
    m = sums.shape[1] // 2
    return (100.0 * sums[:, :m] / sums[:, m:]).std(axis=1)


def _masked_mean(sums: np.ndarray, n: int) -> np.ndarray:
    """Rows ``[value_1..value_m, mask_1..mask_m]``: mean over j of the mean of value_j where mask_j."""
    m = sums.shape[1] // 2
    return (sums[:, :m] / sums[:, m:]).mean(axis=1)


@dataclass(frozen=True)
class Metric:
    """One reported number: where it goes in ``metrics.json``, its features ``[F, N]`` and how they reduce."""

    key: tuple[str, ...]
    rows: np.ndarray
    reduce: Reducer

    def statistic(self, x: np.ndarray) -> np.ndarray:
        """Vectorised for ``ccrk.metrics.bootstrap``: ``x`` is ``[B, F, N]``, one value per resample."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.reduce(x.sum(axis=-1), x.shape[-1])

    def reduce_sums(self, sums: np.ndarray) -> np.ndarray:
        """The metric from ``[B, F]`` column sums (for :func:`ccrk.metrics.sums_ci`), one value per row."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.reduce(sums, self.rows.shape[-1])

    def value(self) -> float:
        return float(self.statistic(self.rows[None])[0])

    @property
    def label(self) -> str:
        """Short name for tables, e.g. ``R@1 t2i en``, ``mR avg``, ``MRV i2t``."""
        k = self.key
        if k[0] == "per_language":
            return f"{k[3]} {k[2]} {k[1]}" if len(k) == 4 else f"{k[2]} {k[1]}"
        if k[0] == "average":
            return f"{k[2]} {k[1]} avg" if len(k) == 3 else f"{k[1]} avg"
        if k[0] == "recall_spread":
            return f"spread {k[2]} {k[1]} {k[3]}"
        return f"MRV {k[1]}"


def recall_counts(rs: RankSet, lang: str, direction: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per image: captions (t2i) or 1 if the image is a query (i2t) ranked below ``k``, and the query count."""
    n = rs.n_images
    if direction == "t2i":
        owner = rs.txt2img[lang]
        hits = np.bincount(owner, weights=(rs.t2i[lang] < k), minlength=n)
        den = np.bincount(owner, minlength=n).astype(np.float64)
    elif direction == "i2t":
        ranks = rs.i2t[lang]
        hits = ((ranks >= 0) & (ranks < k)).astype(np.float64)
        den = (ranks >= 0).astype(np.float64)
    else:
        raise ValueError(f"direction must be 't2i' or 'i2t', got {direction!r}")
    return hits, den


def _ratio_rows(parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    return np.stack([h for h, _ in parts] + [d for _, d in parts])


def metrics_of(rs: RankSet, compare: bool = False) -> list[Metric]:
    """The metrics of ``metrics.json`` (``compare=False``) or of ``ccrk compare`` (R@1, mR, MRV)."""
    ks = (1,) if compare else KS
    counts = {
        (lang, d, k): recall_counts(rs, lang, d, k) for lang in rs.languages for d in DIRECTIONS for k in KS
    }
    out: list[Metric] = []
    for lang in rs.languages:
        for d in DIRECTIONS:
            for k in ks:
                out.append(Metric(("per_language", lang, d, f"R@{k}"), _ratio_rows([counts[lang, d, k]]), _mean_ratio))
        six = [counts[lang, d, k] for d in DIRECTIONS for k in KS]
        out.append(Metric(("per_language", lang, "mR"), _ratio_rows(six), _mean_ratio))
    for d in DIRECTIONS:
        for k in ks:
            per_lang = [counts[lang, d, k] for lang in rs.languages]
            out.append(Metric(("average", d, f"R@{k}"), _ratio_rows(per_lang), _mean_ratio))
    all_six = [counts[lang, d, k] for lang in rs.languages for d in DIRECTIONS for k in KS]
    out.append(Metric(("average", "mR"), _ratio_rows(all_six), _mean_ratio))
    if not compare:
        for d in DIRECTIONS:
            rows = _ratio_rows([counts[lang, d, 1] for lang in rs.languages])
            out.append(Metric(("recall_spread", d, "R@1", "max_minus_min"), rows, _spread_max_min))
            out.append(Metric(("recall_spread", d, "R@1", "std"), rows, _spread_std))
    if rs.mrv_languages:
        # Rows [std * complete, complete]: the mean over complete instances, resampled with the others.
        parts = {}
        for d in DIRECTIONS:
            table, complete = rs.mrv_table(d)
            std = np.zeros(rs.n_images)
            std[complete] = per_instance_rank_std(table[:, complete].astype(np.int64))
            parts[d] = (std, complete.astype(np.float64))
        for d in DIRECTIONS:
            out.append(Metric(("mrv", d), _ratio_rows([parts[d]]), _masked_mean))
        out.append(Metric(("mrv", "mean"), _ratio_rows([parts[d] for d in DIRECTIONS]), _masked_mean))
    return out


def _undefined(metric: Metric, err: ValueError) -> ValueError:
    return ValueError(
        f"{metric.label}: {err}; the language has too few images with captions for an image-level bootstrap "
        "(a resample can draw none of them)"
    )


def _put(tree: dict[str, Any], key: tuple[str, ...], value: Any) -> None:
    for part in key[:-1]:
        tree = tree.setdefault(part, {})
    tree[key[-1]] = value


def summarize(rs: RankSet, n_resamples: int = 1000, alpha: float = 0.05, seed: int = 0) -> dict[str, Any]:
    """Nested ``{"per_language", "average", "recall_spread", "mrv"}`` of ``{"value", "low", "high"}``.

    Every metric uses the same resamples of images (same ``seed`` and image
    count), so intervals of different metrics come from one bootstrap.
    """
    tree: dict[str, Any] = {}
    counts = resample_counts(rs.n_images, n_resamples, seed)
    for metric in metrics_of(rs):
        try:
            value, low, high = sums_ci(metric.reduce_sums, metric.rows, counts, alpha)
        except ValueError as err:
            raise _undefined(metric, err) from err
        _put(tree, metric.key, {"value": value, "low": low, "high": high})
    if rs.mrv_languages:
        excluded = rs.mrv_excluded()
        tree["mrv"] = {"languages": list(rs.mrv_languages), "kind": MRV_KIND,
                       "instances": rs.n_images - len(excluded), "excluded": excluded[:100],
                       "n_excluded": len(excluded), **tree["mrv"]}
    else:
        tree["mrv"] = None
    return tree
