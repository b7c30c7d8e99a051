"""The ``train`` and ``finetune`` config sections, validated strictly.

A misspelt key (``warmpu``) that silently fell back to its default would make
a run differ from the experiment it claims to be, and on a cluster that is
found out days later; so unknown keys and wrong types are errors naming the
full key (``train.warmup``, ``finetune.train.lr``).
"""
from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ccrk.config import ConfigError, check_keys

SCHEDULES: tuple[str, ...] = ("linear", "constant")
#: ``adamw`` is the paper's; ``sgd`` (momentum 0.9) updates linearly in the gradient, which is what makes
#: a run comparable across summation orders (a data-parallel all-reduce vs local accumulation).
OPTIMIZERS: tuple[str, ...] = ("adamw", "sgd")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def _is_int(value: Any) -> bool:
    # bool is an int subclass: a YAML ``true`` must not pass as an epoch count.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or isinstance(value, float)


def _strict_keys(data: Any, known: set[str], where: str) -> dict[str, Any]:
    return copy.deepcopy(check_keys(data, known, where))


#: Keys of :class:`TrainConfig` that count something (a whole number; ``2.0`` is read as ``2``).
_INT_KEYS: tuple[str, ...] = ("epochs", "batch_size", "grad_accum", "seed", "num_workers", "log_every", "save_every",
                              "keep_last", "val_every", "image_cache")


