"""Masked language modelling: which tokens to corrupt, and the loss on them.

The masking follows the public code of the paper (X-VLM / CCLM lineage):
each row masks exactly ``min(max_masks, max(1, round(n_tokens * prob)))``
tokens, where ``n_tokens`` counts every non-padding token (specials included,
as the public code counts its ``[CLS] ... [SEP]`` list); the positions are a
uniformly random subset of the maskable ones (not special, not padding); a
chosen token becomes the mask token with probability 0.8, a uniformly random
vocabulary id with 0.1, and stays itself with 0.1. The public code can also
mask short spans ("skip-grams"); that option is not reproduced here.

Vectorised: one random score per position, non-maskable positions pushed to
the bottom, ``topk(max_masks)`` per row, and the first ``n_mask[row]`` of the
sorted top-k kept - a uniformly random subset of the wanted size, no loop.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["IGNORE_INDEX", "mask_tokens", "mlm_loss"]

IGNORE_INDEX = -100  # label of positions that are not predicted (PyTorch's cross-entropy default)


def mask_tokens(input_ids: Tensor, attention_mask: Tensor, special_ids: Iterable[int] | Tensor, mask_id: int,
                vocab_size: int, prob: float = 0.4, max_masks: int = 12,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Corrupt ``input_ids`` ``[N, L]`` for MLM -> ``(masked_input_ids, labels)``.

    ``labels`` holds the original id at every chosen position and
    :data:`IGNORE_INDEX` elsewhere. Rows with no maskable token are left intact.
    """
    where = "mask_tokens"
    if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
        raise ValueError(f"{where}: input_ids and attention_mask must be 2-D of one shape, got "
                         f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}")
    if not 0.0 < prob <= 1.0:
        raise ValueError(f"{where}: prob must be in (0, 1], got {prob}")
    if isinstance(max_masks, bool) or not isinstance(max_masks, int) or max_masks < 1:
        raise ValueError(f"{where}: max_masks must be a positive int, got {max_masks!r}")
    if vocab_size < 1 or not 0 <= mask_id < vocab_size:
        raise ValueError(f"{where}: need 0 <= mask_id < vocab_size, got mask_id={mask_id}, vocab_size={vocab_size}")
    n, length = input_ids.shape
    device = input_ids.device
    specials = torch.as_tensor(list(special_ids) if not isinstance(special_ids, Tensor) else special_ids,
                               dtype=input_ids.dtype, device=device)
    real = attention_mask.bool()
    maskable = real & ~torch.isin(input_ids, specials)

    n_mask = torch.round(real.sum(1).double() * prob).long().clamp(min=1, max=max_masks)  # as Python round()
    n_mask = torch.minimum(n_mask, maskable.sum(1))
    chosen = torch.zeros_like(maskable)
    if length > 0:
        scores = torch.rand((n, length), generator=generator, device=device).masked_fill(~maskable, -1.0)
        top = scores.topk(min(max_masks, length), dim=1).indices  # sorted: maskable positions first
        keep = torch.arange(top.shape[1], device=device) < n_mask[:, None]
        chosen.scatter_(1, top, keep)

    action = torch.rand((n, length), generator=generator, device=device)
    random_ids = torch.randint(vocab_size, (n, length), generator=generator, device=device, dtype=input_ids.dtype)
    masked = torch.where(chosen & (action < 0.8), torch.full_like(input_ids, mask_id), input_ids)
    masked = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, masked)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return masked, labels


def mlm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over the masked positions (0 when none is masked, with a graph, no host sync)."""
    if logits.dim() != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(f"mlm_loss: logits must be [N, L, V] and labels [N, L], got {tuple(logits.shape)} "
                         f"and {tuple(labels.shape)}")
    total = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
    count = (labels != IGNORE_INDEX).sum().clamp(min=1)
    return total / count
