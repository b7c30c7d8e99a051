"""Seconds per pre-training step of the embedded default: two builds of one model timed side by side.

``--compare layout`` (the default): image tower in contiguous vs channels-last
memory order. ``--compare compile``: the configured model eager vs with
``torch.compile`` (inductor, dynamic shapes: the text length buckets change the
sequence length from batch to batch) on the submodules named by ``--compile``;
the first pass over the batches, which compiles, is reported apart.

For layouts, both variants are the model of ``config/config.yaml`` built from the same seed
(identical weights: only ``model.image_channels_last`` differs), with the
objective and optimiser of a real step (forward of every enabled term,
backward, AdamW). They train on the same batches of the embedded
benchmark's pre-training split, collated exactly as ``ccrk pretrain`` does,
and are timed round-robin (after warm-up steps), so a busy spell of a shared
machine slows both alike. Prints the median seconds per step of each, the
ratio channels-last / contiguous per objective, and the loss of the last
step of both (equal up to summation order: the two compute the same thing).

Run (after ``make reproduce`` built resources/, or pass --synth/--tokenizer):
``python benchmarks/step_time.py [--objectives one_to_k,cross_modal] [--threads 1] [--device cpu] [--json out.json]``;
``python benchmarks/step_time.py --compare compile --compile image,text,fusion --objectives one_to_k``.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ccrk.data.manifest import read_manifest  # noqa: E402
from ccrk.objectives import ObjectiveConfig, build_objective  # noqa: E402
from ccrk.tokenizer import load_tokenizer  # noqa: E402
from ccrk.train.config import TrainConfig  # noqa: E402
from ccrk.train.builders import build_seeded_model, model_config, train_data  # noqa: E402

#: Variants per comparison, baseline first: the ratio printed is second / first.
COMPARISONS = {"layout": ("contiguous", "channels_last"), "compile": ("eager", "compiled")}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_objective(name: str, config: dict, args: argparse.Namespace, device: torch.device) -> dict:
    """Median seconds per step of each variant of objective ``name`` on the same batches."""
    tokenizer = load_tokenizer(args.tokenizer)
    languages = config["train"]["languages"]
    records = read_manifest(args.synth / "pretrain.jsonl", image_root=args.synth, languages=languages,
                            require_languages=languages)
    dataset, collator = train_data(records, args.synth, languages, name, model_config(config), tokenizer, seed=0,
                                   crop_scale=tuple(TrainConfig.from_dict(config["train"]).crop_scale))
    size = config["train"]["batch_size"]
    batches = [collator([dataset[i] for i in range(j * size, (j + 1) * size)]).to(device)
               for j in range(args.batches)]
    runs = {}
    for variant in COMPARISONS[args.compare]:
        cfg = copy.deepcopy(config)
        if args.compare == "layout":
            cfg["model"]["image_channels_last"] = variant == "channels_last"
        model = build_seeded_model(model_config(cfg), tokenizer, seed=0)
        if variant == "compiled":
            for part in args.compile.split(","):
                if not isinstance(getattr(model, part, None), torch.nn.Module):
                    print(f"--compile: the model has no submodule {part!r}", file=sys.stderr)
                    raise SystemExit(2)
                setattr(model, part, torch.compile(getattr(model, part), dynamic=True))
        objective = build_objective(ObjectiveConfig.from_dict({**cfg["objective"], "name": name}), model,
                                    tokenizer).to(device)
        runs[variant] = (objective, torch.optim.AdamW(objective.parameters(), lr=config["train"]["lr"]))

    def step(variant: str, index: int) -> float:
        objective, optimizer = runs[variant]
        generator = torch.Generator(device=device).manual_seed(index)
        out = objective(batches[index % len(batches)], generator)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(out.loss.detach())

    # A first pass over every batch (every length bucket's shape) outside the timing: compilation happens here.
    first_pass: dict[str, float] = {}
    for variant in runs:
        start = time.perf_counter()
        for index in range(len(batches)):
            step(variant, index)
        _sync(device)
        first_pass[variant] = time.perf_counter() - start
    times: dict[str, list[float]] = {variant: [] for variant in runs}
    last: dict[str, float] = {}
    for index in range(args.warmup + args.steps):
        order = list(runs) if index % 2 == 0 else list(reversed(list(runs)))
        for variant in order:
            _sync(device)
            start = time.perf_counter()
            last[variant] = step(variant, index)
            _sync(device)
            if index >= args.warmup:
                times[variant].append(time.perf_counter() - start)
    medians = {variant: statistics.median(values) for variant, values in times.items()}
    base, other = COMPARISONS[args.compare]
    return {"objective": name, "compare": args.compare, "s_per_step": medians, "ratio": medians[other] / medians[base],
            "first_pass_s": first_pass, "last_loss": last, "steps": args.steps, "batch_size": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectives", default="one_to_k,cross_lingual,cross_modal")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batches", type=int, default=8, help="distinct batches, cycled")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    parser.add_argument("--synth", type=Path, default=ROOT / "resources" / "synth")
    parser.add_argument("--tokenizer", type=Path, default=ROOT / "resources" / "tokenizer")
    parser.add_argument("--compare", choices=sorted(COMPARISONS), default="layout")
    parser.add_argument("--compile", default="image,text,fusion",
                        help="with --compare compile: the model's submodules to compile, comma-separated")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    for need in (args.synth / "pretrain.jsonl", args.tokenizer / "tokenizer.json"):
        if not need.exists():
            print(f"{need} is missing: run `make reproduce` (or snakemake resources/tokenizer/tokenizer.json) first",
                  file=sys.stderr)
            raise SystemExit(2)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = yaml.safe_load(args.config.read_text())
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} thread(s), "
          f"{args.steps} timed steps per variant (median), batch {config['train']['batch_size']} x "
          f"K={len(config['train']['languages'])}")
    results = []
    for name in args.objectives.split(","):
        result = time_objective(name, config, args, device)
        results.append(result)
        s, first, loss = result["s_per_step"], result["first_pass_s"], result["last_loss"]
        base, other = COMPARISONS[args.compare]
        print(f"{name:14s} {base} {s[base]:.4f} s/step  {other} {s[other]:.4f} s/step  ratio {result['ratio']:.3f}  "
              f"(first pass {first[base]:.1f} s vs {first[other]:.1f} s; last loss {loss[base]:.5f} vs {loss[other]:.5f})")
    if args.json:
        args.json.write_text(json.dumps({"device": str(device), "threads": args.threads, "results": results},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
