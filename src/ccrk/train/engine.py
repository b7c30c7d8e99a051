"""The training loop shared by pre-training and fine-tuning, resumable mid-epoch bit for bit.

Position in training is ``(epoch, epoch_step)``: optimiser steps done in the
current epoch. Sample ``i`` of epoch ``e`` is a pure function of
(seed, e, i) (``CaptionDataset``), the epoch's order of (seed, e)
(``EpochSampler``), and every random draw of micro-step ``m`` of optimiser
step ``s`` of (seed, s, m, rank) (``ccrk.train.seeding``). A run resumed
from the checkpoint of step ``s`` therefore restarts the sampler at
``epoch_step * batch * grad_accum`` and replays exactly the computation an
uninterrupted run would have done. The global batch is what an optimiser
step sees, so a checkpoint also resumes at another world size.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ccrk import provenance
from ccrk.data.dataset import EpochSampler
from ccrk.layout import TRAIN_LOG
from ccrk.train import checkpoint as ckpt
from ccrk.train.builders import check_resume_config, config_differences
from ccrk.train.config import TrainConfig
from ccrk.train.distributed import DistContext, all_reduce_mean, barrier, broadcast_object
from ccrk.train.monitor import JsonLines, Progress, TensorBoard
from ccrk.train.optim import StepPlan, build_optimizer, build_scheduler, plan_steps
from ccrk.train.precision import resolve_precision
from ccrk.train.seeding import capture_rng_state, restore_rng_state, seed_global_rng, step_generator

log = logging.getLogger(__name__)

#: Called with the engine after every optimiser step, once its log line and checkpoint (if one is due) are
#: written. Empty in production; the tests install fault injections here (``tests/faults``: kill -9 or wait
#: to be pre-empted at a known step).
STEP_END_HOOKS: list[Callable[[Engine], None]] = []


@dataclass
class TrainState:
    """Where training is; ``extra`` holds what callers keep across resumption (e.g. the best val score)."""

    step: int = 0
    epoch: int = 0
    epoch_step: int = 0
    epochs_closed: int = 0  # epochs whose end-of-epoch work (validation, ...) has run
    extra: dict[str, Any] = field(default_factory=dict)


EpochHook = Callable[["Engine", int], None]


def _process_age() -> float | None:
    """Seconds since this process started (what a user waits for a resumed job), if the OS says."""
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:  # noqa: BLE001 - optional diagnostics only
        return None


def _module_name_of(root: nn.Module, target: nn.Module) -> str:
    for name, module in root.named_modules():
        if module is target:
            return name
    raise ValueError("the objective does not contain the model it trains (objective.model)")


class NonFiniteLossError(ValueError):
    """A step's loss is NaN or infinite: training stops before the update, the last checkpoint stays good."""


