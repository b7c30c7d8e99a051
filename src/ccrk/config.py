"""Load a YAML config file and apply ``--set key.sub=value`` overrides.

Each ``ccrk`` command reads the section it owns and validates it strictly
(an unknown key is an error that names it), because a misspelt option that
silently falls back to its default is the most expensive bug on a cluster.
"""
from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key."""


def check_keys(data: Any, known: Iterable[str], where: str,
               error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """``data`` (``None``: empty) as a new dict, once it is a mapping with no key outside ``known``.

    The one strictness rule of every config section: an unknown key is an error
    that names it in full (``train.epoch``) and lists the allowed ones, because
    a misspelt option that silently falls back to its default is the most
    expensive bug on a cluster. ``error`` lets a section raise its own
    :class:`ConfigError` subclass.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise error(f"{where} must be a mapping, got {type(data).__name__}")
    allowed = set(known)
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise error(f"unknown key(s) {', '.join(f'{where}.{key}' for key in unknown)}; "
                    f"allowed keys are {sorted(allowed)}")
    return dict(data)


def yaml_error_line(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: where, then what."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {yaml_error_line(exc)}") from exc
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
    """``a.b=3`` sets ``config["a"]["b"] = 3``; a value is read as JSON first, then as YAML (:func:`parse_value`)."""
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


def non_finite_keys(tree: Any, prefix: str = "") -> list[str]:
    """Dotted keys (list items as ``key[i]``) whose value is a NaN or infinite number."""
    if isinstance(tree, float):
        return [] if math.isfinite(tree) else [prefix or "<value>"]
    if isinstance(tree, dict):
        return [k for key, value in tree.items() for k in non_finite_keys(value, f"{prefix}.{key}" if prefix else str(key))]
    if isinstance(tree, (list, tuple)):
        return [k for i, value in enumerate(tree) for k in non_finite_keys(value, f"{prefix}[{i}]")]
    return []


def check_finite(config: dict[str, Any], source: str | None = None) -> None:
    """Refuse ``.inf``/``.nan`` anywhere: YAML reads them as numbers, and a NaN rate trains a NaN model silently."""
    bad = non_finite_keys(config)
    if bad:
        where = f" ({source})" if source else ""
        raise ConfigError(f"config key {bad[0]} is not a finite number: {_value_at(config, bad[0])!r}{where}")


def _value_at(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.replace("[", ".[").split("."):
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    return node


def load_config(path: str | os.PathLike[str] | None, overrides: list[str] | None = None) -> dict[str, Any]:
    """The YAML file with the overrides applied; every number in it finite."""
    base = load_yaml(path) if path is not None else {}
    config = apply_overrides(base, overrides)
    sources = ([str(path)] if path is not None else []) + (["--set"] if overrides else [])
    check_finite(config, " + ".join(sources) or None)
    return config


def section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"config key {name!r} must be a mapping, got {type(value).__name__}")
    return value
