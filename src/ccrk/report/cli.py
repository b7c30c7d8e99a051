"""``ccrk tables`` and ``ccrk figures``: the paper's tables and figures from evaluation outputs.

The input layout is documented in :mod:`ccrk.report.runs`. Heavy imports
(pandas, matplotlib) happen inside the commands so that ``ccrk --help``
stays fast.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _found(results) -> str:  # type: ignore[no-untyped-def]
    seeds = sorted({r.seed for r in results.runs})
    return (
        f"found {len(results.runs)} evaluation runs ({', '.join(results.datasets)}; "
        f"{', '.join(results.objectives)}; seeds {','.join(map(str, seeds))}) and "
        f"{len(results.comparisons)} comparisons under {results.metrics_dir}"
    )


def cmd_tables(args: argparse.Namespace) -> int:
    from ccrk.report.runs import discover
    from ccrk.report.tables import write_tables

    results = discover(args.metrics_dir)
    print(_found(results), file=sys.stderr)
    for path in write_tables(results, args.out, summary_dir=args.summary_dir, plots_dir=args.plots_dir):
        print(f"wrote {path}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from ccrk.report.figures import write_figures
    from ccrk.report.runs import discover, discover_pretrain

    if args.dpi < 10:
        raise ValueError(f"--dpi must be at least 10, got {args.dpi}")
    results = discover(args.metrics_dir)
    logs = discover_pretrain(args.pretrain_dir)
    print(_found(results), file=sys.stderr)
    print(f"found {len(logs)} pre-training logs under {args.pretrain_dir}", file=sys.stderr)
    for path in write_figures(results, logs, args.out, dpi=args.dpi):
        print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tables",
        help="Table 1 (paper beside reproduced), per-language R@1, MRV and significance as csv/md/tex",
        description="Write table1, per_language, mrv and significance (.csv, .md, .tex) from the evaluation runs "
        "under --metrics-dir (<dataset>/<setting>/<objective>/seed<seed>/metrics.json and "
        "<dataset>/<setting>/compare/seed<seed>/one_to_k-vs-<baseline>.json).",
    )
    p.add_argument("--metrics-dir", type=Path, required=True, help="evaluation outputs (e.g. results/metrics)")
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
        "evaluation runs under --metrics-dir and the pre-training logs under --pretrain-dir "
        "(<objective>/seed<seed>/metrics.jsonl).",
    )
    p.add_argument("--metrics-dir", type=Path, required=True, help="evaluation outputs (e.g. results/metrics)")
    p.add_argument("--pretrain-dir", type=Path, required=True,
                   help="pre-training run directories (e.g. results/models/pretrain)")
    p.add_argument("--out", type=Path, required=True, help="directory for the figures (e.g. results/figures)")
    p.add_argument("--dpi", type=int, default=150, help="resolution of the PNGs (default 150)")
    p.set_defaults(func=cmd_figures)