@dataclass
class TrainConfig:
    """Optimisation settings of one training run (pre-training or fine-tuning).

    ``batch_size`` is global (summed over data-parallel ranks) and per
    micro-step; one optimiser step consumes ``batch_size * grad_accum``
    samples. ``crop_scale`` bounds the area fraction the random resized
    crop keeps (open_clip's ``scale``). ``betas``: AdamW's moment decay
    rates (default torch's 0.9, 0.999; the paper's public code and CLIP take
    0.98 for the second, a memory of ~50 steps instead of ~1,000). ``image_cache``: decoded training
    images kept in memory per data-loading process (0: decode every time;
    the embedded benchmark fits, a web-scale corpus does not). ``val_every``: pre-training with a
    validation manifest scores it before training, every ``val_every``
    epochs and after the last one. ``warmup`` is a fraction of the optimiser steps when a float in
    [0, 1], a number of steps when a whole number (``5`` or ``5.0``). ``save_every`` counts optimiser
    steps (0: only the final checkpoint). ``languages`` (English first) are
    the K caption languages; ``None`` takes every language all manifest
    records share. ``init_seed``: the seed a model built from scratch draws
    its initial weights from (``None``: the run's ``seed``); held fixed, runs
    that differ in ``seed`` differ only in data order and each step's random
    draws, which separates the two sources of a from-scratch run's seed spread.
    """

    epochs: int = 1
    batch_size: int = 32
    grad_accum: int = 1
    optimizer: str = "adamw"
    lr: float = 1e-4
    lr_mult_new: float = 2.0
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup: float | int = 0.1
    schedule: str = "linear"
    grad_clip: float | None = 1.0
    precision: str = "auto"
    device: str = "auto"
    seed: int = 0
    init_seed: int | None = None
    num_workers: int = 2
    log_every: int = 10
    save_every: int = 500
    keep_last: int = 3
    languages: list[str] | None = None
    crop_scale: list[float] = field(default_factory=lambda: [0.5, 1.0])
    val_every: int = 1
    image_cache: int = 0
    where: str = field(default="train", repr=False, compare=False)

    def __post_init__(self) -> None:
        w = self.where
        for key in _INT_KEYS:
            value = getattr(self, key)
            if isinstance(value, float) and value.is_integer():  # 2.0 is an integer to JSON Schema, so to ccrk
                setattr(self, key, int(value))
            if not _is_int(getattr(self, key)):
                raise ConfigError(f"{w}.{key} must be an integer, got {getattr(self, key)!r}")
        for key, low in (("epochs", 1), ("batch_size", 1), ("grad_accum", 1), ("log_every", 1), ("keep_last", 1),
                         ("val_every", 1),
                         ("seed", 0), ("num_workers", 0), ("save_every", 0), ("image_cache", 0)):
            if getattr(self, key) < low:
                raise ConfigError(f"{w}.{key} must be >= {low}, got {getattr(self, key)}")
        if self.init_seed is not None:
            if isinstance(self.init_seed, float) and self.init_seed.is_integer():
                self.init_seed = int(self.init_seed)
            if not _is_int(self.init_seed) or self.init_seed < 0:
                raise ConfigError(f"{w}.init_seed must be a non-negative integer or null, got {self.init_seed!r}")
        for key in ("lr", "lr_mult_new", "weight_decay"):
            value = getattr(self, key)
            if not _is_number(value) or value < 0:
                raise ConfigError(f"{w}.{key} must be a non-negative number, got {value!r}")
            setattr(self, key, float(value))
        if self.lr <= 0:
            raise ConfigError(f"{w}.lr must be > 0, got {self.lr}")
        if isinstance(self.warmup, float) and self.warmup > 1.0 and self.warmup.is_integer():
            # JSON Schema (the workflow's validation) counts 5.0 as an integer: so does ccrk, as 5 steps.
            self.warmup = int(self.warmup)
        if _is_int(self.warmup):
            if self.warmup < 0:
                raise ConfigError(f"{w}.warmup must be >= 0 steps, got {self.warmup}")
        elif isinstance(self.warmup, float):
            if not 0.0 <= self.warmup <= 1.0:
                raise ConfigError(
                    f"{w}.warmup must be a fraction of the optimiser steps in [0, 1] or a whole number of steps, "
                    f"got {self.warmup}"
                )
        else:
            raise ConfigError(f"{w}.warmup must be a fraction (float) or a number of steps (int), got {self.warmup!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"{w}.optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"{w}.schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if self.grad_clip is not None:
            if not _is_number(self.grad_clip) or self.grad_clip < 0:
                raise ConfigError(f"{w}.grad_clip must be a non-negative number or null, got {self.grad_clip!r}")
            self.grad_clip = float(self.grad_clip) if self.grad_clip > 0 else None
        if self.precision not in PRECISIONS:
            raise ConfigError(f"{w}.precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.device not in DEVICES:
            raise ConfigError(f"{w}.device must be one of {list(DEVICES)}, got {self.device!r}")
        betas = self.betas
        if (not isinstance(betas, (list, tuple)) or len(betas) != 2 or not all(_is_number(v) for v in betas)
                or not all(0 <= v < 1 for v in betas)):
            raise ConfigError(f"{w}.betas must be [beta1, beta2], each in [0, 1), got {betas!r}")
        self.betas = [float(v) for v in betas]
        scale = self.crop_scale
        if (not isinstance(scale, (list, tuple)) or len(scale) != 2 or not all(_is_number(v) for v in scale)
                or not 0 < scale[0] <= scale[1] <= 1):
            raise ConfigError(f"{w}.crop_scale must be [min, max] with 0 < min <= max <= 1, got {scale!r}")
        self.crop_scale = [float(v) for v in scale]
        if self.languages is not None:
            if isinstance(self.languages, str) or not isinstance(self.languages, (list, tuple)):
                raise ConfigError(f"{w}.languages must be a list of language codes, got {self.languages!r}")
            langs = list(self.languages)
            if not langs or len(set(langs)) != len(langs) or not all(isinstance(x, str) for x in langs):
                raise ConfigError(f"{w}.languages must be non-empty, distinct language codes, got {langs}")
            bad = [x for x in langs if not re.fullmatch(r"[a-z]{2}", x)]
            if bad:
                raise ConfigError(f"{w}.languages: {bad[0]!r} is not a two-letter ISO 639-1 code, got {langs}")
            if "en" in langs and langs[0] != "en":
                raise ConfigError(f"{w}.languages must list 'en' first (rows i*K are English), got {langs}")
            self.languages = langs

    @property
    def model_seed(self) -> int:
        """The seed of a from-scratch model's initial weights: ``init_seed``, else ``seed``."""
        return self.seed if self.init_seed is None else self.init_seed

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "train") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)} - {"where"}
        return cls(**_strict_keys(data, known, where), where=where)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("where")
        return out


