"""Recall@K and its spread across languages.

Recall is reported in percent, as the paper's tables are. The spread across
languages is the dataset-level "consistency" the paper's first problem is
about: a model can have a good mean recall and still serve some languages far
worse than others.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ccrk.metrics._arrays import ArrayLike, to_numpy


def _ranks_vector(ranks: ArrayLike, name: str) -> np.ndarray:
    r = to_numpy(ranks, name)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of ranks, got shape {r.shape}")
    if r.dtype.kind == "f" and np.isnan(r).any():
        raise ValueError(f"{name} contains NaN (first at {int(np.flatnonzero(np.isnan(r))[0])})")
    neg = np.flatnonzero(r < 0)
    if neg.size:
        raise ValueError(f"{name}[{int(neg[0])}] = {r[neg[0]]} is negative; ranks are 0-based counts")
    return r


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def recall_at_k(ranks: ArrayLike, k: int) -> float:
    """Percentage of queries whose true candidate has 0-based rank below ``k``."""
    r = _ranks_vector(ranks, "ranks")
    return float(100.0 * np.count_nonzero(r < _check_k(k)) / r.size)


def mean_recall(ranks_t2i: ArrayLike, ranks_i2t: ArrayLike, ks: Iterable[int] = (1, 5, 10)) -> float:
    """Mean of R@k for every ``k`` in ``ks`` over both directions: the paper's Multi30K/COCO "mR"."""
    ks = tuple(ks)
    if not ks:
        raise ValueError("ks must name at least one k")
    t2i = _ranks_vector(ranks_t2i, "ranks_t2i")
    i2t = _ranks_vector(ranks_i2t, "ranks_i2t")
    values = [recall_at_k(r, k) for r in (t2i, i2t) for k in ks]
    return float(np.mean(values))


def recall_spread(recalls: Mapping[str, float]) -> dict[str, float]:
    """Across-language spread of one recall: ``max_minus_min`` and population ``std`` (ddof=0)."""
    if not recalls:
        raise ValueError("recalls must hold at least one language")
    values = np.array([float(v) for v in recalls.values()], dtype=np.float64)
    bad = [lang for lang, v in zip(recalls, values) if not np.isfinite(v)]
    if bad:
        raise ValueError(f"recall for language {bad[0]!r} is not finite")
    return {"max_minus_min": float(values.max() - values.min()), "std": float(values.std())}
