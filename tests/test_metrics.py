"""ccrk.metrics: ranks, two-stage re-ranking, recall, MRV, against slow references."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ccrk.metrics import (
    PairUnion,
    assemble_mrv_ranks,
    mean_rank_variance,
    mean_recall,
    per_instance_rank_std,
    ranks_i2t,
    ranks_t2i,
    recall_at_k,
    recall_spread,
    topk_pairs_union,
    two_stage_scores,
)


# ---------------------------------------------------------------- references
def order_ref(row: np.ndarray) -> np.ndarray:
    """Candidates by score descending, ties by lower index (stable sort of the negated scores)."""
    return np.argsort(-row.astype(np.float64), kind="stable")


def ranks_t2i_ref(scores: np.ndarray, txt2img: np.ndarray) -> np.ndarray:
    return np.array([np.where(order_ref(row) == txt2img[t])[0][0] for t, row in enumerate(scores)])


def ranks_i2t_ref(scores: np.ndarray, img2txt: list[list[int]]) -> np.ndarray:
    out = []
    for i, row in enumerate(scores):
        order = order_ref(row)
        out.append(min(np.where(order == c)[0][0] for c in img2txt[i]))
    return np.array(out)


def retrieval_problem(rng: np.random.Generator, n_img: int, caps_per_img: tuple[int, int], tied: bool):
    counts = rng.integers(caps_per_img[0], caps_per_img[1] + 1, size=n_img)
    txt2img = np.repeat(np.arange(n_img), counts)
    perm = rng.permutation(txt2img.size)  # captions not grouped by image
    txt2img = txt2img[perm]
    img2txt = [np.flatnonzero(txt2img == i).tolist() for i in range(n_img)]
    shape = (n_img, txt2img.size)
    sims = rng.integers(0, 4, size=shape).astype(np.float32) if tied else rng.standard_normal(shape).astype(np.float32)
    return sims, img2txt, txt2img


# ---------------------------------------------------------------- ranks
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranks_match_stable_argsort_reference(tied: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sims, img2txt, txt2img = retrieval_problem(rng, n_img=23, caps_per_img=(1, 5), tied=tied)
    exp_i2t = ranks_i2t_ref(sims, img2txt)
    exp_t2i = ranks_t2i_ref(sims.T, txt2img)
    if tied:  # ties must change some answers, else the tie-break goes untested
        strictly_above = np.array([np.sum(row > row[txt2img[t]]) for t, row in enumerate(sims.T)])
        assert (strictly_above != exp_t2i).any()
    for chunk in (None, 1, 4, 1000):
        np.testing.assert_array_equal(ranks_i2t(sims, img2txt, chunk_size=chunk), exp_i2t)
        np.testing.assert_array_equal(ranks_t2i(sims.T, txt2img, chunk_size=chunk), exp_t2i)
        np.testing.assert_array_equal(ranks_t2i(np.ascontiguousarray(sims.T), txt2img, chunk_size=chunk), exp_t2i)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 9)),
           elements=st.sampled_from([0.0, -0.0, 1.5, -2.0, np.inf, -np.inf, 3e38])),
    st.data(),
)
def test_ranks_property_signed_zero_and_infinities(scores: np.ndarray, data: st.DataObject) -> None:
    n_q, n_c = scores.shape
    targets = np.array(data.draw(st.lists(st.integers(0, n_c - 1), min_size=n_q, max_size=n_q)))
    exp = ranks_t2i_ref(scores, targets)
    np.testing.assert_array_equal(ranks_t2i(scores, targets), exp)
    np.testing.assert_array_equal(ranks_t2i(np.asfortranarray(scores), targets, chunk_size=2), exp)


def test_ranks_dtypes_and_layouts() -> None:
    rng = np.random.default_rng(5)
    sims, img2txt, txt2img = retrieval_problem(rng, n_img=9, caps_per_img=(2, 3), tied=True)
    exp = ranks_i2t_ref(sims, img2txt)
    strided = np.zeros((sims.shape[0], 2 * sims.shape[1]), dtype=np.float32)
    strided[:, ::2] = sims  # neither C- nor F-ordered: ranked through a staging copy
    big_endian = sims.astype(">f4")
    layouts = (sims, sims.astype(np.float64), sims.astype(np.int64), sims.astype(np.uint8), strided[:, ::2],
               big_endian, torch.from_numpy(sims), torch.from_numpy(sims).to(torch.bfloat16), sims.tolist())
    for scores in layouts:
        for chunk in (None, 2):
            got = ranks_i2t(scores, img2txt, chunk_size=chunk)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, exp)
    got = ranks_t2i(torch.from_numpy(sims).T, torch.from_numpy(txt2img), chunk_size=2)
    np.testing.assert_array_equal(got, ranks_t2i_ref(sims.T, txt2img))


def test_ranks_beyond_uint16_candidates() -> None:
    """Over 65,535 candidates the counts leave the uint16 fast path."""
    rng = np.random.default_rng(7)
    sims = rng.integers(0, 3, size=(3, 70_000)).astype(np.float32)
    targets = np.array([5, 69_999, 40_000])
    exp = ranks_t2i_ref(sims, targets)
    assert exp.max() > 2**16 // 2
    np.testing.assert_array_equal(ranks_t2i(sims, targets), exp)
    img2txt = [[5], [69_999, 3], [40_000]]
    np.testing.assert_array_equal(ranks_i2t(sims, img2txt), ranks_i2t_ref(sims, img2txt))
    np.testing.assert_array_equal(ranks_t2i(np.ascontiguousarray(sims.T).T, targets), exp)


@pytest.mark.parametrize("chunk", [None, 1, 3])
def test_device_kernel_matches_host_kernel(chunk: int | None) -> None:
    """The torch kernel used for accelerator tensors, run on CPU tensors here."""
    from ccrk.metrics.ranks import _ranks_device, _ranks_host_columns, _ranks_host_rows

    rng = np.random.default_rng(6)
    for tied in (False, True):
        sims, _, txt2img = retrieval_problem(rng, n_img=11, caps_per_img=(1, 4), tied=tied)
        exp = ranks_t2i_ref(sims.T, txt2img)
        np.testing.assert_array_equal(_ranks_device(torch.from_numpy(sims.T.copy()), txt2img, chunk), exp)
        np.testing.assert_array_equal(_ranks_host_rows(np.ascontiguousarray(sims.T), txt2img, chunk), exp)
        np.testing.assert_array_equal(_ranks_host_columns(sims, txt2img, chunk), exp)
    nan = torch.zeros(3, 4)
    nan[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN.*row 1"):
        _ranks_device(nan, np.zeros(3, dtype=np.int64), chunk)


def test_ranks_hand_made() -> None:
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.2, 0.2], [0.0, 0.3, 0.1]])
    # row 0 true 2: 0.9 before it -> 1; row 1 true 1: tie with index 0 -> 1; row 2 true 1 -> 0.
    np.testing.assert_array_equal(ranks_t2i(scores, [2, 1, 1]), [1, 1, 0])
    # image 1 captions {1, 2}: all tied, best is caption 1 at rank 1.
    np.testing.assert_array_equal(ranks_i2t(scores, [[0], [2, 1], [0, 2]]), [0, 1, 1])


def test_ranks_errors() -> None:
    scores = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"\(4,\).*\(3, 2\)"):
        ranks_t2i(scores, [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"txt2img\[1\] = 2 points at no image"):
        ranks_t2i(scores, [0, 2, 1])
    with pytest.raises(ValueError, match=r"txt2img\[0\] = -1"):
        ranks_t2i(scores, [-1, 0, 1])
    with pytest.raises(ValueError, match="image 1 has no captions"):
        ranks_i2t(scores, [[0], [], [1]])
    with pytest.raises(ValueError, match=r"img2txt has 2 images.*\(3, 2\)"):
        ranks_i2t(scores, [[0], [1]])
    with pytest.raises(ValueError, match=r"img2txt\[2\] lists caption 5"):
        ranks_i2t(scores, [[0], [1], [5]])
    nan = scores.copy()
    nan[2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN.*row 2"):
        ranks_t2i(nan, [0, 0, 0], chunk_size=1)
    with pytest.raises(ValueError, match="NaN"):
        ranks_i2t(nan, [[0], [1], [1]])
    with pytest.raises(ValueError, match=r"NaN.*row 0"):  # transposed: NaN of caption 0 in column 0
        ranks_t2i(nan.T, [0, 1])
    with pytest.raises(ValueError, match="2-D"):
        ranks_t2i(np.zeros(3), [0, 0, 0])
    with pytest.raises(ValueError, match="chunk_size"):
        ranks_t2i(scores, [0, 0, 0], chunk_size=0)
    with pytest.raises(ValueError, match="integer"):
        ranks_t2i(scores, [0.5, 0, 0])


# ---------------------------------------------------------------- two-stage
def two_stage_order_ref(sim_row: np.ndarray, topk: np.ndarray, itm: np.ndarray) -> np.ndarray:
    head = [c for _, c in sorted(zip(-itm, topk))]  # ITM descending, index ascending
    rest = [c for c in order_ref(sim_row) if c not in set(topk.tolist())]
    return np.array(head + rest)


@pytest.mark.parametrize("seed", [0, 1])
def test_two_stage_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_q, n_c, k = 7, 15, 5
    sim = rng.integers(-2, 3, size=(n_q, n_c)).astype(np.float32) / 4  # ties in sim
    topk = np.stack([rng.choice(n_c, size=k, replace=False) for _ in range(n_q)])
    itm = rng.integers(0, 3, size=(n_q, k)).astype(np.float64)  # ties in ITM
    scores = two_stage_scores(sim, topk, itm)
    assert scores.dtype == np.float64 and scores.shape == (n_q, n_c)
    for q in range(n_q):
        expected = two_stage_order_ref(sim[q], topk[q], itm[q])
        np.testing.assert_array_equal(order_ref(scores[q]), expected)
        # ranks computed from the scores are positions in that order
        np.testing.assert_array_equal(ranks_t2i(np.repeat(scores[q : q + 1], n_c, 0), np.arange(n_c)),
                                      np.argsort(expected))


def test_two_stage_keeps_order_for_neg_inf_and_k0() -> None:
    sim = np.array([[-np.inf, -np.inf, 0.5, -np.inf]])
    out = two_stage_scores(sim, [[3]], [[-7.0]])
    np.testing.assert_array_equal(order_ref(out[0]), [3, 2, 0, 1])
    np.testing.assert_array_equal(two_stage_scores(sim, np.zeros((1, 0), int), np.zeros((1, 0))), sim)


def test_two_stage_errors() -> None:
    sim = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"topk_idx \(2, 2\) and itm \(2, 3\)"):
        two_stage_scores(sim, [[0, 1], [1, 2]], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"topk_idx\[1, 0\] = 4 is out of range"):
        two_stage_scores(sim, [[0, 1], [4, 2]], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="row 1 lists a candidate twice"):
        two_stage_scores(sim, [[0, 1], [2, 2]], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="itm contains NaN"):
        two_stage_scores(sim, [[0, 1], [2, 3]], [[0, np.nan], [0, 0]])
    with pytest.raises(ValueError, match=r"\+inf"):
        two_stage_scores(np.full((2, 4), np.inf), [[0, 1], [2, 3]], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="magnitudes"):
        two_stage_scores(np.full((2, 4), -1e60), [[0, 1], [2, 3]], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="k = 5 columns"):
        two_stage_scores(sim, np.zeros((2, 5), int), np.zeros((2, 5)))


def fake_itm(images: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """Deterministic per pair, with ties, like a matching head whose output depends only on the pair."""
    return ((images * 7919 + texts * 104729) % 13).astype(np.float64)


def test_pair_union_scores_each_pair_once_and_matches_per_direction() -> None:
    rng = np.random.default_rng(3)
    sims, img2txt, txt2img = retrieval_problem(rng, n_img=12, caps_per_img=(2, 4), tied=False)
    n_img, n_txt = sims.shape
    k = 4
    topk_i2t = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    topk_t2i = np.argsort(-sims.T, axis=1, kind="stable")[:, :k]

    union = topk_pairs_union(topk_t2i, topk_i2t)
    assert isinstance(union, PairUnion)
    keys = union.images * n_txt + union.texts
    assert np.unique(keys).size == len(union)  # each pair once
    assert len(union) <= n_txt * k + n_img * k
    assert len(union) < n_txt * k + n_img * k  # mutual top-k pairs overlap here
    assert union.pairs.shape == (len(union), 2)

    calls = []

    def counted_itm(images: np.ndarray, texts: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        return fake_itm(images, texts)

    itm = counted_itm(union.images, union.texts)
    assert sum(calls) == len(union)
    itm_t2i, itm_i2t = union.scatter_t2i(itm), union.scatter_i2t(itm)
    sep_t2i = fake_itm(topk_t2i, np.arange(n_txt)[:, None])
    sep_i2t = fake_itm(np.arange(n_img)[:, None], topk_i2t)
    np.testing.assert_array_equal(itm_t2i, sep_t2i)
    np.testing.assert_array_equal(itm_i2t, sep_i2t)
    np.testing.assert_array_equal(
        ranks_t2i(two_stage_scores(sims.T, topk_t2i, itm_t2i), txt2img),
        ranks_t2i(two_stage_scores(sims.T, topk_t2i, sep_t2i), txt2img),
    )
    np.testing.assert_array_equal(
        ranks_i2t(two_stage_scores(sims, topk_i2t, itm_i2t), img2txt),
        ranks_i2t(two_stage_scores(sims, topk_i2t, sep_i2t), img2txt),
    )
    # torch values scatter on their own device
    got = union.scatter_t2i(torch.from_numpy(itm))
    assert isinstance(got, torch.Tensor)
    np.testing.assert_array_equal(got.numpy(), sep_t2i)


def test_pair_union_errors() -> None:
    with pytest.raises(ValueError, match=r"topk_t2i\[1, 0\] = 3 is out of range \[0, 2\)"):
        topk_pairs_union([[0], [3]], [[0], [1]])
    with pytest.raises(ValueError, match=r"topk_i2t\[0, 1\] = 2"):
        topk_pairs_union([[0], [1]], [[0, 2], [1, 0]])
    union = topk_pairs_union([[0], [1]], [[0], [1]])
    with pytest.raises(ValueError, match="one per pair"):
        union.scatter_i2t(np.zeros(5))


# ---------------------------------------------------------------- recall
def test_recall_hand_computed() -> None:
    # 3 queries x 3 candidates; true candidates on the diagonal.
    scores = np.array([[0.9, 0.5, 0.1], [0.8, 0.7, 0.2], [0.3, 0.4, 0.6]])
    r_t2i = ranks_t2i(scores, [0, 1, 2])  # ranks 0, 1, 0
    r_i2t = ranks_i2t(scores.T, [[0], [1], [2]])  # each column's diagonal entry is its maximum
    np.testing.assert_array_equal(r_t2i, [0, 1, 0])
    np.testing.assert_array_equal(r_i2t, [0, 0, 0])
    assert recall_at_k(r_t2i, 1) == pytest.approx(200 / 3)
    assert recall_at_k(r_t2i, 2) == 100.0
    assert recall_at_k(r_i2t, 1) == 100.0
    assert mean_recall(r_t2i, r_i2t, ks=(1, 2)) == pytest.approx((200 / 3 + 100 + 100 + 100) / 4)
    assert mean_recall(r_t2i, r_i2t) == pytest.approx((200 / 3 + 100 * 5) / 6)


def test_recall_spread() -> None:
    got = recall_spread({"en": 60.0, "de": 50.0, "ja": 40.0, "zh": 50.0})
    assert got["max_minus_min"] == 20.0
    assert got["std"] == pytest.approx(np.sqrt((100 + 0 + 100 + 0) / 4))
    assert recall_spread({"en": 3.0}) == {"max_minus_min": 0.0, "std": 0.0}


def test_recall_errors() -> None:
    with pytest.raises(ValueError, match="k must be a positive integer"):
        recall_at_k([0, 1], 0)
    with pytest.raises(ValueError, match="1-D"):
        recall_at_k(np.zeros((2, 2)), 1)
    with pytest.raises(ValueError, match="negative"):
        recall_at_k([0, -1], 1)
    with pytest.raises(ValueError, match="non-empty"):
        recall_at_k([], 1)
    with pytest.raises(ValueError, match="ks"):
        mean_recall([0], [0], ks=())
    with pytest.raises(ValueError, match="'de' is not finite"):
        recall_spread({"en": 1.0, "de": float("nan")})
    with pytest.raises(ValueError, match="at least one"):
        recall_spread({})


# ---------------------------------------------------------------- MRV
def analysis_ranks_ref(ranks: np.ndarray) -> float:
    """The paper's public-code formula: std over the language axis, mean over instances."""
    return float(np.mean(np.std(ranks, axis=0)))


