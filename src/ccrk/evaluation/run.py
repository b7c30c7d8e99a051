"""``ccrk evaluate``: a model on a test manifest -> ``metrics.json`` + ``ranks.npz`` + ``ranks_itc.npz``.

The model is ccrk's own or one trained elsewhere (open_clip, Hugging Face:
:mod:`ccrk.evaluation.adapters`); the outputs are the same, so ``ccrk
compare``, the tables and the figures read them alike.

Flow: validate everything that can be validated without the model (manifest,
images, languages, MRV coverage, output path, model files); encode every
image once; then one language at a time (so memory is bounded by one
language's captions) encode its captions, rank both directions with
two-stage retrieval (within each of ``evaluate.folds`` equal galleries), and drop the language's tensors; finally bootstrap the
metrics and write the run directory atomically, so it is either complete or
untouched.

The headline numbers are two-stage at ``k_test`` (a model without a
matching head is ranked by similarity alone, ``k_test`` 1); the ``itc_only`` section
holds the same summary of the contrastive ranks alone (``ranks_itc.npz``),
because a weak matching head can make re-ranking worse than no re-ranking
and only the pair shows it. ``k_test: auto`` takes the ``k_test`` that
``ccrk finetune`` chose on validation (``retrieval.json`` in the model
directory), so the test split never picks it.

With ``scenes`` (the synthetic benchmark's ground truth) the same pass also
scores the near-duplicate diagnostic of :mod:`ccrk.report.attributes` from
the encodings it ranks with, and writes ``attributes.json`` into the run
directory: one job, one model load and one encoding instead of two.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ccrk import __version__
from ccrk.atomic import atomic_directory, check_writable
from ccrk.evaluation.adapters import ModelSpec
from ccrk.evaluation.data import EvalData, check_mrv_coverage, load_eval_data
from ccrk.evaluation.options import EvalOptions
from ccrk.evaluation.rankset import RankSet
from ccrk.evaluation.retrieval import rank_language_folds
from ccrk.evaluation.summary import summarize
from ccrk.layout import ATTRIBUTES_FILE, METRICS_FILE, RANKS_FILE, RANKS_ITC_FILE
from ccrk.provenance import git_revision

FORMAT = "ccrk.metrics/1"

log = logging.getLogger(__name__)


def _check_out(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} exists and is not a directory")
    check_writable(out_dir, directory=True)


def _rankset(
    data: EvalData, mrv_languages: list[str], t2i: dict[str, np.ndarray], i2t: dict[str, np.ndarray], folds: int
) -> RankSet:
    """Ranks of every language with the test set's image ids and caption owners: one layout for both rank files."""
    return RankSet(
        image_ids=list(data.image_ids),
        languages=list(data.languages),
        mrv_languages=mrv_languages,
        t2i=t2i,
        txt2img={lang: data.captions[lang].txt2img for lang in data.languages},
        i2t=i2t,
        folds=folds,
    )


