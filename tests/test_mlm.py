"""Token masking for MLM and the MLM loss."""
from __future__ import annotations

import pytest
import torch

from ccrk.losses import IGNORE_INDEX, mask_tokens, mlm_loss

PAD, CLS, SEP, MASK = 0, 1, 2, 3
SPECIALS = [PAD, CLS, SEP, MASK]
VOCAB = 1000


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: a second intra-op thread only adds wake-up latency on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _batch(n: int, length: int, seed: int, min_len: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of [CLS] words... [SEP] [PAD]...; some special ids also occur inside the text."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (n, length), generator=g)
    lengths = torch.randint(min_len, length + 1, (n,), generator=g)
    positions = torch.arange(length)[None, :]
    attention = (positions < lengths[:, None]).long()
    stray = torch.rand(n, length, generator=g) < 0.05
    ids = torch.where(stray, torch.tensor(SEP), ids)
    ids[:, 0] = CLS
    ids[torch.arange(n), lengths - 1] = SEP
    ids = torch.where(attention.bool(), ids, torch.tensor(PAD))
    return ids, attention


def _expected_counts(ids: torch.Tensor, attention: torch.Tensor, prob: float, max_masks: int) -> list[int]:
    out = []
    for row, att in zip(ids.tolist(), attention.tolist()):
        n_real = sum(att)
        maskable = sum(1 for t, a in zip(row, att) if a and t not in SPECIALS)
        out.append(min(min(max_masks, max(1, round(n_real * prob))), maskable))
    return out


@pytest.mark.parametrize("prob,max_masks", [(0.4, 12), (0.15, 5), (0.4, 1000), (0.3, 1000)])
def test_never_masks_special_or_padding_and_counts_follow_public_code(prob: float, max_masks: int) -> None:
    ids, attention = _batch(300, 40, seed=int(prob * 100) + max_masks)
    g = torch.Generator().manual_seed(0)
    masked, labels = mask_tokens(ids, attention, SPECIALS, MASK, VOCAB, prob, max_masks, g)
    chosen = labels != IGNORE_INDEX
    protected = (attention == 0) | torch.isin(ids, torch.tensor(SPECIALS))
    assert not torch.any(chosen & protected)
    assert torch.equal(masked[~chosen], ids[~chosen])  # nothing outside the chosen positions changes
    assert torch.equal(labels[chosen], ids[chosen])
    counts = chosen.sum(1)
    assert int(counts.max()) <= max_masks
    assert counts.tolist() == _expected_counts(ids, attention, prob, max_masks)


@pytest.mark.parametrize("prob", [0.15, 0.4])
def test_masked_fraction_close_to_prob_on_long_inputs(prob: float) -> None:
    ids, attention = _batch(64, 512, seed=7, min_len=400)
    _, labels = mask_tokens(ids, attention, SPECIALS, MASK, VOCAB, prob, max_masks=10_000,
                            generator=torch.Generator().manual_seed(1))
    maskable = (attention == 1) & ~torch.isin(ids, torch.tensor(SPECIALS))
    fraction = float((labels != IGNORE_INDEX).sum()) / float(maskable.sum())
    assert fraction == pytest.approx(prob, rel=0.08)


def test_replacement_split_is_80_10_10() -> None:
    ids, attention = _batch(400, 64, seed=3, min_len=60)
    masked, labels = mask_tokens(ids, attention, SPECIALS, MASK, VOCAB, 0.4, 64,
                                 torch.Generator().manual_seed(2))
    chosen = labels != IGNORE_INDEX
    total = float(chosen.sum())
    assert total > 5000
    to_mask = float((chosen & (masked == MASK)).sum()) / total
    kept = float((chosen & (masked == ids)).sum()) / total
    random = 1.0 - to_mask - kept
    assert to_mask == pytest.approx(0.8, abs=0.02)
    assert kept == pytest.approx(0.1 + 0.1 / VOCAB, abs=0.015)
    assert random == pytest.approx(0.1, abs=0.015)
    replaced = masked[chosen & (masked != MASK) & (masked != ids)]
    assert int(replaced.min()) >= 0 and int(replaced.max()) < VOCAB


def test_chosen_positions_are_uniform_over_maskable_tokens() -> None:
    n, length = 4000, 10
    ids = torch.arange(10, 10 + length).repeat(n, 1)
    ids[:, 0] = CLS
    ids[:, -1] = SEP
    attention = torch.ones_like(ids)
    _, labels = mask_tokens(ids, attention, SPECIALS, MASK, VOCAB, 0.2, 12, torch.Generator().manual_seed(5))
    hits = (labels != IGNORE_INDEX).double().mean(0)
    assert float(hits[0]) == 0.0 and float(hits[-1]) == 0.0
    # round(10 * 0.2) = 2 masks among 8 maskable tokens: each is chosen with probability 1/4.
    torch.testing.assert_close(hits[1:-1], torch.full((8,), 0.25, dtype=torch.float64), atol=0.03, rtol=0)


def test_rows_without_maskable_tokens_are_untouched_and_generator_reproduces() -> None:
    ids = torch.tensor([[CLS, SEP, PAD, PAD], [CLS, 50, 51, SEP]])
    attention = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    runs = [mask_tokens(ids, attention, torch.tensor(SPECIALS), MASK, VOCAB, 0.4, 12,
                        torch.Generator().manual_seed(9)) for _ in range(2)]
    (masked, labels), (masked2, labels2) = runs
    assert torch.equal(masked, masked2) and torch.equal(labels, labels2)
    assert torch.equal(masked[0], ids[0]) and torch.all(labels[0] == IGNORE_INDEX)
    assert int((labels[1] != IGNORE_INDEX).sum()) == 2  # round(4 * 0.4) = 2


def test_mask_tokens_bad_input() -> None:
    ids, attention = _batch(2, 8, seed=0)
    with pytest.raises(ValueError, match="one shape"):
        mask_tokens(ids, attention[:, :4], SPECIALS, MASK, VOCAB)
    with pytest.raises(ValueError, match="prob"):
        mask_tokens(ids, attention, SPECIALS, MASK, VOCAB, prob=0.0)
    with pytest.raises(ValueError, match="max_masks"):
        mask_tokens(ids, attention, SPECIALS, MASK, VOCAB, max_masks=0)
    with pytest.raises(ValueError, match="mask_id"):
        mask_tokens(ids, attention, SPECIALS, VOCAB, VOCAB)


def test_mlm_loss_matches_reference_and_handles_no_masks() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 7, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.full((3, 5), IGNORE_INDEX)
    labels[0, 1], labels[1, 4], labels[2, 0], labels[2, 3] = 6, 0, 2, 2
    terms = [-torch.log_softmax(logits[i, j], 0)[int(labels[i, j])]
             for i in range(3) for j in range(5) if int(labels[i, j]) != IGNORE_INDEX]
    torch.testing.assert_close(mlm_loss(logits, labels), sum(terms) / len(terms), atol=1e-12, rtol=0)
    empty = mlm_loss(logits, torch.full((3, 5), IGNORE_INDEX))
    assert float(empty.detach()) == 0.0
    empty.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    with pytest.raises(ValueError, match=r"\[N, L, V\]"):
        mlm_loss(logits[0], labels)
