"""Gather features across data-parallel ranks so contrastive losses see the global batch.

Contrastive objectives get their negatives from the batch, so under data
parallelism every rank must score its images against *all* ranks' texts. The
gather keeps the autograd graph (``torch.distributed.nn.functional.all_gather``,
open_clip's ``gather_with_grad=True`` with ``local_loss=False``): every rank
computes the same global loss, and the backward of the gather sums, into each
shard, the gradients all ranks' copies of the loss send it. A shard's gradient is
therefore ``world_size`` times the gradient of the global loss, which is exactly
what DistributedDataParallel's *mean* all-reduce divides away: parameter
gradients equal those of one process on the concatenated batch. (Replacing the
local slot of a plain all-gather by the original tensor would instead give
``1/world_size`` of the true feature gradients after DDP's mean, while a
replicated temperature parameter would get its full gradient - an inconsistent
scaling, hence not used.)

Ranks may hold different numbers of rows (a last, smaller batch): sizes are
exchanged first and shards padded to the largest, then trimmed, so the result is
always the rank-ordered concatenation of the real rows.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["gather_features", "rank_offset", "world_info"]


def world_info() -> tuple[int, int]:
    """``(world_size, rank)`` of the default process group; ``(1, 0)`` when none is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def _all_sizes(tensors: tuple[Tensor, ...], world: int) -> list[list[int]]:
    """Rows of every tensor on every rank: ``sizes[rank][j]`` (one small collective for all tensors)."""
    local = torch.tensor([t.shape[0] for t in tensors], dtype=torch.long, device=tensors[0].device)
    gathered = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(gathered, local)
    return torch.stack(gathered).tolist()


def gather_features(*tensors: Tensor) -> tuple[Tensor, ...]:
    """All-gather each tensor along dim 0, in rank order, keeping gradients (identity without a group).

    Every tensor must have at least one dimension and the same trailing shape on
    every rank; the number of rows may differ between ranks.
    """
    for j, t in enumerate(tensors):
        if not isinstance(t, Tensor) or t.dim() == 0:
            raise ValueError(f"gather_features: argument {j} must be a tensor with a batch dimension, "
                             f"got {type(t).__name__} of shape {getattr(t, 'shape', None)}")
    world, _ = world_info()
    if world == 1 or not tensors:
        return tuple(tensors)
    from torch.distributed.nn.functional import all_gather as all_gather_with_grad

    sizes = _all_sizes(tensors, world)
    out = []
    for j, t in enumerate(tensors):  # loop over the few tensors, never over rows
        per_rank = [row[j] for row in sizes]
        longest = max(per_rank)
        if t.shape[0] < longest:
            t = torch.cat([t, t.new_zeros((longest - t.shape[0], *t.shape[1:]))])
        parts = all_gather_with_grad(t)
        out.append(torch.cat([p[:n] for p, n in zip(parts, per_rank)]))
    return tuple(out)


def rank_offset(local_size: int, device: torch.device | str | None = None) -> int:
    """Index of this rank's first row in the gathered batch (0 without a process group).

    Needed to turn local row numbers into global ones, e.g. the labels of a
    local-rows-vs-global-columns similarity matrix. ``device`` must suit the
    backend (a CUDA device for NCCL).
    """
    world, rank = world_info()
    if world == 1:
        return 0
    dummy = torch.empty((local_size,), device=device)
    sizes = _all_sizes((dummy,), world)
    return int(sum(row[0] for row in sizes[:rank]))
