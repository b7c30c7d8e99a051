"""Benchmark: ccrk.metrics ranks vs the per-row argsort loops of the paper's public code.

Run: ``PYTHONPATH=src python benchmarks/ranks.py [--images 2000 --per-image 5 --repeats 3]``

Times both directions on one random tie-free float32 score matrix, asserts
that the ranks are identical, prints both times and their ratio, then the
peak memory of the ccrk path on a 5,000 x 25,000 evaluation (the xFlickr&CO /
COCO 5k test scale), measured as the growth of the process's resident-set
high-water mark past the scores themselves.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ccrk.metrics import ranks_i2t, ranks_t2i


def reference_ranks(scores_i2t: np.ndarray, scores_t2i: np.ndarray, img2txt, txt2img) -> tuple[np.ndarray, np.ndarray]:
    """The public code's loops: a descending argsort per row, then ``np.where`` for the true candidate."""
    r_i2t = np.zeros(scores_i2t.shape[0], dtype=np.int64)
    for index, row in enumerate(scores_i2t):
        inds = np.argsort(row)[::-1]
        best = 10**20
        for cap in img2txt[index]:
            best = min(best, int(np.where(inds == cap)[0][0]))
        r_i2t[index] = best
    r_t2i = np.zeros(scores_t2i.shape[0], dtype=np.int64)
    for index, row in enumerate(scores_t2i):
        inds = np.argsort(row)[::-1]
        r_t2i[index] = np.where(inds == txt2img[index])[0][0]
    return r_i2t, r_t2i


def ours(scores_i2t: np.ndarray, scores_t2i: np.ndarray, img2txt, txt2img) -> tuple[np.ndarray, np.ndarray]:
    return ranks_i2t(scores_i2t, img2txt), ranks_t2i(scores_t2i, txt2img)


def tie_free_scores(rng: np.random.Generator, n_img: int, n_txt: int) -> np.ndarray:
    """Distinct float32 values: consecutive bit patterns from 1.0 upwards, shuffled."""
    bits = np.uint32(0x3F800000) + rng.permutation(n_img * n_txt).astype(np.uint32)
    return bits.view(np.float32).reshape(n_img, n_txt)


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _rss_kib(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else None


def peak_memory(n_img: int, per_image: int) -> None:
    """Peak resident memory of the ccrk path beyond the scores, at ``n_img x n_img*per_image``."""
    n_txt = n_img * per_image
    rng = np.random.default_rng(1)
    scores = rng.random((n_img, n_txt), dtype=np.float32)
    img2txt = [list(range(i * per_image, (i + 1) * per_image)) for i in range(n_img)]
    txt2img = np.repeat(np.arange(n_img), per_image)
    ranks_i2t(scores[:2], img2txt[:2])  # warm-up: one-off import-time allocations are not the metric's memory
    baseline = _rss_kib("VmRSS")
    try:  # reset the high-water mark so that it measures from here (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
        reset = _rss_kib("VmHWM") is not None
    except OSError:
        reset = False
    before_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    r_i2t = ranks_i2t(scores, img2txt)
    r_t2i = ranks_t2i(scores.T, txt2img)  # transposed view: no full copy
    elapsed = time.perf_counter() - t0
    if reset:
        peak = _rss_kib("VmHWM") - baseline
        how = "VmHWM after reset"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_max
        how = "ru_maxrss growth (lower bound)"
    print(
        f"peak memory {n_img} x {n_txt}: scores {scores.nbytes / 2**20:.0f} MiB, "
        f"ccrk path +{peak / 1024:.0f} MiB beyond them ({how}); both directions in {elapsed:.2f} s; "
        f"R@1 t2i {100 * np.mean(r_t2i < 1):.2f} i2t {100 * np.mean(r_i2t < 1):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--per-image", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-images", type=int, default=5000, help="0 skips the peak-memory measurement")
    args = parser.parse_args()

    n_img, n_txt = args.images, args.images * args.per_image
    rng = np.random.default_rng(0)
    scores_i2t = tie_free_scores(rng, n_img, n_txt)
    scores_t2i = np.ascontiguousarray(scores_i2t.T)
    img2txt = [list(range(i * args.per_image, (i + 1) * args.per_image)) for i in range(n_img)]
    txt2img = np.repeat(np.arange(n_img), args.per_image)

    print(f"{n_img} images x {n_txt} captions, float32 numpy scores (host kernel), {os.cpu_count()} CPUs")
    t_ours, (o_i2t, o_t2i) = best_time(lambda: ours(scores_i2t, scores_t2i, img2txt, txt2img), args.repeats)
    t_ref, (r_i2t, r_t2i) = best_time(lambda: reference_ranks(scores_i2t, scores_t2i, img2txt, txt2img), args.repeats)
    np.testing.assert_array_equal(o_i2t, r_i2t)
    np.testing.assert_array_equal(o_t2i, r_t2i)
    print(f"ranks identical in both directions (best of {args.repeats})")
    print(f"reference loops: {t_ref:.3f} s   ccrk.metrics: {t_ours:.3f} s   speed-up {t_ref / t_ours:.1f}x")
    if args.peak_images:
        peak_memory(args.peak_images, args.per_image)


if __name__ == "__main__":
    main()
