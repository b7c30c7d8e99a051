"""``ccrk pretrain`` and ``ccrk finetune``.

Both build a :class:`~ccrk.train.trainer.Trainer` from their arguments and hand
it to a launcher (``--launcher local`` runs it here; ``slurm`` submits it with
submitit, which requeues it through ``Trainer.checkpoint`` on pre-emption).
Under ``torchrun --nproc_per_node N -m ccrk.cli pretrain ...`` every process
runs the same command and they train as one data-parallel group.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ccrk.layout import OBJECTIVES, REGIMES


def _common(p: argparse.ArgumentParser) -> None:
    from ccrk.cli import add_config_args
    from ccrk.launch import add_launcher_args

    add_config_args(p)
    p.add_argument("--tokenizer", type=Path, required=True, help="tokenizer directory or hub name")
    p.add_argument("--image-root", type=Path, default=None,
                   help="directory the manifests' image paths are relative to (default: the manifest's directory)")
    p.add_argument("--seed", type=int, default=None, help="overrides train.seed")
    p.add_argument("--out", type=Path, required=True, help="run directory: checkpoints/, model/, metrics.jsonl, tb/")
    p.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint in --out")
    p.add_argument("--restart-on-change", action="store_true",
                   help="with --resume: when the newest checkpoint was made with other settings, delete the run's "
                        "checkpoints and start over instead of refusing (a workflow rerunning a changed job)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--skip-image-check", dest="check_images", action="store_false",
                   help="do not open every image at start-up (a previous step validated them)")
    add_launcher_args(p)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from ccrk.config import load_config
    from ccrk.launch import launch_from_args
    from ccrk.train.trainer import Pretrainer, PretrainSpec

    config = load_config(args.config, args.overrides)
    spec = PretrainSpec(
        config=config, manifest=str(args.manifest), tokenizer=str(args.tokenizer), out=str(args.out),
        image_root=None if args.image_root is None else str(args.image_root), objective=args.objective,
        seed=args.seed, progress=args.progress, check_images=args.check_images,
        captions=None if args.captions is None else str(args.captions),
        val_manifest=None if args.val_manifest is None else str(args.val_manifest),
    )
    trainer = Pretrainer(spec, resume=args.resume, restart_on_change=args.restart_on_change)
    launch_from_args(trainer, args, config, f"pretrain-{args.objective or 'default'}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from ccrk.config import load_config
    from ccrk.launch import launch_from_args
    from ccrk.train.finetune import Finetuner, FinetuneSpec

    config = load_config(args.config, args.overrides)
    spec = FinetuneSpec(
        config=config, pretrained=str(args.pretrained), regime=args.regime, train_manifest=str(args.train_manifest),
        val_manifest=str(args.val_manifest), tokenizer=str(args.tokenizer), out=str(args.out),
        language=args.language, shots=args.shots,
        image_root=None if args.image_root is None else str(args.image_root), seed=args.seed,
        progress=args.progress, check_images=args.check_images,
    )
    trainer = Finetuner(spec, resume=args.resume, restart_on_change=args.restart_on_change)
    launch_from_args(trainer, args, config, f"finetune-{args.regime}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pre-train a model with one contrastive objective (resumable, DDP)")
    p.add_argument("--manifest", type=Path, required=True,
                   help="pre-training manifest (JSON Lines), or webdataset shards: a .tar or a directory of them")
    p.add_argument("--val-manifest", type=Path, default=None,
                   help="validation manifest scored before training and after every epoch (out/val.jsonl: "
                        "R@1, MRV, ITM AUC; the learning curve)")
    p.add_argument("--captions", type=Path, default=None,
                   help="shards only: directory of <shard>.jsonl caption files (ccrk translate's output)")
    p.add_argument("--objective", choices=OBJECTIVES, default=None,
                   help="contrastive objective (overrides objective.name; default one_to_k)")
    _common(p)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("finetune", help="fine-tune for retrieval under a regime; select on validation")
    p.add_argument("--pretrained", type=Path, required=True,
                   help="a saved model directory (DIR/model) or a training checkpoint (.pt)")
    p.add_argument("--regime", choices=REGIMES, required=True)
    p.add_argument("--language", default=None, help="target language (single_language, few_shot)")
    p.add_argument("--shots", type=int, default=None, help="training records of the target language (few_shot)")
    p.add_argument("--train-manifest", type=Path, required=True)
    p.add_argument("--val-manifest", type=Path, required=True)
    _common(p)
    p.set_defaults(func=cmd_finetune)
