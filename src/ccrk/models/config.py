"""What a model is made of, as one flat record a YAML ``model:`` section maps onto.

The same dataclass describes the tiny CPU model of the embedded default and the
paper's Swin-B + XLM-R-large model; only the values differ (``tiny()`` and
``paper()``).  Unknown keys are rejected by name because a typo in a YAML file
(``fusion_layer`` for ``fusion_layers``) would otherwise silently build a
different model than the one the experiment claims to use.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ccrk.config import ConfigError, check_keys

# The text tower the embedded default builds from scratch when no Hugging Face
# model is named: an XLM-R with the same layout as XLM-R-large, shrunk so that
# a forward+backward on a batch of 32 images x 10 captions takes well under a
# second on two CPU cores.  ``vocab_size`` and the special-token ids come from
# the tokenizer at build time.
TINY_TEXT_CONFIG: dict[str, Any] = {
    "model_type": "xlm-roberta",
    "hidden_size": 128,
    "num_attention_heads": 4,
    "intermediate_size": 512,
    "max_position_embeddings": 96,  # room for 64-token captions (XLM-R offsets positions by pad id + 1)
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
}

ITM_HEADS = ("linear", "mlp")
#: How a caption (and a fused caption-image sequence) becomes one vector: X-VLM's [CLS] state, or the mean
#: of the real tokens (open_clip's default for Hugging Face text towers). A text tower trained from scratch
#: starts with a [CLS] state that barely depends on the caption (cosine ~1 between any two), which the mean does not.
TEXT_POOLINGS = ("cls", "mean")
#: How the image grid becomes the global token: its mean (X-VLM's Swin), or CLIP-style attention pooling with
#: learned position embeddings, which also go onto the grid tokens the fusion layers attend to. The mean of a
#: grid cannot tell where an object is; position embeddings can.
IMAGE_POOLINGS = ("mean", "attention")
#: What the learnable temperature parameter holds: tau itself (ALBEF/X-VLM, the paper's code), so an optimiser
#: step moves tau by an amount, or log tau (CLIP/open_clip's logit scale), so a step moves it by a fraction.
TEMP_PARAMS = ("linear", "log")


class ModelConfigError(ConfigError):
    """A model configuration value is wrong; the message names the key."""


def _check_type(key: str, value: Any, types: tuple[type, ...], allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    # bool is an int subclass; a YAML ``true`` must not pass as a layer count.
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        names = " or ".join(t.__name__ for t in types) + (" or null" if allow_none else "")
        raise ModelConfigError(f"model.{key} must be {names}, got {type(value).__name__} {value!r}")


@dataclass
class ModelConfig:
    """Architecture of :class:`ccrk.models.CCRModel` (X-VLM/CCLM layout).

    Text goes through the embeddings and ``text_layers`` transformer layers of
    a Hugging Face encoder; ``fusion_layers`` further layers add
    cross-attention to the image tokens.  ``text_source_layers`` picks which
    layers of the pretrained text model are used, in order: the first
    ``text_layers`` encode text and, with ``fusion_init_from_text``, the next
    ``fusion_layers`` initialise the fusion self-attention and feed-forward.
    The paper's public code takes the odd layers 1, 3, ..., 23 of XLM-R-large
    (6 text + 6 fusion).

    ``text_length_buckets`` > 1 encodes a batch's captions in that many groups
    of similar length, each padded only to its own longest caption: with K
    languages in a batch (Japanese captions are twice as long as Czech ones)
    one padded batch spends most of the text tower on padding.

    ``image_channels_last`` keeps the image backbone's weights and inputs in
    channels-last memory order: oneDNN's CPU convolutions (and cuDNN's under
    mixed precision) run faster that way. It changes the order of
    floating-point sums, not what is computed; saved weights are plain
    contiguous tensors either way.
    """

    image_encoder: str = "vit_tiny_patch16_224"
    image_size: int = 64
    image_pretrained: str | None = None
    image_kwargs: dict[str, Any] = field(default_factory=dict)
    text_encoder: str | None = None
    text_config: dict[str, Any] | None = None
    text_source_layers: list[int] | None = None
    text_layers: int = 2
    fusion_layers: int = 2
    fusion_init_from_text: bool = False
    itm_head: str = "linear"
    text_pooling: str = "cls"
    image_pooling: str = "mean"
    image_channels_last: bool = False
    text_length_buckets: int = 1
    embed_dim: int = 256
    temp_init: float = 0.07
    temp_min: float = 0.001
    temp_max: float = 0.5
    temp_param: str = "linear"
    max_length: int = 40

    def __post_init__(self) -> None:
        _check_type("image_encoder", self.image_encoder, (str,))
        _check_type("image_size", self.image_size, (int,))
        _check_type("image_pretrained", self.image_pretrained, (str,), allow_none=True)
        _check_type("image_kwargs", self.image_kwargs, (dict,))
        _check_type("text_encoder", self.text_encoder, (str,), allow_none=True)
        _check_type("text_config", self.text_config, (dict,), allow_none=True)
        _check_type("text_source_layers", self.text_source_layers, (list, tuple), allow_none=True)
        for key in ("text_layers", "fusion_layers", "embed_dim", "max_length", "text_length_buckets"):
            _check_type(key, getattr(self, key), (int,))
        _check_type("fusion_init_from_text", self.fusion_init_from_text, (bool,))
        _check_type("image_channels_last", self.image_channels_last, (bool,))
        _check_type("itm_head", self.itm_head, (str,))
        _check_type("text_pooling", self.text_pooling, (str,))
        _check_type("image_pooling", self.image_pooling, (str,))
        _check_type("temp_param", self.temp_param, (str,))
        for key in ("temp_init", "temp_min", "temp_max"):
            _check_type(key, getattr(self, key), (int, float))

        if not self.image_encoder:
            raise ModelConfigError("model.image_encoder must name a timm model")
        if self.image_pretrained == "":
            raise ModelConfigError('model.image_pretrained must be null, "hub" or a weights file path, got ""')
        for key in ("image_size", "text_layers", "fusion_layers", "embed_dim", "max_length", "text_length_buckets"):
            if getattr(self, key) < 1:
                raise ModelConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.itm_head not in ITM_HEADS:
            raise ModelConfigError(f"model.itm_head must be one of {list(ITM_HEADS)}, got {self.itm_head!r}")
        if self.text_pooling not in TEXT_POOLINGS:
            raise ModelConfigError(
                f"model.text_pooling must be one of {list(TEXT_POOLINGS)}, got {self.text_pooling!r}"
            )
        if self.image_pooling not in IMAGE_POOLINGS:
            raise ModelConfigError(
                f"model.image_pooling must be one of {list(IMAGE_POOLINGS)}, got {self.image_pooling!r}"
            )
        if self.temp_param not in TEMP_PARAMS:
            raise ModelConfigError(f"model.temp_param must be one of {list(TEMP_PARAMS)}, got {self.temp_param!r}")
        if not 0 < self.temp_min <= self.temp_init <= self.temp_max:
            raise ModelConfigError(
                "model.temp_init must lie in [temp_min, temp_max] with temp_min > 0, got "
                f"temp_min={self.temp_min}, temp_init={self.temp_init}, temp_max={self.temp_max}"
            )
        if self.text_source_layers is not None:
            layers = list(self.text_source_layers)
            for i, index in enumerate(layers):
                if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                    raise ModelConfigError(
                        f"model.text_source_layers[{i}] must be a non-negative layer index, got {index!r}"
                    )
            if len(set(layers)) != len(layers):
                raise ModelConfigError(f"model.text_source_layers repeats a layer: {layers}")
            needed = self.text_layers + (self.fusion_layers if self.fusion_init_from_text else 0)
            if len(layers) < needed:
                raise ModelConfigError(
                    f"model.text_source_layers lists {len(layers)} layers but text_layers"
                    f"{' + fusion_layers' if self.fusion_init_from_text else ''} needs {needed}"
                )
            self.text_source_layers = layers
        if self.text_encoder is None and self.text_config is not None and "vocab_size" in self.text_config:
            _check_type("text_config.vocab_size", self.text_config["vocab_size"], (int,))

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Build from a YAML/JSON mapping; an unknown key is an error that names it."""
        if not isinstance(data, Mapping):
            raise ModelConfigError(f"model config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**copy.deepcopy(check_keys(data, known, "model", ModelConfigError)))

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(dataclasses.asdict(self))

    def text_config_or_default(self) -> dict[str, Any]:
        """``text_config`` as given, or the tiny default when no text model is named."""
        if self.text_config is not None:
            return copy.deepcopy(self.text_config)
        return copy.deepcopy(TINY_TEXT_CONFIG) if self.text_encoder is None else {}

    @classmethod
    def tiny(cls) -> ModelConfig:
        """The embedded default: ViT-Tiny at 64 px and a 2+2-layer, 128-wide XLM-R built from scratch."""
        return cls(text_config=copy.deepcopy(TINY_TEXT_CONFIG))

    @classmethod
    def paper(
        cls, image_pretrained: str | None = "hub", text_encoder: str = "FacebookAI/xlm-roberta-large"
    ) -> ModelConfig:
        """Paper scale as its public code builds it.

        Swin-B (window 7, 224 px, ImageNet-22k weights, drop-path 0.1); the odd
        layers 1..23 of XLM-R-large, six for text and six, with new
        cross-attention, for fusion; an MLP matching head.  Pass a local
        ``image_pretrained`` file and a local ``text_encoder`` directory to
        build it without network access.
        """
        return cls(
            image_encoder="swin_base_patch4_window7_224.ms_in22k",
            image_size=224,
            image_pretrained=image_pretrained,
            image_kwargs={"drop_path_rate": 0.1},
            text_encoder=text_encoder,
            text_config=None,
            text_source_layers=list(range(1, 24, 2)),
            text_layers=6,
            fusion_layers=6,
            fusion_init_from_text=True,
            itm_head="mlp",
            embed_dim=256,
            temp_init=0.07,
            max_length=40,
        )
