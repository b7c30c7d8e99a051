import copy
import json
import os
import re

from snakemake.utils import min_version, update_config, validate

# The names ccrk and this workflow share (objectives, settings, datasets, result files) are declared once, in
# ccrk.layout (standard library only); the environment that runs Snakemake has ccrk installed, as every rule
# calls its command.
from ccrk import layout
from ccrk.config import non_finite_keys

min_version("8.20")


validate(config, schema="../schemas/config.schema.yaml")


# JSON Schema's `number` admits YAML's .nan and .inf.
if non_finite_keys(config):
    raise ValueError(f"config key {non_finite_keys(config)[0]} is not a finite number")


WF = config["workflow"]
RUN = WF.get("run")

CONDA_ENV = "../envs/ccrk.yaml"
DATA_DIR = "data"  # raw downloads, DVC-tracked (data.dvc)
STAMP_DIR = f"{DATA_DIR}/.ccrk"
SYNTH_DIR = "resources/synth"
_TOKENIZER_FROM = lookup(dpath="tokenizer/pretrained", within=config, default=None)
# A copied pretrained tokenizer gets its own directory, so the paper's and the embedded runs can share a checkout.
TOKENIZER_DIR = f"resources/tokenizers/{re.sub(r'[^A-Za-z0-9_.-]+', '--', _TOKENIZER_FROM)}" if _TOKENIZER_FROM else "resources/tokenizer"
MANIFEST_DIR = "resources/manifests"
CORPUS_SHARDS = f"{DATA_DIR}/cc3m/shards"
CORPUS_CAPTIONS = "resources/corpus/captions"


def results_root(run):
    """Where a run's results go: results/ for the unnamed run, results/runs/<run>/ for a named one."""
    return f"results/runs/{run}" if run else "results"


def logs_root(run):
    return f"logs/runs/{run}" if run else "logs"


def pretrain_root(results):
    return f"{results}/models/pretrain"


def metrics_root(results):
    return f"{results}/metrics"


RESULTS = results_root(RUN)
LOGS = logs_root(RUN)
PRETRAIN_DIR = pretrain_root(RESULTS)
FINETUNE_DIR = f"{RESULTS}/models/finetune"
METRICS_DIR = metrics_root(RESULTS)
TABLES_DIR = f"{RESULTS}/tables"
FIGURES_DIR = f"{RESULTS}/figures"
SUMMARY_DIR = f"{RESULTS}/summary"
PLOTS_DIR = f"{RESULTS}/plots"

DATASETS = WF["datasets"]
OBJECTIVES = WF["objectives"]
SEEDS = WF["seeds"]
SETTINGS = WF["settings"]
BASELINES = [b for b in WF.get("baselines", ["cross_lingual", "cross_modal"]) if b in OBJECTIVES]
LAUNCHER = WF.get("launcher", "local")
JOB_THREADS = WF.get("threads", 1)
# Snakemake starts ready jobs of higher priority first (default 0). On a few cores the DAG is work-bound,
# and with no order a fine-tune could start while pre-trainings waited, leaving a late
# pretrain -> finetune -> evaluate chain to run alone at the end. Measured on the embedded DAG (2 cores):
# no gain in one side-by-side pair (568 s both); its job times replayed in 200 random orders took 735 s
# (median) up to 810 s, in this order 725 s - the order removes the bad cases rather than speeding the run.
JOB_PRIORITY = {"pretrain": 3, "finetune": 2, "evaluate": 1}

# What `ccrk tables` and `ccrk figures` write (ccrk.layout); the attribute figures are drawn from the near-duplicate
# diagnostic (attributes.json of `ccrk evaluate --scenes`), which only the synthetic benchmark has.
TABLES, FIGURES = list(layout.TABLES), list(layout.FIGURES)
ATTRIBUTE_FIGURES, LEARNING_FIGURES = list(layout.ATTRIBUTE_FIGURES), list(layout.LEARNING_FIGURES)


