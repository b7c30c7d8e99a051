"""AdamW with the recipe's parameter groups, the warm-up + linear-decay schedule, and step counts.

The schedule is sized from the number of optimiser steps the loop will really
take, derived from the sampler, not from ``len(dataset) / batch_size``: with a
dropped last batch or gradient accumulation the naive count overshoots, and
the learning rate then never reaches zero (or, undershooting, hits zero early
and trains the last steps at lr 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ccrk.data.dataset import EpochSampler
from ccrk.train.config import TrainConfig


@dataclass(frozen=True)
class StepPlan:
    """How one epoch is cut: per-rank micro-batches, optimiser steps, and what is dropped."""

    samples_per_rank: int  # indices one rank visits in an epoch (EpochSampler.per_rank)
    micro_batch: int  # per-rank samples a micro-step
    grad_accum: int
    steps_per_epoch: int  # optimiser steps an epoch
    epochs: int

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def samples_per_step(self) -> int:
        """Per-rank samples one optimiser step consumes."""
        return self.micro_batch * self.grad_accum

    def sampler_start(self, epoch_step: int) -> int:
        """Per-rank sampler position after ``epoch_step`` optimiser steps of an epoch."""
        return epoch_step * self.samples_per_step


def plan_steps(sampler: EpochSampler, cfg: TrainConfig) -> StepPlan:
    """Optimiser steps an epoch for ``cfg`` on ``sampler``'s shard.

    Micro-batches are whole (``drop_last``); the micro-batches that do not
    fill a last accumulation group are dropped too, so every optimiser step
    averages exactly ``grad_accum`` micro-batches and the epoch boundary is
    the same at every world size (the global batch must divide evenly).
    """
    world = sampler.world_size
    if cfg.batch_size % world:
        raise ValueError(
            f"{cfg.where}.batch_size={cfg.batch_size} is the global batch and must be divisible by the "
            f"{world} data-parallel processes"
        )
    micro = cfg.batch_size // world
    micro_batches = sampler.per_rank // micro
    steps = micro_batches // cfg.grad_accum
    if steps < 1:
        raise ValueError(
            f"{sampler.n} training samples give no optimiser step per epoch with {cfg.where}.batch_size="
            f"{cfg.batch_size} and {cfg.where}.grad_accum={cfg.grad_accum}; lower them"
        )
    return StepPlan(sampler.per_rank, micro, cfg.grad_accum, steps, cfg.epochs)


def _no_decay_names(model: nn.Module) -> set[str]:
    """Biases, LayerNorm weights and the temperature: decaying them pulls them to 0, which is never wanted."""
    names: set[str] = set()
    for module_name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm):
            for pname, _ in module.named_parameters(recurse=False):
                names.add(f"{module_name}.{pname}" if module_name else pname)
    for name, _ in model.named_parameters():
        if name.endswith("bias") or name.rsplit(".", 1)[-1] == "temp":
            names.add(name)
    return names


def parameter_groups(model: nn.Module, cfg: TrainConfig, new_names: set[str]) -> list[dict[str, Any]]:
    """Four AdamW groups: {pretrained, new (lr x lr_mult_new)} x {decayed, not decayed}.

    Each group carries ``name`` and ``lr_mult`` so the scheduler and logs can
    tell them apart; empty groups are left out. A tied tensor appears once
    (``named_parameters`` de-duplicates).
    """
    no_decay = _no_decay_names(model)
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        buckets.setdefault((name in new_names, name not in no_decay), []).append(param)
    groups = []
    for (new, decay), params in sorted(buckets.items()):
        mult = cfg.lr_mult_new if new else 1.0
        groups.append({
            "params": params,
            "lr": cfg.lr * mult,
            "weight_decay": cfg.weight_decay if decay else 0.0,
            "lr_mult": mult,
            "name": f"{'new' if new else 'pretrained'}{'' if decay else '_no_decay'}",
        })
    return groups


def build_optimizer(model: nn.Module, cfg: TrainConfig, new_names: set[str]) -> torch.optim.Optimizer:
    """AdamW (the paper's) or SGD with momentum 0.9, over :func:`parameter_groups`.

    SGD's update is linear in the gradient, so two runs whose gradients differ
    in their last bits (another summation order) stay within float precision
    of each other; Adam divides by the root of the second moment and turns a
    last-bit difference of a near-zero gradient into a visible weight change.
    """
    groups = parameter_groups(model, cfg, new_names)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), eps=1e-8)


def warmup_steps(warmup: float | int, total: int) -> int:
    """A float is a fraction of ``total``; an int is a count (capped at ``total``)."""
    if isinstance(warmup, float):
        return int(round(warmup * total))
    return min(int(warmup), total)


class WarmupSchedule:
    """lr factor for optimiser step ``s`` (0-based): a linear ramp over ``warmup`` steps, then linear decay.

    Ramp ``(s + 1) / warmup`` and decay ``(total - s) / (total - warmup)``:
    no step runs at lr 0 (the first step of the usual ``s / warmup`` ramp
    does), the peak is reached on step ``warmup - 1`` and held on step
    ``warmup``, and the factor after the last step, ``s = total``, is exactly
    0. A class rather than a lambda so ``LambdaLR.state_dict`` records its
    parameters.
    """

    def __init__(self, warmup: int, total: int, kind: str = "linear") -> None:
        self.warmup = int(warmup)
        self.total = int(total)
        self.kind = kind

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind == "constant":
            return 1.0
        return max(0.0, (self.total - step) / max(1, self.total - self.warmup))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    schedule = WarmupSchedule(warmup_steps(cfg.warmup, total_steps), total_steps, cfg.schedule)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
