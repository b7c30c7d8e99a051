"""Fusion layers: bidirectional text self-attention + cross-attention to image tokens + FFN.

Written with plain torch rather than transformers' ``add_cross_attention``
because transformers 5 only allows cross-attention in decoder mode, whose
self-attention is causal; the X-VLM fusion encoder attends over the whole
caption.  Module names (``query``/``key``/``value``, ``LayerNorm``) follow
BERT/XLM-R so a pretrained text layer copies in one-to-one and post-LN order
matches the layers the weights were trained in.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN


def init_bert_weights(module: nn.Module, std: float) -> None:
    """BERT initialisation (N(0, std) weights, zero biases, unit LayerNorm) for newly built parts."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            nn.init.normal_(sub.weight, mean=0.0, std=std)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.LayerNorm):
            nn.init.ones_(sub.weight)
            nn.init.zeros_(sub.bias)


def padding_bias(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B, S] 1/0 key mask -> additive [B, 1, 1, S] bias.

    A large finite negative instead of -inf keeps a row whose keys are all
    padding (never produced by a tokenizer, but possible by hand) finite.
    """
    keep = attention_mask.to(torch.bool)[:, None, None, :]
    return torch.zeros(keep.shape, dtype=dtype, device=attention_mask.device).masked_fill(
        ~keep, torch.finfo(dtype).min
    )


class Attention(nn.Module):
    """Multi-head scaled dot-product attention, never causal.

    ``kv_dim`` lets keys/values come from a tower of another width (the image
    encoder): this per-layer key/value projection is how X-VLM maps vision
    tokens to the text width for cross-attention.
    """

    def __init__(self, hidden: int, heads: int, kv_dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not divisible by {heads} attention heads")
        self.heads = heads
        self.dropout = dropout
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(kv_dim or hidden, hidden)
        self.value = nn.Linear(kv_dim or hidden, hidden)

    def forward(self, x: torch.Tensor, context: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        b, n, h = x.shape
        s = context.shape[1]
        q = self.query(x).view(b, n, self.heads, -1).transpose(1, 2)
        k = self.key(context).view(b, s, self.heads, -1).transpose(1, 2)
        v = self.value(context).view(b, s, self.heads, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0, is_causal=False
        )
        return out.transpose(1, 2).reshape(b, n, h)


class AddNorm(nn.Module):
    """``LayerNorm(residual + dropout(dense(x)))`` — BERT's post-LN output block."""

    def __init__(self, d_in: int, d_out: int, eps: float, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.dropout = nn.Dropout(dropout)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(x)))


class FusionLayer(nn.Module):
    """One X-VLM fusion layer: self-attention, cross-attention to the image, feed-forward."""

    # Sub-modules that exist only in the fusion layer; never present in a text-only checkpoint.
    CROSS_MODULES = ("cross_attn", "cross_output")

    def __init__(
        self,
        hidden: int,
        heads: int,
        intermediate: int,
        vision_width: int,
        hidden_act: str = "gelu",
        eps: float = 1e-12,
        hidden_dropout: float = 0.1,
        attention_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(hidden, heads, dropout=attention_dropout)
        self.self_output = AddNorm(hidden, hidden, eps, hidden_dropout)
        self.cross_attn = Attention(hidden, heads, kv_dim=vision_width, dropout=attention_dropout)
        self.cross_output = AddNorm(hidden, hidden, eps, hidden_dropout)
        self.intermediate = nn.Linear(hidden, intermediate)
        self.act = ACT2FN[hidden_act]
        self.output = AddNorm(intermediate, hidden, eps, hidden_dropout)

    def forward(
        self,
        text: torch.Tensor,
        text_bias: torch.Tensor | None,
        image: torch.Tensor,
        image_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.self_output(self.self_attn(text, text, text_bias), text)
        x = self.cross_output(self.cross_attn(x, image, image_bias), x)
        return self.output(self.act(self.intermediate(x)), x)


class FusionEncoder(nn.Module):
    """A stack of :class:`FusionLayer`; text rows and image rows are aligned one-to-one."""

    def __init__(self, num_layers: int, **layer_kwargs) -> None:
        super().__init__()
        self.layers = nn.ModuleList(FusionLayer(**layer_kwargs) for _ in range(num_layers))

    def forward(
        self,
        text: torch.Tensor,
        attention_mask: torch.Tensor | None,
        image: torch.Tensor,
        image_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        text_bias = None if attention_mask is None else padding_bias(attention_mask, text.dtype)
        image_bias = None if image_mask is None else padding_bias(image_mask, text.dtype)
        for layer in self.layers:
            text = layer(text, text_bias, image, image_bias)
        return text


def _copy_linear(dst: nn.Linear, src: nn.Linear, where: str) -> None:
    if dst.weight.shape != src.weight.shape:
        raise ValueError(f"{where}: shape {tuple(src.weight.shape)} does not fit {tuple(dst.weight.shape)}")
    dst.weight.copy_(src.weight)
    dst.bias.copy_(src.bias)


def _copy_norm(dst: nn.LayerNorm, src: nn.LayerNorm, where: str) -> None:
    if dst.weight.shape != src.weight.shape:
        raise ValueError(f"{where}: shape {tuple(src.weight.shape)} does not fit {tuple(dst.weight.shape)}")
    dst.weight.copy_(src.weight)
    dst.bias.copy_(src.bias)
    dst.eps = src.eps


@torch.no_grad()
def copy_from_hf_layer(layer: FusionLayer, hf_layer: nn.Module) -> None:
    """Initialise ``layer``'s self-attention and feed-forward from a BERT/RoBERTa/XLM-R layer.

    Cross-attention is left as it is (newly initialised): the text model never
    had one, which is why the paper trains it with a larger learning rate.
    """
    name = type(hf_layer).__name__
    try:
        attn_self = hf_layer.attention.self
        attn_out = hf_layer.attention.output
        inter = hf_layer.intermediate
        out = hf_layer.output
        pairs = [
            (layer.self_attn.query, attn_self.query, "attention.self.query"),
            (layer.self_attn.key, attn_self.key, "attention.self.key"),
            (layer.self_attn.value, attn_self.value, "attention.self.value"),
            (layer.self_output.dense, attn_out.dense, "attention.output.dense"),
            (layer.intermediate, inter.dense, "intermediate.dense"),
            (layer.output.dense, out.dense, "output.dense"),
        ]
        norms = [
            (layer.self_output.LayerNorm, attn_out.LayerNorm, "attention.output.LayerNorm"),
            (layer.output.LayerNorm, out.LayerNorm, "output.LayerNorm"),
        ]
    except AttributeError as err:
        raise TypeError(
            f"cannot initialise a fusion layer from {name}: expected a BERT-style layer with "
            f"attention.self.query/key/value, attention.output, intermediate and output ({err})"
        ) from None
    for dst, src, where in pairs:
        _copy_linear(dst, src, f"{name}.{where}")
    for dst, src, where in norms:
        _copy_norm(dst, src, f"{name}.{where}")
    act = getattr(inter, "intermediate_act_fn", None)
    if act is not None:
        layer.act = act
