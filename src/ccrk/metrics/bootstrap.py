"""Bootstrap confidence intervals over evaluation instances.

Retrieval metrics on 1,000-2,000 test instances move by a point or more from
sampling alone, so a reproduced number is only comparable to the paper's with
an interval. Instances are resampled with replacement along the last axis of
every array (axis 0 of a 1-D ``[N]`` array, axis -1 of ``[L, N]`` ranks), the
same resample for all arrays so that per-language rows stay aligned.

Resampling indices are drawn once as an ``[n_resamples, N]`` matrix. With
``vectorized=True`` the statistic receives a whole block of resamples (arrays
with a leading resample axis, ``[B, N]`` or ``[B, L, N]``) and must return
``[B]`` values, which avoids a Python call per resample.

A statistic of *sums over instances* needs no resampled copies at all:
:func:`resample_counts` turns the same draws into how often each instance
is drawn, and :func:`sums_ci` takes every resample's sums as one matrix
product (``counts @ rows.T``). Integer-valued rows (hit counts) give the
same sums, bit for bit, as summing the resampled copies.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ccrk.metrics._arrays import ArrayLike, is_tensor, to_numpy

Statistic = Callable[..., float | np.ndarray]

#: Bytes of resampled data materialised at once in vectorised mode.
BLOCK_BYTES = 256 * 2**20


def _prepare(arrays: Sequence[ArrayLike], what: str) -> tuple[list[np.ndarray], int]:
    if not arrays:
        raise ValueError(f"{what}: at least one array is needed")
    out = [to_numpy(a, f"{what}[{n}]") for n, a in enumerate(arrays)]
    for n, a in enumerate(out):
        if a.ndim == 0 or a.shape[-1] == 0:
            raise ValueError(f"{what}[{n}] needs instances on its last axis, got shape {a.shape}")
    sizes = {a.shape[-1] for a in out}
    if len(sizes) != 1:
        shapes = ", ".join(str(a.shape) for a in out)
        raise ValueError(f"{what}: arrays must share the instance count on their last axis, got shapes {shapes}")
    return out, sizes.pop()


def _check_options(n_resamples: int, alpha: float) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")


def _resample_indices(n_instances: int, n_resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n_instances, size=(n_resamples, n_instances))


def resample_counts(n_instances: int, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """``[n_resamples, N]`` float64: how often each instance is drawn, for the draws :func:`bootstrap_ci` makes."""
    _check_options(n_resamples, 0.05)
    index = _resample_indices(n_instances, n_resamples, seed)
    flat = index + n_instances * np.arange(n_resamples)[:, None]
    return np.bincount(flat.ravel(), minlength=n_resamples * n_instances).reshape(n_resamples, n_instances).astype(
        np.float64
    )


def sums_ci(
    reduce: Callable[[np.ndarray], np.ndarray], rows: np.ndarray, counts: np.ndarray, alpha: float = 0.05
) -> tuple[float, float, float]:
    """``(point, low, high)`` of ``reduce(sums)`` where ``sums`` are the column sums of ``rows`` ``[F, N]``.

    ``reduce`` maps ``[B, F]`` sums to ``[B]`` values; ``counts`` comes from
    :func:`resample_counts` (one per evaluation, shared by every metric).
    Equal to ``bootstrap_ci(lambda x: reduce(x.sum(-1)), rows, vectorized=True)``
    with the same seed, without materialising the ``[B, F, N]`` resamples.
    """
    _check_options(counts.shape[0], alpha)
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != counts.shape[1]:
        raise ValueError(f"rows must be [F, {counts.shape[1]}] (features x instances), got shape {rows.shape}")
    point = np.asarray(reduce(rows.sum(axis=-1)[None]), dtype=np.float64)
    values = np.asarray(reduce(counts @ rows.T), dtype=np.float64)
    if point.shape != (1,) or values.shape != (counts.shape[0],):
        raise ValueError(f"reduce must return one value per row of sums, got {point.shape} and {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("the statistic returned a non-finite value on a bootstrap resample")
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(point[0]), float(low), float(high)


def _distribution(statistic: Statistic, arrays: list[np.ndarray], index: np.ndarray, vectorized: bool) -> np.ndarray:
    """The statistic on every resample ``index[b]``, as float64 ``[n_resamples]``."""
    n_resamples = index.shape[0]
    if not vectorized:
        values = np.array(
            [float(statistic(*(np.take(a, row, axis=-1) for a in arrays))) for row in index], dtype=np.float64
        )
    else:
        per_resample = sum(a.size * a.itemsize for a in arrays)
        block = max(1, BLOCK_BYTES // per_resample)
        parts = []
        for start in range(0, n_resamples, block):
            rows = index[start : start + block]
            batch = [np.moveaxis(np.take(a, rows, axis=-1), -2, 0) for a in arrays]
            got = np.asarray(statistic(*batch), dtype=np.float64)
            if got.shape != (rows.shape[0],):
                raise ValueError(
                    f"a vectorized statistic must return one value per resample, shape ({rows.shape[0]},); "
                    f"got {got.shape}"
                )
            parts.append(got)
        values = np.concatenate(parts)
    if not np.all(np.isfinite(values)):
        raise ValueError("the statistic returned a non-finite value on a bootstrap resample")
    return values


def _point(statistic: Statistic, arrays: list[np.ndarray], vectorized: bool) -> float:
    if vectorized:
        got = np.asarray(statistic(*(a[None] for a in arrays)), dtype=np.float64)
        if got.shape != (1,):
            raise ValueError(f"a vectorized statistic must return one value per resample, shape (1,); got {got.shape}")
        return float(got[0])
    return float(statistic(*arrays))


def bootstrap_ci(
    statistic: Statistic,
    *arrays: ArrayLike,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    vectorized: bool = False,
) -> tuple[float, float, float]:
    """``(point, low, high)``: the statistic and its percentile ``1 - alpha`` interval."""
    _check_options(n_resamples, alpha)
    arrs, n = _prepare(arrays, "arrays")
    point = _point(statistic, arrs, vectorized)
    dist = _distribution(statistic, arrs, _resample_indices(n, n_resamples, seed), vectorized)
    low, high = np.quantile(dist, [alpha / 2, 1 - alpha / 2])
    return point, float(low), float(high)


def _as_group(arrays: ArrayLike | Sequence[ArrayLike]) -> Sequence[ArrayLike]:
    if isinstance(arrays, np.ndarray) or is_tensor(arrays):
        return (arrays,)
    return tuple(arrays)


def paired_bootstrap(
    statistic: Statistic,
    a_arrays: ArrayLike | Sequence[ArrayLike],
    b_arrays: ArrayLike | Sequence[ArrayLike],
    *,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    vectorized: bool = False,
) -> dict[str, float]:
    """Difference ``statistic(a) - statistic(b)`` of two runs on the same instances.

    Both runs see the same resampled instances, which removes the
    between-instance variance the runs share. Returns ``diff`` (on the full
    data), ``low``/``high`` (percentile interval of the resampled difference)
    and a two-sided ``p_value`` = ``2 * min(P(d <= 0), P(d >= 0))`` over the
    resampled differences, clipped to ``[1 / (n_resamples + 1), 1]`` because
    a finite bootstrap cannot show a smaller one. ``a_arrays``/``b_arrays``
    are one array or a sequence of arrays passed to ``statistic`` in order.
    """
    _check_options(n_resamples, alpha)
    a, n_a = _prepare(_as_group(a_arrays), "a_arrays")
    b, n_b = _prepare(_as_group(b_arrays), "b_arrays")
    if n_a != n_b:
        raise ValueError(f"paired runs must share instances: a has {n_a}, b has {n_b}")
    index = _resample_indices(n_a, n_resamples, seed)
    diff = _point(statistic, a, vectorized) - _point(statistic, b, vectorized)
    d = _distribution(statistic, a, index, vectorized) - _distribution(statistic, b, index, vectorized)
    low, high = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    p = 2.0 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0)))
    p = float(np.clip(p, 1.0 / (n_resamples + 1), 1.0))
    return {"diff": float(diff), "low": float(low), "high": float(high), "p_value": p}
