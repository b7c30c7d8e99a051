"""Mean Rank Variance (MRV): how differently one instance is ranked across languages.

As the paper's public code computes it (and as Table 1's magnitudes show),
"variance" is the population standard deviation (ddof=0) of an instance's
0-based rank over the L languages, averaged over instances; ``kind="var"``
gives the literal variance for comparison.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ccrk.metrics._arrays import ArrayLike, to_numpy


def _ranks_matrix(ranks: ArrayLike) -> np.ndarray:
    r = to_numpy(ranks, "ranks")
    if r.ndim != 2:
        raise ValueError(f"ranks must be 2-D [languages, instances], got shape {r.shape}")
    if r.shape[0] < 2:
        raise ValueError(f"MRV compares languages: ranks needs at least 2 rows, got shape {r.shape}")
    if r.shape[1] == 0:
        raise ValueError(f"ranks holds no instances, shape {r.shape}")
    if r.dtype.kind == "f" and np.isnan(r).any():
        lang, inst = (int(v) for v in np.argwhere(np.isnan(r))[0])
        raise ValueError(f"ranks contains NaN (language row {lang}, instance {inst})")
    return r.astype(np.float64, copy=False)


def per_instance_rank_std(ranks: ArrayLike) -> np.ndarray:
    """``[N]`` population std of each instance's rank over the languages (rows)."""
    return _ranks_matrix(ranks).std(axis=0)


def mean_rank_variance(ranks: ArrayLike, kind: str = "std") -> float:
    """MRV of ``ranks[L, N]``: mean over instances of the per-instance std (or variance)."""
    r = _ranks_matrix(ranks)
    if kind == "std":
        return float(r.std(axis=0).mean())
    if kind == "var":
        return float(r.var(axis=0).mean())
    raise ValueError(f"kind must be 'std' or 'var', got {kind!r}")


def assemble_mrv_ranks(
    ranks_by_lang: Mapping[str, ArrayLike],
    instance_ids_by_lang: Mapping[str, Sequence[str]],
    languages: Sequence[str],
) -> np.ndarray:
    """Stack per-language ranks into ``[L, N]`` with columns aligned by instance id.

    Each language may list its instances in its own order; columns follow the
    order of ``languages[0]``. Every instance must be ranked in every language
    (MRV is undefined otherwise): the first instance missing from a language,
    in order of first appearance over ``languages``, is named in the error.
    """
    languages = list(languages)
    if len(languages) < 2:
        raise ValueError(f"MRV compares languages: need at least 2, got {languages}")
    if len(set(languages)) != len(languages):
        raise ValueError(f"languages lists a language twice: {languages}")
    positions: dict[str, dict[str, int]] = {}
    rank_rows: dict[str, np.ndarray] = {}
    for lang in languages:
        if lang not in ranks_by_lang:
            raise ValueError(f"no ranks for language {lang!r}")
        if lang not in instance_ids_by_lang:
            raise ValueError(f"no instance ids for language {lang!r}")
        r = to_numpy(ranks_by_lang[lang], f"ranks_by_lang[{lang!r}]")
        ids = [str(i) for i in instance_ids_by_lang[lang]]
        if r.ndim != 1 or r.shape[0] != len(ids):
            raise ValueError(f"language {lang!r}: ranks shape {r.shape} does not match {len(ids)} instance ids")
        pos = {iid: j for j, iid in enumerate(ids)}
        if len(pos) != len(ids):
            seen: set[str] = set()
            dup = next(iid for iid in ids if iid in seen or seen.add(iid))
            raise ValueError(f"language {lang!r} lists instance {dup!r} more than once")
        positions[lang] = pos
        rank_rows[lang] = r
    first_seen = {iid: n for n, iid in enumerate(dict.fromkeys(i for lang in languages for i in positions[lang]))}
    missing = [
        (first_seen[iid], languages.index(lang), iid, lang)
        for lang in languages
        for iid in first_seen.keys() - positions[lang].keys()
    ]
    if missing:
        _, _, iid, lang = min(missing)
        raise ValueError(f"instance {iid!r} has no rank in language {lang!r}")
    order = list(positions[languages[0]])
    return np.stack([rank_rows[lang][[positions[lang][iid] for iid in order]] for lang in languages])
