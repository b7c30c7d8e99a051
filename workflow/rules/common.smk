import json
import os
import re

from snakemake.utils import min_version, validate

min_version("8.20")


validate(config, schema="../schemas/config.schema.yaml")


CONDA_ENV = "../envs/ccrk.yaml"
SYNTH_DIR = "resources/synth"
TOKENIZER_DIR = "resources/tokenizer"
MANIFEST_DIR = "resources/manifests"
PRETRAIN_DIR = "results/models/pretrain"
FINETUNE_DIR = "results/models/finetune"
METRICS_DIR = "results/metrics"
TABLES_DIR = "results/tables"
FIGURES_DIR = "results/figures"
SUMMARY_DIR = "results/summary"
PLOTS_DIR = "results/plots"

WF = config["workflow"]
DATASETS = WF["datasets"]
OBJECTIVES = WF["objectives"]
SEEDS = WF["seeds"]
SETTINGS = WF["settings"]
BASELINES = [b for b in WF.get("baselines", ["cross_lingual", "cross_modal"]) if b in OBJECTIVES]
LAUNCHER = WF.get("launcher", "local")
JOB_THREADS = WF.get("threads", 1)

TABLES = ["table1", "per_language", "mrv", "significance"]
FIGURES = ["recall_per_language", "rank_std", "rank_scatter", "loss_curves"]


wildcard_constraints:
    split="pretrain|train|val|test",
    objective="one_to_k|cross_lingual|cross_modal",
    baseline="cross_lingual|cross_modal",
    dataset="synth|xflickrco|wit|multi30k|mscoco",
    seed=r"\d+",
    setting=r"zero_shot|all_languages|single_language\.[a-z]{2}|few_shot\.[a-z]{2}\.\d+",


def config_overrides(*sections):
    """The config sections a rule depends on, passed to `ccrk` as --set flags.

    Passing values (not just the file name) makes Snakemake's params change
    detection rerun a rule exactly when one of its own settings changes, and
    makes `--config`/`--configfile` on the Snakemake command line reach ccrk.
    """
    flags = []
    for name in sections:
        for key, value in (config.get(name) or {}).items():
            text = json.dumps(value, ensure_ascii=False)
            if "'" in text:
                raise ValueError(f"config value {name}.{key} contains a single quote, which the shell rules cannot pass")
            flags.append(f"--set {name}.{key}='{text}'")
    return " ".join(flags)


def thread_env(threads):
    """Pin the math libraries to the job's threads, so parallel jobs do not oversubscribe the cores."""
    return f"OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"


# -- datasets ------------------------------------------------------------------


def dataset_split(dataset, split):
    """A prepared manifest of a dataset (DESIGN.md format)."""
    if dataset == "synth":
        return f"{SYNTH_DIR}/{split}.jsonl"
    return f"{MANIFEST_DIR}/{dataset}/{split}.jsonl"


def dataset_image_root(dataset):
    """The directory the manifest's image paths are relative to."""
    return SYNTH_DIR if dataset == "synth" else "data"


def pretrain_manifest():
    """The pre-training corpus: the synthetic one, or the translated corpus of the real-data issue."""
    if "synth" in DATASETS:
        return dataset_split("synth", "pretrain")
    return f"{MANIFEST_DIR}/pretrain/pretrain.jsonl"


def pretrain_image_root():
    return SYNTH_DIR if "synth" in DATASETS else "data"


def parse_setting(setting):
    """`zero_shot`, `all_languages`, `single_language.<lang>`, `few_shot.<lang>.<shots>` -> (regime, lang, shots)."""
    parts = setting.split(".")
    if parts[0] == "single_language":
        return "single_language", parts[1], None
    if parts[0] == "few_shot":
        return "few_shot", parts[1], int(parts[2])
    return parts[0], None, None


def finetune_train_manifest(dataset, setting):
    regime, lang, shots = parse_setting(setting)
    if regime == "few_shot":
        if dataset == "synth":
            return f"{SYNTH_DIR}/fewshot/{lang}/train_{shots}.jsonl"
        return f"{MANIFEST_DIR}/{dataset}/fewshot/{lang}/train_{shots}.jsonl"
    return dataset_split(dataset, "train")


def finetune_start(wildcards):
    """Few-shot starts from the English (zero-shot) model; every other regime from pre-training."""
    regime, _, _ = parse_setting(wildcards.setting)
    if regime == "few_shot":
        return f"{FINETUNE_DIR}/{wildcards.dataset}/zero_shot/{wildcards.objective}/seed{wildcards.seed}/model/model.safetensors"
    return f"{PRETRAIN_DIR}/{wildcards.objective}/seed{wildcards.seed}/model/model.safetensors"


def finetune_flags(wildcards):
    regime, lang, shots = parse_setting(wildcards.setting)
    flags = f"--regime {regime}"
    if lang is not None:
        flags += f" --language {lang}"
    if shots is not None:
        flags += f" --shots {shots}"
    return flags


def evaluate_flags(wildcards):
    """Single-language and few-shot models are tested on their language (no MRV); the others on every language."""
    _, lang, _ = parse_setting(wildcards.setting)
    if lang is not None:
        return f"--languages {lang} --mrv-languages none"
    langs = (config.get("evaluate") or {}).get("languages") or (config.get("train") or {}).get("languages")
    return f"--languages {','.join(langs)}" if langs else ""


# -- targets -------------------------------------------------------------------


def metrics_files():
    return expand(
        f"{METRICS_DIR}/{{dataset}}/{{setting}}/{{objective}}/seed{{seed}}/metrics.json",
        dataset=DATASETS, setting=SETTINGS, objective=OBJECTIVES, seed=SEEDS,
    )


def compare_files():
    if "one_to_k" not in OBJECTIVES:
        return []
    return expand(
        f"{METRICS_DIR}/{{dataset}}/{{setting}}/compare/seed{{seed}}/one_to_k-vs-{{baseline}}.json",
        dataset=DATASETS, setting=SETTINGS, seed=SEEDS, baseline=BASELINES,
    )


def pretrain_logs():
    return expand(f"{PRETRAIN_DIR}/{{objective}}/seed{{seed}}/metrics.jsonl", objective=OBJECTIVES, seed=SEEDS)


def table_files():
    return expand(f"{TABLES_DIR}/{{table}}.{{ext}}", table=TABLES, ext=["csv", "md", "tex"])


def figure_files():
    return expand(f"{FIGURES_DIR}/{{figure}}.{{ext}}", figure=FIGURES, ext=["png", "pdf"])


def benchmark_targets():
    """The embedded benchmark and the tokenizer."""
    return [f"{SYNTH_DIR}/stats.json", f"{TOKENIZER_DIR}/tokenizer.json"]


def all_targets():
    """What `snakemake` builds by default: every table and figure (and so everything they need)."""
    return table_files() + figure_files()
