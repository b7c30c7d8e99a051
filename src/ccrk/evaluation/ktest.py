"""``k_test`` chosen on validation: scored by ``ccrk finetune``, read back by ``ccrk evaluate --k-test auto``.

How many similarity candidates the matching head should re-rank depends on
how good that head is: a weak one can turn a good contrastive ranking into a
bad one, and then ``k = 1`` (contrastive order only) is best. Picking ``k``
by test recall would tune on the test split, so fine-tuning scores the
selected model on its validation manifest at each candidate ``k`` with the
same two-stage machinery as ``ccrk evaluate`` (:func:`rank_language_ks`,
one ITM pass for all candidates) and records the winner beside the model
weights in :data:`RETRIEVAL_FILE`::

    {"k_test": 8, "chosen_on": "<val manifest>", "languages": ["en"],
     "scores": {"1": 41.2, "4": 43.0, "8": 43.9, "16": 43.9}}

A score is R@1 averaged over both directions and the fine-tuning languages.
Only recalls are needed, so validation sets with several captions per image
and language (which MRV refuses) are fine.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ccrk.atomic import atomic_write_text
from ccrk.evaluation.data import EvalData
from ccrk.evaluation.encode import encode_images, encode_texts
from ccrk.evaluation.options import K_TEST_AUTO
from ccrk.evaluation.retrieval import LanguageRanks, itm_scorer, rank_language_ks
from ccrk.layout import RETRIEVAL_FILE
from ccrk.metrics import recall_at_k



def r1_score(ranks: LanguageRanks) -> float:
    """Mean of R@1 text-to-image and image-to-text (image queries: the images with a caption here)."""
    return (recall_at_k(ranks.t2i, 1) + recall_at_k(ranks.i2t[ranks.i2t >= 0], 1)) / 2


def validation_scores(
    model: Any,
    tokenizer: Any,
    data: EvalData,
    languages: Sequence[str],
    candidates: Sequence[int],
    *,
    batch_size: int,
    itm_batch_size: int,
    device: torch.device,
    num_workers: int = 0,
) -> dict[int, float]:
    """Each candidate ``k``'s :func:`r1_score` averaged over ``languages``, two-stage as ``ccrk evaluate`` ranks.

    Images are encoded once and each language's captions once; the matching
    head scores the largest candidate's pairs once and every smaller ``k``
    reuses them.
    """
    was_training = model.training
    model.eval()
    try:
        images = encode_images(model, data.image_paths, batch_size, device, num_workers)
        per_k: dict[int, list[float]] = {int(k): [] for k in candidates}
        for lang in languages:
            captions = data.captions[lang]
            texts = encode_texts(model, tokenizer, captions.texts, batch_size, device)
            ranks = rank_language_ks(itm_scorer(model), images, texts, captions.txt2img, list(per_k), itm_batch_size)
            del texts
            for k in per_k:
                per_k[k].append(r1_score(ranks[k]))
    finally:
        model.train(was_training)
    return {k: float(np.mean(values)) for k, values in per_k.items()}


def choose_k_test(scores: Mapping[int, float]) -> int:
    """The best-scoring ``k``; a tie goes to the smaller one (fewer ITM forwards for the same recall)."""
    if not scores:
        raise ValueError("no k_test candidate was scored")
    return min(scores, key=lambda k: (-scores[k], k))


def write_retrieval_choice(
    model_dir: str | os.PathLike[str], k_test: int, chosen_on: str, languages: Sequence[str],
    scores: Mapping[int, float],
) -> Path:
    """Record the chosen ``k_test`` in ``model_dir/retrieval.json`` (atomically); returns the path."""
    path = Path(model_dir) / RETRIEVAL_FILE
    doc = {
        "k_test": int(k_test),
        "chosen_on": str(chosen_on),
        "languages": list(languages),
        "scores": {str(k): float(scores[k]) for k in sorted(scores)},
    }
    atomic_write_text(path, json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    return path


def read_retrieval_choice(model_dir: str | os.PathLike[str]) -> tuple[int, Path]:
    """The ``k_test`` recorded in ``model_dir/retrieval.json`` and that path; errors name the file."""
    path = Path(model_dir) / RETRIEVAL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: evaluate.k_test 'auto' uses the k_test chosen on validation, which "
            f"ccrk finetune writes into the model directory (or give evaluate.k_test / --k-test a number)"
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON at line {err.lineno}: {err.msg}") from err
    k = doc.get("k_test") if isinstance(doc, dict) else None
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{path}: k_test must be a positive integer, got {k!r}")
    return k, path


def resolve_k_test(k_test: int | str, model_dir: str | os.PathLike[str]) -> tuple[int, str]:
    """The ``k_test`` to rank with and where it came from: ``"config"`` or the ``retrieval.json`` path."""
    if k_test == K_TEST_AUTO:
        k, path = read_retrieval_choice(model_dir)
        return k, str(path)
    return int(k_test), "config"
