"""Random streams of a training step, and the process RNG state a checkpoint records.

Exact resumption needs every random draw of step ``s`` to be a function of
(seed, s) alone, not of what earlier steps drew: a process that starts at
step ``s`` from a checkpoint has drawn nothing yet. So the objective gets a
fresh generator per micro-step, and the global torch RNG (dropout, drop-path)
is re-seeded per micro-step; the process RNG states are still saved and
restored, for any third-party code that draws from them between steps.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

#: Stream tags: the same (seed, step) must give unrelated numbers in each stream.
STREAM_OBJECTIVE = 1
STREAM_GLOBAL = 2


def derive_seed(*keys: int) -> int:
    """A 63-bit seed hashed from non-negative integer keys (so (1, 0) and (0, 1) differ)."""
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or key < 0:
            raise ValueError(f"seed keys must be non-negative integers, got {keys!r}")
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & ((1 << 63) - 1)


def step_generator(device: torch.device, seed: int, step: int, micro: int, rank: int) -> torch.Generator:
    """The objective's generator for one micro-step of one rank, on the batch's device.

    The rank is a key because matching negatives and MLM masks are drawn per
    rank from local rows: equal streams on all ranks would correlate them.
    """
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(seed, STREAM_OBJECTIVE, step, micro, rank))
    return generator


def seed_global_rng(seed: int, step: int, micro: int, rank: int) -> None:
    """Re-seed the global torch RNG (CPU and CUDA) for one micro-step of one rank (dropout masks)."""
    torch.manual_seed(derive_seed(seed, STREAM_GLOBAL, step, micro, rank))


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and every CUDA device) RNG states, loadable with ``weights_only``."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (CUDA states only where the devices exist)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    np.random.set_state({
        "bit_generator": npst["bit_generator"],
        "state": {"key": npst["key"].numpy().astype(np.uint32), "pos": int(npst["pos"])},
        "has_gauss": int(npst["has_gauss"]),
        "gauss": float(npst["gauss"]),
    })
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