#: The benchmarks other than the embedded synthetic one (whose evaluation also scores the near-duplicate diagnostic).
REAL_DATASETS_PATTERN = "|".join(layout.REAL_DATASETS)
ONE_TO_K = layout.ONE_TO_K
#: A run's directory under models/finetune and metrics (Snakemake wildcards), and its files.
RUN_DIR, PRETRAIN_RUN_DIR, COMPARE_FILE = layout.RUN_DIR, layout.PRETRAIN_RUN_DIR, layout.COMPARE_FILE
MODEL_DIR, WEIGHTS_FILE = layout.MODEL_DIR, layout.WEIGHTS_FILE
METRICS_FILE, RANKS_FILE, RANKS_ITC_FILE = layout.METRICS_FILE, layout.RANKS_FILE, layout.RANKS_ITC_FILE
ATTRIBUTES_FILE = layout.ATTRIBUTES_FILE
TRAIN_LOG, VAL_LOG, RETRIEVAL_FILE = layout.TRAIN_LOG, layout.VAL_LOG, layout.RETRIEVAL_FILE


wildcard_constraints:
    split="pretrain|train|val|test",
    objective="|".join(layout.OBJECTIVES),
    baseline="|".join(o for o in layout.OBJECTIVES if o != ONE_TO_K),
    dataset="|".join(layout.DATASETS),
    seed=r"\d+",
    setting=layout.SETTING_PATTERN,


def section_flags(name, values):
    """One config section's values as `ccrk --set` flags."""
    flags = []
    for key, value in (values or {}).items():
        text = json.dumps(value, ensure_ascii=False)
        if "'" in text:
            raise ValueError(f"config value {name}.{key} contains a single quote, which the shell rules cannot pass")
        flags.append(f"--set {name}.{key}='{text}'")
    return " ".join(flags)


def config_overrides(*sections):
    """The config sections a rule depends on, passed to `ccrk` as --set flags.

    Passing values (not just the file name) makes Snakemake's params change
    detection rerun a rule exactly when one of its own settings changes, and
    makes `--config`/`--configfile` on the Snakemake command line reach ccrk.
    """
    return " ".join(f for f in (section_flags(name, config.get(name)) for name in sections) if f)


def merged(base, update):
    """`update` over a copy of `base` (Snakemake's update_config: mappings merged key by key, the rest replaced)."""
    out = copy.deepcopy(base or {})
    update_config(out, update or {})
    return out


def benchmark(dataset):
    """The dataset's `benchmarks` entry (settings, and model/finetune/evaluate overrides)."""
    return lookup(dpath=f"benchmarks/{dataset}", within=config, default=None) or {}


def dataset_section(name, dataset):
    """Top-level section `name` with the dataset's overrides merged over it."""
    return merged(config.get(name), benchmark(dataset).get(name))


def dataset_overrides(dataset, *sections):
    return " ".join(f for f in (section_flags(n, dataset_section(n, dataset)) for n in sections) if f)


def finetune_section(dataset, setting):
    """`finetune` for one job: the top level, the dataset's overrides, and for few-shot settings its own."""
    section = dataset_section("finetune", dataset)
    if parse_setting(setting)[0] == "few_shot":
        section = merged(section, benchmark(dataset).get("finetune_few_shot"))
    return section


def settings_for(dataset):
    """Fine-tuning settings a dataset runs: its own list (Table 1's regimes differ) or workflow.settings."""
    return benchmark(dataset).get("settings") or SETTINGS


def launch_flags(rule):
    """Slurm parameters of one GPU rule: `launch.slurm`, then `launch.<rule>` over it (ccrk reads launch.slurm)."""
    slurm = merged(lookup(dpath="launch/slurm", within=config, default=None),
                   lookup(dpath=f"launch/{rule}", within=config, default=None))
    return f"--launcher {LAUNCHER} {section_flags('launch', {'slurm': slurm} if slurm else {})}".strip()


def thread_env(threads):
    """Pin the math libraries to the job's threads, so parallel jobs do not oversubscribe the cores."""
    return f"OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"


