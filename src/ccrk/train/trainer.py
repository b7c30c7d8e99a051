"""Submittable trainers: callable objects that run to completion and requeue themselves.

A :class:`Trainer` holds only its arguments (a picklable spec), never built
state, so submitit can pickle it for a Slurm job and, on pre-emption or
time-out, pickle ``checkpoint()``'s resubmission of the same arguments with
``resume=True`` (the pattern of the MAE and DINOv2 launchers). Every task of
a multi-GPU job runs ``__call__``; :func:`ccrk.train.distributed.setup_distributed`
makes them one data-parallel group.
"""
from __future__ import annotations

import copy
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccrk.config import section
from ccrk.data.manifest import read_manifest
from ccrk.data.shards import is_shard_source, read_shard_corpus
from ccrk.data.tokens import TokenCache
from ccrk.layout import MODEL_DIR, VAL_LOG
from ccrk.models import CCRModel, save_model
from ccrk.provenance import git_revision
from ccrk.tokenizer import load_tokenizer, tokenizer_fingerprint
from ccrk.train.builders import (
    build_seeded_model,
    model_config,
    refuse_stale_output,
    shared_languages,
    train_data,
    write_resolved_config,
)
from ccrk.train.config import TrainConfig
from ccrk.train.distributed import DistContext, barrier, setup_distributed, teardown_distributed
from ccrk.train.engine import Engine
from ccrk.train.monitor import JsonLines
from ccrk.train.validate import pretraining_validation

log = logging.getLogger(__name__)


class Trainer:
    """Base: ``Trainer(spec, resume=False)()`` trains; ``checkpoint()`` is submitit's requeue hook."""

    command = "train"

    def __init__(self, spec: Any, resume: bool = False, restart_on_change: bool = False) -> None:
        self.spec = spec
        self.resume = resume
        #: With ``resume``: a checkpoint made with other settings is deleted and the run starts over
        #: (the DAG reruns a job because its config changed) instead of being refused.
        self.restart_on_change = restart_on_change

    def __call__(self) -> Path:
        # A Slurm job requeued from outside (scontrol requeue, a node failure) reruns the submitted
        # trainer as it was pickled, not its checkpoint() resubmission: resume in that case too.
        if int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0 and not self.resume:
            print(f"Slurm restart {os.environ['SLURM_RESTART_COUNT']}: resuming from the newest checkpoint",
                  file=sys.stderr, flush=True)
            self.resume = True
        from ccrk.cli import configure_logging

        configure_logging(self.command)  # again: under Slurm this runs in the job's own process
        device = self.device_setting()
        ctx = setup_distributed(device)
        if not ctx.is_main:  # one rank reports progress
            logging.getLogger("ccrk").setLevel(logging.WARNING)
        try:
            return self.run(ctx)
        finally:
            teardown_distributed(ctx)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Resubmit the same run with ``resume=True`` (it continues from the newest checkpoint)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self.__class__(self.spec, resume=True, restart_on_change=self.restart_on_change))

    def device_setting(self) -> str:
        return "auto"

    def prepare(self, ctx: DistContext) -> RunSetup:  # pragma: no cover - abstract
        """Read the inputs and build what this command trains."""
        raise NotImplementedError

    def run(self, ctx: DistContext) -> Path:
        """The one training skeleton: prepare, resume or start, validate, train, finish; returns the model directory."""
        setup = self.prepare(ctx)
        revision = str(git_revision())
        engine = Engine(objective=setup.objective, dataset=setup.dataset, collator=setup.collator, cfg=setup.cfg,
                        ctx=ctx, out_dir=setup.out, resolved_config=setup.resolved, progress=self.spec.progress,
                        desc=setup.desc, checkpoint_each_epoch=setup.checkpoint_each_epoch, git_revision=revision)
        if setup.validate is not None:
            engine.on_epoch_end = setup.after_epoch
        resumed = self.resume and engine.resume_latest(restart_on_change=self.restart_on_change)
        if self.resume and not resumed:
            log.info(f"--resume: no checkpoint yet, starting from {setup.start}")
        if not resumed and setup.load_start is not None:
            setup.load_start()
        if ctx.is_main:
            write_resolved_config(setup.out, {**setup.resolved, "git_revision": revision})
        log.info(setup.summary(engine))
        if setup.validate is not None and setup.val_log is not None:
            st = engine.state
            if st.step == 0 and "initial" not in st.extra:
                setup.val_log.reset()
                setup.validate(engine, 0)
            else:  # scores of epochs the checkpoint had not closed are recomputed: drop their stale lines
                setup.val_log.retain(lambda r: int(r["epoch"]) <= st.epochs_closed and int(r["step"]) <= st.step)
        engine.run()
        barrier(ctx)
        if ctx.is_main:
            setup.finish()
        barrier(ctx)
        return setup.out / MODEL_DIR


