"""Time the vectorised 1-to-K objective against the public code's loop formulation.

Three variants on the same random L2-normalised features (defaults: B=128, K=10, D=256, CPU, float32):

(a) ``ccrk``: ``one_to_k_itc`` forward+backward, then the matching step's
    sampling as implemented (``choose_positive_language("hard")`` +
    ``sample_hard_negatives``) from a no-grad similarity matrix;
(b) ``public-code formulation``: a B x B*K label matrix filled by a Python loop,
    the loss as sum(log_softmax * labels) in both directions, then the same
    sampling done row by row - one ``torch.multinomial`` call and ``.item()`` per
    row for the positive language, the negative image and the negative text,
    plus a loop zeroing each image's own captions;
(c) ``bare``: ``image_feat @ text_feat.T`` and one log-softmax, forward+backward
    (the floor any formulation pays).

It checks that (a) and (b) give the same loss, then prints the median of
several timed repeats (after warm-up) for each, plus the sampling part alone,
the ratios b/a (target >= 20) and a/c (target <= 2). Variants are timed
round-robin (see :func:`interleaved_times`). Run:
``PYTHONPATH=src python benchmarks/losses.py [--threads 1] [--device cpu] [--json out.json]``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

try:
    import ccrk  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ccrk.losses import choose_positive_language, one_to_k_itc, sample_hard_negatives  # noqa: E402


def make_inputs(b: int, k: int, d: int, seed: int, dtype: torch.dtype,
                device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    image = F.normalize(torch.randn(b, d, generator=g, dtype=dtype), dim=1)
    text = F.normalize(torch.randn(b * k, d, generator=g, dtype=dtype), dim=1)
    return image.to(device), text.to(device)


# ------------------------------------------------------------------ (a) this library

def sampling_vectorised(image: torch.Tensor, text: torch.Tensor, k: int, temp: float,
                        g: torch.Generator) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        sim_i2t = (image / temp) @ text.T
    pos_lang = choose_positive_language(sim_i2t, k, "hard", g)
    neg = sample_hard_negatives(sim_i2t, k, pos_lang, generator=g)
    return pos_lang, neg.text, neg.image


def step_vectorised(image: torch.Tensor, text: torch.Tensor, k: int, temp: float, g: torch.Generator) -> float:
    image = image.detach().requires_grad_(True)
    text = text.detach().requires_grad_(True)
    loss = one_to_k_itc(image, text, temp)
    loss.backward()
    sampling_vectorised(image.detach(), text.detach(), k, temp, g)
    return float(loss.detach())


# ------------------------------------------------------------------ (b) the public code's formulation

def loss_loop_labels(image: torch.Tensor, text: torch.Tensor, k: int, temp: float) -> torch.Tensor:
    b = image.shape[0]
    logits = image @ text.T / temp
    labels = torch.zeros(b, b * k, dtype=logits.dtype, device=logits.device)
    for i in range(b):
        labels[i, i * k:(i + 1) * k] = 1
    i2t = -torch.sum(F.log_softmax(logits, dim=1) * labels, dim=1).mean()
    t2i = -torch.sum(F.log_softmax(logits.T, dim=1) * labels.T, dim=1).mean()
    return (i2t + t2i) / 2 / k


def sampling_loop(image: torch.Tensor, text: torch.Tensor, k: int, temp: float,
                  g: torch.Generator) -> tuple[list[int], list[int], list[int]]:
    b = image.shape[0]
    with torch.no_grad():
        sim_i2t = image @ text.T / temp
        sim_t2i = text @ image.T / temp
        w_i2t = F.softmax(sim_i2t, dim=1) + 1e-5
        w_t2i = F.softmax(sim_t2i, dim=1) + 1e-5
        top = w_i2t.max() + 1e-5
    pos_text = []
    for i in range(b):
        j = torch.multinomial(top - w_i2t[i, i * k:(i + 1) * k], 1, generator=g).item()
        pos_text.append(i * k + j)
    for i in range(b):
        w_i2t[i, i * k:(i + 1) * k] = 0
        w_t2i[i * k:(i + 1) * k, i] = 0
    neg_image = [torch.multinomial(w_t2i[pos_text[i]], 1, generator=g).item() for i in range(b)]
    neg_text = [torch.multinomial(w_i2t[i], 1, generator=g).item() for i in range(b)]
    return pos_text, neg_image, neg_text


def step_loop(image: torch.Tensor, text: torch.Tensor, k: int, temp: float, g: torch.Generator) -> float:
    image = image.detach().requires_grad_(True)
    text = text.detach().requires_grad_(True)
    loss = loss_loop_labels(image, text, k, temp)
    loss.backward()
    sampling_loop(image.detach(), text.detach(), k, temp, g)
    return float(loss.detach())


# ------------------------------------------------------------------ (c) the floor

def step_bare(image: torch.Tensor, text: torch.Tensor, k: int, temp: float, g: torch.Generator) -> float:
    image = image.detach().requires_grad_(True)
    text = text.detach().requires_grad_(True)
    loss = -F.log_softmax(image @ text.T / temp, dim=1).mean()
    loss.backward()
    return float(loss.detach())


# ------------------------------------------------------------------ harness

def interleaved_times(fns: dict[str, Callable[[], object]], repeats: int, warmup: int,
                      device: str) -> dict[str, list[float]]:
    """Seconds per call of every variant, timed round-robin so that load drift on a shared machine
    hits all variants alike instead of biasing whichever happened to run during a busy spell."""
    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def check_same_loss(b: int, k: int, d: int, temp: float, seed: int) -> tuple[float, float]:
    """(a) and (b) in float64, where they must agree to rounding."""
    image, text = make_inputs(b, k, d, seed, torch.float64)
    a = float(one_to_k_itc(image, text, temp))
    bb = float(loss_loop_labels(image, text, k, temp))
    if abs(a - bb) > 1e-9 * max(1.0, abs(a)):
        raise SystemExit(f"loss mismatch: vectorised {a!r} vs loop formulation {bb!r}")
    return a, bb


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--temp", type=float, default=0.07)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads (default 1: reproducible on a shared machine, where a second "
                             "intra-op thread mostly waits to be scheduled); 0 = leave torch's default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="the brief's numbers are CPU; 'cuda' also works")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    b, k, d, temp = args.batch, args.k, args.dim, args.temp

    loss64_a, loss64_b = check_same_loss(b, k, d, temp, args.seed)
    image, text = make_inputs(b, k, d, args.seed, torch.float32, args.device)
    loss32_a = step_vectorised(image, text, k, temp, torch.Generator(args.device).manual_seed(0))
    loss32_b = step_loop(image, text, k, temp, torch.Generator(args.device).manual_seed(0))
    if abs(loss32_a - loss32_b) > 1e-5 * max(1.0, abs(loss32_a)):
        raise SystemExit(f"float32 loss mismatch: vectorised {loss32_a!r} vs loop formulation {loss32_b!r}")

    g = torch.Generator(args.device).manual_seed(1)
    variants = {"a_vectorised_s": step_vectorised, "b_loop_s": step_loop, "c_bare_s": step_bare,
                "sampling_vectorised_s": sampling_vectorised, "sampling_loop_s": sampling_loop}
    times = interleaved_times({name: (lambda fn=fn: fn(image, text, k, temp, g)) for name, fn in variants.items()},
                              args.repeats, args.warmup, args.device)
    res = {name: statistics.median(t) for name, t in times.items()}
    fastest = {name: min(t) for name, t in times.items()}
    res["ratio_b_over_a"] = res["b_loop_s"] / res["a_vectorised_s"]
    res["ratio_a_over_c"] = res["a_vectorised_s"] / res["c_bare_s"]
    res["ratio_sampling_loop_over_vectorised"] = res["sampling_loop_s"] / res["sampling_vectorised_s"]

    print(f"B={b} K={k} D={d} temp={temp} float32 {args.device}, torch {torch.__version__}, "
          f"threads={torch.get_num_threads()}, median of {args.repeats} interleaved repeats (warm-up {args.warmup})")
    print(f"loss (float64): vectorised {loss64_a:.12f}  loop formulation {loss64_b:.12f}")
    print(f"loss (float32): vectorised {loss32_a:.7f}  loop formulation {loss32_b:.7f}")
    for key, label in [("a_vectorised_s", "(a) ccrk: one_to_k_itc fwd+bwd + hard sampling"),
                       ("b_loop_s", "(b) public-code formulation (loops, .item())"),
                       ("c_bare_s", "(c) bare matmul + log-softmax fwd+bwd"),
                       ("sampling_vectorised_s", "    sampling only, vectorised"),
                       ("sampling_loop_s", "    sampling only, per-row loops")]:
        print(f"{label:<52} {res[key] * 1e3:9.3f} ms   (min {fastest[key] * 1e3:8.3f} ms)")
    print(f"b/a = {res['ratio_b_over_a']:.2f}x (target >= 20)   a/c = {res['ratio_a_over_c']:.2f}x (target <= 2)   "
          f"sampling loop/vectorised = {res['ratio_sampling_loop_over_vectorised']:.1f}x")
    if args.json:
        args.json.write_text(json.dumps({"batch": b, "k": k, "dim": d, "device": args.device,
                                         "threads": torch.get_num_threads(), "torch": torch.__version__,
                                         "median": res, "min": fastest}, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