# -- datasets ------------------------------------------------------------------


#: Sources (ccrk's download registry) each benchmark's prepare step reads; sources whose download waits for
#: another's stamp (they read its files).
DATASET_SOURCES = layout.DATASET_SOURCES
SOURCE_NEEDS = layout.SOURCE_NEEDS
#: Where a benchmark's English training/validation data come from when it has none of its own:
#: xFlickr&CO is test-only, and the paper (as IGLUE) fine-tunes it on Flickr30k.
TRAIN_FROM = {"xflickrco": "flickr30k"}
#: The manifests each prepare step writes (xFlickr&CO: IGLUE's few-shot files, 7 languages x 6 sizes).
PREPARED_SPLITS = {
    "xflickrco": ["test"] + [f"few_shot/{lang}/train_{n}" for lang in layout.XFLICKRCO_FEW_SHOT_LANGUAGES
                              for n in layout.XFLICKRCO_FEW_SHOT_SIZES],
    "flickr30k": ["train", "val", "test"],
    "multi30k": ["train", "val", "test"],
    "wit": ["train", "val", "test"],
    "mscoco": ["train", "val", "test"],
}


def stamp(source):
    """What the download rule leaves once a source is in place (or a manual one checked)."""
    return f"{STAMP_DIR}/{source}.json"


def prepared_datasets():
    """Every dataset whose manifests the DAG needs: the benchmarks and what they train on."""
    out = [d for d in DATASETS if d != "synth"]
    return out + [TRAIN_FROM[d] for d in out if d in TRAIN_FROM and TRAIN_FROM[d] not in out]


def dataset_split(dataset, split):
    """A prepared manifest of a dataset (docs/design.md, "Manifests")."""
    if dataset == "synth":
        return f"{SYNTH_DIR}/{split}.jsonl"
    if split in ("train", "val"):
        dataset = TRAIN_FROM.get(dataset, dataset)
    return f"{MANIFEST_DIR}/{dataset}/{split}.jsonl"


def dataset_image_root(dataset):
    """The directory the manifest's image paths are relative to."""
    return SYNTH_DIR if dataset == "synth" else DATA_DIR


def real_corpus():
    """Pre-train on the translated Conceptual Captions shards (any real benchmark) or on the synthetic corpus."""
    return "synth" not in DATASETS


def pretrain_inputs():
    if real_corpus():
        return {"shards": f"{CORPUS_SHARDS}/fetch_done.json", "captions": f"{CORPUS_CAPTIONS}/translate_report.json"}
    return {"manifest": dataset_split("synth", "pretrain"), "val": dataset_split("synth", "val")}


def pretrain_data_flags():
    """The synthetic corpus is validated after every epoch (the learning curves); the crawled one is not."""
    if real_corpus():
        return f"--manifest {CORPUS_SHARDS} --captions {CORPUS_CAPTIONS}"
    return (f"--manifest {dataset_split('synth', 'pretrain')} --image-root {SYNTH_DIR}"
            f" --val-manifest {dataset_split('synth', 'val')}")


def learning_figures():
    """The learning-curve figure: drawn when pre-training validates (the synthetic corpus)."""
    return [] if real_corpus() else LEARNING_FIGURES


def pretrain_validation_logs():
    """The per-epoch validation each pre-training run writes beside its metrics.jsonl (none on the crawled corpus)."""
    if real_corpus():
        return []
    return expand(f"{PRETRAIN_DIR}/{layout.PRETRAIN_RUN_DIR}/{VAL_LOG}", objective=OBJECTIVES, seed=SEEDS)


def parse_setting(setting):
    """`zero_shot`, `all_languages`, `single_language.<lang>`, `few_shot.<lang>.<shots>` -> (regime, lang, shots)."""
    parsed = layout.parse_setting(setting)
    return parsed.regime, parsed.language, parsed.shots


def run_file(root, name, objective="{objective}"):
    """A file of a run directory under `root` (Snakemake wildcards; the objective may be fixed)."""
    return f"{root}/{RUN_DIR.replace('{objective}', objective)}/{name}"


