"""Contrastive losses against slow references written from docs/design.md's words ("Objectives"), gradients, and 2-rank gloo runs."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from ccrk.losses import cross_lingual_itc, cross_modal_itc, gather_features, one_to_k_itc, rank_offset

LOSSES = {"one_to_k": one_to_k_itc, "cross_modal": cross_modal_itc, "cross_lingual": cross_lingual_itc}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: a second intra-op thread only adds wake-up latency on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- slow references (plain Python floats)

def _logits(a: torch.Tensor, b: torch.Tensor, temp: float) -> list[list[float]]:
    return [[sum(float(x) * float(y) for x, y in zip(a[i], b[t])) / temp for t in range(len(b))]
            for i in range(len(a))]


def _lse(values: list[float]) -> float:
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


def ref_one_to_k(image: torch.Tensor, text: torch.Tensor, temp: float) -> float:
    """docs/design.md: i2t = mean over images of -sum over own K captions of log-softmax over all B*K texts;
    t2i = mean over texts of the cross-entropy against its image; loss = (i2t + t2i) / 2 / K."""
    b = len(image)
    k = len(text) // b
    logits = _logits(image, text, temp)
    i2t = 0.0
    for i in range(b):
        lse = _lse(logits[i])
        i2t += -sum(logits[i][i * k + j] - lse for j in range(k))
    i2t /= b
    t2i = 0.0
    for t in range(b * k):
        column = [logits[i][t] for i in range(b)]
        t2i += -(logits[t // k][t] - _lse(column))
    t2i /= b * k
    return (i2t + t2i) / 2 / k


def ref_clip(a: torch.Tensor, b: torch.Tensor, temp: float) -> float:
    """Symmetric InfoNCE: mean of the row-wise and column-wise cross-entropy against the diagonal."""
    n = len(a)
    logits = _logits(a, b, temp)
    rows = sum(-(logits[i][i] - _lse(logits[i])) for i in range(n)) / n
    cols = sum(-(logits[j][j] - _lse([logits[i][j] for i in range(n)])) for j in range(n)) / n
    return (rows + cols) / 2


def ref_cross_lingual(image: torch.Tensor, text: torch.Tensor, temp: float) -> float:
    b = len(image)
    k = len(text) // b
    english = text[0::k]
    loss = ref_clip(image, english, temp)
    if k > 1:
        loss += sum(ref_clip(english, text[j::k], temp) for j in range(1, k)) / (k - 1)
    return loss


def _features(b: int, n: int, d: int, seed: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = F.normalize(torch.randn(b, d, generator=g, dtype=dtype), dim=1)
    text = F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=1)
    return image, text


# ---------------------------------------------------------------- values

@pytest.mark.parametrize("b,k", [(1, 1), (1, 4), (2, 3), (5, 1), (4, 4), (3, 10)])
@pytest.mark.parametrize("temp", [0.07, 1.0])
def test_one_to_k_matches_reference(b: int, k: int, temp: float) -> None:
    image, text = _features(b, b * k, 6, seed=b * 100 + k)
    got = one_to_k_itc(image, text, temp)
    assert got.dim() == 0
    assert float(got) == pytest.approx(ref_one_to_k(image, text, temp), abs=1e-9)


@pytest.mark.parametrize("b,k", [(1, 1), (2, 2), (4, 3), (3, 10), (6, 1)])
def test_cross_lingual_matches_reference(b: int, k: int) -> None:
    image, text = _features(b, b * k, 5, seed=7 + b * k)
    got = cross_lingual_itc(image, text, torch.tensor(0.07, dtype=torch.float64))
    assert float(got) == pytest.approx(ref_cross_lingual(image, text, 0.07), abs=1e-9)


@pytest.mark.parametrize("b", [1, 2, 7])
def test_cross_modal_matches_reference(b: int) -> None:
    image, text = _features(b, b, 8, seed=b)
    assert float(cross_modal_itc(image, text, 0.05)) == pytest.approx(ref_clip(image, text, 0.05), abs=1e-9)


def test_one_to_k_with_one_caption_is_exactly_clip() -> None:
    for seed in range(5):
        image, text = _features(6, 6, 16, seed=seed, dtype=torch.float32)
        assert torch.equal(one_to_k_itc(image, text, 0.07), cross_modal_itc(image, text, 0.07))
        assert torch.equal(cross_lingual_itc(image, text, 0.07), cross_modal_itc(image, text, 0.07))


def test_one_to_k_depends_on_caption_layout() -> None:
    # Rows i*K..i*K+K-1 belong to image i: moving captions between images must change the loss.
    image, text = _features(3, 6, 4, seed=3)
    swapped = text[[1, 0, 2, 3, 4, 5]]  # within image 0's block: same loss
    moved = text[[2, 1, 0, 3, 4, 5]]  # caption of image 1 put in image 0's block
    base = one_to_k_itc(image, text, 0.1)
    assert float(one_to_k_itc(image, swapped, 0.1)) == pytest.approx(float(base), abs=1e-12)
    assert abs(float(one_to_k_itc(image, moved, 0.1)) - float(base)) > 1e-3


def test_float_and_tensor_temperature_agree() -> None:
    image, text = _features(4, 12, 5, seed=11)
    for fn in (one_to_k_itc, cross_lingual_itc):
        assert float(fn(image, text, 0.2)) == pytest.approx(float(fn(image, text, torch.tensor(0.2, dtype=torch.float64))), abs=1e-12)


def test_low_precision_features_give_a_float32_loss() -> None:
    image, text = _features(4, 12, 8, seed=5, dtype=torch.float32)
    image16, text16 = image.bfloat16().requires_grad_(True), text.bfloat16().requires_grad_(True)
    loss = one_to_k_itc(image16, text16, 0.07)
    assert loss.dtype == torch.float32
    reference = ref_one_to_k(image16.detach().double(), text16.detach().double(), 0.07)
    assert float(loss.detach()) == pytest.approx(reference, rel=2e-2)
    loss.backward()
    assert image16.grad is not None and image16.grad.dtype == torch.bfloat16


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("name,b,k", [("one_to_k", 3, 2), ("one_to_k", 2, 1), ("cross_modal", 3, 1),
                                      ("cross_lingual", 3, 3), ("cross_lingual", 2, 1)])
def test_gradcheck(name: str, b: int, k: int) -> None:
    image, text = _features(b, b * k, 4, seed=b + k)
    image.requires_grad_(True)
    text.requires_grad_(True)
    temp = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(LOSSES[name], (image, text, temp), eps=1e-6, atol=1e-7)


# ---------------------------------------------------------------- bad input

def test_indivisible_text_rows_name_both_shapes() -> None:
    image, text = _features(3, 7, 4, seed=0)
    for fn in (one_to_k_itc, cross_lingual_itc):
        with pytest.raises(ValueError, match=r"\(3, 4\).*\(7, 4\)"):
            fn(image, text, 0.07)


def test_bad_inputs_raise() -> None:
    image, text = _features(3, 6, 4, seed=0)
    with pytest.raises(ValueError, match="one caption per image"):
        cross_modal_itc(image, text, 0.07)
    with pytest.raises(ValueError, match="feature sizes differ"):
        one_to_k_itc(image, text[:, :3], 0.07)
    with pytest.raises(ValueError, match="2-D"):
        one_to_k_itc(image[0], text, 0.07)
    with pytest.raises(ValueError, match="B\\*K rows"):
        one_to_k_itc(image[:0], text, 0.07)
    for bad in (0.0, -1.0, float("nan"), "0.07", torch.ones(2)):
        with pytest.raises(ValueError, match="temp"):
            one_to_k_itc(image, text, bad)


def test_gather_is_identity_without_process_group() -> None:
    a, b = torch.randn(3, 2), torch.randn(6, 2)
    ga, gb = gather_features(a, b)
    assert ga is a and gb is b
    assert rank_offset(3) == 0
    with pytest.raises(ValueError, match="argument 0"):
        gather_features(torch.tensor(1.0))


# ---------------------------------------------------------------- data parallel (2 gloo ranks)

# Unequal shards on purpose: rank 0 holds 3 images, rank 1 holds 2 (exercises the padding path).
SHARDS = [(0, 3), (3, 5)]
K_OF = {"one_to_k": 3, "cross_modal": 1, "cross_lingual": 3}


def _dist_inputs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {name: _features(5, 5 * k, 6, seed=42 + k) for name, k in K_OF.items()}


def _dist_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        results: dict[str, object] = {}
        lo, hi = SHARDS[rank]
        results["offset"] = rank_offset(hi - lo)
        (ids,) = gather_features(torch.arange(lo, hi))
        results["gathered_ids"] = ids
        for name, (image_full, text_full) in _dist_inputs().items():
            k = K_OF[name]
            # The full inputs play the role of replicated parameters; each rank uses only its shard.
            image = image_full.clone().requires_grad_(True)
            text = text_full.clone().requires_grad_(True)
            temp = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
            loss = LOSSES[name](image[lo:hi], text[lo * k:hi * k], temp)
            loss.backward()
            grads = [image.grad, text.grad, temp.grad]
            for g in grads:  # what DistributedDataParallel does: mean all-reduce of the gradients
                dist.all_reduce(g)
                g /= world
            results[name] = (loss.detach(), *grads)
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
        # Neither rank tears down its gloo pair while the other may still use it: without this, a rank that
        # finished first aborted the other about one run in five ("terminate called without an active
        # exception", SIGABRT; measured on a 2-core Zen 4 machine).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_rank_gloo_matches_single_process(tmp_path: Path) -> None:
    world = 2
    mp.spawn(_dist_worker, args=(world, str(tmp_path / "init"), str(tmp_path)), nprocs=world, join=True)
    per_rank = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]
    assert [r["offset"] for r in per_rank] == [0, 3]
    for r in per_rank:
        assert torch.equal(r["gathered_ids"], torch.arange(5))
    for name, (image_full, text_full) in _dist_inputs().items():
        image = image_full.clone().requires_grad_(True)
        text = text_full.clone().requires_grad_(True)
        temp = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
        loss = LOSSES[name](image, text, temp)
        loss.backward()
        expected = (loss.detach(), image.grad, text.grad, temp.grad)
        for r in per_rank:
            for got, want in zip(r[name], expected):
                torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
