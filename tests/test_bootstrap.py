"""ccrk.metrics.bootstrap: percentile intervals and paired differences over instances."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ccrk.metrics import bootstrap_ci, mean_rank_variance, paired_bootstrap, recall_at_k, resample_counts, sums_ci


def r1(ranks: np.ndarray) -> float:
    return recall_at_k(ranks, 1)


def r1_batched(ranks: np.ndarray) -> np.ndarray:
    return 100.0 * (ranks < 1).mean(axis=-1)


def mrv_batched(ranks: np.ndarray) -> np.ndarray:  # [B, L, N] -> [B]
    return ranks.std(axis=-2).mean(axis=-1)


def test_ci_contains_point_and_shrinks_with_more_instances() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (100, 400, 1600):
        ranks = rng.geometric(0.5, size=n) - 1
        point, low, high = bootstrap_ci(r1, ranks, n_resamples=300, seed=1)
        assert point == recall_at_k(ranks, 1)
        assert low <= point <= high
        assert low < high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] > 2 * widths[2]  # 16x the instances: about 4x narrower in theory


def test_ci_percentiles_of_resampled_statistic() -> None:
    rng = np.random.default_rng(1)
    ranks = rng.integers(0, 20, size=(4, 50))
    n_res, seed, alpha = 200, 7, 0.1
    idx = np.random.default_rng(seed).integers(0, 50, size=(n_res, 50))
    dist = np.array([mean_rank_variance(ranks[:, row]) for row in idx])
    point, low, high = bootstrap_ci(mean_rank_variance, ranks, n_resamples=n_res, alpha=alpha, seed=seed)
    assert point == mean_rank_variance(ranks)
    assert low == pytest.approx(np.quantile(dist, alpha / 2))
    assert high == pytest.approx(np.quantile(dist, 1 - alpha / 2))


def test_vectorized_equals_looped_and_seed_reproducible() -> None:
    rng = np.random.default_rng(2)
    ranks = rng.integers(0, 30, size=(3, 80))
    looped = bootstrap_ci(mean_rank_variance, ranks, n_resamples=150, seed=3)
    vec = bootstrap_ci(mrv_batched, ranks, n_resamples=150, seed=3, vectorized=True)
    np.testing.assert_allclose(vec, looped, rtol=1e-12)
    assert bootstrap_ci(mean_rank_variance, torch.from_numpy(ranks), n_resamples=150, seed=3) == looped
    assert bootstrap_ci(mean_rank_variance, ranks, n_resamples=150, seed=4) != looped


def test_several_arrays_resampled_together() -> None:
    # statistic over two aligned arrays: the resample must pick the same instances in both
    a = np.arange(60)
    point, low, high = bootstrap_ci(lambda x, y: float(np.max(np.abs(x - y))), a, a.copy(), n_resamples=50)
    assert (point, low, high) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_real_difference_and_identical_runs() -> None:
    rng = np.random.default_rng(4)
    a = rng.geometric(0.3, size=500) - 1
    b = a + (rng.random(500) < 0.3) * 3  # b ranks some instances worse: lower recall
    out = paired_bootstrap(r1, a, b, n_resamples=400, seed=0)
    assert out["diff"] == pytest.approx(r1(a) - r1(b))
    assert out["diff"] > 0 and out["low"] > 0 and out["low"] <= out["diff"] <= out["high"]
    assert out["p_value"] == pytest.approx(1 / 401)
    same = paired_bootstrap(r1, a, a.copy(), n_resamples=400, seed=0)
    assert same == {"diff": 0.0, "low": 0.0, "high": 0.0, "p_value": 1.0}
    vec = paired_bootstrap(r1_batched, [a], [b], n_resamples=400, seed=0, vectorized=True)
    assert vec == pytest.approx(out)


def test_paired_bootstrap_noise_is_not_significant() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 3, size=300)
    b = rng.permutation(a)  # same recall, different instances
    out = paired_bootstrap(r1, a, b, n_resamples=400, seed=1)
    assert out["diff"] == 0.0
    assert out["p_value"] > 0.5
    assert out["low"] < 0 < out["high"]


def test_sums_of_resampled_instances_as_one_matrix_product() -> None:
    """sums_ci makes bootstrap_ci's draws; integer rows (hit counts) give the same interval bit for bit."""
    rng = np.random.default_rng(3)
    n = 300
    hits = rng.integers(0, 3, n).astype(np.float64)  # captions of an image ranked first
    captions = np.full(n, 2.0)
    rows = np.stack([hits, captions])
    counts = resample_counts(n, 400, seed=5)
    assert counts.shape == (400, n) and np.all(counts.sum(axis=1) == n)

    def ratio(sums: np.ndarray) -> np.ndarray:
        return 100.0 * sums[:, 0] / sums[:, 1]

    looped = bootstrap_ci(lambda h, c: 100.0 * h.sum() / c.sum(), hits, captions, n_resamples=400, seed=5)
    assert sums_ci(ratio, rows, counts) == looped
    # Non-integer rows: the same up to the order of float sums.
    spread = rng.random(n)
    got = sums_ci(lambda s: s[:, 0] / n, spread[None], counts)
    want = bootstrap_ci(np.mean, spread, n_resamples=400, seed=5)
    assert np.allclose(got, want, rtol=1e-9, atol=0)
    with pytest.raises(ValueError, match="rows must be"):
        sums_ci(ratio, rows[:, :-1], counts)
    with pytest.raises(ValueError, match="non-finite"), np.errstate(divide="ignore", invalid="ignore"):
        sums_ci(ratio, np.stack([hits, np.zeros(n)]), counts)


def test_bootstrap_errors() -> None:
    with pytest.raises(ValueError, match=r"last axis.*\(3,\), \(4,\)"):
        bootstrap_ci(lambda x, y: 0.0, np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(r1, np.zeros(3, int), n_resamples=0)
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci(r1, np.zeros(3, int), alpha=1.5)
    with pytest.raises(ValueError, match="at least one array"):
        bootstrap_ci(r1)
    with pytest.raises(ValueError, match="one value per resample"):
        bootstrap_ci(lambda x: x.mean(), np.zeros(5), n_resamples=4, vectorized=True)
    with pytest.raises(ValueError, match="non-finite"):
        bootstrap_ci(lambda x: float("nan"), np.zeros(5), n_resamples=4)
    with pytest.raises(ValueError, match="a has 3, b has 4"):
        paired_bootstrap(r1, np.zeros(3, int), np.zeros(4, int))