def evaluate(
    model: ModelSpec | str | os.PathLike[str],
    manifest: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    options: EvalOptions | None = None,
    *,
    tokenizer: str | os.PathLike[str] | None = None,
    pretrained: str | os.PathLike[str] | None = None,
    image_root: str | os.PathLike[str] | None = None,
    config: dict[str, Any] | None = None,
    scenes: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Evaluate a model; write ``metrics.json``, ``ranks.npz``, ``ranks_itc.npz`` to ``out_dir``; return metrics.

    ``model``: a :class:`ModelSpec`, or what ``--model`` takes (a ccrk model
    directory with ``tokenizer``, ``open_clip:ARCH`` with ``pretrained``, ``hf:DIR``).

    ``scenes``: also write ``attributes.json`` (:data:`ccrk.layout.ATTRIBUTES_FILE`), the
    near-duplicate diagnostic of a synthetic test split, from the same encodings.

    ``out_dir`` is replaced as a whole once all files are complete; on any
    error it is left as it was. ``config`` is the loaded YAML the options came
    from; it is recorded with the resolved ``evaluate`` section.
    """
    options = options or EvalOptions()
    start = time.perf_counter()
    spec = model if isinstance(model, ModelSpec) else ModelSpec.parse(model, tokenizer=tokenizer,
                                                                      pretrained=pretrained)
    out_dir = Path(out_dir)
    _check_out(out_dir)
    spec.check()
    if scenes is not None and not spec.has_matching_head:
        raise ValueError(f"--scenes (the near-duplicate diagnostic) scores with a matching head, which {spec} "
                         f"has not; evaluate it without --scenes")
    k_test, k_test_source = spec.resolve_k_test(options.k_test)
    data = load_eval_data(manifest, image_root=image_root, languages=options.languages)
    options.check_folds(data.n_images, str(manifest))
    mrv_languages = list(options.mrv_languages)
    if mrv_languages:
        check_mrv_coverage(data, mrv_languages)
    pairing = None
    if scenes is not None:
        from ccrk.report.attributes import read_pairing

        pairing = read_pairing(scenes, data)
    device = options.torch_device()
    retrieval_model = spec.load(device)
    description = retrieval_model.describe()
    timings: dict[str, Any] = {"load_s": time.perf_counter() - start}

    t0 = time.perf_counter()
    images = retrieval_model.encode_images(data.image_paths, options.batch_size, options.num_workers)
    timings["encode_images_s"] = time.perf_counter() - t0
    log.info(f"encoded {data.n_images} images in {timings['encode_images_s']:.1f} s on {device}")

    ranks_t2i, ranks_i2t, itc_t2i, itc_i2t, pairs, per_lang_times = {}, {}, {}, {}, {}, {}
    attribute_scores: dict[str, Any] = {}
    for lang in data.languages:
        t0 = time.perf_counter()
        captions = data.captions[lang]
        texts = retrieval_model.encode_texts(captions.texts, options.batch_size)
        encode_s = time.perf_counter() - t0
        result = rank_language_folds(retrieval_model.match, images, texts, captions.txt2img, k_test,
                                     options.itm_batch_size, options.folds)
        if pairing is not None:
            from ccrk.report.attributes import score_language

            attribute_scores[lang] = score_language(retrieval_model.model, images, texts, captions.txt2img,
                                                    pairing, options.itm_batch_size)
        del texts
        ranks_t2i[lang], ranks_i2t[lang] = result.t2i, result.i2t
        itc_t2i[lang], itc_i2t[lang] = result.itc_t2i, result.itc_i2t
        pairs[lang] = {"scored": result.pairs_scored, "public_code": result.pairs_public,
                       "k_t2i": result.k_t2i, "k_i2t": result.k_i2t}
        per_lang_times[lang] = {"encode_text_s": encode_s, **result.timings, "total_s": time.perf_counter() - t0}
        log.info(
            f"{lang}: {len(captions.texts)} captions, ITM on {result.pairs_scored:,} pairs "
            f"(public code {result.pairs_public:,}), {per_lang_times[lang]['total_s']:.1f} s"
        )
    timings["per_language"] = per_lang_times
    tokenizer_label = retrieval_model.tokenizer_label
    # the diagnostic (--scenes) is refused above for any model but ccrk's own
    model_config = retrieval_model.meta["config"] if pairing is not None else None
    del images, retrieval_model
    if device.type == "cuda":
        torch.cuda.empty_cache()

    rankset = _rankset(data, mrv_languages, ranks_t2i, ranks_i2t, options.folds)
    itc_rankset = _rankset(data, mrv_languages, itc_t2i, itc_i2t, options.folds)
    t0 = time.perf_counter()
    # One seed for both: the same image resamples, so the two summaries' intervals are comparable.
    summary = summarize(rankset, n_resamples=options.bootstrap, alpha=options.alpha, seed=options.seed)
    itc_summary = summarize(itc_rankset, n_resamples=options.bootstrap, alpha=options.alpha, seed=options.seed)
    timings["metrics_s"] = time.perf_counter() - t0

    scored = sum(p["scored"] for p in pairs.values())
    public = sum(p["public_code"] for p in pairs.values())
    resolved = copy.deepcopy(config or {})
    resolved["evaluate"] = options.to_dict()
    git = git_revision()
    metrics: dict[str, Any] = {
        "format": FORMAT,
        "ccrk_version": __version__,
        "git_revision": git.sha,
        "git_dirty": git.dirty,
        "model": description,
        "tokenizer": tokenizer_label,
        "manifest": str(manifest),
        "image_root": None if image_root is None else str(image_root),
        "device": str(device),
        "languages": list(data.languages),
        "mrv_languages": mrv_languages,
        "n_images": data.n_images,
        "n_captions": data.n_captions(),
        "folds": options.folds,
        "gallery_images": data.n_images // options.folds,
        "k_test": k_test,
        "k_test_source": k_test_source,
        "itm_score": "match-class logit of the ITM head" if spec.has_matching_head else None,
        "bootstrap": {"n_resamples": options.bootstrap, "alpha": options.alpha, "seed": options.seed, "unit": "image"},
        **summary,
        "itc_only": itc_summary,
        "itm_pairs": {
            "scored": scored,
            "public_code": public,
            "saved_fraction": 1.0 - scored / public,
            "per_language": pairs,
        },
        "config": resolved,
        "timings": timings,
    }

    attributes = None
    if pairing is not None:
        from ccrk.report.attributes import attributes_document

        attributes = attributes_document(
            attribute_scores, pairing, data, options, model_dir=Path(spec.target), model_config=model_config,
            tokenizer=tokenizer_label, manifest=manifest, scenes=scenes, image_root=image_root, device=device,
            timings={"in": "ccrk evaluate (encodings shared with the ranking: see metrics.json timings)"},
        )

    with atomic_directory(out_dir) as tmp:
        rankset.save(tmp / RANKS_FILE)
        itc_rankset.save(tmp / RANKS_ITC_FILE)
        if attributes is not None:
            text = json.dumps(attributes, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
            (tmp / ATTRIBUTES_FILE).write_text(text, encoding="utf-8")
        timings["total_s"] = time.perf_counter() - start
        text = json.dumps(metrics, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        (tmp / METRICS_FILE).write_text(text, encoding="utf-8")
    return metrics


def format_summary(metrics: dict[str, Any]) -> str:
    """The table ``ccrk evaluate`` prints: R@1 per direction and mR a language, MRV, ITM pairs, the ITC-only average."""
    head = f"{'lang':<6} {'R@1 t2i':>8} {'R@1 i2t':>8} {'mR':>7} {'ITM pairs':>11} {'public':>11}"
    lines = [head, "-" * len(head)]
    for lang in metrics["languages"]:
        m = metrics["per_language"][lang]
        p = metrics["itm_pairs"]["per_language"][lang]
        lines.append(
            f"{lang:<6} {m['t2i']['R@1']['value']:>8.2f} {m['i2t']['R@1']['value']:>8.2f} "
            f"{m['mR']['value']:>7.2f} {p['scored']:>11,} {p['public_code']:>11,}"
        )
    avg = metrics["average"]
    pairs = metrics["itm_pairs"]
    lines.append(
        f"{'avg':<6} {avg['t2i']['R@1']['value']:>8.2f} {avg['i2t']['R@1']['value']:>8.2f} "
        f"{avg['mR']['value']:>7.2f} {pairs['scored']:>11,} {pairs['public_code']:>11,}"
    )
    mrv = metrics["mrv"]
    if mrv:
        lines.append("")
        lines.append(
            f"MRV ({','.join(mrv['languages'])}): t2i {mrv['t2i']['value']:.2f}  i2t {mrv['i2t']['value']:.2f}  "
            f"mean {mrv['mean']['value']:.2f}"
        )
    if metrics.get("folds", 1) > 1:
        lines.append(f"ranked within {metrics['folds']} folds of {metrics['gallery_images']} images, pooled")
    lines.append(f"ITM pairs scored: {pairs['scored']:,} of the public code's {pairs['public_code']:,} "
                 f"({100 * pairs['saved_fraction']:.1f}% saved)")
    itc = metrics.get("itc_only")
    if itc:  # metrics.json files written before the section existed have none
        avg_itc = itc["average"]
        lines.append(
            f"ITC only (no re-ranking; above: k_test {metrics['k_test']}): avg R@1 t2i "
            f"{avg_itc['t2i']['R@1']['value']:.2f}  i2t {avg_itc['i2t']['R@1']['value']:.2f}  "
            f"mR {avg_itc['mR']['value']:.2f}"
        )
    return "\n".join(lines)
