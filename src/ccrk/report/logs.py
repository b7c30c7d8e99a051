"""The pre-training logs the learning-curve and loss figures are drawn from.

Layout: ``<pretrain_dir>/<objective>/seed<seed>/metrics.jsonl`` (one record a
logging window, written by ``ccrk pretrain``), with the ``val.jsonl`` of
``ccrk pretrain --val-manifest`` beside it (R@1, MRV and ITM AUC per
validation). A record without its numbers is an error naming file and line.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccrk.layout import OBJECTIVES, TRAIN_LOG, VAL_LOG
from ccrk.report.runs import ResultsError, check_unique_seeds, entries, is_number, is_real, seed_of

PRETRAIN_LAYOUT = "<pretrain_dir>/<objective>/seed<seed>/metrics.jsonl"


@dataclass(frozen=True)
class PretrainLog:
    objective: str
    seed: int
    path: Path
    records: list[dict[str, Any]] = field(repr=False, compare=False)
    #: ``val.jsonl`` beside it (``ccrk pretrain --val-manifest``): R@1, MRV and ITM AUC per epoch; empty if none.
    validation: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)



def _read_log_records(path: Path, first: str, second: str, second_may_be_nan: bool, what: str) -> list[dict[str, Any]]:
    """JSON Lines records of a training log, each with a finite number at ``first`` and a number at ``second``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ResultsError(f"{path}: not UTF-8 text ({err})") from err
    records = []
    number_ok = is_real if second_may_be_nan else is_number
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise ResultsError(f"{path}:{n}: not a JSON record ({err.msg})") from err
        if not isinstance(rec, dict) or not is_number(rec.get(first)) or not number_ok(rec.get(second)):
            raise ResultsError(f"{path}:{n}: a {what} record needs a numeric '{first}' and '{second}'")
        records.append(rec)
    return records


def read_pretrain_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a pre-training ``metrics.jsonl``; each needs a ``step`` and a ``loss``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (the metrics.jsonl ccrk pretrain writes)")
    records = _read_log_records(path, "step", "loss", True, "training")  # a diverged step logs NaN
    if not records:
        raise ResultsError(f"{path}: holds no records")
    return records


def read_validation_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a pre-training ``val.jsonl`` (``ccrk pretrain --val-manifest``); each needs a ``step`` and an ``r1``."""
    return _read_log_records(Path(path), "step", "r1", False, "validation")


def collect_pretrain(log_files: Sequence[str | os.PathLike[str]]) -> list[PretrainLog]:
    """The pre-training logs named (``<objective>/seed<seed>/metrics.jsonl``, ``val.jsonl`` read beside each)."""
    logs = []
    seen: dict[tuple[str, int], Path] = {}
    for given in log_files:
        path = Path(given)
        if path.name != TRAIN_LOG:
            raise ResultsError(f"{path}: expected a pre-training {TRAIN_LOG} (layout: {PRETRAIN_LAYOUT})")
        seed = seed_of(path.parent, PRETRAIN_LAYOUT)
        objective = path.parent.parent.name
        if objective not in OBJECTIVES:
            raise ResultsError(f"{path}: expected an objective directory ({', '.join(OBJECTIVES)}) "
                               f"(layout: {PRETRAIN_LAYOUT})")
        if (objective, seed) in seen:
            raise ResultsError(f"{path} and {seen[(objective, seed)]} are the same run")
        seen[(objective, seed)] = path
        val = path.parent / VAL_LOG
        validation = read_validation_log(val) if val.is_file() else []
        logs.append(PretrainLog(objective, seed, path, read_pretrain_log(path), validation))
    if not logs:
        raise ResultsError(f"no pre-training logs given (expected files like {PRETRAIN_LAYOUT})")
    return logs


def discover_pretrain(pretrain_dir: str | os.PathLike[str]) -> list[PretrainLog]:
    """Every pre-training log under ``pretrain_dir`` (layout ``<objective>/seed<seed>/metrics.jsonl``)."""
    root = Path(pretrain_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"pre-training directory {root} does not exist (expected {PRETRAIN_LAYOUT})")
    logs = []
    for ob_dir in entries(root):
        if ob_dir.name not in OBJECTIVES or not ob_dir.is_dir():
            raise ResultsError(f"{ob_dir}: expected an objective directory ({', '.join(OBJECTIVES)}) "
                               f"(layout: {PRETRAIN_LAYOUT})")
        seed_dirs = entries(ob_dir)
        for seed_dir in seed_dirs:
            seed = seed_of(seed_dir, PRETRAIN_LAYOUT)
            path = seed_dir / TRAIN_LOG
            val = seed_dir / VAL_LOG
            validation = read_validation_log(val) if val.is_file() else []
            logs.append(PretrainLog(ob_dir.name, seed, path, read_pretrain_log(path), validation))
        check_unique_seeds(seed_dirs)
    if not logs:
        raise ResultsError(f"no pre-training logs under {root} (expected {PRETRAIN_LAYOUT})")
    return logs
