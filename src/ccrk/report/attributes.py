"""Which attribute a model tells apart: own image against its near-duplicate, per attribute and language.

The synthetic test split (``ccrk synth``) is made of near-duplicate pairs:
each image has a partner that differs in exactly one attribute (shape,
colour, size or position) of one object, recorded in the ground truth
``scenes/test.jsonl`` (``near_duplicate_of``, ``changed``). For every caption
of every language this module asks one question of a saved model: does the
caption score higher with its own image than with that partner? It asks it
twice, with the contrastive similarity (ITC: cosine of the L2-normalised
features) and with the matching head (ITM: the match-class logit, the score
two-stage retrieval re-ranks by). A tie counts one half, so 0.5 is chance.

The rates are reported per language x attribute, pooled over languages
(``all_languages``) and over attributes (``all``), each with ``n`` (captions)
and a percentile bootstrap interval whose resampling unit is the
near-duplicate *pair*: the captions of both images of a pair, in every
language, are drawn together, because they are not independent (the same
two images, one caption's win is often its partner caption's win). ITC and
ITM use the same resamples.

Cost: every test image is encoded once, the captions one language at a time
(the encoders of :mod:`ccrk.evaluation.encode`), and the matching head scores
two pairs a caption (own image, partner), batched as evaluation batches them
(:func:`ccrk.evaluation.retrieval.score_pairs`).

Output (``ccrk attributes --out``), format ``ccrk.attributes/1``::

    {"format", "languages", "attributes", "n_images", "n_pairs", "interval": {...},
     "per_language": {lang: {attr | "all": {"n", "n_pairs", "itc": {value, low, high}, "itm": {...}}}},
     "all_languages": {attr | "all": {...}}, "model", "manifest", "scenes", ...}

A cell with no caption has ``n: 0`` and ``itc``/``itm`` null. The figures
read these files back with :func:`ccrk.report.attribute_runs.attribute_runs`.

Model-free parts (the scenes reader, the summary, the loader) import no
model code, so ``ccrk figures`` stays light.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ccrk import __version__
from ccrk.atomic import atomic_write_text, check_writable
from ccrk.evaluation.data import EvalData, load_eval_data
from ccrk.layout import ATTRIBUTES_FILE
from ccrk.metrics import bootstrap_ci
from ccrk.report.pairing import ATTRIBUTES, Pairing, read_pairing

if TYPE_CHECKING:  # pragma: no cover
    from ccrk.evaluation.options import EvalOptions

FORMAT = "ccrk.attributes/1"
#: The pooled cell: every attribute (in ``per_language``) or every language (``all_languages``).
ALL = "all"
SCORES: dict[str, str] = {
    "itc": "cosine similarity of the contrastive (ITC) features",
    "itm": "match-class logit of the ITM head",
}

log = logging.getLogger(__name__)


# -- scoring ------------------------------------------------------------------------


@dataclass
class LanguageScores:
    """Every caption of one language (manifest order) with both scores against its own image and the partner."""

    image: np.ndarray  # [T] index of the caption's own image
    partner: np.ndarray  # [T] index of that image's near-duplicate
    attribute: np.ndarray  # [T] index into ATTRIBUTES
    pair: np.ndarray  # [T] pair id (the bootstrap unit)
    itc_own: np.ndarray  # [T] float64
    itc_partner: np.ndarray
    itm_own: np.ndarray
    itm_partner: np.ndarray

    def preference(self, score: str) -> np.ndarray:
        """``[T]``: 1 where the own image scores higher, 0.5 on a tie, 0 where the partner does."""
        own, other = getattr(self, f"{score}_own"), getattr(self, f"{score}_partner")
        return np.where(own > other, 1.0, np.where(own == other, 0.5, 0.0))


def score_language(
    model: Any, images: Any, texts: Any, txt2img: np.ndarray, pairing: Pairing, itm_batch_size: int
) -> LanguageScores:
    """ITC and ITM scores of one language's captions with their own image and with its partner.

    ``images``/``texts`` are the encodings of :mod:`ccrk.evaluation.encode`,
    so ``ccrk evaluate`` scores the diagnostic from the encodings it ranks with.
    """
    import torch

    from ccrk.evaluation.retrieval import score_pairs

    own = txt2img.astype(np.int64)
    other = pairing.partner[own]
    with torch.no_grad():
        feats = texts.feats.float()
        img = images.feats.float()
        itc_own = (feats * img[torch.from_numpy(own).to(img.device)]).sum(dim=1)
        itc_other = (feats * img[torch.from_numpy(other).to(img.device)]).sum(dim=1)
    n = len(own)
    rows = np.arange(n, dtype=np.int64)
    itm = score_pairs(model, images.tokens, np.concatenate([own, other]), texts, np.concatenate([rows, rows]),
                      itm_batch_size).astype(np.float64)
    return LanguageScores(
        image=own, partner=other, attribute=pairing.attribute[own], pair=pairing.pair[own],
        itc_own=itc_own.cpu().double().numpy(), itc_partner=itc_other.cpu().double().numpy(),
        itm_own=itm[:n], itm_partner=itm[n:],
    )


def score_captions(
    model: Any,
    tokenizer: Any,
    data: EvalData,
    pairing: Pairing,
    *,
    batch_size: int,
    itm_batch_size: int,
    device: Any,
    num_workers: int = 0,
    timings: dict[str, Any] | None = None,
) -> dict[str, LanguageScores]:
    """:func:`score_language` for every language of ``data``, encoding the images once."""
    from ccrk.evaluation.encode import encode_images, encode_texts

    times = timings if timings is not None else {}
    t0 = time.perf_counter()
    images = encode_images(model, data.image_paths, batch_size, device, num_workers)
    times["encode_images_s"] = time.perf_counter() - t0
    log.info(f"encoded {data.n_images} images in {times['encode_images_s']:.1f} s on {device}")
    out: dict[str, LanguageScores] = {}
    per_language: dict[str, dict[str, float]] = {}
    for lang in data.languages:
        t0 = time.perf_counter()
        captions = data.captions[lang]
        texts = encode_texts(model, tokenizer, captions.texts, batch_size, device)
        encode_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        out[lang] = score_language(model, images, texts, captions.txt2img, pairing, itm_batch_size)
        itm_s = time.perf_counter() - t1
        del texts
        n = len(out[lang].image)
        per_language[lang] = {"encode_text_s": encode_s, "itm_s": itm_s, "total_s": time.perf_counter() - t0}
        log.info(f"{lang}: {n} captions, {2 * n} ITM pairs, {per_language[lang]['total_s']:.1f} s")
    times["per_language"] = per_language
    return out


# -- summary ------------------------------------------------------------------------


def _stat(value: float, low: float, high: float) -> dict[str, float]:
    return {"value": float(value), "low": float(low), "high": float(high)}


def _cell(
    prefs: Mapping[str, np.ndarray], pair: np.ndarray, n_resamples: int, alpha: float, seed: int
) -> dict[str, Any]:
    """Rates of one cell with the pair bootstrap; ``prefs`` maps score name -> ``[n]`` preferences."""
    n = int(pair.size)
    if n == 0:
        return {"n": 0, "n_pairs": 0, **{score: None for score in prefs}}
    _, unit = np.unique(pair, return_inverse=True)
    unit = unit.reshape(-1)
    counts = np.bincount(unit).astype(np.float64)
    cell: dict[str, Any] = {"n": n, "n_pairs": int(counts.size)}
    for score, pref in prefs.items():
        wins = np.bincount(unit, weights=pref, minlength=counts.size)
        _, low, high = bootstrap_ci(
            lambda w, c: w.sum(axis=-1) / c.sum(axis=-1), wins, counts,
            n_resamples=n_resamples, alpha=alpha, seed=seed, vectorized=True,
        )
        value = float(pref.mean())  # == wins.sum() / counts.sum(), exactly the caption average
        cell[score] = _stat(value, low, high)
    return cell


def summarize_preferences(
    scores: Mapping[str, LanguageScores], n_resamples: int = 1000, alpha: float = 0.05, seed: int = 0
) -> dict[str, Any]:
    """``per_language`` and ``all_languages`` cells (each attribute and ``all``) of :func:`score_captions`' output."""
    prefs = {lang: {s: sc.preference(s) for s in SCORES} for lang, sc in scores.items()}

    def cells(langs: Sequence[str]) -> dict[str, Any]:
        attr = np.concatenate([scores[lang].attribute for lang in langs])
        pair = np.concatenate([scores[lang].pair for lang in langs])
        pref = {s: np.concatenate([prefs[lang][s] for lang in langs]) for s in SCORES}
        out = {}
        for a, name in enumerate(ATTRIBUTES):
            keep = attr == a
            out[name] = _cell({s: p[keep] for s, p in pref.items()}, pair[keep], n_resamples, alpha, seed)
        out[ALL] = _cell(pref, pair, n_resamples, alpha, seed)
        return out

    langs = list(scores)
    ties = {s: int(sum(int((prefs[lang][s] == 0.5).sum()) for lang in langs)) for s in SCORES}
    return {
        "per_language": {lang: cells([lang]) for lang in langs},
        "all_languages": cells(langs),
        "ties": ties,
    }


