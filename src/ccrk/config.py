"""Load a YAML config file and apply ``--set key.sub=value`` overrides.

Each ``ccrk`` command reads the section it owns and validates it strictly
(an unknown key is an error that names it), because a misspelt option that
silently falls back to its default is the most expensive bug on a cluster.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key."""


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def parse_value(raw: str) -> Any:
    """An override's value: JSON when it is JSON, else YAML.

    JSON first because PyYAML reads ``1e-05`` (what ``json.dumps`` writes for
    1e-5) as a string, so a float passed by a workflow rule would arrive as text.
    """
    try:
        return json.loads(raw)
    except ValueError:
        return yaml.safe_load(raw)


def apply_overrides(config: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """``a.b=3`` sets ``config["a"]["b"] = 3``; values are parsed as YAML."""
    out = copy.deepcopy(config)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key.sub=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r} has an empty key part")
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[: depth + 1])} is not a mapping")
            node = child
        try:
            node[parts[-1]] = parse_value(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {exc}") from exc
    return out


def load_config(path: str | os.PathLike[str] | None, overrides: list[str] | None = None) -> dict[str, Any]:
    base = load_yaml(path) if path is not None else {}
    return apply_overrides(base, overrides)


def section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"config key {name!r} must be a mapping, got {type(value).__name__}")
    return value