def finetune_train_manifest(dataset, setting):
    regime, lang, shots = parse_setting(setting)
    if regime == "few_shot":
        if dataset == "synth":
            return f"{SYNTH_DIR}/fewshot/{lang}/train_{shots}.jsonl"
        return f"{MANIFEST_DIR}/{dataset}/few_shot/{lang}/train_{shots}.jsonl"
    return dataset_split(dataset, "train")


def finetune_start(wildcards):
    """Few-shot starts from the English (zero-shot) model; every other regime from pre-training."""
    regime, _, _ = parse_setting(wildcards.setting)
    if regime == "few_shot":
        run = RUN_DIR.format(dataset=wildcards.dataset, setting="zero_shot", objective=wildcards.objective,
                             seed=wildcards.seed)
        return f"{FINETUNE_DIR}/{run}/{MODEL_DIR}/{WEIGHTS_FILE}"
    run = PRETRAIN_RUN_DIR.format(objective=wildcards.objective, seed=wildcards.seed)
    return f"{PRETRAIN_DIR}/{run}/{MODEL_DIR}/{WEIGHTS_FILE}"


def finetune_flags(wildcards):
    regime, lang, shots = parse_setting(wildcards.setting)
    flags = f"--regime {regime}"
    if lang is not None:
        flags += f" --language {lang}"
    if shots is not None:
        flags += f" --shots {shots}"
    return flags


def test_language_flags(dataset):
    """--languages of a dataset's evaluations on every language: its evaluate.languages (synth: the trained ones)."""
    langs = dataset_section("evaluate", dataset).get("languages")
    if not langs and dataset == "synth":
        langs = lookup(dpath="train/languages", within=config, default=None)
    return [f"--languages {','.join(langs)}"] if langs else []


def evaluate_flags(wildcards):
    """Single-language and few-shot models are tested on their language (no MRV); the others on every language.

    A synthetic-benchmark run also scores the near-duplicate diagnostic from the ground truth (--scenes).
    """
    flags = [f"--scenes {SYNTH_DIR}/scenes/test.jsonl"] if wildcards.dataset == "synth" else []
    _, lang, _ = parse_setting(wildcards.setting)
    if lang is not None:
        return " ".join([f"--languages {lang} --mrv-languages none", *flags])
    return " ".join([*test_language_flags(wildcards.dataset), *flags])


# -- models trained elsewhere (external_models) ---------------------------------

EXTERNAL_MODELS = lookup(dpath="external_models", within=config, default=None) or {}
EXTERNAL_RUN_DIR = layout.EXTERNAL_RUN_DIR
for _name, _model in EXTERNAL_MODELS.items():
    _stray = [d for d in _model.get("datasets", DATASETS) if d not in DATASETS]
    if _stray:
        raise ValueError(f"external_models.{_name}.datasets: {_stray} are not among workflow.datasets {DATASETS}")


def external_datasets(name):
    """The datasets an external model is evaluated on: its own list, else every dataset of the DAG."""
    return EXTERNAL_MODELS[name].get("datasets", DATASETS)


def external_metrics_files():
    return [
        f"{METRICS_DIR}/{EXTERNAL_RUN_DIR.format(dataset=dataset, model=name)}/{METRICS_FILE}"
        for name in EXTERNAL_MODELS
        for dataset in external_datasets(name)
    ]


def external_model_inputs(wildcards):
    """The model's files: a checkpoint or save_pretrained directory, and an open_clip model-config JSON if one."""
    model = EXTERNAL_MODELS[wildcards.model]
    files = {"model": model["path"]}
    if model["kind"] == "open_clip" and model["arch"].endswith(".json"):
        files["arch"] = model["arch"]
    return files


def external_model_flags(wildcards):
    """`ccrk evaluate`'s --model (and --pretrained) for an external model (ccrk.evaluation.adapters)."""
    model = EXTERNAL_MODELS[wildcards.model]
    if model["kind"] == "hf":
        return f"--model hf:{model['path']}"
    return f"--model open_clip:{model['arch']} --pretrained {model['path']}"


