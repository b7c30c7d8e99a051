"""``ccrk evaluate`` and ``ccrk compare``.

Flags override the ``evaluate:`` section of ``--config`` (after ``--set``),
which overrides the defaults of :class:`ccrk.evaluation.options.EvalOptions`.
Heavy imports happen inside the commands so that ``ccrk --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ccrk.cli import add_config_args


def _k_test_flag(value: str) -> int | str:
    """``--k-test``: a number, or ``auto`` (validated with the config value by ``EvalOptions``)."""
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {value!r}") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ccrk.config import load_config, section
    from ccrk.evaluation.adapters import ModelSpec
    from ccrk.evaluation.options import EvalOptions
    from ccrk.evaluation.run import evaluate, format_summary
    from ccrk.layout import METRICS_FILE, RANKS_FILE, RANKS_ITC_FILE

    spec = ModelSpec.parse(args.model, tokenizer=args.tokenizer, pretrained=args.pretrained)
    config = load_config(args.config, args.overrides)
    options = EvalOptions.from_config(
        section(config, "evaluate"),
        languages=args.languages,
        mrv_languages=args.mrv_languages,
        k_test=args.k_test,
        batch_size=args.batch_size,
        itm_batch_size=args.itm_batch_size,
        bootstrap=args.bootstrap,
        alpha=args.alpha,
        seed=args.seed,
        device=args.device,
        num_workers=args.num_workers,
        folds=args.folds,
    )
    from ccrk.launch import RestartableJob, launch_from_args

    start = time.perf_counter()
    job = RestartableJob(evaluate, (spec, args.manifest, args.out, options),
                         {"image_root": args.image_root, "config": config, "scenes": args.scenes},
                         command="evaluate")
    metrics = launch_from_args(job, args, config, f"evaluate-{Path(args.out).name}", single_device=True)
    print(format_summary(metrics))
    written = [args.out / METRICS_FILE, args.out / RANKS_FILE, args.out / RANKS_ITC_FILE]
    if args.scenes is not None:
        from ccrk.layout import ATTRIBUTES_FILE
        from ccrk.report.attribute_runs import load_attributes
        from ccrk.report.attributes import format_attributes

        written.append(args.out / ATTRIBUTES_FILE)
        print()
        print(format_attributes(load_attributes(written[-1])))
    print(f"\nwrote {', '.join(map(str, written))} in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ccrk.atomic import atomic_write_text, check_writable
    from ccrk.evaluation.compare import compare_runs, format_comparison

    if args.bootstrap < 1:
        raise ValueError(f"--bootstrap must be a positive integer, got {args.bootstrap}")
    if not 0 < args.alpha < 1:
        raise ValueError(f"--alpha must lie in (0, 1), got {args.alpha}")
    if args.seed < 0:
        raise ValueError(f"--seed must be non-negative, got {args.seed}")
    if args.out is not None:
        check_writable(args.out)
    doc = compare_runs(args.run_a, args.run_b, n_resamples=args.bootstrap, alpha=args.alpha, seed=args.seed)
    print(format_comparison(doc))
    if args.out is not None:
        atomic_write_text(args.out, json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        print(f"\nwrote {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="two-stage retrieval on a test manifest: Recall@K, mR, MRV with bootstrap CIs, per-instance ranks "
             "(and the ITC-only ones), for ccrk's models, open_clip's and Hugging Face dual encoders",
    )
    add_config_args(p)
    p.add_argument(
        "--model", required=True,
        help="a saved ccrk model directory (config.json + model.safetensors; needs --tokenizer), "
             "open_clip:ARCH (with --pretrained; ARCH an open_clip architecture, a model-config JSON, or "
             "local-dir:DIR) or hf:DIR (a Hugging Face save_pretrained directory of a dual encoder with its processor)",
    )
    p.add_argument("--tokenizer", help="a ccrk model's tokenizer directory or Hugging Face name (offline)")
    p.add_argument("--pretrained", type=Path, help="open_clip:ARCH only: the local checkpoint file to load")
    p.add_argument("--manifest", type=Path, required=True, help="test manifest (JSON Lines)")
    p.add_argument("--image-root", type=Path, help="root of the manifest's image paths (default: its directory)")
    p.add_argument("--languages", help="comma-separated codes (default: evaluate.languages, else all in the manifest)")
    p.add_argument(
        "--mrv-languages",
        help="comma-separated codes for MRV, or 'none' (default: evaluate.mrv_languages, else en,de,ja,zh)",
    )
    p.add_argument(
        "--k-test", type=_k_test_flag,
        help="candidates re-ranked by the ITM head per query (default 128), or 'auto': the k ccrk finetune chose "
             "on validation (the model directory's retrieval.json); models without a matching head rank by "
             "similarity alone",
    )
    p.add_argument("--batch-size", type=int, help="images or captions a forward when encoding (default 64)")
    p.add_argument("--itm-batch-size", type=int, help="image-caption pairs a forward of the ITM head (default 256)")
    p.add_argument("--bootstrap", type=int, help="bootstrap resamples of test images (default 1000)")
    p.add_argument("--alpha", type=float, help="1 - confidence level of the intervals (default 0.05)")
    p.add_argument("--seed", type=int, help="bootstrap seed (default 0)")
    p.add_argument("--device", help="torch device, or 'auto' = cuda if available (default)")
    p.add_argument("--num-workers", type=int, help="image-loading worker processes (default 0)")
    p.add_argument(
        "--folds", type=int,
        help="rank within this many equal, contiguous galleries of the test images and pool them "
             "(MS-COCO's 1K x 5 folds; default 1: one gallery of all images)",
    )
    p.add_argument(
        "--scenes", type=Path,
        help="ground truth of a synthetic test split (scenes/test.jsonl of ccrk synth): also write "
             "attributes.json, the near-duplicate diagnostic of ccrk attributes, from the same encodings",
    )
    p.add_argument(
        "--out", type=Path, required=True,
        help="run directory for metrics.json, ranks.npz and ranks_itc.npz (replaced atomically)",
    )
    from ccrk.launch import add_launcher_args

    add_launcher_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="paired bootstrap of two evaluate runs: A - B in R@1, mR and MRV with CI and p")
    p.add_argument("run_a", type=Path, help="run directory of ccrk evaluate (or its ranks.npz)")
    p.add_argument("run_b", type=Path, help="run directory to compare against")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--out", type=Path, help="write the comparison as JSON here")
    p.set_defaults(func=cmd_compare)
