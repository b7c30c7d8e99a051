"""Positive-language choice, hard-negative sampling and the ITM loss."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ccrk.losses import (
    HardNegatives,
    choose_positive_language,
    itm_labels,
    itm_loss,
    positive_text_index,
    sample_hard_negatives,
    sample_rows,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: a second intra-op thread only adds wake-up latency on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sim(b: int, k: int, seed: int, scale: float = 5.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, b * k, generator=g) * scale


def _frequencies(draws: torch.Tensor, n: int) -> torch.Tensor:
    return torch.bincount(draws, minlength=n).double() / draws.numel()


# ---------------------------------------------------------------- the row sampler

def test_sample_rows_follows_weights_and_never_draws_zeros() -> None:
    weights = torch.tensor([[0.0, 1.0, 0.0, 3.0, 0.0],  # leading, inner and trailing zeros
                            [5.0, 0.0, 0.0, 0.0, 0.0],
                            [0.0, 0.0, 0.0, 0.0, 2e-5],
                            [1.0, 1.0, 1.0, 1.0, 1.0]])
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_rows(weights, g) for _ in range(4000)])  # [draws, rows]
    assert draws.dtype == torch.long
    for r in range(weights.shape[0]):
        expected = weights[r].double() / weights[r].sum()
        freq = _frequencies(draws[:, r], weights.shape[1])
        assert torch.all(freq[expected == 0] == 0)
        torch.testing.assert_close(freq, expected, atol=0.03, rtol=0)
    half = sample_rows(weights.half(), torch.Generator().manual_seed(1))
    assert torch.all(weights[torch.arange(4), half] > 0)


def test_sample_rows_bad_shape() -> None:
    with pytest.raises(ValueError, match="rows, N>0"):
        sample_rows(torch.ones(3))
    with pytest.raises(ValueError, match="rows, N>0"):
        sample_rows(torch.ones(3, 0))


# ---------------------------------------------------------------- positive language

def test_english_and_random_rules() -> None:
    sim = _sim(6, 4, seed=0)
    assert torch.equal(choose_positive_language(sim, 4, "english"), torch.zeros(6, dtype=torch.long))
    g = torch.Generator().manual_seed(1)
    draws = torch.cat([choose_positive_language(sim, 4, "random", g) for _ in range(500)])
    assert draws.dtype == torch.long and int(draws.min()) >= 0 and int(draws.max()) < 4
    torch.testing.assert_close(_frequencies(draws, 4), torch.full((4,), 0.25, dtype=torch.float64), atol=0.03, rtol=0)


def _hard_reference(sim: torch.Tensor, k: int) -> torch.Tensor:
    """The public code's rule, row by row: p_ij ∝ max(w) + 1e-5 - w[i, i*K+j], w = softmax(sim) + 1e-5."""
    w = F.softmax(sim.double(), dim=1) + 1e-5
    top = float(w.max()) + 1e-5
    rows = []
    for i in range(sim.shape[0]):
        p = torch.tensor([top - float(w[i, i * k + j]) for j in range(k)], dtype=torch.float64)
        rows.append(p / p.sum())
    return torch.stack(rows)


def test_hard_rule_follows_public_code_distribution_and_prefers_least_similar() -> None:
    b, k = 3, 4
    sim = torch.zeros(b, b * k)
    own = torch.tensor([[10.0, 8.0, 5.0, 2.0], [3.0, 9.0, 6.0, 1.0], [7.0, 7.0, 0.0, 7.0]])
    for i in range(b):
        sim[i, i * k:(i + 1) * k] = own[i]
    expected = _hard_reference(sim, k)
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([choose_positive_language(sim, k, "hard", g) for _ in range(3000)])  # [draws, B]
    for i in range(b):
        freq = _frequencies(draws[:, i], k)
        torch.testing.assert_close(freq, expected[i], atol=0.03, rtol=0)
        least = int(own[i].argmin())
        assert float(freq[least]) > 1 / k + 0.05  # clearly more often than uniform
    # Image 1's caption 1 holds the batch-global maximum weight, so it is (almost) never drawn.
    assert float(expected[1, 1]) < 1e-4
    assert float(_frequencies(draws[:, 1], k)[1]) < 0.005


def test_hard_rule_is_uniform_when_all_equal_and_handles_k1() -> None:
    g = torch.Generator().manual_seed(3)
    draws = torch.cat([choose_positive_language(torch.zeros(2, 6), 3, "hard", g) for _ in range(1000)])
    torch.testing.assert_close(_frequencies(draws, 3), torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.04,
                               rtol=0)
    assert torch.equal(choose_positive_language(_sim(5, 1, 0), 1, "hard"), torch.zeros(5, dtype=torch.long))


def test_positive_language_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown rule 'hardest'"):
        choose_positive_language(_sim(2, 2, 0), 2, "hardest")
    with pytest.raises(ValueError, match=r"\[B, B\*K\] with K=3.*\(2, 4\)"):
        choose_positive_language(_sim(2, 2, 0), 3, "hard")
    with pytest.raises(ValueError, match="positive int"):
        choose_positive_language(_sim(2, 2, 0), 0, "hard")


# ---------------------------------------------------------------- hard negatives