# -- targets -------------------------------------------------------------------


def metrics_files():
    return [
        path
        for dataset in DATASETS
        for path in expand(
            run_file(METRICS_DIR, METRICS_FILE),
            dataset=[dataset], setting=settings_for(dataset), objective=OBJECTIVES, seed=SEEDS,
        )
    ]


def compare_files():
    if ONE_TO_K not in OBJECTIVES:
        return []
    return [
        path
        for dataset in DATASETS
        for path in expand(
            f"{METRICS_DIR}/{layout.COMPARE_FILE}",
            dataset=[dataset], setting=settings_for(dataset), seed=SEEDS, baseline=BASELINES,
        )
    ]


def attribute_files():
    """The near-duplicate diagnostic of every synthetic-benchmark run, beside its metrics.json (none without synth)."""
    if "synth" not in DATASETS:
        return []
    return expand(
        run_file(METRICS_DIR, ATTRIBUTES_FILE),
        dataset=["synth"], setting=settings_for("synth"), objective=OBJECTIVES, seed=SEEDS,
    )


def attribute_figures():
    """The figures of those diagnostics: only when there are any."""
    return ATTRIBUTE_FIGURES if attribute_files() else []


def attribute_figure_reports():
    """The `figures` rule's report entries of the attribute and learning-curve figures (a caption each)."""
    return {
        name: report(f"{FIGURES_DIR}/{name}.png", caption=f"../report/{name}.rst", category="Figures")
        for name in attribute_figures() + learning_figures()
    }


def pretrain_logs():
    return expand(f"{PRETRAIN_DIR}/{layout.PRETRAIN_RUN_DIR}/{TRAIN_LOG}", objective=OBJECTIVES, seed=SEEDS)


def table_files():
    return expand(f"{TABLES_DIR}/{{table}}.{{ext}}", table=TABLES, ext=["csv", "md", "tex"])


def figure_files():
    return expand(f"{FIGURES_DIR}/{{figure}}.{{ext}}", figure=FIGURES + attribute_figures(), ext=["png", "pdf"])


def benchmark_targets():
    """The data: the embedded benchmark (or every real benchmark's manifests and the translated corpus) and the tokenizer."""
    targets = [f"{TOKENIZER_DIR}/tokenizer.json"]
    if "synth" in DATASETS:
        targets.append(f"{SYNTH_DIR}/stats.json")
    for dataset in prepared_datasets():
        targets.append(f"{MANIFEST_DIR}/{dataset}/prepare_info.json")
    if real_corpus():
        targets += list(pretrain_inputs().values())
    return targets


def all_targets():
    """What `snakemake` builds by default: every table and figure (and so everything they need)."""
    return table_files() + figure_files()


# -- the budget study (workflow/budget.smk) ------------------------------------


def budget_name():
    return config["budget"].get("name", "budget")


def budget_dir():
    """Where the study's own table and figure go (results/runs/<name>/)."""
    return results_root(budget_name())


def length_run(epochs):
    """The run name of one pre-training length: none for the default's own length (it is the default run)."""
    return None if epochs == config["train"]["epochs"] else f"{budget_name()}-e{epochs}"


def length_config(epochs):
    """The whole config with this pre-training length, as the module of that length runs it."""
    run = copy.deepcopy({key: value for key, value in config.items() if key != "budget"})
    run["train"]["epochs"] = epochs
    name = length_run(epochs)
    if name:
        run["workflow"]["run"] = name
    else:
        run["workflow"].pop("run", None)
    return run


def budget_length_flags():
    """`ccrk budget --length METRICS_DIR PRETRAIN_DIR` for every length, shortest first."""
    dirs = [results_root(length_run(epochs)) for epochs in config["budget"]["epochs"]]
    return " ".join(f"--length {metrics_root(d)} {pretrain_root(d)}" for d in dirs)
