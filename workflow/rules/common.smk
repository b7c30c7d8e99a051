import os

from snakemake.utils import min_version, validate

min_version("8.20")


validate(config, schema="../schemas/config.schema.yaml")


CONDA_ENV = "../envs/ccrk.yaml"
SYNTH_DIR = "resources/synth"
TOKENIZER_DIR = "resources/tokenizer"


wildcard_constraints:
    split="pretrain|train|val|test",


def all_targets():
    """What `snakemake` builds by default; grows as the DAG does."""
    return [f"{SYNTH_DIR}/stats.json", f"{TOKENIZER_DIR}/tokenizer.json"]


def config_overrides(*sections):
    """The config sections a rule depends on, passed to `ccrk` as --set flags.

    Passing values (not just the file name) makes Snakemake's params change
    detection rerun a rule exactly when one of its own settings changes.
    """
    import json

    flags = []
    for name in sections:
        for key, value in (config.get(name) or {}).items():
            flags.append(f"--set {name}.{key}='{json.dumps(value)}'")
    return " ".join(flags)