# -- the command -------------------------------------------------------------------


def attribute_diagnostic(
    model_dir: str | os.PathLike[str],
    tokenizer: str | os.PathLike[str],
    manifest: str | os.PathLike[str],
    scenes: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: EvalOptions | None = None,
    *,
    image_root: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, Any], dict[str, LanguageScores]]:
    """Score a saved model on the near-duplicate pairs; write the summary JSON atomically to ``out``.

    Uses ``options``' languages (``None``: every language of the manifest),
    batch sizes, device, and bootstrap ``bootstrap``/``alpha``/``seed``.
    Everything checkable without the model (output path, model directory,
    manifest and its images, scenes file) is checked before it is loaded.
    Returns the written document and the per-caption scores.
    """
    from ccrk.evaluation.options import EvalOptions
    from ccrk.models import load_model, read_model_config
    from ccrk.models.io import saved_tokenizer
    from ccrk.tokenizer import check_model_tokenizer, load_tokenizer

    options = options or EvalOptions(mrv_languages=())
    start = time.perf_counter()
    model_dir, out = Path(model_dir), Path(out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; name the JSON file to write (e.g. {out / ATTRIBUTES_FILE})")
    check_writable(out)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model directory {model_dir} does not exist (a saved ccrk model: config.json and "
                                "model.safetensors, written by ccrk pretrain / finetune)")
    meta = read_model_config(model_dir)
    data = load_eval_data(manifest, image_root=image_root, languages=options.languages)
    pairing = read_pairing(scenes, data)
    device = options.torch_device()
    tok = load_tokenizer(tokenizer)
    model = load_model(model_dir, map_location=device)
    check_model_tokenizer(tok, str(tokenizer), model, saved_tokenizer(meta), str(model_dir))
    timings: dict[str, Any] = {"load_s": time.perf_counter() - start}

    scores = score_captions(model, tok, data, pairing, batch_size=options.batch_size,
                            itm_batch_size=options.itm_batch_size, device=device, num_workers=options.num_workers,
                            timings=timings)
    del model
    doc = attributes_document(
        scores, pairing, data, options, model_dir=model_dir, model_config=meta["config"], tokenizer=tokenizer,
        manifest=manifest, scenes=scenes, image_root=image_root, device=device, timings=timings,
    )
    timings["total_s"] = time.perf_counter() - start
    atomic_write_text(out, json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    return doc, scores


def attributes_document(
    scores: Mapping[str, LanguageScores],
    pairing: Pairing,
    data: EvalData,
    options: EvalOptions,
    *,
    model_dir: str | os.PathLike[str],
    model_config: Mapping[str, Any],
    tokenizer: str | os.PathLike[str],
    manifest: str | os.PathLike[str],
    scenes: str | os.PathLike[str],
    image_root: str | os.PathLike[str] | None,
    device: Any,
    timings: dict[str, Any],
) -> dict[str, Any]:
    """The ``ccrk.attributes/1`` document of per-caption ``scores`` (summary with bootstrap intervals, provenance)."""
    from ccrk.provenance import config_hash, git_revision

    t0 = time.perf_counter()
    summary = summarize_preferences(scores, n_resamples=options.bootstrap, alpha=options.alpha, seed=options.seed)
    timings["summary_s"] = time.perf_counter() - t0
    git = git_revision()
    n_captions = {lang: int(s.image.size) for lang, s in scores.items()}
    return {
        "format": FORMAT,
        "ccrk_version": __version__,
        "git_revision": git.sha,
        "git_dirty": git.dirty,
        "model": {"path": str(model_dir), "config_hash": config_hash(dict(model_config))},
        "tokenizer": str(tokenizer),
        "manifest": str(manifest),
        "scenes": str(scenes),
        "image_root": None if image_root is None else str(image_root),
        "device": str(device),
        "languages": list(data.languages),
        "attributes": list(ATTRIBUTES),
        "n_images": data.n_images,
        "n_pairs": pairing.n_pairs,
        "n_captions": n_captions,
        "itm_pairs_scored": 2 * sum(n_captions.values()),
        "scores": dict(SCORES),
        "preference": "fraction of captions that score higher with their own image than with its near-duplicate "
                      "partner (the image differing in one attribute of one object); a tie counts 1/2; chance 0.5",
        "interval": {
            "method": "percentile bootstrap over near-duplicate pairs (a pair's captions in every language are "
                      "resampled together; ITC and ITM share the resamples)",
            "n_resamples": options.bootstrap, "alpha": options.alpha, "seed": options.seed, "unit": "pair",
        },
        "batch_size": options.batch_size,
        "itm_batch_size": options.itm_batch_size,
        **summary,
        "timings": timings,
    }


def format_attributes(doc: Mapping[str, Any]) -> str:
    """The table ``ccrk attributes`` prints: ITC/ITM preference rate per attribute, pooled, then per language."""
    names = [*doc["attributes"], ALL]
    head = f"{'lang':<6} {'score':<5} " + " ".join(f"{name:>9}" for name in names)
    lines = [head, "-" * len(head)]

    def row(label: str, cells: Mapping[str, Any]) -> None:
        for score in SCORES:
            vals = [cells[name][score] for name in names]
            lines.append(f"{label:<6} {score:<5} " + " ".join(
                f"{v['value']:>9.3f}" if v is not None else f"{'-':>9}" for v in vals))

    row(ALL, doc["all_languages"])
    for lang in doc["languages"]:
        row(lang, doc["per_language"][lang])
    n = doc["all_languages"]
    lines.append("n (captions): " + ", ".join(f"{name} {n[name]['n']}" for name in names))
    return "\n".join(lines)
