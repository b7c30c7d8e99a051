"""Two-stage retrieval: contrastive similarity for all, the matching head for the top k.

The paper's public evaluation fills a score matrix with -100 and writes the
ITM scores of the top ``k_test`` candidates into it, so every rank past k is
an arbitrary tie-break among -100s and MRV over such ranks measures sorting
noise. Here the order stays total (docs/design.md, "Metrics"): the re-ranked
candidates come first in ITM order, every other candidate follows in its
contrastive-similarity order, ties by candidate index throughout.

Typical evaluation, scoring each (image, text) pair with the ITM head at most
once although both directions re-rank::

    union = topk_pairs_union(topk_t2i, topk_i2t)          # topk_* from sim
    itm = itm_head(image_feats[union.images], text_feats[union.texts])
    s_t2i = two_stage_scores(sim_t2i, topk_t2i, union.scatter_t2i(itm))
    s_i2t = two_stage_scores(sim_i2t, topk_i2t, union.scatter_i2t(itm))
    ranks_t2i(s_t2i, txt2img); ranks_i2t(s_i2t, img2txt)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ccrk.metrics._arrays import ArrayLike, is_tensor, to_index_array, to_numpy

# Re-ranked scores are integers added to the row maximum; float64 keeps them
# exact and distinct while the row maximum stays below this magnitude.
_EXACT_LIMIT = 2.0**50


def _check_topk(topk: np.ndarray, n_cand: int, name: str, what: str) -> None:
    bad = np.argwhere((topk < 0) | (topk >= n_cand))
    if bad.size:
        q, j = (int(v) for v in bad[0])
        raise ValueError(f"{name}[{q}, {j}] = {int(topk[q, j])} is out of range [0, {n_cand}) ({what})")


def two_stage_scores(sim: ArrayLike, topk_idx: ArrayLike, itm: ArrayLike) -> np.ndarray:
    """Float64 ``[Q, C]`` scores whose descending order (ties by index) is the two-stage order.

    ``sim[Q, C]`` is the contrastive similarity, ``topk_idx[Q, k]`` the
    candidates re-ranked for each query (distinct within a row) and
    ``itm[Q, k]`` their matching scores. Candidates outside the top k keep
    their similarity value; the re-ranked ones get ``floor(row max) + 1 + (k -
    1 - position in ITM order)``, above all of them and distinct, so any
    rank function that breaks ties by index reproduces the intended order.
    """
    s = to_numpy(sim, "sim").astype(np.float64)  # always a copy: becomes the output
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"sim must be a non-empty 2-D array, got shape {s.shape}")
    idx = to_index_array(topk_idx, "topk_idx", ndim=2)
    scores_itm = to_numpy(itm, "itm").astype(np.float64)
    n_q, n_c = s.shape
    if idx.shape != scores_itm.shape or idx.shape[0] != n_q:
        raise ValueError(
            f"topk_idx {idx.shape} and itm {scores_itm.shape} must both be [Q, k] with Q = {n_q} rows of sim {s.shape}"
        )
    k = idx.shape[1]
    if k > n_c:
        raise ValueError(f"topk_idx has k = {k} columns but sim has only {n_c} candidates")
    _check_topk(idx, n_c, "topk_idx", "columns of sim")
    if k > 1:
        srt = np.sort(idx, axis=1)
        dup = np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))
        if dup.size:
            raise ValueError(f"topk_idx row {int(dup[0])} lists a candidate twice")
    for name, arr in (("sim", s), ("itm", scores_itm)):
        if arr.size and np.isnan(arr.max()):  # max propagates NaN
            raise ValueError(f"{name} contains NaN (first at {tuple(int(v) for v in np.argwhere(np.isnan(arr))[0])})")
    row_max = s.max(axis=1)
    if np.isposinf(row_max).any():
        raise ValueError(f"sim contains +inf (first at {tuple(int(v) for v in np.argwhere(np.isposinf(s))[0])})")
    row_max[np.isneginf(row_max)] = 0.0  # a row of -inf only: any finite base is above it
    if np.any(np.abs(row_max) >= _EXACT_LIMIT):
        raise ValueError(f"sim magnitudes must stay below {_EXACT_LIMIT:.0f} for exact re-ranked scores")
    base = np.floor(row_max) + 1.0

    out = s  # astype above made a private float64 copy
    if k == 0:
        return out
    # Position of each re-ranked candidate: ITM descending, candidate index ascending.
    order = np.lexsort((idx, -scores_itm), axis=-1)
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.broadcast_to(np.arange(k), (n_q, k)), axis=1)
    np.put_along_axis(out, idx, base[:, None] + (k - 1 - position), axis=1)
    return out


@dataclass(frozen=True)
class PairUnion:
    """Unique (image, text) pairs from both re-ranking directions, and where each slot's score lives.

    ``images[p], texts[p]`` is pair ``p`` (sorted by image, then text, so an
    ITM pass can batch by image). ``t2i_slot[t, j]`` is the pair of text query
    ``t``'s j-th image candidate; ``i2t_slot[i, j]`` that of image query
    ``i``'s j-th text candidate.
    """

    images: np.ndarray
    texts: np.ndarray
    t2i_slot: np.ndarray
    i2t_slot: np.ndarray

    @property
    def pairs(self) -> np.ndarray:
        """``[P, 2]`` int64 array of (image, text)."""
        return np.stack([self.images, self.texts], axis=1)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def _scatter(self, values: ArrayLike, slot: np.ndarray) -> ArrayLike:
        if is_tensor(values):
            import torch

            if values.ndim != 1 or values.shape[0] != len(self):
                raise ValueError(f"values must have shape ({len(self)},), one per pair, got {tuple(values.shape)}")
            return values[torch.from_numpy(slot).to(values.device)]
        arr = np.asarray(values)
        if arr.shape != (len(self),):
            raise ValueError(f"values must have shape ({len(self)},), one per pair, got {arr.shape}")
        return arr[slot]

    def scatter_t2i(self, values: ArrayLike) -> ArrayLike:
        """Per-pair ``values[P]`` as the ``[T, k]`` matrix aligned with ``topk_t2i``."""
        return self._scatter(values, self.t2i_slot)

    def scatter_i2t(self, values: ArrayLike) -> ArrayLike:
        """Per-pair ``values[P]`` as the ``[I, k]`` matrix aligned with ``topk_i2t``."""
        return self._scatter(values, self.i2t_slot)


def topk_pairs_union(topk_t2i: ArrayLike, topk_i2t: ArrayLike) -> PairUnion:
    """Union of the re-ranking pairs of both directions, each pair once.

    ``topk_t2i[T, k1]`` holds image indices for every text query and
    ``topk_i2t[I, k2]`` text indices for every image query, so the texts are
    ``0..T-1`` and the images ``0..I-1``. A pair found by both directions is
    scored once; there are at most ``T*k1 + I*k2`` pairs.
    """
    t2i = to_index_array(topk_t2i, "topk_t2i", ndim=2)
    i2t = to_index_array(topk_i2t, "topk_i2t", ndim=2)
    n_txt, n_img = t2i.shape[0], i2t.shape[0]
    _check_topk(t2i, n_img, "topk_t2i", "images = rows of topk_i2t")
    _check_topk(i2t, n_txt, "topk_i2t", "texts = rows of topk_t2i")
    keys_t2i = t2i * n_txt + np.arange(n_txt, dtype=np.int64)[:, None]
    keys_i2t = np.arange(n_img, dtype=np.int64)[:, None] * n_txt + i2t
    keys, inverse = np.unique(np.concatenate([keys_t2i.ravel(), keys_i2t.ravel()]), return_inverse=True)
    inverse = inverse.reshape(-1)
    return PairUnion(
        images=keys // n_txt,
        texts=keys % n_txt,
        t2i_slot=inverse[: t2i.size].reshape(t2i.shape),
        i2t_slot=inverse[t2i.size :].reshape(i2t.shape),
    )