def test_mrv_matches_paper_formula() -> None:
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, 200, size=(4, 300))
    assert mean_rank_variance(ranks) == pytest.approx(analysis_ranks_ref(ranks), rel=1e-12)
    assert mean_rank_variance(torch.from_numpy(ranks)) == pytest.approx(analysis_ranks_ref(ranks), rel=1e-12)
    assert mean_rank_variance(ranks, kind="var") == pytest.approx(np.mean(np.std(ranks, axis=0) ** 2), rel=1e-12)
    np.testing.assert_allclose(per_instance_rank_std(ranks), np.std(ranks, axis=0))
    same = np.tile(rng.integers(0, 50, size=(1, 300)), (4, 1))
    assert mean_rank_variance(same) == 0.0
    assert mean_rank_variance(same, kind="var") == 0.0
    # hand-made: ranks (0, 2) -> std 1, var 1; (1, 1) -> 0; (0, 4) -> std 2, var 4
    hand = np.array([[0, 1, 0], [2, 1, 4]])
    assert mean_rank_variance(hand) == pytest.approx(1.0)
    assert mean_rank_variance(hand, kind="var") == pytest.approx(5 / 3)


def test_mrv_errors() -> None:
    with pytest.raises(ValueError, match="kind must be"):
        mean_rank_variance(np.zeros((2, 3)), kind="mad")
    with pytest.raises(ValueError, match="at least 2 rows"):
        mean_rank_variance(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="2-D"):
        mean_rank_variance(np.zeros(3))
    with pytest.raises(ValueError, match="2-D"):
        per_instance_rank_std(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"NaN \(language row 1, instance 2\)"):
        mean_rank_variance(np.array([[0, 1, 2], [0, 1, np.nan]]))


