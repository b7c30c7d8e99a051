"""The near-duplicate diagnostics of finished runs, read back for the figures.

Each ``attributes.json`` (``ccrk evaluate --scenes``, format ``ccrk.attributes/1``,
see :mod:`ccrk.report.attributes`) is checked for every number the figures
read; the run's dataset, setting, objective and seed come from its path
(``<dataset>/<setting>/<objective>/seed<seed>/attributes.json``).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccrk.layout import OBJECTIVES, Setting
from ccrk.report.attributes import ALL, ATTRIBUTES, FORMAT, SCORES
from ccrk.report.runs import ResultsError, parse_setting

LAYOUT = "<dataset>/<setting>/<objective>/seed<seed>/attributes.json"


@dataclass(frozen=True)
class AttributeRun:
    """One ``attributes.json`` and the run it belongs to (from its path)."""

    dataset: str
    setting: Setting
    objective: str
    seed: int
    path: Path
    doc: dict[str, Any] = field(repr=False, compare=False)

    def cell(self, language: str | None, attribute: str) -> dict[str, Any]:
        """``per_language[language][attribute]``, or the pooled ``all_languages`` cell for ``language=None``."""
        cells = self.doc["all_languages"] if language is None else self.doc["per_language"][language]
        return cells[attribute]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_cell(cell: Any, key: str, path: Path) -> None:
    if not isinstance(cell, dict) or not isinstance(cell.get("n"), int) or cell["n"] < 0:
        raise ResultsError(f"{path}: {key} must be a cell with a non-negative integer 'n'")
    for score in SCORES:
        stat = cell.get(score)
        if cell["n"] == 0:
            if stat is not None:
                raise ResultsError(f"{path}: {key}.{score} must be null in a cell with n = 0")
            continue
        if not isinstance(stat, dict) or not all(_finite(stat.get(b)) for b in ("value", "low", "high")):
            raise ResultsError(f"{path}: {key}.{score} needs finite value, low and high")


def load_attributes(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An ``attributes.json`` of ``ccrk attributes``, checked for every number the figures read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (the JSON ccrk attributes writes)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultsError(f"{path}: not the JSON of ccrk attributes ({err})") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ResultsError(f"{path}: format is {found!r}, expected {FORMAT!r} (the JSON of ccrk attributes)")
    langs = doc.get("languages")
    if not isinstance(langs, list) or not langs or not all(isinstance(x, str) for x in langs):
        raise ResultsError(f"{path}: 'languages' must be a non-empty list of language codes")
    if doc.get("attributes") != list(ATTRIBUTES):
        raise ResultsError(f"{path}: 'attributes' must be {list(ATTRIBUTES)}")
    if not isinstance(doc.get("per_language"), dict) or not isinstance(doc.get("all_languages"), dict):
        raise ResultsError(f"{path}: missing 'per_language' or 'all_languages'")
    for name in (*ATTRIBUTES, ALL):
        _check_cell(doc["all_languages"].get(name), f"all_languages.{name}", path)
        for lang in langs:
            per = doc["per_language"].get(lang)
            if not isinstance(per, dict):
                raise ResultsError(f"{path}: missing per_language.{lang}")
            _check_cell(per.get(name), f"per_language.{lang}.{name}", path)
    alpha = (doc.get("interval") or {}).get("alpha")
    if not _finite(alpha) or not 0 < alpha < 1:
        raise ResultsError(f"{path}: 'interval.alpha' is missing or not in (0, 1)")
    return doc


def attribute_runs(paths: Sequence[str | os.PathLike[str]]) -> list[AttributeRun]:
    """Load ``attributes.json`` files named explicitly; each path must end in :data:`LAYOUT`."""
    runs: dict[tuple[str, str, str, int], AttributeRun] = {}
    for p in paths:
        path = Path(p)
        parts = path.parts
        if len(parts) < 5 or not parts[-2].startswith("seed") or not parts[-2][4:].isdigit():
            raise ResultsError(f"{path}: expected a path ending in {LAYOUT}")
        dataset, setting_name, objective = parts[-5], parts[-4], parts[-3]
        if objective not in OBJECTIVES:
            raise ResultsError(f"{path}: {objective!r} is not an objective ({', '.join(OBJECTIVES)}; layout {LAYOUT})")
        setting = parse_setting(setting_name, path)
        seed = int(parts[-2][4:])
        key = (dataset, setting.name, objective, seed)
        if key in runs:
            raise ResultsError(f"{path} and {runs[key].path} are the same run {'/'.join(map(str, key))}")
        runs[key] = AttributeRun(dataset, setting, objective, seed, path, load_attributes(path))
    obj = {o: n for n, o in enumerate(OBJECTIVES)}
    return sorted(runs.values(), key=lambda r: (r.dataset, r.setting.name, obj[r.objective], r.seed))
