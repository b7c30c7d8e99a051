"""Output heads on the fusion states: image-text matching and masked language modelling."""
from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN


class MLMHead(nn.Module):
    """dense -> activation -> LayerNorm -> decoder, the BERT/XLM-R masked-LM head.

    The decoder has no weight of its own: :meth:`tie_to` makes it the word
    embedding matrix (as in XLM-R), so the 250k x 1024 matrix of the paper
    model is stored and trained once.  The output bias is separate.
    """

    def __init__(self, hidden: int, vocab_size: int, hidden_act: str = "gelu", eps: float = 1e-12) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.act = ACT2FN[hidden_act]
        self.layer_norm = nn.LayerNorm(hidden, eps=eps)
        self.decoder = nn.Linear(hidden, vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def tie_to(self, embedding: nn.Embedding) -> None:
        if embedding.weight.shape != self.decoder.weight.shape:
            raise ValueError(
                f"cannot tie the MLM decoder {tuple(self.decoder.weight.shape)} to word embeddings "
                f"{tuple(embedding.weight.shape)}"
            )
        self.decoder.weight = embedding.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(self.act(self.dense(x)))) + self.bias


def build_itm_head(kind: str, hidden: int) -> nn.Module:
    """``linear``: one layer; ``mlp``: X-VLM's Linear(2H)-LayerNorm-GELU-Linear used by the paper's code."""
    if kind == "linear":
        return nn.Linear(hidden, 2)
    if kind == "mlp":
        return nn.Sequential(
            nn.Linear(hidden, 2 * hidden), nn.LayerNorm(2 * hidden), nn.GELU(), nn.Linear(2 * hidden, 2)
        )
    raise ValueError(f"model.itm_head must be 'linear' or 'mlp', got {kind!r}")
