"""Seconds per training step (forward + backward of the whole objective) for each objective.

The embedded default's model (:meth:`ccrk.models.ModelConfig.tiny`: ViT-Tiny at
64 px, 2 text + 2 fusion layers of width 128) with a 2000-id tokenizer trained
on synthetic captions of the ten embedded languages, a batch of B=32 images and
K=10 captions each (B captions for ``cross_modal``), padded to the longest
caption (at most ``model.max_length`` tokens), as the collator does. Each
objective runs with all three terms (1:1:1); ``one_to_k`` is also timed with
the contrastive term alone, to show what matching and MLM add. Variants are
timed round-robin so load drift on a shared machine hits them alike; the
median of ``--repeats`` is reported. The optimiser step is not included.

Run: ``PYTHONPATH=src python benchmarks/objectives.py [--threads 2] [--device cpu] [--json out.json]``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

try:
    import ccrk  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ccrk.data.collate import Batch  # noqa: E402
from ccrk.models import ModelConfig, build_model  # noqa: E402
from ccrk.objectives import Objective, build_objective  # noqa: E402
from ccrk.synth.generate import sample_scene  # noqa: E402
from ccrk.synth.languages import LANGUAGE_CODES, get_language  # noqa: E402
from ccrk.tokenizer import train_tokenizer  # noqa: E402


def captions(n_images: int, languages: tuple[str, ...], seed: int) -> list[list[str]]:
    """One synthetic caption per language for each of ``n_images`` random scenes."""
    rng = np.random.default_rng(seed)
    grammars = [get_language(code) for code in languages]
    rows = []
    for _ in range(n_images):
        desc = sample_scene(rng, (0.2, 0.4, 0.4)).description()
        rows.append([g.describe(desc, int(rng.integers(g.N_TEMPLATES))) for g in grammars])
    return rows


def make_batch(tokenizer, rows: list[list[str]], k: int, image_size: int, max_length: int, seed: int) -> Batch:
    languages = list(LANGUAGE_CODES[: len(rows[0])])
    if k == 1:  # cross-modal: one caption an image in a language drawn per image
        pick = np.random.default_rng(seed).integers(len(languages), size=len(rows))
        texts = [row[j] for row, j in zip(rows, pick)]
        langs = [languages[j] for j in pick]
    else:
        texts = [text for row in rows for text in row[:k]]
        langs = languages[:k] * len(rows)
    enc = tokenizer(texts, padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
    images = torch.randn(len(rows), 3, image_size, image_size, generator=torch.Generator().manual_seed(seed))
    return Batch(images=images, image_ids=[str(i) for i in range(len(rows))], texts=texts, text_langs=langs, k=k,
                 input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])


def step(objective: Objective, batch: Batch, generator: torch.Generator) -> float:
    objective.zero_grad(set_to_none=True)
    out = objective(batch, generator)
    out.loss.backward()
    return float(out.loss.detach())


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--vocab", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 = torch's default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if not 1 <= args.k <= len(LANGUAGE_CODES):
        raise SystemExit(f"--k must be in [1, {len(LANGUAGE_CODES)}]")
    device = torch.device(args.device)
    languages = LANGUAGE_CODES[: args.k]

    with tempfile.TemporaryDirectory() as tmp:
        corpus = [text for row in captions(600, LANGUAGE_CODES, args.seed) for text in row]
        tokenizer = train_tokenizer(corpus, Path(tmp) / "tokenizer", vocab_size=args.vocab)
    torch.manual_seed(args.seed)
    config = ModelConfig.tiny()
    model = build_model(config, tokenizer=tokenizer).to(device).train()
    rows = captions(args.batch, languages, args.seed + 1)
    batches = {k: make_batch(tokenizer, rows, k, config.image_size, config.max_length, args.seed).to(device)
               for k in {1, args.k}}
    variants = {
        "one_to_k": ({"name": "one_to_k"}, args.k),
        "cross_lingual": ({"name": "cross_lingual"}, args.k),
        "cross_modal": ({"name": "cross_modal"}, 1),
        "one_to_k_itc_only": ({"name": "one_to_k", "weights": {"itm": 0, "mlm": 0}}, args.k),
    }
    objectives = {name: build_objective(cfg, model, tokenizer) for name, (cfg, _) in variants.items()}
    generator = torch.Generator(device=device).manual_seed(args.seed)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        for name, (_, k) in variants.items():
            step(objectives[name], batches[k], generator)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, (_, k) in variants.items():
            sync()
            start = time.perf_counter()
            step(objectives[name], batches[k], generator)
            sync()
            times[name].append(time.perf_counter() - start)
    res = {name: statistics.median(t) for name, t in times.items()}

    lengths = {k: tuple(b.input_ids.shape) for k, b in batches.items()}
    print(f"tiny model, B={args.batch} K={args.k} vocab={len(tokenizer)} text rows x length {lengths}, "
          f"{device}, torch {torch.__version__}, threads={torch.get_num_threads()}, "
          f"median of {args.repeats} interleaved repeats (warm-up {args.warmup}); forward+backward, no optimiser step")
    for name in variants:
        print(f"{name:<20} {res[name]:8.3f} s/step   (min {min(times[name]):.3f}, max {max(times[name]):.3f})")
    if args.json:
        args.json.write_text(json.dumps({"batch": args.batch, "k": args.k, "device": str(device),
                                         "threads": torch.get_num_threads(), "torch": torch.__version__,
                                         "median_s": res, "all_s": times}, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
