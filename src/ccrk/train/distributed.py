"""Data-parallel process setup: torchrun, submitit (Slurm) or a single process.

The same trainer runs under ``torchrun --nproc_per_node N`` (which exports
RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT), as the N tasks of a
submitit job (which exports nothing torch understands, so the rendezvous is
derived from ``submitit.JobEnvironment``), or alone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the data-parallel group, and the device it trains on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    launcher: str  # "single", "torchrun" or "submitit"

    @property
    def is_main(self) -> bool:
        """Only the main rank writes files: checkpoints, logs, models."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def _submitit_environment() -> Any | None:
    """The submitit job environment when running as a submitit task, else None."""
    try:
        import submitit
    except ImportError:
        return None
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    try:
        return submitit.JobEnvironment()
    except RuntimeError:
        return None


def _port_for_job(job_id: str) -> int:
    # Two jobs on one node must not share a port; the job id is unique per cluster.
    digits = "".join(ch for ch in str(job_id) if ch.isdigit()) or "0"
    return 20000 + int(digits[-6:]) % 20000


def detect_launch() -> tuple[int, int, int, str]:
    """``(rank, world_size, local_rank, launcher)``, exporting the rendezvous for submitit tasks."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        local = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else 0
        return _env_int("RANK"), _env_int("WORLD_SIZE"), local, "torchrun"
    job = _submitit_environment()
    if job is not None and job.num_tasks > 1:
        os.environ.setdefault("MASTER_ADDR", str(job.hostnames[0]))
        os.environ.setdefault("MASTER_PORT", str(_port_for_job(job.job_id)))
        os.environ["RANK"] = str(job.global_rank)
        os.environ["WORLD_SIZE"] = str(job.num_tasks)
        os.environ["LOCAL_RANK"] = str(job.local_rank)
        return int(job.global_rank), int(job.num_tasks), int(job.local_rank), "submitit"
    return 0, 1, 0, "single"


def resolve_device(setting: str, local_rank: int) -> torch.device:
    """``auto``: this rank's GPU when CUDA is available, else the CPU."""
    if setting == "cpu" or (setting == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("train.device is 'cuda' but CUDA is not available on this machine")
    index = local_rank % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def setup_distributed(device_setting: str = "auto") -> DistContext:
    """Detect the launch, pick the device, and join the process group (gloo on CPU, nccl on CUDA)."""
    rank, world, local, launcher = detect_launch()
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is outside world size {world}")
    device = resolve_device(device_setting, local)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"backend": backend, "init_method": "env://", "rank": rank, "world_size": world}
        if device.type == "cuda":
            kwargs["device_id"] = device
        dist.init_process_group(**kwargs)
    return DistContext(rank=rank, world_size=world, local_rank=local, device=device, launcher=launcher)


def teardown_distributed(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        if ctx.device.type == "cuda":
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


def all_reduce_mean(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean of a tensor over ranks (the tensor itself without a group)."""
    if not ctx.distributed:
        return values
    out = values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / ctx.world_size


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. a decision only rank 0 could take)."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=ctx.device if ctx.device.type == "cuda" else None)
    return box[0]