def test_assemble_mrv_ranks_aligns_instances() -> None:
    ids = {"en": ["a", "b", "c"], "de": ["c", "a", "b"], "ja": ["b", "c", "a"]}
    ranks = {"en": [1, 2, 3], "de": [30, 10, 20], "ja": [200, 300, 100]}
    got = assemble_mrv_ranks(ranks, ids, ["en", "de", "ja"])
    np.testing.assert_array_equal(got, [[1, 2, 3], [10, 20, 30], [100, 200, 300]])
    got = assemble_mrv_ranks(ranks, ids, ["de", "en"])
    np.testing.assert_array_equal(got, [[30, 10, 20], [3, 1, 2]])


def test_assemble_mrv_ranks_errors() -> None:
    ids = {"en": ["a", "b", "c"], "de": ["a", "c"], "ja": ["a", "b", "c", "d"]}
    ranks = {"en": [0, 0, 0], "de": [0, 0], "ja": [0, 0, 0, 0]}
    with pytest.raises(ValueError, match="instance 'b' has no rank in language 'de'"):
        assemble_mrv_ranks(ranks, ids, ["en", "de", "ja"])
    with pytest.raises(ValueError, match="instance 'd' has no rank in language 'en'"):
        assemble_mrv_ranks(ranks, ids, ["en", "ja"])
    with pytest.raises(ValueError, match="no ranks for language 'zh'"):
        assemble_mrv_ranks(ranks, ids, ["en", "zh"])
    with pytest.raises(ValueError, match="'de'.*does not match 2 instance ids"):
        assemble_mrv_ranks({**ranks, "de": [0, 0, 0]}, ids, ["en", "de"])
    with pytest.raises(ValueError, match="instance 'a' more than once"):
        assemble_mrv_ranks({**ranks, "de": [0, 0]}, {**ids, "de": ["a", "a"]}, ["en", "de"])
    with pytest.raises(ValueError, match="at least 2"):
        assemble_mrv_ranks(ranks, ids, ["en"])


def test_reading_rank_files_never_imports_torch() -> None:
    """compare/tables/figures jobs only read saved ranks and metrics: torch's start-up is not theirs to pay."""
    import subprocess
    import sys

    code = ("import sys, ccrk.metrics, ccrk.evaluation.compare, ccrk.report.tables, ccrk.report.figures; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
