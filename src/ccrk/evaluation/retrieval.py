"""Two-stage retrieval for one language: similarity for every pair, the matching head for the top k.

The matching (ITM) head costs a fusion forward per (image, caption) pair and
dominates evaluation. The paper's public code scores the top ``k`` of each
image query and, separately, of each caption query, so a pair on both lists
is scored twice: ``(I + T) * k`` forwards. Here the union of both lists is
scored once (:func:`ccrk.metrics.topk_pairs_union`) and scattered back into
both directions. Several ``k`` can be ranked from one ITM pass over the
largest ``k``'s pairs (:func:`rank_language_ks`), which is how fine-tuning
chooses ``k_test`` on validation; every language also gets its ITC-only
ranks (the similarity order alone, what ``k = 1`` gives), so a report can
show what re-ranking added or cost.

Folds (:func:`rank_language_folds`): a test set can be ranked as ``F``
equal, contiguous galleries (MS-COCO's "1K test, averaged over 5 folds"):
every query competes only with the candidates of its own fold. Recall over
all queries is then the mean of the folds' recalls, with ``F`` times the
queries behind it, while the task stays as hard as one gallery of that size.

Memory: the float32 similarity ``[I, T]`` of the current language is the one
full-size matrix (5,000 x 25,000 is 0.5 GB); top-k selection, the float64
two-stage scores and the ranks work on chunks of :data:`CHUNK_BYTES`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ccrk.evaluation.encode import ImageEncoding, TextEncoding
from ccrk.metrics import PairUnion, ranks_i2t, ranks_t2i, topk_pairs_union, two_stage_scores
from ccrk.models import CCRModel

#: Bytes of query-by-candidate scores handled at once after the similarity matrix.
CHUNK_BYTES = 64 * 2**20

#: A re-ranking head: the matching scores of pairs ``(image_rows[p], text_rows[p])`` of the two encodings
#: (higher = better match), given a batch size; ``None`` where a model has no such head.
PairScorer = Callable[[ImageEncoding, np.ndarray, TextEncoding, np.ndarray, int], np.ndarray]


@dataclass
class LanguageRanks:
    """Ranks of one language; ``i2t`` is over all test images, -1 where an image has no caption here.

    ``t2i``/``i2t`` are the two-stage ranks at ``k_test``; ``itc_t2i``/``itc_i2t`` the ranks by contrastive
    similarity alone (same layout), kept beside them because a weak matching head can undo a good ITC order.
    """

    t2i: np.ndarray
    i2t: np.ndarray
    itc_t2i: np.ndarray
    itc_i2t: np.ndarray
    k_t2i: int
    k_i2t: int
    pairs_scored: int
    pairs_public: int
    timings: dict[str, float] = field(default_factory=dict)


def topk_candidates(scores: torch.Tensor, k: int) -> torch.Tensor:
    """``[Q, k]`` indices of each row's ``k`` highest scores, ties going to the lower index.

    ``torch.topk`` picks among equal values arbitrarily (and differently on
    CPU and GPU), which would make the re-ranked set, and so the ranks, depend
    on the device. The rare rows where a tie straddles the k-th place are
    redone with a stable sort, which keeps equal scores in index order.
    """
    values, index = torch.topk(scores, k, dim=1)
    kth = values[:, -1:]
    straddle = (scores == kth).sum(dim=1) > (values == kth).sum(dim=1)
    if bool(straddle.any()):
        rows = straddle.nonzero()[:, 0]
        index[rows] = torch.sort(scores[rows], dim=1, descending=True, stable=True).indices[:, :k]
    return index


def _queries(sim: torch.Tensor, direction: str, start: int, stop: int) -> torch.Tensor:
    """Rows ``start:stop`` of the ``direction`` score matrix (``sim`` is image x text), contiguous."""
    if direction == "i2t":
        return sim[start:stop]
    return sim[:, start:stop].T.contiguous()


def _shape(sim: torch.Tensor, direction: str) -> tuple[int, int]:
    return (sim.shape[0], sim.shape[1]) if direction == "i2t" else (sim.shape[1], sim.shape[0])


def topk_by_query(sim: torch.Tensor, direction: str, k: int) -> np.ndarray:
    """Top-``k`` candidates of every query of ``direction``, chunked; int64 on the host."""
    n_q, n_c = _shape(sim, direction)
    step = max(1, CHUNK_BYTES // (n_c * sim.element_size()))
    parts = [topk_candidates(_queries(sim, direction, a, min(a + step, n_q)), k) for a in range(0, n_q, step)]
    return torch.cat(parts).cpu().numpy().astype(np.int64, copy=False)


@torch.no_grad()
def score_pairs(
    model: CCRModel,
    image_tokens: torch.Tensor,
    image_rows: np.ndarray,
    texts: TextEncoding,
    text_rows: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """Matching logit (class 1, the score the public code re-ranks by) of pairs ``(image_rows[p], text_rows[p])``.

    Image tokens are selected per batch through ``image_index`` rather than
    copied once per pair. Pairs are batched in order of caption length and
    each batch is cut to its longest caption, so short captions do not pay
    for the padding of long ones (the fusion forward is most of the cost).
    """
    device = image_tokens.device
    n = len(image_rows)
    ends = texts.ends[text_rows]
    order = np.argsort(ends, kind="stable")
    out = torch.empty(n, dtype=torch.float32, device=device)
    slots = torch.from_numpy(order).to(device)
    images = torch.from_numpy(np.ascontiguousarray(image_rows[order])).to(device)
    captions = torch.from_numpy(np.ascontiguousarray(text_rows[order])).to(device)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        length = int(ends[order[stop - 1]])  # the longest of the batch: pairs are in length order
        rows = captions[start:stop]
        logits = model.itm_logits(
            texts.tokens[rows, :length], texts.mask[rows, :length], image_tokens, image_index=images[start:stop]
        )
        out[slots[start:stop]] = logits[:, 1].float()
    return out.cpu().numpy()


def itm_scorer(model: CCRModel) -> PairScorer:
    """ccrk's matching head as a :data:`PairScorer` (the encodings must carry their token states)."""

    def score(images: ImageEncoding, image_rows: np.ndarray, texts: TextEncoding, text_rows: np.ndarray,
              batch_size: int) -> np.ndarray:
        if images.tokens is None or texts.tokens is None:
            raise ValueError("the matching head needs token states: encode with ccrk.evaluation.encode")
        return score_pairs(model, images.tokens, image_rows, texts, text_rows, batch_size)

    return score


