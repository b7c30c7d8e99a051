"""Building the parts of a run from config sections: model, languages, data, resolved config.

Shared by pre-training and fine-tuning so both read the ``model`` section the
same way and record what they used in the same ``config.resolved.yaml``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from ccrk.atomic import atomic_write_text
from ccrk.config import ConfigError, section
from ccrk.data.collate import Collator
from ccrk.data.dataset import CaptionDataset
from ccrk.data.manifest import Record
from ccrk.data.transforms import build_train_transform
from ccrk.models import CCRModel, ModelConfig, build_model
from ccrk.train.seeding import derive_seed

RESOLVED_CONFIG = "config.resolved.yaml"
_STREAM_INIT = 3

#: Keys whose change does not alter what a resumed run computes.
VOLATILE_KEYS: frozenset[str] = frozenset({
    "run.resume", "run.progress", "run.out", "run.launcher", "run.world_size", "train.num_workers", "train.log_every",
    "train.save_every", "train.keep_last", "train.image_cache",
})


def model_config(config: Mapping[str, Any]) -> ModelConfig:
    return ModelConfig.from_dict(section(dict(config), "model"))


def build_seeded_model(cfg: ModelConfig, tokenizer: Any, seed: int) -> CCRModel:
    """The model with initial weights drawn from ``seed`` (the global RNG is restored afterwards)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, _STREAM_INIT))
        return build_model(cfg, tokenizer=tokenizer)


def shared_languages(records: Sequence[Record]) -> list[str]:
    """Languages every record has a caption in: English first, then in the first record's order."""
    common = [lang for lang, texts in records[0].captions.items() if texts]
    for record in records[1:]:
        common = [lang for lang in common if record.captions.get(lang)]
    if not common:
        raise ValueError("the manifest's records share no caption language; set train.languages")
    return (["en"] if "en" in common else []) + [lang for lang in common if lang != "en"]


def train_data(
    records: Sequence[Record],
    image_root: str | os.PathLike[str],
    languages: Sequence[str],
    objective_name: str,
    model_cfg: ModelConfig,
    tokenizer: Any,
    seed: int,
    image_reader: Any = None,
    crop_scale: tuple[float, float] = (0.5, 1.0),
    image_cache: int = 0,
) -> tuple[CaptionDataset, Collator]:
    transform = build_train_transform(model_cfg.image_size, scale=crop_scale)
    dataset = CaptionDataset(records, image_root, languages, transform, seed=seed,
                             image_reader=image_reader, image_cache=image_cache)
    collator = Collator(objective_name, languages, tokenizer, max_length=model_cfg.max_length)
    return dataset, collator


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: saved -> current`` for every non-volatile key whose value differs."""
    a, b = _flatten(saved), _flatten(current)
    out = []
    for key in sorted(set(a) | set(b)):
        if key in VOLATILE_KEYS:
            continue
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            out.append(f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}")
    return out


def check_resume_config(saved: Mapping[str, Any], current: Mapping[str, Any], where: str) -> None:
    diffs = config_differences(saved, current)
    if diffs:
        raise ConfigError(
            f"cannot resume from {where}: the config differs from the one it was made with "
            f"({'; '.join(diffs)}); use the original settings or a new --out"
        )


def write_resolved_config(out_dir: str | os.PathLike[str], resolved: Mapping[str, Any]) -> Path:
    path = Path(out_dir) / RESOLVED_CONFIG
    atomic_write_text(path, yaml.safe_dump(dict(resolved), sort_keys=False, allow_unicode=True))
    return path


def refuse_stale_output(out_dir: str | os.PathLike[str], resume: bool) -> None:
    """A fresh run must not mix with an older run's checkpoints in the same directory."""
    from ccrk.train.checkpoint import list_checkpoints

    found = list_checkpoints(Path(out_dir) / "checkpoints")
    if found and not resume:
        raise ValueError(
            f"{out_dir} already holds checkpoints (newest step {found[-1][0]}); pass --resume to continue "
            f"that run or choose another --out"
        )
