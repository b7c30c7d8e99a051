"""The names the library and the workflow share: objectives, regimes, settings, datasets, result files.

Each of these facts is declared here and nowhere else. ``workflow/rules/common.smk``
imports this module at start-up to build its wildcard constraints and paths, so
it uses the standard library only (no torch, no numpy) and costs a few
milliseconds to import; the config schema's enums are checked against it by
``tests/test_layout.py``.

Path templates use ``{name}`` fields, which are both :meth:`str.format` fields
and Snakemake wildcards: ``f"{METRICS_DIR}/{RUN_DIR}/{METRICS_FILE}"`` is the
``evaluate`` rule's output pattern and ``run_dir(...)`` the same path filled in.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ATTRIBUTES_FILE",
    "ATTRIBUTE_FIGURES",
    "COMPARE_DIR",
    "COMPARE_FILE",
    "DATASETS",
    "DATASET_SOURCES",
    "EXTERNAL_DIR",
    "EXTERNAL_MODEL_KINDS",
    "EXTERNAL_NAME_PATTERN",
    "EXTERNAL_RUN_DIR",
    "FIGURES",
    "LEARNING_FIGURES",
    "METRICS_FILE",
    "MODEL_DIR",
    "NATIVE_MODEL_KIND",
    "OBJECTIVES",
    "OBJECTIVE_LABELS",
    "ONE_TO_K",
    "PRETRAIN_RUN_DIR",
    "RANKS_FILE",
    "RANKS_ITC_FILE",
    "REAL_DATASETS",
    "REGIMES",
    "RETRIEVAL_FILE",
    "RUN_DIR",
    "SETTING_PATTERN",
    "SOURCE_NEEDS",
    "TRAIN_LOG",
    "SYNTH",
    "TABLES",
    "Setting",
    "SettingError",
    "VAL_LOG",
    "XFLICKRCO_FEW_SHOT_LANGUAGES",
    "XFLICKRCO_FEW_SHOT_SIZES",
    "WEIGHTS_FILE",
    "compare_name",
    "parse_compare_name",
    "parse_setting",
]

# -- what an experiment varies ---------------------------------------------------------------------

#: The contrastive objectives (docs/design.md, "Objectives"): the paper's 1-to-K and its two baselines.
OBJECTIVES: tuple[str, ...] = ("one_to_k", "cross_lingual", "cross_modal")
#: The objective every significance comparison is made against its baselines.
ONE_TO_K = "one_to_k"
#: How the paper (and every table and figure) names the objectives.
OBJECTIVE_LABELS: dict[str, str] = {
    "one_to_k": "1-to-K", "cross_lingual": "cross-lingual", "cross_modal": "cross-modal",
}

#: Fine-tuning regimes (docs/design.md, "Fine-tuning regimes").
REGIMES: tuple[str, ...] = ("zero_shot", "single_language", "all_languages", "few_shot")
#: Regimes whose setting name carries no language.
_PLAIN_REGIMES: tuple[str, ...] = ("zero_shot", "all_languages")

#: A setting's name: a regime, plus the target language and the number of shots where it has them.
SETTING_PATTERN = r"zero_shot|all_languages|single_language\.[a-z]{2}|few_shot\.[a-z]{2}\.\d+"
_SETTING = re.compile(r"(zero_shot|all_languages)|single_language\.([a-z]{2})|few_shot\.([a-z]{2})\.([0-9]+)")


class SettingError(ValueError):
    """A setting name that is none of the forms of :data:`SETTING_PATTERN`."""


@dataclass(frozen=True)
class Setting:
    """A setting (``zero_shot``, ``all_languages``, ``single_language.de``, ``few_shot.de.5``) and what it means."""

    name: str
    regime: str
    language: str | None = None
    shots: int | None = None

    @property
    def per_language(self) -> bool:
        """Fine-tuned for (and tested on) one language: one run a language makes up the setting."""
        return self.language is not None

    @property
    def group(self) -> str:
        """The setting without its language: ``zero_shot``, ``all_languages``, ``single_language``, ``few_shot.<shots>``."""
        return f"few_shot.{self.shots}" if self.regime == "few_shot" else self.regime

    @property
    def paper_setting(self) -> str:
        """The row block of Table 1 the setting belongs to."""
        return "few_shot_or_single_language" if self.per_language else self.regime


def parse_setting(name: str) -> Setting:
    """The :class:`Setting` a name stands for; :class:`SettingError` for anything else."""
    m = _SETTING.fullmatch(name)
    if m is None:
        raise SettingError(f"{name!r} is not a setting; expected zero_shot, all_languages, "
                           f"single_language.<lang> or few_shot.<lang>.<shots>")
    if m.group(1):
        return Setting(name, m.group(1))
    if m.group(2):
        return Setting(name, "single_language", language=m.group(2))
    return Setting(name, "few_shot", language=m.group(3), shots=int(m.group(4)))


# -- datasets --------------------------------------------------------------------------------------

#: The embedded synthetic benchmark (``ccrk synth``).
SYNTH = "synth"
#: The paper's benchmarks (``ccrk prepare``).
REAL_DATASETS: tuple[str, ...] = ("xflickrco", "wit", "multi30k", "mscoco")
DATASETS: tuple[str, ...] = (*REAL_DATASETS, SYNTH)

#: The download-registry sources each benchmark's preparation reads (``xflickrco`` includes the English
#: Flickr30k fine-tuning set and the COCO val2014 images of its test set; ``flickr30k`` is that set alone).
DATASET_SOURCES: dict[str, tuple[str, ...]] = {
    "xflickrco": ("iglue-xflickrco", "iglue-flickr30k", "karpathy-splits", "coco-val2014", "flickr30k-images"),
    "flickr30k": ("iglue-flickr30k", "karpathy-splits", "flickr30k-images"),
    "multi30k": ("multi30k", "flickr30k-images"),
    "wit": ("iglue-wit", "wit-kaggle-pixels"),
    "mscoco": ("karpathy-splits", "stair-captions", "coco-cn", "coco-train2014", "coco-val2014"),
}
#: IGLUE's xFlickr&CO few-shot protocol: the languages with training files, and their sizes (``train_<n>.jsonl``).
XFLICKRCO_FEW_SHOT_LANGUAGES: tuple[str, ...] = ("de", "es", "id", "ja", "ru", "tr", "zh")
XFLICKRCO_FEW_SHOT_SIZES: tuple[str, ...] = ("1", "5", "10", "25", "50", "100")
#: Sources that read what another source put in place (WIT's images are decoded for the URLs its
#: annotations list): their download waits for that source.
SOURCE_NEEDS: dict[str, tuple[str, ...]] = {"wit-kaggle-pixels": ("iglue-wit",)}

# -- result files ----------------------------------------------------------------------------------

#: ``ccrk evaluate``: the scores of a run, its per-query ranks, and (synthetic benchmark) the near-duplicate
#: diagnostic, side by side in the run's directory.
METRICS_FILE = "metrics.json"
RANKS_FILE = "ranks.npz"
#: The contrastive-only ranks (similarity order, no re-ranking), same format as :data:`RANKS_FILE`.
RANKS_ITC_FILE = "ranks_itc.npz"
ATTRIBUTES_FILE = "attributes.json"
#: Training logs beside a pre-training or fine-tuning run's ``model/``: one record per logging window,
#: and one per validation.
TRAIN_LOG = "metrics.jsonl"
VAL_LOG = "val.jsonl"
#: A training run's saved model: a directory in the run directory, holding the weights.
MODEL_DIR = "model"
WEIGHTS_FILE = "model.safetensors"
#: Beside a fine-tuned model's weights: the re-ranking depth chosen on validation.
RETRIEVAL_FILE = "retrieval.json"
#: Where ``ccrk compare`` results of a setting go, beside its objectives' run directories.
COMPARE_DIR = "compare"

#: A pre-training run, under the results' ``models/pretrain``.
PRETRAIN_RUN_DIR = "{objective}/seed{seed}"
#: A fine-tuning run (under ``models/finetune``) and its evaluation (under ``metrics``).
RUN_DIR = "{dataset}/{setting}/{objective}/seed{seed}"
#: A significance comparison of 1-to-K and one baseline, under ``metrics``.
COMPARE_FILE = "{dataset}/{setting}/" + COMPARE_DIR + "/seed{seed}/" + ONE_TO_K + "-vs-{baseline}.json"

_COMPARE_NAME = re.compile(r"([a-z_]+)-vs-([a-z_]+)\.json")

# -- the report ------------------------------------------------------------------------------------

#: ``ccrk tables``: each written as ``<name>.csv``, ``.md`` and ``.tex``.
TABLES: tuple[str, ...] = ("table1", "per_language", "mrv", "significance", "seeds")
#: ``ccrk figures``: each written as ``<name>.png`` and ``.pdf``.
FIGURES: tuple[str, ...] = ("recall_per_language", "rank_std", "rank_scatter", "loss_curves")
#: Drawn only from ``ccrk attributes`` outputs (the synthetic benchmark's near-duplicate diagnostic).
ATTRIBUTE_FIGURES: tuple[str, ...] = ("attribute_preference", "attribute_preference_per_language")
#: Drawn when the pre-training runs logged validation (``ccrk pretrain --val-manifest``).
LEARNING_FIGURES: tuple[str, ...] = ("learning_curves",)

# -- models trained elsewhere ------------------------------------------------------------------------

#: ``ccrk evaluate --model DIR``: a model ccrk trained (the only kind with a matching head).
NATIVE_MODEL_KIND = "ccrk"
#: ``--model <kind>:<target>`` and the ``kind`` of a ``workflow.external_models`` entry.
EXTERNAL_MODEL_KINDS: tuple[str, ...] = ("open_clip", "hf")
#: Names of external models (a directory name and a table row).
EXTERNAL_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
#: Where external models' evaluations go in a dataset's results, beside its settings.
EXTERNAL_DIR = "external"
#: An external model's evaluation on a dataset's test split, under ``metrics``.
EXTERNAL_RUN_DIR = "{dataset}/" + EXTERNAL_DIR + "/{model}"


def compare_name(a: str, b: str) -> str:
    """The file name of the comparison of objective ``a`` with objective ``b``."""
    return f"{a}-vs-{b}.json"


def parse_compare_name(name: str) -> tuple[str, str] | None:
    """``(a, b)`` of a comparison file name, or None when the name is not one."""
    m = _COMPARE_NAME.fullmatch(name)
    return None if m is None else (m.group(1), m.group(2))
