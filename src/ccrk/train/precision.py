"""Mixed precision: which autocast dtype, and whether losses need a GradScaler."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    """``name`` is fp32, bf16 or fp16 as resolved for ``device_type``."""

    name: str
    device_type: str

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Enabled only for fp16, whose small exponent range underflows gradients without scaling."""
        return torch.amp.GradScaler(self.device_type, enabled=self.name == "fp16")


def resolve_precision(setting: str, device: torch.device) -> Precision:
    """``auto``: bf16 on a CUDA device that supports it, else fp16 on CUDA; fp32 on the CPU.

    The CPU default stays fp32 because CPU autocast is slower than fp32 for
    the small matrices of the embedded model and would change its numerics.
    """
    kind = device.type
    if setting == "auto":
        if kind == "cuda":
            return Precision("bf16" if torch.cuda.is_bf16_supported() else "fp16", kind)
        return Precision("fp32", kind)
    if setting == "fp16" and kind != "cuda":
        raise ValueError(f"train.precision 'fp16' needs a CUDA device, but training runs on {device}")
    if setting == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"train.precision 'bf16' is not supported by {torch.cuda.get_device_name(device)}")
    if setting not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"unknown precision {setting!r}")
    return Precision(setting, kind)
