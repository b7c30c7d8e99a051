"""Input coercion shared by the metric modules.

Every public metric accepts numpy arrays, torch tensors (any device) or plain
sequences, so evaluation code can hand over whatever it holds without copying
to the host first. Errors name the argument so a caller can tell which of
several inputs was malformed.

The metrics never import torch themselves: a tensor can only reach them from
a caller that has imported it already, and a job that only compares saved
rank files (``ccrk compare``, ``ccrk tables``, ``ccrk figures``) should not
pay torch's seconds of start-up. :func:`is_tensor` asks ``sys.modules``.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

ArrayLike = Any  # numpy array, torch tensor or nested sequence of numbers


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor, without importing torch (unloaded torch: no tensor exists)."""
    torch_module = sys.modules.get("torch")
    return torch_module is not None and isinstance(x, torch_module.Tensor)


def to_numpy(x: ArrayLike, name: str) -> np.ndarray:
    """A numpy view (or copy, for device tensors) of ``x``; numeric dtypes only."""
    if is_tensor(x):
        arr = x.detach().cpu().numpy()
    else:
        arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr


def to_score_matrix(x: ArrayLike, name: str) -> np.ndarray | torch.Tensor:
    """A real 2-D score matrix: a numpy array for host data, a torch tensor for device data.

    Host data (numpy, CPU tensors, sequences) becomes a numpy view without a
    copy, because numpy's comparison kernels are several times faster than
    torch's on CPU; tensors on an accelerator stay there so that the scores of
    a GPU evaluation are never copied to the host. bfloat16/float16 tensors are
    widened to float32, which preserves order and ties exactly.
    """
    if is_tensor(x):
        import torch

        t = x.detach()
        if t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"{name} must be real-valued, got dtype {t.dtype}")
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        out: np.ndarray | torch.Tensor = t if t.device.type != "cpu" else t.numpy()
    else:
        out = np.asarray(x)
    if isinstance(out, np.ndarray):
        if out.dtype.kind not in "iuf":
            raise ValueError(f"{name} must be real-valued, got dtype {out.dtype}")
        if not out.dtype.isnative:
            out = out.astype(out.dtype.newbyteorder("="))
    if out.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(out.shape)}")
    if out.shape[0] == 0 or out.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got shape {tuple(out.shape)}")
    return out


def to_index_array(x: ArrayLike, name: str, ndim: int) -> np.ndarray:
    """An int64 array of exactly ``ndim`` dimensions; floats must be whole numbers."""
    arr = to_numpy(x, name)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold integer indices, got non-integer values")
    elif arr.dtype.kind == "b":
        raise ValueError(f"{name} must hold integer indices, got dtype bool")
    return arr.astype(np.int64, copy=False)