class Engine:
    """Owns optimiser, schedule, data order and checkpoints of one run; :meth:`run` trains to the end.

    ``objective(batch, generator)`` must return an object with ``loss``
    (scalar tensor), ``terms`` (dict of detached scalars) and ``n_images``;
    ``objective.model`` is the model whose weights are checkpointed.
    """

    def __init__(
        self,
        *,
        objective: nn.Module,
        dataset: Any,
        collator: Callable[[list[Any]], Any],
        cfg: TrainConfig,
        ctx: DistContext,
        out_dir: str | os.PathLike[str],
        resolved_config: dict[str, Any],
        progress: bool = True,
        desc: str = "train",
        on_epoch_end: EpochHook | None = None,
        checkpoint_each_epoch: bool = False,
        git_revision: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.resolved_config = resolved_config
        self.desc = desc
        self.on_epoch_end = on_epoch_end
        self.checkpoint_each_epoch = checkpoint_each_epoch
        self.show_progress = progress
        self.git_revision = git_revision if git_revision is not None else str(provenance.git_revision())
        self.dataset = dataset
        self.collator = collator
        self.device = ctx.device

        self.objective = objective.to(self.device)
        self.model = objective.model
        prefix = _module_name_of(objective, self.model)
        full = (lambda n: f"{prefix}.{n}") if prefix else (lambda n: n)
        new_names = {full(n) for n in self.model.new_parameter_names()}
        # Parameters the objective adds beyond the model are new by definition.
        new_names |= {n for n, _ in objective.named_parameters() if prefix and not n.startswith(prefix + ".")}
        self.sampler = EpochSampler(len(dataset), seed=cfg.seed, rank=ctx.rank, world_size=ctx.world_size)
        self.plan: StepPlan = plan_steps(self.sampler, cfg)
        self.optimizer = build_optimizer(objective, cfg, new_names)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.plan.total_steps)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.scaler = self.precision.grad_scaler()
        self.params = [p for group in self.optimizer.param_groups for p in group["params"]]
        if ctx.distributed:
            # A term with weight 0 is not computed, leaving its parameters without gradient; finding
            # them costs a graph traversal a step, so it is only done then.
            weights = getattr(getattr(objective, "config", None), "weights", None)
            unused = weights is None or any(w == 0 for w in weights.values())
            self.ddp: nn.Module = DistributedDataParallel(
                objective,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=unused,
            )
        else:
            self.ddp = objective
        self.state = TrainState()
        self._saved: tuple[int, int] | None = None
        # The logging window in progress (loss sums and step count): checkpointed, so a run resumed inside a
        # window logs the same means as one that never stopped.
        self._window_totals: dict[str, torch.Tensor] = {}
        self._window_steps = 0
        self._resumed_from: int | None = None
        self.metrics = JsonLines(self.out_dir / TRAIN_LOG, enabled=ctx.is_main)
        self.tb: TensorBoard | None = None
        self.last_lr = float("nan")

    # -- checkpoints ---------------------------------------------------------------------------

    def _objective_extra_state(self) -> dict[str, torch.Tensor]:
        prefix = _module_name_of(self.objective, self.model)
        return {k: v for k, v in self.objective.state_dict().items() if prefix and not k.startswith(prefix + ".")}

    def payload(self) -> dict[str, Any]:
        st = self.state
        return {
            "format": ckpt.FORMAT,
            "model": self.model.state_dict(),
            "objective": self._objective_extra_state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "state": asdict(st),
            "position": {
                "epoch": st.epoch,
                "epoch_step": st.epoch_step,
                "sampler_start": self.plan.sampler_start(st.epoch_step),  # per rank, this world size
                "samples_in_epoch": self.plan.sampler_start(st.epoch_step) * self.ctx.world_size,
                "world_size": self.ctx.world_size,
            },
            "plan": asdict(self.plan),
            "rng": capture_rng_state(),
            # Per-sample and per-step generators are re-derived from these, not stored.
            "generators": {"seed": self.cfg.seed, "data": "(seed, epoch, index)",
                           "objective": "(seed, 1, step, micro, rank)", "global": "(seed, 2, step, micro, rank)"},
            "window": {"totals": {k: v.detach().cpu() for k, v in self._window_totals.items()},
                       "steps": self._window_steps},
            "config": self.resolved_config,
            "git_revision": self.git_revision,
            "model_config": self.model.resolved_config().to_dict(),
        }

    def save(self) -> Path | None:
        """Checkpoint now (main rank only) and prune to ``keep_last``."""
        key = (self.state.step, self.state.epochs_closed)
        self._saved = key
        if not self.ctx.is_main:
            return None
        path = ckpt.save_checkpoint(self.ckpt_dir, self.state.step, self.payload())
        ckpt.prune_checkpoints(self.ckpt_dir, self.cfg.keep_last)
        return path

    def _plan_difference(self, payload: dict[str, Any]) -> str | None:
        """Why a checkpoint's step plan cannot continue in this run (None when it can)."""
        saved_plan = payload.get("plan", {})
        if saved_plan and (saved_plan.get("steps_per_epoch"), saved_plan.get("epochs")) != (
            self.plan.steps_per_epoch, self.plan.epochs
        ):
            return (f"the checkpoint was made for {saved_plan.get('epochs')} epochs of "
                    f"{saved_plan.get('steps_per_epoch')} steps, this run plans {self.plan.epochs} x "
                    f"{self.plan.steps_per_epoch}")
        return None

    def restore(self, payload: dict[str, Any]) -> None:
        """Load a checkpoint's training state into this engine (every rank loads the same file)."""
        why = self._plan_difference(payload)
        if why is not None:
            raise ValueError(f"{why}: the data or the batch settings changed, so it cannot resume exactly")
        self.model.load_state_dict(payload["model"])
        extra = payload.get("objective") or {}
        if extra:
            self.objective.load_state_dict({**self.objective.state_dict(), **extra})
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.scaler.load_state_dict(payload["scaler"])
        self.state = TrainState(**payload["state"])
        window = payload.get("window") or {}
        self._window_totals = {k: v.to(self.device) for k, v in (window.get("totals") or {}).items()}
        self._window_steps = int(window.get("steps", 0))
        restore_rng_state(payload["rng"])
        self._saved = (self.state.step, self.state.epochs_closed)
        self._resumed_from = self.state.step

    def resume_latest(self, restart_on_change: bool = False) -> bool:
        """Load the newest complete checkpoint under ``out/checkpoints``; False when there is none.

        The main rank picks (and verifies) the file, every rank loads that same one. A checkpoint
        made with another config or step plan is refused (a ConfigError or ValueError naming the
        differences), or, with ``restart_on_change``, deleted with the rest of the run's checkpoints
        so that the run starts over: what a workflow wants when it reruns a job because its settings
        changed, while a job merely interrupted still continues exactly.
        """
        chosen: str | None = None
        payload: dict[str, Any] | None = None
        if self.ctx.is_main:
            removed = ckpt.remove_temp_files(self.ckpt_dir)
            if removed:
                log.info("removed %d incomplete checkpoint file(s) left by a killed save", len(removed))
            found = ckpt.load_latest(self.ckpt_dir)
            if found is not None:
                chosen, payload = str(found[0]), found[1]
            if found is not None and restart_on_change:
                changes = config_differences(found[1]["config"], self.resolved_config)
                plan = self._plan_difference(found[1])
                if changes or plan:
                    stale = ckpt.list_checkpoints(self.ckpt_dir)
                    for _, path in stale:
                        path.unlink()
                    # its TensorBoard events would show beside the new run's (metrics.jsonl is truncated at start)
                    shutil.rmtree(self.out_dir / "tb", ignore_errors=True)
                    why = "; ".join([*changes, *([plan] if plan else [])])
                    log.warning(f"{chosen} was made with other settings ({why}): deleted the run's {len(stale)} "
                                f"checkpoint(s), starting over (--restart-on-change)")
                    chosen, payload = None, None
        chosen = broadcast_object(chosen, self.ctx)
        if chosen is None:
            return False
        if payload is None:
            payload = ckpt.load_checkpoint(chosen, map_location="cpu")
        check_resume_config(payload["config"], self.resolved_config, chosen)
        self.restore(payload)
        barrier(self.ctx)  # nobody prunes a file another rank is still reading
        log.info(f"resumed from {chosen} (step {self.state.step}, epoch {self.state.epoch}, "
            f"{self.state.epoch_step}/{self.plan.steps_per_epoch} steps into it)")
        return True

    # -- the loop --------------------------------------------------------------------------------

    def _loader(self, epoch: int) -> DataLoader:
        self.dataset.set_epoch(epoch)
        self.sampler.set_epoch(epoch, start=self.plan.sampler_start(self.state.epoch_step))
        workers = self.cfg.num_workers
        return DataLoader(
            self.dataset,
            batch_size=self.plan.micro_batch,
            sampler=self.sampler,
            collate_fn=self.collator,
            num_workers=workers,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            # An explicit generator keeps the loader from drawing its base seed from the global RNG.
            generator=torch.Generator().manual_seed(self.cfg.seed),
            prefetch_factor=4 if workers else None,
        )

    def _lr(self) -> float:
        """The base learning rate now (groups with lr_mult 1)."""
        return float(self.scheduler.get_last_lr()[0] / self.optimizer.param_groups[0]["lr_mult"])

    def _optimizer_step(self, batches: list[Any]) -> dict[str, torch.Tensor]:
        """One optimiser step over ``grad_accum`` micro-batches; returns its loss terms (its lr is ``last_lr``)."""
        st, accum = self.state, self.plan.grad_accum
        sums: dict[str, torch.Tensor] = {}
        for micro, batch in enumerate(batches):
            seed_global_rng(self.cfg.seed, st.step, micro, self.ctx.rank)
            generator = step_generator(self.device, self.cfg.seed, st.step, micro, self.ctx.rank)
            batch = batch.to(self.device, non_blocking=True)
            last = micro == accum - 1
            sync = contextlib.nullcontext() if last or not self.ctx.distributed else self.ddp.no_sync()
            with sync:
                with self.precision.autocast():
                    out = self.ddp(batch, generator)
                self.scaler.scale(out.loss / accum).backward()
            for name, value in {"loss": out.loss.detach(), **out.terms}.items():
                value = value.detach().float() / accum
                sums[name] = sums[name] + value if name in sums else value
        if not bool(torch.isfinite(sums["loss"])):  # one host sync a step, as MAE's math.isfinite(loss) check
            self._refuse_non_finite(sums, "the loss is")
        self.scaler.unscale_(self.optimizer)
        if self.cfg.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
            # Gradients are all-reduced, so every rank sees another rank's non-finite loss here. (fp16's scaler
            # skips steps with overflowing gradients by design.)
            if not self.scaler.is_enabled() and not bool(torch.isfinite(norm)):
                self._refuse_non_finite(sums, f"the gradient norm is {float(norm)}, the loss")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.last_lr = self._lr()
        self.scheduler.step()
        self.model.clamp_temperature_()
        return sums

    def _refuse_non_finite(self, sums: dict[str, torch.Tensor], what: str) -> None:
        """Stop before the update of a non-finite step, naming it; checkpoints on disk predate it."""
        terms = ", ".join(f"{name} {float(value):.4g}" for name, value in sorted(sums.items()) if name != "loss")
        saved = ckpt.list_checkpoints(self.ckpt_dir)
        kept = f"the last checkpoint, {saved[-1][1]}, is kept" if saved else "no checkpoint was saved yet"
        raise NonFiniteLossError(
            f"step {self.state.step + 1}: {what} {float(sums['loss'])} ({terms}); stopped before updating the "
            f"weights (lower {self.cfg.where}.lr or check the data); {kept}")

    def _log(self, totals: dict[str, torch.Tensor], steps: int, elapsed: float) -> dict[str, float]:
        names = sorted(totals)
        values = all_reduce_mean(torch.stack([totals[n] for n in names]) / steps, self.ctx).tolist()
        samples = steps * self.cfg.batch_size * self.cfg.grad_accum
        record: dict[str, Any] = {
            "step": self.state.step,
            "epoch": self.state.epoch,
            "lr": self.last_lr,  # the lr the last step of the window trained with
            "temp": float(self.model.temperature.detach()),
            "samples_per_s": samples / elapsed if elapsed > 0 else float("nan"),
            "time": time.time(),
        }
        record.update({("loss" if n == "loss" else f"loss_{n}"): v for n, v in zip(names, values)})
        self.metrics.write(record)
        if self.tb is not None:
            self.tb.scalars({k: v for k, v in record.items() if k not in ("step", "time")}, self.state.step,
                            prefix="train/")
        return {("loss" if n == "loss" else n): v for n, v in zip(names, values)} | {
            "lr": record["lr"], "samples/s": record["samples_per_s"]}

    def _train_epoch(self, epoch: int, bar: Progress) -> None:
        st, plan, cfg = self.state, self.plan, self.cfg
        self.objective.train()
        iterator = iter(self._loader(epoch))
        totals = self._window_totals
        window_start = time.perf_counter()
        try:
            while st.epoch_step < plan.steps_per_epoch:
                batches = [next(iterator) for _ in range(plan.grad_accum)]
                sums = self._optimizer_step(batches)
                st.step += 1
                st.epoch_step += 1
                for name, value in sums.items():
                    totals[name] = totals[name] + value if name in totals else value
                self._window_steps += 1
                if self._resumed_from is not None and st.step == self._resumed_from + 1:
                    age = _process_age()
                    log.info("first step after resuming done" + (f", {age:.1f} s after process start" if age else ""))
                done = st.step == plan.total_steps
                if st.step % cfg.log_every == 0 or done or st.epoch_step == plan.steps_per_epoch:
                    postfix = self._log(totals, self._window_steps, time.perf_counter() - window_start)
                    bar.update(self._window_steps, postfix)
                    totals.clear()
                    self._window_steps, window_start = 0, time.perf_counter()
                if cfg.save_every and st.step % cfg.save_every == 0:
                    self.save()
                for hook in STEP_END_HOOKS:
                    hook(self)
        finally:
            del iterator  # shuts down loader workers promptly

    def run(self) -> TrainState:
        """Train from ``self.state`` to the end; checkpoint on schedule and at the end."""
        st, plan, cfg = self.state, self.plan, self.cfg
        if self.ctx.is_main:
            # Records after the resumed step describe work that is being redone.
            self.metrics.truncate_after(st.step)
            self.tb = TensorBoard(self.out_dir / "tb", purge_step=st.step + 1 if st.step else None)
        bar = Progress(plan.total_steps, st.step, self.show_progress and self.ctx.is_main, self.desc)
        try:
            for epoch in range(st.epoch, cfg.epochs):
                if epoch != st.epoch:
                    st.epoch, st.epoch_step = epoch, 0
                if st.epoch_step < plan.steps_per_epoch:
                    self._train_epoch(epoch, bar)
                if st.epochs_closed <= epoch:
                    if self.on_epoch_end is not None:
                        self.on_epoch_end(self, epoch)
                    st.epochs_closed = epoch + 1
                    if self.checkpoint_each_epoch:
                        self.save()
            if self._saved != (st.step, st.epochs_closed):
                self.save()
        finally:
            bar.close()
            if self.tb is not None:
                self.tb.close()
        return st