@dataclass
class RunSetup:
    """What a command prepared for :meth:`Trainer.run`: the model and data, and its few command-specific hooks.

    ``validate(engine, epoch)`` scores validation after ``epoch`` epochs (0:
    before training) into ``val_log``, after every ``val_every`` epochs and the
    last; ``load_start`` puts the starting weights in place when no checkpoint
    is resumed (``start`` says what they are); ``finish`` runs on the main rank
    once training is over.
    """

    out: Path
    model: CCRModel
    objective: Any
    dataset: Any
    collator: Any
    cfg: TrainConfig
    resolved: dict[str, Any]
    fingerprint: str
    desc: str
    start: str
    summary: Callable[[Engine], str]
    finish: Callable[[], None]
    load_start: Callable[[], None] | None = None
    validate: Callable[[Engine, int], None] | None = None
    val_log: JsonLines | None = None
    val_every: int = 1
    checkpoint_each_epoch: bool = False

    def after_epoch(self, engine: Engine, epoch: int) -> None:
        done = epoch + 1
        if self.validate is not None and (done % self.val_every == 0 or done == self.cfg.epochs):
            self.validate(engine, done)



@dataclass
class PretrainSpec:
    """Everything ``ccrk pretrain`` was asked to do; ``config`` is the loaded file with ``--set`` applied.

    ``val_manifest`` (optional; image paths relative to its directory) is
    scored before training and after every epoch into ``out/val.jsonl``: the
    learning curve of the run (:func:`ccrk.train.validate.pretraining_validation`).
    """

    config: dict[str, Any]
    manifest: str
    tokenizer: str
    out: str
    image_root: str | None = None
    objective: str | None = None
    seed: int | None = None
    progress: bool = True
    check_images: bool = True
    captions: str | None = None
    val_manifest: str | None = None

    def sections(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``objective`` and ``train`` sections with the command-line choices applied."""
        objective = copy.deepcopy(section(self.config, "objective"))
        if self.objective is not None:
            objective["name"] = self.objective
        train = copy.deepcopy(section(self.config, "train"))
        if self.seed is not None:
            train["seed"] = self.seed
        return objective, train


class Pretrainer(Trainer):
    """``ccrk pretrain``: one objective, one seed, from scratch (or resumed) to ``out/model``."""

    command = "pretrain"

    def device_setting(self) -> str:
        return TrainConfig.from_dict(self.spec.sections()[1]).device

    def prepare(self, ctx: DistContext) -> RunSetup:
        from ccrk.objectives import ObjectiveConfig, build_objective

        spec: PretrainSpec = self.spec
        out = Path(spec.out)
        objective_section, train_section = spec.sections()
        ocfg = ObjectiveConfig.from_dict(objective_section)
        tcfg = TrainConfig.from_dict(train_section)
        mcfg = model_config(spec.config)
        refuse_stale_output(out, self.resume)

        tokenizer = load_tokenizer(spec.tokenizer)
        fingerprint = tokenizer_fingerprint(tokenizer)
        image_root = Path(spec.image_root) if spec.image_root else Path(spec.manifest).parent
        reader = None
        if is_shard_source(spec.manifest):  # webdataset shards (the translated pre-training corpus)
            corpus = read_shard_corpus(spec.manifest, languages=tcfg.languages, require_languages=tcfg.languages,
                                       captions_dir=spec.captions)
            records, reader = corpus.records, corpus.images
        else:
            if spec.captions:
                raise ValueError(f"--captions applies to webdataset shards; {spec.manifest} is a manifest")
            records = read_manifest(spec.manifest, image_root=image_root, languages=tcfg.languages,
                                    require_languages=tcfg.languages, check_images=spec.check_images and ctx.is_main)
        tcfg.languages = tcfg.languages or shared_languages(records)
        model = build_seeded_model(mcfg, tokenizer, tcfg.model_seed)
        objective = build_objective(ocfg, model, tokenizer)
        dataset, collator = train_data(records, image_root, tcfg.languages, ocfg.name, mcfg, tokenizer, tcfg.seed,
                                       image_reader=reader, crop_scale=tuple(tcfg.crop_scale),
                                       image_cache=tcfg.image_cache)

        resolved = {
            "model": mcfg.to_dict(),
            "objective": ocfg.to_dict(),
            "train": tcfg.to_dict(),
            "run": {
                "command": "pretrain", "manifest": str(spec.manifest), "captions": spec.captions, "image_root": str(image_root),
                "tokenizer": str(spec.tokenizer), "tokenizer_fingerprint": fingerprint, "out": str(out),
                "n_samples": len(dataset),
                "world_size": ctx.world_size,
            },
        }
        validate: Callable[[Engine, int], None] | None = None
        val_log: JsonLines | None = None
        if spec.val_manifest:
            val_log = JsonLines(out / VAL_LOG, enabled=ctx.is_main)
            val_records = read_manifest(spec.val_manifest, languages=tcfg.languages,
                                        require_languages=tcfg.languages, check_images=spec.check_images and ctx.is_main)
            val_root = Path(spec.val_manifest).parent
            val_tokens = TokenCache(tokenizer, mcfg.max_length)  # validation captions tokenized once per run

            def score(engine: Engine, epoch: int) -> None:
                if not ctx.is_main:
                    return
                started = time.time()
                result = pretraining_validation(model, val_records, val_root, tcfg.languages, tokenizer,
                                                batch_size=100, device=ctx.device, precision=engine.precision,
                                                seed=tcfg.seed, tokens=val_tokens)
                # Wall-clock fields (when, how long) let benchmarks/time_to_accuracy.py subtract validation.
                val_log.write({"step": engine.state.step, "epoch": epoch, **result, "time": started,
                               "val_s": time.time() - started})
                if engine.tb is not None:
                    engine.tb.scalars({k: result[k] for k in ("r1", "mrv", "itm_auc") if result[k] is not None},
                                      engine.state.step, prefix="val/")
                log.info(f"validation after epoch {epoch}: R@1 {result['r1']:.2f}"
                         + (f", MRV {result['mrv']:.2f}" if result["mrv"] is not None else "")
                         + (f", ITM AUC {result['itm_auc']:.3f}" if result["itm_auc"] is not None else ""))

            validate = score

        def summary(engine: Engine) -> str:
            return (f"{len(dataset)} samples, K={len(tcfg.languages)} ({', '.join(tcfg.languages)}), "
                    f"{engine.plan.steps_per_epoch} steps/epoch x {tcfg.epochs} epochs = {engine.plan.total_steps} "
                    f"steps, global batch {tcfg.batch_size} x {tcfg.grad_accum}, world {ctx.world_size}, "
                    f"{ctx.device}, {engine.precision.name}")

        def finish() -> None:
            save_model(model, out / MODEL_DIR, tokenizer_fingerprint=fingerprint)
            log.info(f"wrote {out / MODEL_DIR}")

        return RunSetup(out=out, model=model, objective=objective, dataset=dataset, collator=collator, cfg=tcfg,
                        resolved=resolved, fingerprint=fingerprint, desc=f"pretrain {ocfg.name}",
                        start="the beginning", summary=summary, finish=finish, validate=validate,
                        val_log=val_log, val_every=tcfg.val_every)
