"""The paper's model: timm image encoder, XLM-R text encoder, cross-attention fusion, ITC/ITM/MLM heads.

Tiny by default (runs on two CPU cores); paper scale by configuration
(:meth:`ModelConfig.paper`).
"""
from __future__ import annotations

from ccrk.models.ccr import CCRModel, Encoded, build_model, count_parameters, parameter_breakdown
from ccrk.models.config import TINY_TEXT_CONFIG, ModelConfig, ModelConfigError
from ccrk.models.fusion import FusionEncoder, FusionLayer, copy_from_hf_layer
from ccrk.models.heads import MLMHead, build_itm_head
from ccrk.models.image import ImageEncoder, WeightsReport, load_local_weights
from ccrk.models.io import load_model, read_model_config, save_model
from ccrk.models.text import build_text_tower

__all__ = [
    "CCRModel",
    "Encoded",
    "FusionEncoder",
    "FusionLayer",
    "ImageEncoder",
    "MLMHead",
    "ModelConfig",
    "ModelConfigError",
    "TINY_TEXT_CONFIG",
    "WeightsReport",
    "build_itm_head",
    "build_model",
    "build_text_tower",
    "copy_from_hf_layer",
    "count_parameters",
    "load_local_weights",
    "load_model",
    "parameter_breakdown",
    "read_model_config",
    "save_model",
]