#: Fine-tuning trains contrastive + matching; MLM is off unless configured.
DEFAULT_FINETUNE_OBJECTIVE: dict[str, Any] = {"name": "one_to_k", "weights": {"itc": 1.0, "itm": 1.0, "mlm": 0.0}}
#: Re-ranking depths ``k_test`` scored on validation after fine-tuning; 1 is contrastive-only retrieval.
DEFAULT_K_TEST_CANDIDATES: tuple[int, ...] = (1, 4, 8, 16)


@dataclass
class FinetuneConfig:
    """The ``finetune`` section.

    ``objective`` is an objective mapping (``ccrk.objectives``) merged over
    :data:`DEFAULT_FINETUNE_OBJECTIVE` (``weights`` merged key by key);
    ``train`` overrides keys of the ``train`` section for fine-tuning, so
    shared settings (workers, precision, logging) are written once.
    ``eval_batch_size`` is the image/caption batch used to encode the
    validation split (and the pair batch of the matching head there);
    ``ks`` the recall cut-offs of the selection score.
    ``k_test_candidates`` are the re-ranking depths the selected model is
    scored at on validation after training (1: contrastive order only); the
    best is recorded for ``evaluate.k_test: auto``
    (:mod:`ccrk.evaluation.ktest`), so the test split never chooses it.
    """

    objective: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_FINETUNE_OBJECTIVE))
    train: dict[str, Any] = field(default_factory=dict)
    eval_batch_size: int = 64
    ks: list[int] = field(default_factory=lambda: [1, 5, 10])
    k_test_candidates: list[int] = field(default_factory=lambda: list(DEFAULT_K_TEST_CANDIDATES))

    def __post_init__(self) -> None:
        if not isinstance(self.objective, Mapping):
            raise ConfigError(f"finetune.objective must be a mapping, got {self.objective!r}")
        merged = copy.deepcopy(DEFAULT_FINETUNE_OBJECTIVE)
        for key, value in self.objective.items():
            if key == "weights" and isinstance(value, Mapping):
                merged["weights"].update(value)
            else:
                merged[key] = value
        self.objective = merged
        if not isinstance(self.train, Mapping):
            raise ConfigError(f"finetune.train must be a mapping, got {self.train!r}")
        if not _is_int(self.eval_batch_size) or self.eval_batch_size < 1:
            raise ConfigError(f"finetune.eval_batch_size must be a positive integer, got {self.eval_batch_size!r}")
        if (not isinstance(self.ks, (list, tuple)) or not self.ks
                or not all(_is_int(k) and k >= 1 for k in self.ks)):
            raise ConfigError(f"finetune.ks must be a non-empty list of positive integers, got {self.ks!r}")
        self.ks = [int(k) for k in self.ks]
        cands = self.k_test_candidates
        if (not isinstance(cands, (list, tuple)) or not cands or not all(_is_int(k) and k >= 1 for k in cands)
                or len(set(cands)) != len(cands)):
            raise ConfigError(f"finetune.k_test_candidates must be a non-empty list of distinct positive integers "
                              f"(1: no re-ranking), got {cands!r}")
        self.k_test_candidates = [int(k) for k in cands]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FinetuneConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**_strict_keys(data, known, "finetune"))

    def train_config(self, base: Mapping[str, Any] | None) -> TrainConfig:
        """The ``train`` section with ``finetune.train`` on top; errors name ``finetune.train.<key>``."""
        known = {f.name for f in dataclasses.fields(TrainConfig)} - {"where"}
        TrainConfig.from_dict(base, where="train")  # a bad value in the base section is named there
        merged = {**_strict_keys(base, known, "train"), **_strict_keys(self.train, known, "finetune.train")}
        return TrainConfig.from_dict(merged, where="finetune.train")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
