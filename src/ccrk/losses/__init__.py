"""Training objectives (docs/design.md, "Objectives"): contrastive, image-text matching, masked LM.

Model-independent: functions of features, logits and token ids. Contrastive
losses gather features across data-parallel ranks themselves.
"""
from __future__ import annotations

from ccrk.losses.distributed import gather_features, rank_offset, world_info
from ccrk.losses.itc import cross_lingual_itc, cross_modal_itc, one_to_k_itc
from ccrk.losses.mlm import IGNORE_INDEX, mask_tokens, mlm_loss
from ccrk.losses.negatives import (
    POSITIVE_LANGUAGE_RULES,
    HardNegatives,
    choose_positive_language,
    itm_labels,
    itm_loss,
    positive_text_index,
    sample_hard_negatives,
    sample_rows,
)

__all__ = [
    "IGNORE_INDEX",
    "POSITIVE_LANGUAGE_RULES",
    "HardNegatives",
    "choose_positive_language",
    "cross_lingual_itc",
    "cross_modal_itc",
    "gather_features",
    "itm_labels",
    "itm_loss",
    "mask_tokens",
    "mlm_loss",
    "one_to_k_itc",
    "positive_text_index",
    "rank_offset",
    "sample_hard_negatives",
    "sample_rows",
    "world_info",
]
