"""Training engine: ``ccrk pretrain`` and ``ccrk finetune``, exactly resumable, data-parallel.

Entry points are the submittable trainers :class:`Pretrainer` and
:class:`Finetuner` (callable; ``checkpoint()`` requeues with ``resume=True``).
The loop itself is :class:`Engine`; configs are :class:`TrainConfig` (the
``train`` section) and :class:`FinetuneConfig` (the ``finetune`` section).

Names are imported lazily: ``ccrk.cli`` imports ``ccrk.train.cli`` for every
command, and ``ccrk --help`` should not pay for loading the model stack.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS: dict[str, str] = {
    "REGIMES": "ccrk.layout",
    "Engine": "ccrk.train.engine",
    "FinetuneConfig": "ccrk.train.config",
    "FinetuneSpec": "ccrk.train.finetune",
    "Finetuner": "ccrk.train.finetune",
    "PretrainSpec": "ccrk.train.trainer",
    "Pretrainer": "ccrk.train.trainer",
    "StepPlan": "ccrk.train.optim",
    "TrainConfig": "ccrk.train.config",
    "TrainState": "ccrk.train.engine",
    "Trainer": "ccrk.train.trainer",
    "list_checkpoints": "ccrk.train.checkpoint",
    "load_checkpoint": "ccrk.train.checkpoint",
    "load_latest": "ccrk.train.checkpoint",
    "load_pretrained": "ccrk.train.finetune",
    "plan_steps": "ccrk.train.optim",
    "regime_languages": "ccrk.train.finetune",
    "save_checkpoint": "ccrk.train.checkpoint",
    "validate": "ccrk.train.validate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ccrk.train' has no attribute {name!r}")
