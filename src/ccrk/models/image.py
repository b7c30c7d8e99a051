"""The image tower: any timm backbone, returning a global token followed by patch tokens.

X-VLM reads the image feature off token 0 and lets the fusion layers attend
to every token.  ViTs have a [CLS] token there; Swin and CNNs return a grid,
so the mean of the grid is put in front, as X-VLM's Swin does.
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass
class WeightsReport:
    """What happened when a local weights file was loaded into the backbone."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle/zip errors carry no file name
            raise ValueError(f"model.image_pretrained: cannot read {path} as a torch state dict: {err}") from err
    # Original release checkpoints wrap the tensors (Swin: {"model": ...}, DeiT/MAE: {"model"/"state_dict": ...}).
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"model.image_pretrained: {path} does not hold a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):  # saved from DistributedDataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_local_weights(backbone: nn.Module, path: str | os.PathLike[str]) -> WeightsReport:
    """Load a timm-format (or original-release) state dict, reporting rather than hiding mismatches.

    The backbone module's own ``checkpoint_filter_fn`` is applied first: it is
    what timm uses to adapt released weights (position-embedding resampling for
    another image size, relative-position tables for another window), so a
    224-px checkpoint can initialise a 64-px model.  Tensors whose shape still
    differs are skipped and listed; a file that matches nothing is an error.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"model.image_pretrained: image encoder weights file {str(file)!r} does not exist")
    state = _read_state_dict(file)
    module = sys.modules.get(type(backbone).__module__)
    filter_fn = getattr(module, "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, backbone)
    own = backbone.state_dict()
    mismatched = sorted(k for k, v in state.items() if k in own and own[k].shape != v.shape)
    usable = {k: v for k, v in state.items() if k in own and k not in mismatched}
    if not usable:
        raise ValueError(
            f"model.image_pretrained: no tensor in {str(file)!r} matches {type(backbone).__name__} "
            f"({len(state)} tensors in the file, e.g. {sorted(state)[:3]})"
        )
    result = backbone.load_state_dict(usable, strict=False)
    report = WeightsReport(
        path=str(file),
        loaded=sorted(usable),
        missing=sorted(result.missing_keys),
        unexpected=sorted(k for k in state if k not in own),
        mismatched=mismatched,
    )
    if report.missing or report.unexpected or report.mismatched:
        log.warning(
            "image encoder weights %s: %d loaded, missing %s, unexpected %s, shape-mismatched %s",
            file, len(report.loaded), report.missing, report.unexpected, report.mismatched,
        )
    else:
        log.info("image encoder weights %s: all %d tensors loaded", file, len(report.loaded))
    return report


def _create(name: str, pretrained: bool, image_size: int, kwargs: dict) -> nn.Module:
    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=0, img_size=image_size, **kwargs)
    except TypeError as err:
        # Convolutional backbones take any input size and have no ``img_size`` argument.
        if "img_size" not in str(err):
            raise
        return timm.create_model(name, pretrained=pretrained, num_classes=0, **kwargs)


class AttentionPool(nn.Module):
    """CLIP-style pooling of a grid: the mean token queries the grid, everything with learned positions.

    Returns ``[B, 1 + N, width]``: the pooled token, then the grid tokens with
    their position embedding added, so the fusion layers' cross-attention also
    knows which cell a token comes from.
    """

    def __init__(self, width: int, tokens: int, heads: int) -> None:
        super().__init__()
        self.tokens = tokens
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + tokens, width))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        if grid.shape[1] != self.tokens:
            raise ValueError(f"attention pooling was built for {self.tokens} grid tokens, got {grid.shape[1]}")
        x = torch.cat([grid.mean(dim=1, keepdim=True), grid], dim=1) + self.pos_embed
        pooled, _ = self.attn(x[:, :1], x, x, need_weights=False)
        return torch.cat([pooled, x[:, 1:]], dim=1)


def _pool_heads(width: int) -> int:
    """Heads of 32 channels or more, dividing ``width``."""
    for heads in (8, 4, 3, 2):
        if width % heads == 0 and width // heads >= 32:
            return heads
    return 1


class ImageEncoder(nn.Module):
    """timm backbone -> ``[B, 1 + N, width]`` tokens, token 0 being the global one."""

    def __init__(
        self,
        name: str,
        image_size: int,
        pretrained: str | None = None,
        kwargs: dict | None = None,
        pooling: str = "mean",
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        if pretrained not in (None, "hub") and not Path(pretrained).is_file():
            # Checked before building the backbone so a wrong path fails in milliseconds, not after a Swin-B init.
            raise FileNotFoundError(
                f"model.image_pretrained: image encoder weights file {str(pretrained)!r} does not exist"
            )
        try:
            self.backbone = _create(name, pretrained == "hub", image_size, dict(kwargs or {}))
        except RuntimeError as err:
            if "Unknown model" in str(err):
                raise ValueError(f"model.image_encoder: {err}") from err
            raise
        # Memory order of the backbone's weights and inputs (model.image_channels_last); the
        # layout of its *output* is what timm's output_fmt says, below.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.width: int = int(self.backbone.num_features)
        self.has_cls = getattr(self.backbone, "cls_token", None) is not None
        fmt = getattr(self.backbone, "output_fmt", "NCHW")
        self.channels_last = str(getattr(fmt, "value", fmt)) == "NHWC"
        self.load_report: WeightsReport | None = None
        if pretrained not in (None, "hub"):
            self.load_report = load_local_weights(self.backbone, pretrained)
        if channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        self.pool: AttentionPool | None = None
        if pooling == "attention":
            if self.has_cls:
                raise ValueError(f"model.image_pooling 'attention' pools a grid, but {name} has a [CLS] token")
            with torch.no_grad():  # the grid size follows from the backbone's strides at this image size
                tokens = self._grid(torch.zeros(1, 3, image_size, image_size)).shape[1]
            self.pool = AttentionPool(self.width, tokens, _pool_heads(self.width))
        elif pooling != "mean":
            raise ValueError(f"model.image_pooling must be 'mean' or 'attention', got {pooling!r}")

    def _grid(self, images: torch.Tensor) -> torch.Tensor:
        x = self.backbone.forward_features(images.contiguous(memory_format=self.memory_format))
        if x.ndim == 4:
            x = x.flatten(1, 2) if self.channels_last else x.flatten(2).transpose(1, 2)
        elif x.ndim != 3:
            raise ValueError(f"{type(self.backbone).__name__}.forward_features returned shape {tuple(x.shape)}")
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"images must be [B, C, {self.image_size}, {self.image_size}] (model.image_size), "
                f"got {tuple(images.shape)}"
            )
        x = self._grid(images)
        if self.pool is not None:
            return self.pool(x)
        if not self.has_cls:
            x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)
        return x


def _window_of(table_rows: int) -> int:
    side = round(table_rows ** 0.5)
    if side * side != table_rows or side % 2 == 0:
        raise ValueError(f"a relative position table of {table_rows} rows is not (2w-1)^2")
    return (side + 1) // 2


def resize_image_weights(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> list[str]:
    """Fit resolution-dependent image weights of ``state`` to ``expected``'s shapes, in place.

    Fine-tuning runs at a higher resolution than pre-training (the paper: 224
    px pre-training, 384 px fine-tuning with Swin window 12 instead of 7), as
    X-VLM and timm do: Swin's relative position bias tables are interpolated
    to the new window, a ViT's absolute position embedding to the new grid.
    Other shapes are left alone, so a genuine architecture mismatch is still
    refused by the caller. Returns one line for each tensor resized.
    """
    from timm.layers import resample_abs_pos_embed, resize_rel_pos_bias_table

    notes = []
    for key, want in expected.items():
        have = state.get(key)
        if have is None or tuple(have.shape) == tuple(want.shape):
            continue
        if key.endswith("relative_position_bias_table") and have.ndim == 2 and have.shape[1] == want.shape[1]:
            old, new = _window_of(have.shape[0]), _window_of(want.shape[0])
            state[key] = resize_rel_pos_bias_table(have, (new, new), tuple(want.shape), (old, old)).to(have.dtype)
            notes.append(f"{key}: window {old} -> {new}")
        elif key.endswith("pos_embed") and have.ndim == 3 and have.shape[2] == want.shape[2]:
            new_grid = int(want.shape[1] ** 0.5)
            prefix = want.shape[1] - new_grid * new_grid
            old_grid = int(round((have.shape[1] - prefix) ** 0.5))
            if old_grid * old_grid + prefix != have.shape[1]:
                continue
            state[key] = resample_abs_pos_embed(have, [new_grid, new_grid], [old_grid, old_grid],
                                                num_prefix_tokens=prefix).to(have.dtype)
            notes.append(f"{key}: grid {old_grid}x{old_grid} -> {new_grid}x{new_grid}")
    return notes
