"""Evaluation of a saved model: two-stage retrieval, Recall@K / mR / MRV with bootstrap CIs, run comparison.

Also ``k_test`` chosen on validation (``ccrk.evaluation.ktest``), which ``ccrk finetune`` runs.

``ccrk evaluate`` and ``ccrk compare`` (``ccrk.evaluation.cli``) are thin
wrappers around :func:`evaluate` and :func:`compare_runs`. Names are
imported lazily so that importing the command-line module does not load
torch and transformers before a command needs them.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "EvalOptions": "ccrk.evaluation.options",
    "DEFAULT_MRV_LANGUAGES": "ccrk.evaluation.options",
    "EvalData": "ccrk.evaluation.data",
    "LanguageCaptions": "ccrk.evaluation.data",
    "load_eval_data": "ccrk.evaluation.data",
    "check_mrv_coverage": "ccrk.evaluation.data",
    "ImageEncoding": "ccrk.evaluation.encode",
    "ImageFiles": "ccrk.evaluation.encode",
    "TextEncoding": "ccrk.evaluation.encode",
    "encode_images": "ccrk.evaluation.encode",
    "encode_texts": "ccrk.evaluation.encode",
    "LanguageRanks": "ccrk.evaluation.retrieval",
    "rank_language": "ccrk.evaluation.retrieval",
    "rank_language_ks": "ccrk.evaluation.retrieval",
    "rank_language_folds": "ccrk.evaluation.retrieval",
    "fold_blocks": "ccrk.evaluation.retrieval",
    "RETRIEVAL_FILE": "ccrk.evaluation.ktest",
    "choose_k_test": "ccrk.evaluation.ktest",
    "read_retrieval_choice": "ccrk.evaluation.ktest",
    "validation_scores": "ccrk.evaluation.ktest",
    "write_retrieval_choice": "ccrk.evaluation.ktest",
    "score_pairs": "ccrk.evaluation.retrieval",
    "itm_scorer": "ccrk.evaluation.retrieval",
    "PairScorer": "ccrk.evaluation.retrieval",
    "RetrievalModel": "ccrk.evaluation.adapters",
    "load_retrieval_model": "ccrk.evaluation.adapters",
    "topk_candidates": "ccrk.evaluation.retrieval",
    "RankSet": "ccrk.evaluation.rankset",
    "Metric": "ccrk.evaluation.summary",
    "metrics_of": "ccrk.evaluation.summary",
    "summarize": "ccrk.evaluation.summary",
    "compare_ranksets": "ccrk.evaluation.compare",
    "compare_runs": "ccrk.evaluation.compare",
    "format_comparison": "ccrk.evaluation.compare",
    "load_run": "ccrk.evaluation.compare",
    "evaluate": "ccrk.evaluation.run",
    "format_summary": "ccrk.evaluation.run",
    "config_hash": "ccrk.provenance",
    "git_revision": "ccrk.provenance",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ccrk.evaluation' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
