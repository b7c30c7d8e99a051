"""``ccrk tables`` and ``ccrk figures``: the paper's tables and figures from evaluation outputs.

Also ``ccrk attributes``: the per-attribute near-duplicate diagnostic of one
saved model on the synthetic test split (:mod:`ccrk.report.attributes`),
whose files ``ccrk figures --attributes`` draws.

The input layout is documented in :mod:`ccrk.report.runs`. Heavy imports
(pandas, matplotlib) happen inside the commands so that ``ccrk --help``
stays fast.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ccrk.cli import add_config_args


def _found(results) -> str:  # type: ignore[no-untyped-def]
    seeds = sorted({r.seed for r in results.runs})
    found = f"found {len(results.runs)} evaluation runs"
    if results.runs:
        found += f" ({', '.join(results.objectives)}; seeds {','.join(map(str, seeds))})"
    found += f" and {len(results.comparisons)} comparisons"
    if results.external:
        names = ", ".join(sorted({r.objective for r in results.external}))
        found += f", {len(results.external)} runs of external models ({names})"
    return f"{found} on {', '.join(results.datasets)} under {results.metrics_dir}"


def _results(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The runs named by --metrics/--compare (what the workflow declares), else every run under --metrics-dir."""
    from ccrk.report.runs import collect, discover

    if args.metrics or args.external:
        if args.metrics_dir is not None:
            raise ValueError("give --metrics (the runs to report) or --metrics-dir (every run under it), not both")
        return collect(args.metrics, args.compare, args.external)
    if args.metrics_dir is None:
        raise ValueError("name the runs to report: --metrics FILE... [--compare FILE...] [--external FILE...] or "
                         "--metrics-dir DIR")
    if args.compare or args.external:
        raise ValueError("--compare and --external go with --metrics; --metrics-dir finds them itself")
    return discover(args.metrics_dir)


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", type=Path, nargs="+", metavar="FILE",
                   help="exactly these runs: <dataset>/<setting>/<objective>/seed<seed>/metrics.json (the workflow "
                        "passes the files it built, so a stale run on disk never enters a table)")
    p.add_argument("--compare", type=Path, nargs="+", default=[], metavar="FILE",
                   help="with --metrics: these comparisons (<dataset>/<setting>/compare/seed<seed>/<a>-vs-<b>.json)")
    p.add_argument("--external", type=Path, nargs="+", default=[], metavar="FILE",
                   help="with --metrics: runs of models trained elsewhere (<dataset>/external/<name>/metrics.json), "
                        "rows of the per-language and MRV tables")
    p.add_argument("--metrics-dir", type=Path,
                   help="instead: every run and comparison found under this directory (e.g. results/metrics)")


