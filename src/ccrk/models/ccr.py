"""The cross-lingual cross-modal retrieval model (X-VLM / CCLM layout).

image -> timm backbone -> tokens -> [token 0] -> vision_proj -> image_feat
text  -> XLM-R embeddings + text layers -> tokens -> [CLS] -> text_proj -> text_feat
(text tokens, image tokens) -> fusion layers -> [CLS] -> itm_head ; all -> mlm_head

The contrastive features feed ``ccrk.losses``; the fused states feed image-text
matching (and re-ranking at test time) and masked language modelling.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ccrk.models.config import ModelConfig
from ccrk.models.fusion import FusionEncoder, FusionLayer, copy_from_hf_layer, init_bert_weights
from ccrk.models.heads import MLMHead, build_itm_head
from ccrk.models.image import ImageEncoder, WeightsReport
from ccrk.models.text import build_text_tower, resolved_text_config


class Encoded(NamedTuple):
    image_tokens: torch.Tensor  # [B, N, vision_width], token 0 global
    image_feat: torch.Tensor  # [B, embed_dim], L2-normalised
    text_tokens: torch.Tensor  # [T, L, hidden]
    text_feat: torch.Tensor  # [T, embed_dim], L2-normalised


class CCRModel(nn.Module):
    """Dual encoder + fusion encoder with contrastive, matching and MLM outputs.

    Build with :func:`ccrk.models.build_model`; ``tokenizer`` (or
    ``vocab_size``) is needed only when the text model is built from
    ``config.text_config`` rather than loaded.
    """

    def __init__(self, config: ModelConfig, tokenizer: Any | None = None, vocab_size: int | None = None) -> None:
        super().__init__()
        self.config = config
        # The config the weights were first built from (hub names, weight files); load_model restores it.
        self.built_from = config
        # Text first: its config errors (vocab size, layer counts) then surface before the slower image build.
        tower = build_text_tower(config, tokenizer=tokenizer, vocab_size=vocab_size)
        self.image = ImageEncoder(config.image_encoder, config.image_size, config.image_pretrained, config.image_kwargs,
                                  pooling=config.image_pooling, channels_last=config.image_channels_last)
        self.text = tower.model
        self.max_text_length = tower.max_text_length
        tc = self.text.config
        self.hidden_size = int(tc.hidden_size)
        self.vision_width = self.image.width
        self.vocab_size = int(tc.vocab_size)

        self.fusion = FusionEncoder(
            config.fusion_layers,
            hidden=self.hidden_size,
            heads=tc.num_attention_heads,
            intermediate=tc.intermediate_size,
            vision_width=self.vision_width,
            hidden_act=tc.hidden_act,
            eps=tc.layer_norm_eps,
            hidden_dropout=tc.hidden_dropout_prob,
            attention_dropout=tc.attention_probs_dropout_prob,
        )
        self.vision_proj = nn.Linear(self.vision_width, config.embed_dim)
        self.text_proj = nn.Linear(self.hidden_size, config.embed_dim)
        # tau, or log tau (model.temp_param); either way the parameter is called ``temp``.
        self.temp = nn.Parameter(torch.tensor(self._to_param(float(config.temp_init))))
        self.itm_head = build_itm_head(config.itm_head, self.hidden_size)
        self.mlm_head = MLMHead(self.hidden_size, self.vocab_size, tc.hidden_act, tc.layer_norm_eps)

        std = float(getattr(tc, "initializer_range", 0.02))
        for module in (self.fusion, self.vision_proj, self.text_proj, self.itm_head, self.mlm_head):
            init_bert_weights(module, std)
        if config.fusion_init_from_text:
            for layer, source in zip(self.fusion.layers, tower.fusion_sources, strict=True):
                copy_from_hf_layer(layer, source)
        if tower.lm_head is not None:
            self._load_lm_head(tower.lm_head)
        self.mlm_head.tie_to(self.text.get_input_embeddings())
        self._new_parameters = self._fresh_parameter_names(lm_head_loaded=tower.lm_head is not None)

    # -- construction helpers ----------------------------------------------------------------

    @torch.no_grad()
    def _load_lm_head(self, state: dict[str, torch.Tensor]) -> None:
        head = self.mlm_head
        targets = {
            "dense.weight": head.dense.weight,
            "dense.bias": head.dense.bias,
            "layer_norm.weight": head.layer_norm.weight,
            "layer_norm.bias": head.layer_norm.bias,
            "bias": head.bias,
        }
        for key, dst in targets.items():
            if dst.shape != state[key].shape:
                raise ValueError(f"pretrained MLM head {key}: shape {tuple(state[key].shape)} != {tuple(dst.shape)}")
            dst.copy_(state[key])

    def _fresh_parameter_names(self, lm_head_loaded: bool) -> frozenset[str]:
        """Parameters the recipe always starts from scratch (trained with ``lr_mult``), by name.

        Image and text towers count as pretrained even when the config builds
        them randomly: the label follows the paper's recipe, not this run's
        weights, so the learning-rate groups are the same at every scale.
        """
        prefixes = ["vision_proj.", "text_proj.", "itm_head.", "image.pool."]
        if self.config.fusion_init_from_text:
            prefixes += [
                f"fusion.layers.{i}.{part}."
                for i in range(len(self.fusion.layers))
                for part in FusionLayer.CROSS_MODULES
            ]
        else:
            prefixes.append("fusion.")
        exact = {"temp"}
        if not lm_head_loaded:
            prefixes += ["mlm_head.dense.", "mlm_head.layer_norm."]
            exact.add("mlm_head.bias")
        return frozenset(
            name for name, _ in self.named_parameters() if name in exact or name.startswith(tuple(prefixes))
        )

    # -- public API --------------------------------------------------------------------------

    @property
    def image_load_report(self) -> WeightsReport | None:
        """Missing/unexpected keys of the local image weights file, when one was loaded."""
        return self.image.load_report

    def _to_param(self, tau: float) -> float:
        """The value the ``temp`` parameter holds for temperature ``tau`` (``model.temp_param``)."""
        return math.log(tau) if self.config.temp_param == "log" else tau

    @property
    def temperature(self) -> torch.Tensor:
        """The learnable temperature, clamped to [temp_min, temp_max].

        The gradient passes the clamp straight through, as in ALBEF, which
        clamps the parameter in place and then uses it as it is. A plain
        ``clamp`` passes no gradient *on* a bound (torch treats the bound as
        outside), so a temperature started at ``temp_max`` (tau may only fall)
        or projected back onto a bound by :meth:`clamp_temperature_` would never
        move again. Inside the range the value and gradient are the parameter's own.
        """
        low, high = self._to_param(self.config.temp_min), self._to_param(self.config.temp_max)
        value = self.temp.detach().clamp(low, high) + (self.temp - self.temp.detach())  # value clamped, gradient 1
        return value.exp() if self.config.temp_param == "log" else value

    @torch.no_grad()
    def clamp_temperature_(self) -> None:
        """Project the raw parameter back into range; call after each optimiser step.

        Clamping in place inside the forward pass would bump the parameter's
        version between two uses in one graph (contrastive loss, then hard
        negative sampling) and break backward, so the trainer does it here.
        """
        self.temp.clamp_(self._to_param(self.config.temp_min), self._to_param(self.config.temp_max))

    def restore_provenance(self, built_from: ModelConfig, new_parameters: list[str]) -> None:
        """Record, for a model rebuilt from a saved directory, where it was first built from.

        The rebuilt architecture has fusion weights in the file rather than
        from the text model, so which parameters were *new* cannot be derived
        from the resolved config; the saved list is authoritative.
        """
        names = {name for name, _ in self.named_parameters()}
        unknown = sorted(set(new_parameters) - names)
        if unknown:
            raise ValueError(f"new_parameters name parameters this model does not have: {unknown}")
        self.built_from = built_from
        self._new_parameters = frozenset(new_parameters)

    def new_parameter_names(self) -> set[str]:
        """Names (as in ``named_parameters()``) of newly initialised parameters: lr_mult applies to them."""
        return set(self._new_parameters)

    def encode_image(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images[B,3,S,S]`` -> (tokens ``[B,N,vision_width]``, L2-normalised ``[B,embed_dim]``)."""
        tokens = self.image(images)
        return tokens, F.normalize(self.vision_proj(tokens[:, 0]), dim=-1)

    def encode_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``input_ids[T,L]`` (1 = real token in ``attention_mask``) -> (tokens ``[T,L,H]``, ``[T,embed_dim]``)."""
        if input_ids.ndim != 2 or attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"input_ids and attention_mask must both be [T, L], got {tuple(input_ids.shape)} "
                f"and {tuple(attention_mask.shape)}"
            )
        if input_ids.shape[1] > self.max_text_length:
            raise ValueError(
                f"text length {input_ids.shape[1]} exceeds the {self.max_text_length} positions of the text model"
            )
        tokens = self._text_states(input_ids, attention_mask)
        return tokens, F.normalize(self.text_proj(self.pool_text(tokens, attention_mask)), dim=-1)

    def _text_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Text tower states ``[T,L,H]``, in ``model.text_length_buckets`` groups of similar caption length.

        Rows are sorted by length and cut into groups; each group runs cut to
        its own longest caption and is padded back with zeros (padding states
        are masked out wherever they are read). Right padding is required for
        the cut; anything else runs as one batch.
        """
        buckets = self.config.text_length_buckets
        rows, width = input_ids.shape
        lengths = attention_mask.sum(dim=1)
        right_padded = bool((attention_mask[:, 1:] <= attention_mask[:, :-1]).all()) if width > 1 else True
        if buckets <= 1 or rows < 2 * buckets or not right_padded:
            return self.text(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        order = torch.argsort(lengths, stable=True)
        parts = []
        for group in order.chunk(buckets):
            cut = max(1, int(lengths[group].max()))
            states = self.text(input_ids=input_ids[group, :cut], attention_mask=attention_mask[group, :cut])
            parts.append(F.pad(states.last_hidden_state, (0, 0, 0, width - cut)))
        return torch.cat(parts).index_select(0, torch.argsort(order))

    def pool_text(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One vector per row of ``states[T,L,H]``: the [CLS] state, or the mean of the real tokens (model.text_pooling)."""
        if self.config.text_pooling == "cls":
            return states[:, 0]
        weights = attention_mask.to(states.dtype).unsqueeze(-1)
        return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)

    def fuse(
        self,
        text_tokens: torch.Tensor,
        attention_mask: torch.Tensor,
        image_tokens: torch.Tensor,
        image_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Fusion states ``[T,L,H]`` of each text row with its image.

        ``image_tokens`` has one row per text row, or, with ``image_index[T]``,
        one row per image that ``image_index`` selects from (so B images need
        not be materialised K times by the caller).
        """
        if image_index is not None:
            if image_index.ndim != 1 or image_index.shape[0] != text_tokens.shape[0]:
                raise ValueError(
                    f"image_index must be [T={text_tokens.shape[0]}], got {tuple(image_index.shape)}"
                )
            image_tokens = image_tokens.index_select(0, image_index)
        if text_tokens.ndim != 3 or text_tokens.shape[-1] != self.hidden_size:
            raise ValueError(f"text_tokens must be [T, L, {self.hidden_size}], got {tuple(text_tokens.shape)}")
        if image_tokens.ndim != 3 or image_tokens.shape[-1] != self.vision_width:
            raise ValueError(f"image_tokens must be [T, N, {self.vision_width}], got {tuple(image_tokens.shape)}")
        if image_tokens.shape[0] != text_tokens.shape[0]:
            raise ValueError(
                f"{text_tokens.shape[0]} text rows but {image_tokens.shape[0]} image rows; pass image_index"
            )
        if attention_mask.shape != text_tokens.shape[:2]:
            raise ValueError(
                f"attention_mask must be {tuple(text_tokens.shape[:2])}, got {tuple(attention_mask.shape)}"
            )
        return self.fusion(text_tokens, attention_mask, image_tokens)

    def itm_logits(
        self,
        text_tokens: torch.Tensor,
        attention_mask: torch.Tensor,
        image_tokens: torch.Tensor,
        image_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Matching logits ``[T,2]`` (class 1 = the pair matches) from the fused states, pooled as the text is."""
        fused = self.fuse(text_tokens, attention_mask, image_tokens, image_index)
        return self.itm_head(self.pool_text(fused, attention_mask))

    def mlm_logits(
        self,
        text_tokens: torch.Tensor,
        attention_mask: torch.Tensor,
        image_tokens: torch.Tensor,
        image_index: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Vocabulary logits ``[T,L,V]``, or ``[P,V]`` at the True entries of a bool ``positions[T,L]``.

        ``text_tokens`` come from :meth:`encode_text` on the *masked* ids.
        Selecting the masked positions first avoids a [T,L,V] tensor, which
        for XLM-R's 250k vocabulary dominates memory.
        """
        fused = self.fuse(text_tokens, attention_mask, image_tokens, image_index)
        if positions is not None:
            if positions.dtype != torch.bool or positions.shape != fused.shape[:2]:
                raise ValueError(
                    f"positions must be a bool mask of shape {tuple(fused.shape[:2])}, "
                    f"got {positions.dtype} {tuple(positions.shape)}"
                )
            fused = fused[positions]
        return self.mlm_head(fused)

    def forward(self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Encoded:
        """Both towers at once, so a DistributedDataParallel wrapper sees one forward per step."""
        image_tokens, image_feat = self.encode_image(images)
        text_tokens, text_feat = self.encode_text(input_ids, attention_mask)
        return Encoded(image_tokens, image_feat, text_tokens, text_feat)

    def resolved_config(self) -> ModelConfig:
        """A config that rebuilds this architecture offline: text config inlined, no weight sources."""
        return dataclasses.replace(
            self.config,
            image_pretrained=None,
            text_encoder=None,
            text_config=resolved_text_config(self.text),
            text_source_layers=None,
            fusion_init_from_text=False,
        )


def build_model(
    config: ModelConfig | dict[str, Any] | None = None,
    tokenizer: Any | None = None,
    vocab_size: int | None = None,
) -> CCRModel:
    """Build a :class:`CCRModel` from a :class:`ModelConfig` or a YAML ``model:`` mapping (default: tiny)."""
    if config is None:
        config = ModelConfig()
    elif not isinstance(config, ModelConfig):
        config = ModelConfig.from_dict(config)
    return CCRModel(config, tokenizer=tokenizer, vocab_size=vocab_size)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameter elements (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def parameter_breakdown(model: nn.Module) -> dict[str, int]:
    """Distinct parameter elements per top-level child module, e.g. ``{"image": ..., "text": ...}``."""
    out: dict[str, int] = {}
    for name, param in model.named_parameters():
        top = name.split(".", 1)[0]
        out[top] = out.get(top, 0) + param.numel()
    return out
