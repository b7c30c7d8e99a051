"""Wall seconds of 1-to-K pre-training until validation R@1 reaches a target: the previous default vs the current one.

Both recipes pre-train ``one_to_k`` on the embedded synthetic benchmark on one
CPU thread, each with its own model, objective weights and optimiser settings,
for the same number of epochs (``--epochs``; the schedule decays to zero at
its end), and score the validation split after every epoch
(``ccrk pretrain --val-manifest``: contrastive R@1 over both directions and
the six CCR^6 languages). Both run at once, one thread each, so they share the
machine's state (a 2-core laptop holds both). A run stops when it reaches
``--target`` or after ``--budget-s``. Time to accuracy is the wall time from the start of the
process to the validation that first reaches the target, minus the time spent
validating; validation runs once an epoch, so that is also the resolution.

``PREVIOUS_DEFAULT`` is the embedded default's recipe before issue 13 (commit
4f8d0f0, ``config/config.yaml``), kept here so the comparison can be rerun;
the current recipe is read from ``config/config.yaml``.

Run (after ``make reproduce`` built resources/, or pass --synth/--tokenizer):
``python benchmarks/time_to_accuracy.py [--target 30] [--epochs 8] [--budget-s 900] [--json out.json]``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

PREVIOUS_DEFAULT = {
    "model": {
        "image_encoder": "resnet10t", "image_size": 64, "text_layers": 2, "fusion_layers": 2, "embed_dim": 128,
        "max_length": 48,
        "text_config": {"model_type": "xlm-roberta", "hidden_size": 128, "num_attention_heads": 4,
                        "intermediate_size": 512, "max_position_embeddings": 96, "type_vocab_size": 1,
                        "layer_norm_eps": 1.0e-5, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    },
    "objective": {"weights": {"itc": 1.0, "itm": 1.0, "mlm": 1.0}, "positive_language": "hard"},
    "train": {"batch_size": 32, "lr": 5.0e-4, "warmup": 0.1, "languages": ["en", "de", "fr", "cs", "zh", "ja"],
              "num_workers": 0, "log_every": 10, "save_every": 0, "keep_last": 1},
}


def current_default() -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return {key: copy.deepcopy(config[key]) for key in ("model", "objective", "train")}


class Run:
    """One recipe's ``ccrk pretrain`` process, started now and polled until it reaches the target or stops."""

    def __init__(self, name: str, recipe: dict, args: argparse.Namespace, work: Path) -> None:
        config = copy.deepcopy(recipe)
        # Same schedule for both, validated after every epoch (the resolution of the measurement).
        config["train"].update(epochs=args.epochs, save_every=0, val_every=1)
        path = work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        self.name, self.args, self.out = name, args, work / name
        cmd = [sys.executable, "-m", "ccrk.cli", "pretrain", "--config", str(path), "--manifest",
               str(args.synth / "pretrain.jsonl"), "--val-manifest", str(args.synth / "val.jsonl"), "--tokenizer",
               str(args.tokenizer), "--objective", "one_to_k", "--seed", "0", "--out", str(self.out), "--no-progress"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
               "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.start = time.time()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.rows: list[dict] = []
        self.reached: float | None = None
        self.stopped: float | None = None

    def poll(self) -> bool:
        """Read the validation log; stop the process once it hit the target or ran out of budget. True when over."""
        if self.stopped is not None:
            return True
        done = self.proc.poll() is not None
        log = self.out / "val.jsonl"
        if log.is_file():
            self.rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        hit = [r for r in self.rows if r["r1"] >= self.args.target]
        if hit:
            first = hit[0]
            spent_validating = sum(r["val_s"] for r in self.rows if r["step"] < first["step"])
            self.reached = first["time"] - self.start - spent_validating
        if not (done or hit or time.time() - self.start > self.args.budget_s):
            return False
        self.stopped = time.time() - self.start
        if self.proc.poll() is None:
            self.proc.kill()
        stderr = self.proc.communicate()[1]
        if self.proc.returncode not in (0, -9) and not hit:
            raise RuntimeError(f"{self.name}: ccrk pretrain failed ({self.proc.returncode}):\n{stderr[-2000:]}")
        return True

    def result(self) -> dict:
        best = max(self.rows, key=lambda r: r["r1"]) if self.rows else None
        return {
            "recipe": self.name,
            "seconds_to_target": self.reached,
            "stopped_after_s": self.stopped,
            "epochs_validated": len(self.rows) - 1 if self.rows else 0,
            "best_r1": None if best is None else best["r1"],
            "best_at_step": None if best is None else best["step"],
            "curve": [{"step": r["step"], "r1": r["r1"], "mrv": r.get("mrv"), "itm_auc": r.get("itm_auc")}
                      for r in self.rows],
        }


def side_by_side(recipes: dict[str, dict], args: argparse.Namespace, work: Path) -> list[dict]:
    """Run every recipe at once, one thread each, so both see the same machine and load."""
    runs = [Run(name, recipe, args, work) for name, recipe in recipes.items()]
    try:
        while not all([run.poll() for run in runs]):
            time.sleep(1.0)
    finally:
        for run in runs:
            if run.proc.poll() is None:
                run.proc.kill()
    return [run.result() for run in runs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=30.0, help="validation R@1 to reach (percent)")
    parser.add_argument("--epochs", type=int, default=current_default()["train"]["epochs"],
                        help="schedule length of both recipes (epochs; default: the current recipe's)")
    parser.add_argument("--budget-s", type=float, default=900.0, help="give up on a recipe after this many seconds")
    parser.add_argument("--synth", type=Path, default=ROOT / "resources" / "synth")
    parser.add_argument("--tokenizer", type=Path, default=ROOT / "resources" / "tokenizer")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    for need in (args.synth / "pretrain.jsonl", args.synth / "val.jsonl", args.tokenizer / "tokenizer.json"):
        if not need.is_file():
            print(f"{need} is missing: run `make reproduce` (or snakemake resources/tokenizer/tokenizer.json) first",
                  file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory() as tmp:
        results = side_by_side({"current": current_default(), "previous": PREVIOUS_DEFAULT}, args, Path(tmp))
    print(f"1-to-K pre-training, side by side on one CPU thread each, {args.epochs}-epoch schedule: wall seconds to validation "
          f"R@1 >= {args.target:g}% (budget {args.budget_s:g} s)")
    for r in results:
        when = f"{r['seconds_to_target']:.0f} s" if r["seconds_to_target"] is not None else (
            f"not reached in {r['stopped_after_s']:.0f} s")
        print(f"  {r['recipe']:<9} {when:<24} best R@1 {r['best_r1']:.1f} (step {r['best_at_step']}), "
              f"{r['epochs_validated']} epochs validated")
    cur, prev = results
    if cur["seconds_to_target"] is not None:
        if prev["seconds_to_target"] is not None:
            print(f"  speed-up: {prev['seconds_to_target'] / cur['seconds_to_target']:.1f}x")
        else:
            print(f"  speed-up: > {prev['stopped_after_s'] / cur['seconds_to_target']:.1f}x (previous never reached it)")
    if args.json:
        args.json.write_text(json.dumps({"target": args.target, "epochs": args.epochs, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
