"""Save and load a :class:`CCRModel` as a self-contained directory.

``config.json`` holds the *resolved* config (the text model's full config
inlined, no weight sources), so a saved model rebuilds with no hub access and
no tokenizer; ``model.safetensors`` holds every tensor once.  Tied tensors
(the MLM decoder is the word-embedding matrix) are stored under one name and
listed as aliases; the rebuilt model ties them again by construction.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ccrk.atomic import atomic_directory
from ccrk.layout import WEIGHTS_FILE
from ccrk.models.ccr import CCRModel
from ccrk.models.config import ModelConfig

FORMAT = "ccrk.model/1"
CONFIG_FILE = "config.json"


def _aliases(state: dict[str, torch.Tensor]) -> dict[str, str]:
    """``{alias: kept_name}`` for state-dict entries that share storage with an earlier entry."""
    seen: dict[tuple[int, int, tuple[int, ...], tuple[int, ...]], str] = {}
    aliases: dict[str, str] = {}
    for name, tensor in state.items():
        storage = tensor.untyped_storage().data_ptr()
        key = (storage, tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride()))
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
    return aliases


def save_model(model: CCRModel, directory: str | os.PathLike[str], tokenizer_fingerprint: str | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``directory`` atomically (replacing it).

    ``tokenizer_fingerprint`` (:func:`ccrk.tokenizer.tokenizer_fingerprint` of the tokenizer the model was
    trained with) goes into ``config.json`` as ``tokenizer``, so every command that pairs the model with a
    tokenizer can refuse another one.
    """
    state = model.state_dict()
    aliases = _aliases(state)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items() if k not in aliases}
    meta = {
        "format": FORMAT,
        "config": model.resolved_config().to_dict(),
        "built_from": model.built_from.to_dict(),
        "new_parameters": sorted(model.new_parameter_names()),
        "aliases": aliases,
        "tokenizer": tokenizer_fingerprint,
    }
    target = Path(directory)
    with atomic_directory(target) as tmp:
        # One metadata key: safetensors writes its metadata map in a random order per process, and two keys
        # made the same weights two different files (DVC would see a change where there is none).
        # The format is config.json's to state.
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return target


def read_model_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``config.json`` of a saved model (format-checked)."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {directory} is not a saved ccrk model")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON at line {err.lineno}: {err.msg}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(f"{path}: format is {found!r}, expected {FORMAT!r}")
    return meta


def load_model(directory: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> CCRModel:
    """Rebuild a saved model offline and load its weights (strictly); returned in eval mode."""
    meta = read_model_config(directory)
    config = ModelConfig.from_dict(meta["config"])
    model = CCRModel(config)
    weights = Path(directory) / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} does not exist")
    state = read_weights_file(weights, device=str(map_location))

    aliases: dict[str, str] = meta.get("aliases", {})
    expected = set(model.state_dict()) - set(aliases)
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(f"{weights} does not match its config.json: missing {missing}, unexpected {unexpected}")
    model.load_state_dict(state, strict=False)
    rebuilt = model.state_dict()
    for alias, kept in aliases.items():
        if rebuilt[alias].data_ptr() != rebuilt[kept].data_ptr():
            raise ValueError(f"{weights}: {alias} should be tied to {kept} but the rebuilt model does not tie them")

    model.restore_provenance(
        ModelConfig.from_dict(meta.get("built_from", meta["config"])),
        meta.get("new_parameters", sorted(model.new_parameter_names())),
    )
    return model.to(map_location).eval()


def read_weights_file(path: str | os.PathLike[str], device: str = "cpu") -> dict[str, torch.Tensor]:
    """Every tensor of a ``.safetensors`` file; a truncated or corrupt file is a one-line error naming it."""
    try:
        return load_file(str(path), device=device)
    except Exception as err:  # safetensors raises its own SafetensorError (not an OSError/ValueError)
        if isinstance(err, (FileNotFoundError, PermissionError)):
            raise
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{path}: not a complete safetensors file (truncated or corrupt: {reason})") from err


def saved_tokenizer(meta: dict[str, Any]) -> str | None:
    """The tokenizer fingerprint a saved model's ``config.json`` records (``None``: saved before it was)."""
    value = meta.get("tokenizer")
    return value if isinstance(value, str) else None
