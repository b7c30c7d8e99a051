"""0-based retrieval ranks from a score matrix (docs/design.md, "Metrics").

The rank of the true candidate is the number of candidates ordered before it,
where candidates are ordered by score descending and ties go to the lower
candidate index. That total order makes ranks well defined for tied scores
(integer-valued or saturated similarities), which a plain ``argsort`` leaves to
the sorting algorithm.

No sort is needed: ``rank = #(score > true) + #(score == true and index <
true index)``. A ``score > true`` pass is counted for every row; a
``score == true`` pass only flags the rows that have a tie, and the index
condition is evaluated for those rows alone. Rows are processed in chunks:
on the host small enough that the chunk stays in cache across the passes
(``HOST_CHUNK_BYTES``), on an accelerator large enough to amortise kernel
launches (``DEVICE_CHUNK_BYTES``); either way the temporaries stay bounded,
so a 5,000 x 25,000 evaluation needs little memory beyond the scores.
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np

from ccrk.metrics._arrays import ArrayLike, is_tensor, to_index_array, to_score_matrix

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Scores per chunk on the host: a few MiB keep each chunk cache-resident.
HOST_CHUNK_BYTES = 2 * 2**20
#: Scores per chunk for tensors on an accelerator.
DEVICE_CHUNK_BYTES = 256 * 2**20
#: Fewest queries per chunk when queries are columns (transposed input): the
#: column-wise reductions need long contiguous rows to vectorise.
MIN_COLUMN_CHUNK = 256


def _queries_per_chunk(chunk_size: int | None, n_cands: int, itemsize: int, budget: int) -> int:
    if chunk_size is None:
        return max(1, budget // (n_cands * itemsize))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return int(chunk_size)


def _nan_error(query: int) -> ValueError:
    return ValueError(f"scores contain NaN (first in row {query})")


def _count_true(mask: np.ndarray, axis: int, n_cands: int) -> np.ndarray:
    """True entries of a bool matrix along ``axis``, as int64.

    Summing the bool bytes as uint8 into a uint16 accumulator is the fastest
    numpy reduction (it vectorises as a widening add) and exact below 65,536
    candidates; larger candidate sets take the plain int64 sum.
    """
    if n_cands < 2**16:
        return mask.view(np.uint8).sum(axis=axis, dtype=np.uint16).astype(np.int64)
    return mask.sum(axis=axis, dtype=np.int64)


def _ranks_host_rows(scores: np.ndarray, targets: np.ndarray, chunk_size: int | None) -> np.ndarray:
    """Queries are rows of ``scores``; the candidates of a query are contiguous when it is C-ordered."""
    n_rows, n_cols = scores.shape
    step = min(n_rows, _queries_per_chunk(chunk_size, n_cols, scores.itemsize, HOST_CHUNK_BYTES))
    above = np.empty((step, n_cols), dtype=bool)
    equal = np.empty((step, n_cols), dtype=bool)
    # Any other strided layout is copied chunk by chunk so that the passes read
    # contiguous, cached rows.
    staging = None if scores.flags.c_contiguous else np.empty((step, n_cols), dtype=scores.dtype)
    floating = scores.dtype.kind == "f"
    cols = np.arange(n_cols)
    out = np.empty(n_rows, dtype=np.int64)
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        m = stop - start
        block = scores[start:stop]
        if staging is not None:
            np.copyto(staging[:m], block)
            block = staging[:m]
        if floating and np.isnan(block.max()):  # max propagates NaN: one cheap reduction
            raise _nan_error(start + int(np.flatnonzero(np.isnan(block).any(axis=1))[0]))
        tgt = targets[start:stop]
        rows = np.arange(m)
        true = block[rows, tgt][:, None]
        gt, eq = above[:m], equal[:m]
        np.greater(block, true, out=gt)
        rank = _count_true(gt, 1, n_cols)
        np.equal(block, true, out=eq)
        eq[rows, tgt] = False  # the true candidate ties with itself
        tied = np.flatnonzero(eq.view(np.uint8).max(axis=1))
        if tied.size:
            rank[tied] += (eq[tied] & (cols[None, :] < tgt[tied, None])).sum(axis=1)
        out[start:stop] = rank
    return out


def _ranks_host_columns(cands_by_query: np.ndarray, targets: np.ndarray, chunk_size: int | None) -> np.ndarray:
    """Queries are columns of the C-ordered ``[candidates, queries]`` matrix (the input was a transposed view).

    Counting down columns avoids copying the transpose: each comparison pass
    reads contiguous row segments and the counts are row-wise additions.
    """
    n_cands, n_queries = cands_by_query.shape
    step = _queries_per_chunk(chunk_size, n_cands, cands_by_query.itemsize, HOST_CHUNK_BYTES)
    if chunk_size is None:
        step = max(step, MIN_COLUMN_CHUNK)
    step = min(step, n_queries)
    above = np.empty((n_cands, step), dtype=bool)
    equal = np.empty((n_cands, step), dtype=bool)
    floating = cands_by_query.dtype.kind == "f"
    cands = np.arange(n_cands)
    out = np.empty(n_queries, dtype=np.int64)
    for start in range(0, n_queries, step):
        stop = min(start + step, n_queries)
        m = stop - start
        block = cands_by_query[:, start:stop]
        if floating and np.isnan(block.max()):
            raise _nan_error(start + int(np.flatnonzero(np.isnan(block).any(axis=0))[0]))
        tgt = targets[start:stop]
        queries = np.arange(m)
        true = block[tgt, queries][None, :]
        gt, eq = above[:, :m], equal[:, :m]
        np.greater(block, true, out=gt)
        rank = _count_true(gt, 0, n_cands)
        np.equal(block, true, out=eq)
        eq[tgt, queries] = False
        tied = np.flatnonzero(eq.view(np.uint8).max(axis=0))
        if tied.size:
            rank[tied] += (eq[:, tied] & (cands[:, None] < tgt[None, tied])).sum(axis=0)
        out[start:stop] = rank
    return out


def _ranks_device(scores: torch.Tensor, targets: np.ndarray, chunk_size: int | None) -> np.ndarray:
    import torch  # only a caller holding a tensor gets here: torch is loaded

    n_rows, n_cols = scores.shape
    step = _queries_per_chunk(chunk_size, n_cols, scores.element_size(), DEVICE_CHUNK_BYTES)
    device = scores.device
    target_t = torch.from_numpy(targets).to(device)
    cols = torch.arange(n_cols, device=device)
    out = torch.empty(n_rows, dtype=torch.int64, device=device)
    floating = scores.is_floating_point()
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        block = scores[start:stop].contiguous()
        if floating and bool(torch.isnan(block.amax())):  # amax propagates NaN
            raise _nan_error(start + int(torch.isnan(block).any(dim=1).nonzero()[0, 0]))
        tgt = target_t[start:stop]
        true = block.gather(1, tgt[:, None])
        rank = (block > true).sum(dim=1)
        tied = (block == true).sum(dim=1) > 1  # the true candidate always equals itself
        if bool(tied.any()):
            rows = tied.nonzero()[:, 0]
            before = (block[rows] == true[rows]) & (cols[None, :] < tgt[rows, None])
            rank[rows] += before.sum(dim=1)
        out[start:stop] = rank
    return out.cpu().numpy()


def _ranks_of_targets(
    scores: np.ndarray | torch.Tensor, targets: np.ndarray, chunk_size: int | None
) -> np.ndarray:
    """Rank of column ``targets[q]`` in row ``q`` of ``scores``, for every row."""
    if is_tensor(scores):
        return _ranks_device(scores, targets, chunk_size)
    if not scores.flags.c_contiguous and scores.T.flags.c_contiguous:
        return _ranks_host_columns(scores.T, targets, chunk_size)
    return _ranks_host_rows(scores, targets, chunk_size)


def ranks_t2i(scores: ArrayLike, txt2img: ArrayLike, chunk_size: int | None = None) -> np.ndarray:
    """Text-to-image ranks: for caption ``t``, the rank of image ``txt2img[t]`` in ``scores[t]``.

    ``scores`` is ``[T, I]`` (numpy, or torch on any device); returns int64
    ``[T]``. ``chunk_size`` is the number of query rows handled at once
    (default: ``HOST_CHUNK_BYTES`` or ``DEVICE_CHUNK_BYTES`` of scores).
    """
    s = to_score_matrix(scores, "scores")
    n_txt, n_img = s.shape
    target = to_index_array(txt2img, "txt2img", ndim=1)
    if target.shape[0] != n_txt:
        raise ValueError(
            f"txt2img has shape {target.shape} but scores has shape {tuple(s.shape)}: "
            "expected one caption row per txt2img entry"
        )
    bad = np.flatnonzero((target < 0) | (target >= n_img))
    if bad.size:
        t = int(bad[0])
        raise ValueError(f"txt2img[{t}] = {int(target[t])} points at no image: scores has {n_img} image columns")
    return _ranks_of_targets(s, target, chunk_size)


def ranks_i2t(scores: ArrayLike, img2txt: Sequence[Sequence[int]], chunk_size: int | None = None) -> np.ndarray:
    """Image-to-text ranks: for image ``i``, the best rank over its captions ``img2txt[i]``.

    ``scores`` is ``[I, T]``; returns int64 ``[I]``. Because ranks are
    positions in one total order, the best rank is that of the caption with the
    highest score (lowest index among equals), so each row is ranked once
    rather than once per caption.
    """
    s = to_score_matrix(scores, "scores")
    n_img, n_txt = s.shape
    if len(img2txt) != n_img:
        raise ValueError(
            f"img2txt has {len(img2txt)} images but scores has shape {tuple(s.shape)}: "
            "expected one image row per img2txt entry"
        )
    lengths = np.fromiter((len(caps) for caps in img2txt), dtype=np.int64, count=n_img)
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise ValueError(f"image {int(empty[0])} has no captions in img2txt")
    flat = to_index_array(np.asarray(list(chain.from_iterable(img2txt))), "img2txt captions", ndim=1)
    owner = np.repeat(np.arange(n_img, dtype=np.int64), lengths)
    bad = np.flatnonzero((flat < 0) | (flat >= n_txt))
    if bad.size:
        b = int(bad[0])
        raise ValueError(
            f"img2txt[{int(owner[b])}] lists caption {int(flat[b])}, but scores has {n_txt} caption columns"
        )
    if is_tensor(s):
        import torch

        cap_scores = s[torch.from_numpy(owner).to(s.device), torch.from_numpy(flat).to(s.device)].cpu().numpy()
    else:
        cap_scores = s[owner, flat]
    # Ascending by (image, score, -caption): the last entry of each image's
    # group is its highest-scoring caption, lowest index among ties.
    order = np.lexsort((-flat, cap_scores, owner))
    best = flat[order][np.cumsum(lengths) - 1]
    return _ranks_of_targets(s, best, chunk_size)