def test_negatives_are_never_positives_over_many_seeds() -> None:
    for seed in range(200):
        g = torch.Generator().manual_seed(seed)
        b = 2 + seed % 6
        k = 1 + seed % 4
        # Every fourth case puts huge logits on the positives: the others' softmax underflows to 0.
        sim = _sim(b, k, seed, scale=5.0 if seed % 4 else 1.0)
        if seed % 4 == 0:
            sim = sim + 1e4 * (torch.arange(b * k)[None, :] // k == torch.arange(b)[:, None])
        pos_lang = choose_positive_language(sim, k, ("hard", "random", "english")[seed % 3], g)
        neg = sample_hard_negatives(sim, k, pos_lang, generator=g)
        assert isinstance(neg, HardNegatives)
        assert neg.text.shape == (b,) and neg.image.shape == (b,)
        assert neg.text.dtype == torch.long and neg.image.dtype == torch.long
        assert int(neg.text.min()) >= 0 and int(neg.text.max()) < b * k
        assert int(neg.image.min()) >= 0 and int(neg.image.max()) < b
        assert not torch.any(neg.text // k == torch.arange(b)), (seed, neg.text)
        assert not torch.any(neg.image == torch.arange(b)), (seed, neg.image)


def test_negative_text_distribution_is_softmax_over_other_images_captions() -> None:
    b, k = 3, 2
    sim = _sim(b, k, seed=5, scale=1.5)
    pos_lang = torch.zeros(b, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_hard_negatives(sim, k, pos_lang, generator=g).text for _ in range(3000)])
    w = F.softmax(sim.double(), dim=1) + 1e-5
    for i in range(b):
        expected = torch.tensor([0.0 if t // k == i else float(w[i, t]) for t in range(b * k)], dtype=torch.float64)
        torch.testing.assert_close(_frequencies(draws[:, i], b * k), expected / expected.sum(), atol=0.03, rtol=0)


def test_negative_image_distribution_is_softmax_over_other_images() -> None:
    b, k = 4, 3
    sim = _sim(b, k, seed=8, scale=1.5)
    pos_lang = torch.tensor([1, 2, 0, 1])
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_hard_negatives(sim, k, pos_lang, generator=g).image for _ in range(3000)])
    for i in range(b):
        t = i * k + int(pos_lang[i])
        w = F.softmax(sim[:, t].double(), dim=0) + 1e-5  # caption t against every image
        expected = torch.tensor([0.0 if j == i else float(w[j]) for j in range(b)], dtype=torch.float64)
        torch.testing.assert_close(_frequencies(draws[:, i], b), expected / expected.sum(), atol=0.03, rtol=0)


def test_negative_image_is_drawn_for_the_positive_caption() -> None:
    b, k = 4, 3
    pos_lang = torch.tensor([2, 0, 1, 2])
    pos_text = positive_text_index(pos_lang, k)
    assert pos_text.tolist() == [2, 3, 7, 11]
    # Column of caption pos_text[i] is huge for image (i+1) % B only: the default sim_t2i = sim_i2t.T
    # must therefore pick image (i+1) % B; any other caption's column carries the opposite signal.
    sim = torch.zeros(b, b * k)
    sim[:, :] = 30.0 * (torch.arange(b)[:, None] == (torch.arange(b * k)[None, :] // k + 2) % b)
    for i in range(b):
        sim[(i + 1) % b, int(pos_text[i])] = 40.0
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        neg = sample_hard_negatives(sim, k, pos_lang, generator=g)
        assert neg.image.tolist() == [(i + 1) % b for i in range(b)]
    # An explicit sim_t2i takes precedence over sim_i2t.T.
    sim_t2i = torch.zeros(b * k, b)
    for i in range(b):
        sim_t2i[int(pos_text[i]), (i + 3) % b] = 40.0
    neg = sample_hard_negatives(sim, k, pos_lang, sim_t2i=sim_t2i, generator=g)
    assert neg.image.tolist() == [(i + 3) % b for i in range(b)]


def test_sampling_is_reproducible_with_a_generator() -> None:
    sim = _sim(8, 3, seed=1)
    runs = []
    for _ in range(2):
        g = torch.Generator().manual_seed(1234)
        pos = choose_positive_language(sim, 3, "hard", g)
        runs.append((pos, *sample_hard_negatives(sim, 3, pos, generator=g)))
    for x, y in zip(*runs):
        assert torch.equal(x, y)


def test_negatives_bad_input() -> None:
    with pytest.raises(ValueError, match="B >= 2"):
        sample_hard_negatives(_sim(1, 3, 0), 3, torch.zeros(1, dtype=torch.long))
    sim = _sim(3, 2, 0)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        sample_hard_negatives(sim, 2, torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="shape \\(3,\\)"):
        sample_hard_negatives(sim, 2, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer tensor"):
        sample_hard_negatives(sim, 2, torch.zeros(3))
    with pytest.raises(ValueError, match="sim_t2i must be"):
        sample_hard_negatives(sim, 2, torch.zeros(3, dtype=torch.long), sim_t2i=sim)


# ---------------------------------------------------------------- ITM

def test_itm_labels_order_positives_first() -> None:
    assert itm_labels(2).tolist() == [1, 1, 0, 0, 0, 0]


def test_itm_loss_matches_cross_entropy_with_documented_order() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(9, 2, generator=g, dtype=torch.float64, requires_grad=True)
    labels = [1, 1, 1, 0, 0, 0, 0, 0, 0]
    expected = sum(-torch.log_softmax(logits[r], 0)[labels[r]] for r in range(9)) / 9
    got = itm_loss(logits, 3)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)
    # A head that says "match" exactly on the first B rows is nearly perfect; on the last B it is not.
    confident = torch.tensor([[-20.0, 20.0]] * 3 + [[20.0, -20.0]] * 6)
    assert float(itm_loss(confident, 3)) < 1e-6
    assert float(itm_loss(confident.flip(0), 3)) > 10
    got.backward()
    assert logits.grad is not None


def test_itm_loss_bad_shape() -> None:
    with pytest.raises(ValueError, match=r"\[9, 2\].*\(8, 2\)"):
        itm_loss(torch.zeros(8, 2), 3)
    with pytest.raises(ValueError, match="positive int"):
        itm_loss(torch.zeros(0, 2), 0)