def two_stage_ranks(
    sim: torch.Tensor,
    direction: str,
    topk: np.ndarray,
    itm: np.ndarray,
    rank_rows: Callable[[np.ndarray, int, int], np.ndarray],
) -> np.ndarray:
    """Ranks under the two-stage order, built and ranked chunk by chunk of queries.

    ``rank_rows(scores, start, stop)`` ranks the float64 two-stage scores of
    queries ``start:stop`` (``ranks_t2i`` or ``ranks_i2t`` with that slice of
    the targets).
    """
    n_q, n_c = _shape(sim, direction)
    step = max(1, CHUNK_BYTES // (8 * n_c))
    out = np.empty(n_q, dtype=np.int64)
    for start in range(0, n_q, step):
        stop = min(start + step, n_q)
        rows = _queries(sim, direction, start, stop).cpu().numpy()
        scores = two_stage_scores(rows, topk[start:stop], itm[start:stop])
        out[start:stop] = rank_rows(scores, start, stop)
    return out


def _scores_of_pairs(scored: PairUnion, itm: np.ndarray, wanted: PairUnion, n_txt: int) -> np.ndarray:
    """ITM scores of ``wanted``'s pairs, looked up among those ``scored`` (a superset), so none is scored twice.

    The top-k candidates under the total order (score descending, index
    ascending) are nested in k, so the pairs of a smaller k are always among
    those of the largest; a miss would be a bug, not bad input.
    """
    keys = scored.images * n_txt + scored.texts  # ascending: topk_pairs_union sorts its pairs
    want = wanted.images * n_txt + wanted.texts
    pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    if not np.array_equal(keys[pos], want):
        raise RuntimeError("a re-ranking pair of a smaller k_test is not among those of the largest")
    return itm[pos]


def _over_all_images(gallery_ranks: np.ndarray, gallery: np.ndarray, n_all: int) -> np.ndarray:
    """Image-to-text ranks of the gallery spread over every test image, -1 for images outside it."""
    out = np.full(n_all, -1, dtype=np.int64)
    out[gallery] = gallery_ranks
    return out


@torch.no_grad()
def rank_language_ks(
    match: PairScorer | None,
    images: ImageEncoding,
    texts: TextEncoding,
    txt2img: np.ndarray,
    k_tests: Sequence[int],
    itm_batch_size: int,
) -> dict[int, LanguageRanks]:
    """Two-stage ranks of one language at each of ``k_tests``, from one ITM pass over the largest k's pairs.

    The gallery is the images with a caption in this language (see
    ``ccrk.evaluation.data``). Each ``k`` is capped by the number of
    candidates; its re-ranked set is chosen exactly as a run at that ``k``
    alone would choose it. ``pairs_scored`` is the pairs that ``k`` needs
    (what a run at that ``k`` alone would score), ``pairs_public`` what the
    public code's two separate re-ranking passes would score, ``(T * k_t2i
    + I * k_i2t)``. The ITC-only ranks are the same in every entry.

    ``match`` re-ranks (:func:`itm_scorer` for ccrk's model); a dual encoder
    has none and can only be ranked at ``k = 1``, its similarity order.
    """
    ks = sorted({int(k) for k in k_tests})
    if not ks or ks[0] < 1:
        raise ValueError(f"k_test values must be positive integers, got {list(k_tests)}")
    shared: dict[str, float] = {}
    t0 = time.perf_counter()
    gallery, local = np.unique(txt2img, return_inverse=True)
    local = local.reshape(-1)
    device = texts.feats.device
    sim = images.feats.index_select(0, torch.from_numpy(gallery).to(device)) @ texts.feats.T  # [G, T]
    n_img, n_txt = sim.shape
    topk = {k: (topk_by_query(sim, "t2i", min(k, n_img)), topk_by_query(sim, "i2t", min(k, n_txt))) for k in ks}
    unions = {k: topk_pairs_union(*topk[k]) for k in ks}
    shared["similarity_topk_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    # A re-ranked list of one candidate keeps its order: k = 1 in both directions is the contrastive
    # ranking itself and needs no matching-head forward at all.
    reranked = [k for k in ks if topk[k][0].shape[1] > 1 or topk[k][1].shape[1] > 1]
    if reranked and match is None:
        raise ValueError(f"k_test {reranked} re-ranks with a matching head, and this model has none: use k_test 1")
    largest = unions[reranked[-1]] if reranked else None
    itm = (match(images, gallery[largest.images], texts, largest.texts, itm_batch_size)
           if largest is not None and match is not None else None)
    shared["itm_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    order = np.argsort(local, kind="stable")
    img2txt = np.split(order, np.cumsum(np.bincount(local, minlength=n_img))[:-1])
    n_all = images.feats.shape[0]
    itc_t2i = ranks_t2i(sim.T, local)
    itc_i2t = _over_all_images(ranks_i2t(sim, img2txt), gallery, n_all)
    shared["itc_ranks_s"] = time.perf_counter() - t0

    out: dict[int, LanguageRanks] = {}
    for k in ks:
        t0 = time.perf_counter()
        topk_t2i, topk_i2t = topk[k]
        union = unions[k]
        if k in reranked:
            itm_k = _scores_of_pairs(largest, itm, union, n_txt)
            r_t2i = two_stage_ranks(
                sim, "t2i", topk_t2i, union.scatter_t2i(itm_k), lambda s, a, b: ranks_t2i(s, local[a:b])
            )
            r_i2t = _over_all_images(two_stage_ranks(
                sim, "i2t", topk_i2t, union.scatter_i2t(itm_k), lambda s, a, b: ranks_i2t(s, img2txt[a:b])
            ), gallery, n_all)
        else:
            r_t2i, r_i2t = itc_t2i, itc_i2t
        k_t2i, k_i2t = topk_t2i.shape[1], topk_i2t.shape[1]
        out[k] = LanguageRanks(
            t2i=r_t2i,
            i2t=r_i2t,
            itc_t2i=itc_t2i,
            itc_i2t=itc_i2t,
            k_t2i=k_t2i,
            k_i2t=k_i2t,
            pairs_scored=len(union) if k in reranked else 0,
            pairs_public=n_txt * k_t2i + n_img * k_i2t,
            timings={**shared, "ranks_s": time.perf_counter() - t0},
        )
    return out


def fold_blocks(n_images: int, folds: int) -> list[slice]:
    """The ``folds`` contiguous, equal galleries of ``n_images`` images, in manifest order.

    Unequal folds would make the pooled recall differ from the mean of the
    folds' recalls (and their galleries differ in difficulty), so a count
    that does not divide the images is refused.
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise ValueError(f"folds must be a positive integer, got {folds!r}")
    if n_images % folds:
        raise ValueError(f"{folds} folds do not split the {n_images} test images into equal galleries")
    size = n_images // folds
    return [slice(f * size, (f + 1) * size) for f in range(folds)]


def rank_language_folds(
    match: PairScorer | None,
    images: ImageEncoding,
    texts: TextEncoding,
    txt2img: np.ndarray,
    k_test: int,
    itm_batch_size: int,
    folds: int = 1,
) -> LanguageRanks:
    """:func:`rank_language` within each of ``folds`` galleries (:func:`fold_blocks`), merged into one layout.

    A caption is ranked among its fold's images, an image among its fold's
    captions; ranks, ITM pair counts and timings of the folds are put
    together so the result reads like one run over the whole test set.
    ``folds=1`` is :func:`rank_language` itself.
    """
    if folds == 1:
        return rank_language(match, images, texts, txt2img, k_test, itm_batch_size)
    n_all = images.feats.shape[0]
    t2i = np.full(len(txt2img), -1, dtype=np.int64)
    itc_t2i = t2i.copy()
    i2t = np.full(n_all, -1, dtype=np.int64)
    itc_i2t = i2t.copy()
    k_t2i = k_i2t = scored = public = 0
    timings: dict[str, float] = {}
    for block in fold_blocks(n_all, folds):
        captions = np.flatnonzero((txt2img >= block.start) & (txt2img < block.stop))
        if captions.size == 0:  # no caption of this language in the fold: its images keep i2t -1
            continue
        part = rank_language(match, images.rows(block), texts.rows(captions), txt2img[captions] - block.start,
                             k_test, itm_batch_size)
        t2i[captions], itc_t2i[captions] = part.t2i, part.itc_t2i
        i2t[block], itc_i2t[block] = part.i2t, part.itc_i2t
        k_t2i, k_i2t = max(k_t2i, part.k_t2i), max(k_i2t, part.k_i2t)
        scored += part.pairs_scored
        public += part.pairs_public
        for key, value in part.timings.items():
            timings[key] = timings.get(key, 0.0) + value
    return LanguageRanks(t2i=t2i, i2t=i2t, itc_t2i=itc_t2i, itc_i2t=itc_i2t, k_t2i=k_t2i, k_i2t=k_i2t,
                         pairs_scored=scored, pairs_public=public, timings=timings)


def rank_language(
    match: PairScorer | None,
    images: ImageEncoding,
    texts: TextEncoding,
    txt2img: np.ndarray,
    k_test: int,
    itm_batch_size: int,
) -> LanguageRanks:
    """Text-to-image and image-to-text ranks of one language's captions at one ``k_test``.

    See :func:`rank_language_ks`, of which this is the single-``k`` case.
    """
    return rank_language_ks(match, images, texts, txt2img, [k_test], itm_batch_size)[int(k_test)]
