"""Retrieval metrics: 0-based ranks, Recall@K, Mean Rank Variance, bootstrap intervals.

Conventions are fixed in docs/design.md ("Metrics"): rank = number of candidates
ordered before the true one, order = score descending with ties to the lower
candidate index, MRV = mean over instances of the population std of the rank
across languages.
"""
from __future__ import annotations

from ccrk.metrics.bootstrap import bootstrap_ci, paired_bootstrap, resample_counts, sums_ci
from ccrk.metrics.mrv import assemble_mrv_ranks, mean_rank_variance, per_instance_rank_std
from ccrk.metrics.ranks import ranks_i2t, ranks_t2i
from ccrk.metrics.recall import mean_recall, recall_at_k, recall_spread
from ccrk.metrics.rerank import PairUnion, topk_pairs_union, two_stage_scores

__all__ = [
    "PairUnion",
    "assemble_mrv_ranks",
    "bootstrap_ci",
    "mean_rank_variance",
    "mean_recall",
    "paired_bootstrap",
    "per_instance_rank_std",
    "ranks_i2t",
    "ranks_t2i",
    "recall_at_k",
    "recall_spread",
    "resample_counts",
    "sums_ci",
    "topk_pairs_union",
    "two_stage_scores",
]