def cmd_tables(args: argparse.Namespace) -> int:
    from ccrk.report.tables import write_tables

    results = _results(args)
    print(_found(results), file=sys.stderr)
    for path in write_tables(results, args.out, summary_dir=args.summary_dir, plots_dir=args.plots_dir):
        print(f"wrote {path}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from ccrk.report.attribute_runs import attribute_runs
    from ccrk.report.figures import write_figures
    from ccrk.report.logs import collect_pretrain, discover_pretrain

    if args.dpi < 10:
        raise ValueError(f"--dpi must be at least 10, got {args.dpi}")
    results = _results(args)
    if bool(args.pretrain_logs) == (args.pretrain_dir is not None):
        raise ValueError("name the pre-training logs: --pretrain-logs FILE... or --pretrain-dir DIR (one of them)")
    logs = collect_pretrain(args.pretrain_logs) if args.pretrain_logs else discover_pretrain(args.pretrain_dir)
    attributes = attribute_runs(args.attributes)
    print(_found(results), file=sys.stderr)
    print(f"found {len(logs)} pre-training logs", file=sys.stderr)
    if attributes:
        print(f"read {len(attributes)} attribute diagnostics (ccrk attributes)", file=sys.stderr)
    for path in write_figures(results, logs, args.out, dpi=args.dpi, attributes=attributes):
        print(f"wrote {path}")
    return 0


def cmd_budget(args: argparse.Namespace) -> int:
    from ccrk.report.budget import write_budget

    for path in write_budget([tuple(pair) for pair in args.length], args.out, dpi=args.dpi):
        print(f"wrote {path}")
    return 0


def cmd_attributes(args: argparse.Namespace) -> int:
    from ccrk.config import load_config, section
    from ccrk.evaluation.options import EvalOptions
    from ccrk.report.attributes import attribute_diagnostic, format_attributes

    config = load_config(args.config, args.overrides)
    # The evaluate: section's batch sizes, device and bootstrap settings; k_test and MRV play no part here.
    options = EvalOptions.from_config(
        section(config, "evaluate"),
        languages=args.languages,
        mrv_languages="none",
        batch_size=args.batch_size,
        itm_batch_size=args.itm_batch_size,
        bootstrap=args.bootstrap,
        alpha=args.alpha,
        seed=args.seed,
        device=args.device,
        num_workers=args.num_workers,
    )
    start = time.perf_counter()
    doc, _ = attribute_diagnostic(args.model, args.tokenizer, args.manifest, args.scenes, args.out, options,
                                  image_root=args.image_root)
    print(format_attributes(doc))
    print(f"\nwrote {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tables",
        help="Table 1 (paper beside reproduced), per-language R@1, MRV and significance as csv/md/tex",
        description="Write table1, per_language, mrv and significance (.csv, .md, .tex) from the evaluation runs "
        "named by --metrics/--compare, or found under --metrics-dir (<dataset>/<setting>/<objective>/seed<seed>/"
        "metrics.json and <dataset>/<setting>/compare/seed<seed>/one_to_k-vs-<baseline>.json).",
    )
    _run_args(p)
    p.add_argument("--out", type=Path, required=True, help="directory for the tables (e.g. results/tables)")
    p.add_argument("--summary-dir", type=Path,
                   help="also write <objective>.json of headline numbers for `dvc metrics show` here")
    p.add_argument("--plots-dir", type=Path,
                   help="also write recall_per_language.csv (long format) for `dvc plots` here")
    p.set_defaults(func=cmd_tables)

    p = sub.add_parser(
        "figures",
        help="recall per language, rank-std distribution, rank scatter, pre-training loss curves (png + pdf)",
        description="Write recall_per_language, rank_std, rank_scatter and loss_curves (.png, .pdf) from the "
        "evaluation runs (--metrics or --metrics-dir) and the pre-training logs (--pretrain-logs or --pretrain-dir: "
        "<objective>/seed<seed>/metrics.jsonl).",
    )
    _run_args(p)
    p.add_argument("--pretrain-logs", type=Path, nargs="+", default=[], metavar="FILE",
                   help="exactly these pre-training logs: <objective>/seed<seed>/metrics.jsonl (val.jsonl beside "
                        "each is the learning curve)")
    p.add_argument("--pretrain-dir", type=Path,
                   help="instead: every pre-training run under this directory (e.g. results/models/pretrain)")
    p.add_argument("--out", type=Path, required=True, help="directory for the figures (e.g. results/figures)")
    p.add_argument("--attributes", type=Path, nargs="+", default=[], metavar="FILE",
                   help="also draw attribute_preference and attribute_preference_per_language from these "
                        "ccrk attributes outputs (paths ending in <dataset>/<setting>/<objective>/seed<seed>/"
                        "attributes.json)")
    p.add_argument("--dpi", type=int, default=150, help="resolution of the PNGs (default 150)")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser(
        "budget",
        help="the budget study: R@1 and MRV against pre-training steps, one comparison per pre-training length",
        description="Put the same comparison at several pre-training lengths side by side: budget.csv/.md (seed "
        "means of IR/TR R@1 and MRV per objective and length, with 1-to-K's paired differences) and budget.png/"
        ".pdf (R@1 and MRV against pre-training steps). Each --length is one run's evaluation outputs and its "
        "pre-training directory; the steps are read from the pre-training logs.",
    )
    p.add_argument("--length", nargs=2, action="append", required=True, type=Path,
                   metavar=("METRICS_DIR", "PRETRAIN_DIR"),
                   help="one pre-training length: its metrics dir and pre-training dir (give it once a length)")
    p.add_argument("--out", type=Path, required=True, help="directory for budget.{csv,md,png,pdf}")
    p.add_argument("--dpi", type=int, default=150, help="resolution of the PNG (default 150)")
    p.set_defaults(func=cmd_budget)

    p = sub.add_parser(
        "attributes",
        help="near-duplicate diagnostic: how often a caption prefers its own image over the one differing in one "
             "attribute (ITC and ITM), per attribute and language",
        description="For every caption of the synthetic test split, whether it scores higher with its own image "
        "than with its near-duplicate partner (scenes file: near_duplicate_of, changed), by the contrastive "
        "similarity and by the matching head; rates per language x attribute with bootstrap intervals over "
        "near-duplicate pairs. Batch sizes, device and bootstrap settings come from the evaluate: section "
        "(flags override).",
    )
    add_config_args(p)
    p.add_argument("--model", type=Path, required=True, help="saved model directory (config.json + model.safetensors)")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory or Hugging Face name (offline)")
    p.add_argument("--manifest", type=Path, required=True, help="test manifest (JSON Lines)")
    p.add_argument("--scenes", type=Path, required=True,
                   help="the split's ground truth written by ccrk synth (e.g. resources/synth/scenes/test.jsonl)")
    p.add_argument("--image-root", type=Path, help="root of the manifest's image paths (default: its directory)")
    p.add_argument("--languages", help="comma-separated codes (default: evaluate.languages, else all in the manifest)")
    p.add_argument("--batch-size", type=int, help="images or captions a forward when encoding (default 64)")
    p.add_argument("--itm-batch-size", type=int, help="image-caption pairs a forward of the ITM head (default 256)")
    p.add_argument("--bootstrap", type=int, help="bootstrap resamples of near-duplicate pairs (default 1000)")
    p.add_argument("--alpha", type=float, help="1 - confidence level of the intervals (default 0.05)")
    p.add_argument("--seed", type=int, help="bootstrap seed (default 0)")
    p.add_argument("--device", help="torch device, or 'auto' = cuda if available (default)")
    p.add_argument("--num-workers", type=int, help="image-loading worker processes (default 0)")
    p.add_argument("--out", type=Path, required=True, help="the JSON file to write (atomically)")
    p.set_defaults(func=cmd_attributes)
