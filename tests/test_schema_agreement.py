"""The workflow's JSON Schema and ccrk's own validation accept the same training settings.

Snakemake validates the whole config against workflow/schemas/config.schema.yaml at start-up; each `ccrk`
command validates the section it reads (ccrk.train.config.TrainConfig). A value one accepts and the other
refuses fails late, inside a job, after the DAG has started: every case here must get the same verdict from
both. Constraints between two values (crop_scale's min <= max, English first among the languages) are beyond
what the schema can state, and are not in the table; ccrk refuses them when the job starts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ccrk.config import ConfigError
from ccrk.train.config import TrainConfig

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"

CASES: list[tuple[str, Any]] = [
    *[("epochs", v) for v in (1, 0, -1, 2.0, 2.5, "3", True, None)],
    *[("batch_size", v) for v in (32, 0, 16.0)],
    *[("grad_accum", v) for v in (1, 0)],
    *[("lr", v) for v in (1e-3, 0, 0.0, -1e-3, "fast", 2)],
    *[("lr_mult_new", v) for v in (2.0, 0, -1)],
    *[("weight_decay", v) for v in (0.01, 0, -0.1)],
    *[("betas", v) for v in ([0.9, 0.98], [0, 0.5], [0.9, 1.0], [0.9], [-0.1, 0.9], "0.9,0.98")],
    *[("warmup", v) for v in (0, 0.25, 1.0, 1, 5, 5.0, 5.5, 1.5, -0.1, -1, "x", True)],
    *[("grad_clip", v) for v in (None, 0, 1.0, -1.0, "x")],
    *[("optimizer", v) for v in ("adamw", "sgd", "adam")],
    *[("schedule", v) for v in ("linear", "constant", "cosine")],
    *[("precision", v) for v in ("auto", "bf16", "fp64")],
    *[("device", v) for v in ("cpu", "cuda", "tpu")],
    *[("seed", v) for v in (0, -1)],
    *[("init_seed", v) for v in (None, 0, 7, 7.0, -1, 2.5, "1", True)],
    *[("num_workers", v) for v in (0, 4, -1)],
    *[("log_every", v) for v in (1, 0)],
    *[("save_every", v) for v in (0, -5)],
    *[("keep_last", v) for v in (1, 0)],
    *[("val_every", v) for v in (2, 0)],
    *[("image_cache", v) for v in (0, 4000, -1, "all")],
    *[("crop_scale", v) for v in ([0.5, 1.0], [1, 1], [0.0, 1.0], [0.5], [0.5, 1.5], "0.5,1")],
    *[("languages", v) for v in (["en", "de"], ["en", "en"], [], "en", ["english"])],
]


@pytest.fixture(scope="module")
def train_validator() -> jsonschema.Validator:
    schema = yaml.safe_load(SCHEMA.read_text())
    sub = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/train_keys"}
    cls = jsonschema.validators.validator_for(sub)
    return cls(sub)


def _ccrk_accepts(key: str, value: Any) -> bool:
    try:
        TrainConfig.from_dict({key: value})
    except (ConfigError, ValueError, TypeError):
        return False
    return True


@pytest.mark.parametrize(("key", "value"), CASES, ids=[f"{k}={v!r}" for k, v in CASES])
def test_schema_and_ccrk_give_the_same_verdict(train_validator: jsonschema.Validator, key: str, value: Any) -> None:
    schema_accepts = train_validator.is_valid({key: value})
    assert schema_accepts == _ccrk_accepts(key, value), (
        f"train.{key}: {value!r} is {'accepted' if schema_accepts else 'refused'} by the schema but not by ccrk"
    )


def test_whole_number_floats_mean_what_the_schema_reads() -> None:
    assert TrainConfig.from_dict({"warmup": 5.0}).warmup == 5  # steps
    assert TrainConfig.from_dict({"warmup": 1.0}).warmup == 1.0  # the whole run, as a fraction
    assert TrainConfig.from_dict({"epochs": 2.0}).epochs == 2
