"""The text tower: a Hugging Face encoder cut down to the layers that encode text alone.

The paper uses part of XLM-R-large: some of its layers encode the caption,
others seed the fusion layers, the rest are dropped.  This module loads (or
builds from a config dict) the encoder, keeps its embeddings and the chosen
text layers, and hands back the layers meant for fusion initialisation and
the pretrained masked-LM head when the checkpoint has one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, PretrainedConfig, PreTrainedModel

from ccrk.models.config import ModelConfig, ModelConfigError

log = logging.getLogger(__name__)

# Keys of PretrainedConfig.to_dict() that describe where a config came from, not the architecture.
_PROVENANCE_KEYS = ("transformers_version", "_name_or_path", "architectures", "_commit_hash")


@dataclass
class TextTower:
    model: PreTrainedModel
    fusion_sources: list[nn.Module] = field(default_factory=list)
    lm_head: dict[str, torch.Tensor] | None = None
    max_text_length: int = 0


def _tokenizer_overrides(tokenizer: Any) -> dict[str, int]:
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        raise ValueError("the tokenizer has no pad token; the text model needs one (padding_idx, attention mask)")
    out = {"vocab_size": len(tokenizer), "pad_token_id": int(pad)}
    bos = getattr(tokenizer, "cls_token_id", None)
    bos = getattr(tokenizer, "bos_token_id", None) if bos is None else bos
    eos = getattr(tokenizer, "sep_token_id", None)
    eos = getattr(tokenizer, "eos_token_id", None) if eos is None else eos
    if bos is not None:
        out["bos_token_id"] = int(bos)
    if eos is not None:
        out["eos_token_id"] = int(eos)
    return out


def _lm_head_state(full: PreTrainedModel) -> dict[str, torch.Tensor] | None:
    """The masked-LM transform and output bias of a RoBERTa-style or BERT-style checkpoint."""
    head = getattr(full, "lm_head", None)
    if head is not None and all(hasattr(head, a) for a in ("dense", "layer_norm", "bias")):
        dense, norm, bias = head.dense, head.layer_norm, head.bias
    else:
        predictions = getattr(getattr(full, "cls", None), "predictions", None)
        if predictions is None or not hasattr(predictions, "transform"):
            return None
        dense, norm, bias = predictions.transform.dense, predictions.transform.LayerNorm, predictions.bias
    return {
        "dense.weight": dense.weight.detach().clone(),
        "dense.bias": dense.bias.detach().clone(),
        "layer_norm.weight": norm.weight.detach().clone(),
        "layer_norm.bias": norm.bias.detach().clone(),
        "bias": bias.detach().clone(),
    }


def _load_pretrained(name: str, overrides: dict[str, Any]) -> tuple[PreTrainedModel, dict | None]:
    try:
        config = AutoConfig.from_pretrained(name, **overrides)
    except OSError as err:
        raise FileNotFoundError(
            f"model.text_encoder: cannot load a Hugging Face config from {name!r} "
            f"(a local directory with config.json, or a hub name available offline): {err}"
        ) from err
    architectures = config.architectures or []
    if any(a.endswith("ForMaskedLM") for a in architectures):
        # The checkpoint was saved with its MLM head: keep it, the paper's code initialises its MLM head from it.
        full = AutoModelForMaskedLM.from_pretrained(name, config=config)
        return full.base_model, _lm_head_state(full)
    return AutoModel.from_pretrained(name, config=config), None


def _build_from_config(
    cfg: ModelConfig, tokenizer: Any | None, vocab_size: int | None
) -> PreTrainedModel:
    params = cfg.text_config_or_default()
    if tokenizer is not None:
        params.update(_tokenizer_overrides(tokenizer))
    elif vocab_size is not None:
        params["vocab_size"] = int(vocab_size)
    if "vocab_size" not in params:
        raise ModelConfigError(
            "model.text_config.vocab_size is not set: build the model with the tokenizer (or vocab_size=...)"
        )
    if "num_hidden_layers" not in params:
        needed = cfg.text_layers + (cfg.fusion_layers if cfg.fusion_init_from_text else 0)
        if cfg.text_source_layers is not None:
            needed = max(needed, max(cfg.text_source_layers) + 1)
        params["num_hidden_layers"] = needed
    for key in _PROVENANCE_KEYS:
        params.pop(key, None)
    model_type = params.pop("model_type", "xlm-roberta")
    try:
        config = AutoConfig.for_model(model_type, **params)
    except ValueError as err:
        raise ModelConfigError(f"model.text_config.model_type: {err}") from err
    if config.is_decoder:
        raise ModelConfigError("model.text_config.is_decoder must be false: the text encoder is bidirectional")
    return AutoModel.from_config(config)


def _max_text_length(config: PretrainedConfig, embeddings: nn.Module) -> int:
    limit = int(getattr(config, "max_position_embeddings", 10**9))
    if hasattr(embeddings, "create_position_ids_from_input_ids"):
        # RoBERTa/XLM-R number positions from padding_idx + 1.
        limit -= int(config.pad_token_id) + 1
    return limit


def build_text_tower(cfg: ModelConfig, tokenizer: Any | None = None, vocab_size: int | None = None) -> TextTower:
    """Load or build the text encoder and keep embeddings + the ``cfg.text_layers`` text layers."""
    if cfg.text_encoder is not None:
        model, lm_head = _load_pretrained(cfg.text_encoder, cfg.text_config or {})
        if tokenizer is not None:
            wanted = _tokenizer_overrides(tokenizer)
            if wanted["vocab_size"] > model.config.vocab_size:
                raise ValueError(
                    f"the tokenizer has {wanted['vocab_size']} tokens but model.text_encoder "
                    f"{cfg.text_encoder!r} embeds only {model.config.vocab_size}"
                )
            if wanted["pad_token_id"] != model.config.pad_token_id:
                raise ValueError(
                    f"the tokenizer's pad id {wanted['pad_token_id']} differs from model.text_encoder "
                    f"{cfg.text_encoder!r} pad_token_id {model.config.pad_token_id}: is it the same tokenizer?"
                )
    else:
        model, lm_head = _build_from_config(cfg, tokenizer, vocab_size), None
    if getattr(model.config, "is_decoder", False):
        raise ModelConfigError(
            f"model.text_encoder {cfg.text_encoder!r} is a decoder; a bidirectional encoder is needed"
        )

    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise TypeError(f"{type(model).__name__} has no encoder.layer list; a BERT-style encoder is needed")
    wanted_fusion = cfg.fusion_layers if cfg.fusion_init_from_text else 0
    indices = cfg.text_source_layers or list(range(cfg.text_layers + wanted_fusion))
    if max(indices) >= len(layers):
        raise ModelConfigError(
            f"model: the text model has {len(layers)} layers but layer {max(indices)} is asked for "
            f"(text_layers={cfg.text_layers}, fusion_layers={cfg.fusion_layers}, "
            f"fusion_init_from_text={cfg.fusion_init_from_text}, text_source_layers={cfg.text_source_layers})"
        )
    text_part = [layers[i] for i in indices[: cfg.text_layers]]
    fusion_sources = [layers[i] for i in indices[cfg.text_layers : cfg.text_layers + wanted_fusion]]
    model.encoder.layer = nn.ModuleList(text_part)
    model.config.num_hidden_layers = cfg.text_layers
    if hasattr(model, "pooler"):
        model.pooler = None  # the text feature is the projected [CLS] state, as in X-VLM

    limit = _max_text_length(model.config, model.embeddings)
    if cfg.max_length > limit:
        raise ModelConfigError(
            f"model.max_length={cfg.max_length} exceeds the {limit} positions the text model can embed "
            "(raise text_config.max_position_embeddings or lower max_length)"
        )
    return TextTower(model=model, fusion_sources=fusion_sources, lm_head=lm_head, max_text_length=limit)


def resolved_text_config(model: PreTrainedModel) -> dict[str, Any]:
    """The truncated text model's config as a plain dict that rebuilds it with no hub access."""
    data = model.config.to_dict()
    for key in _PROVENANCE_KEYS:
        data.pop(key, None)
    return data
