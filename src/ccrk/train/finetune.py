"""``ccrk finetune``: fine-tune a pre-trained model for retrieval under one regime, select on validation.

Regimes (docs/design.md, "Fine-tuning regimes"):

- ``zero_shot``: fine-tune on English only (the model is then tested on
  every language); selected on English validation recall, because choosing
  by target-language validation data would no longer be zero-shot.
- ``single_language``: fine-tune and select on ``--language``.
- ``all_languages``: fine-tune and select on every configured language. Each
  image contributes its K captions as K rows of a ``one_to_k`` batch (the
  objective's default), rather than K separate samples: the training images
  have captions in every language, and one row per language keeps every
  language in every batch, as the multilingual tests do.
- ``few_shot``: start from the English fine-tuned model (``--pretrained``
  is a ``zero_shot`` output) and fine-tune on the first ``--shots`` records
  of the target language's training manifest (the benchmark's few-shot
  files are nested prefixes); the batch shrinks to the shots when smaller.

With one fine-tuning language the ``one_to_k`` loss with K=1 is the usual
symmetric InfoNCE. The objective is ITC + ITM (``finetune.objective``; MLM
weight 0). Before training and after every epoch the validation split -
never the test split - is scored with contrastive-only retrieval; the best
of these models is ``out/model``, every score is a line of ``out/val.jsonl``.
The starting point (epoch 0) is a candidate like every epoch, so a
fine-tuning that only hurts leaves the pre-trained weights; a later epoch
replaces the kept model only when strictly better.

After training the selected model is scored on validation with two-stage
retrieval at each ``finetune.k_test_candidates`` and the best ``k_test`` is
written to ``out/model/retrieval.json`` (``ccrk.evaluation.ktest``), for
``ccrk evaluate --k-test auto``.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ccrk.config import ConfigError, section
from ccrk.data.manifest import Record, read_manifest
from ccrk.layout import MODEL_DIR, REGIMES, VAL_LOG, WEIGHTS_FILE
from ccrk.models import CCRModel, save_model
from ccrk.models.image import resize_image_weights
from ccrk.models.io import read_model_config, read_weights_file, saved_tokenizer
from ccrk.tokenizer import check_model_tokenizer, load_tokenizer, tokenizer_fingerprint
from ccrk.train.builders import (
    build_seeded_model,
    model_config,
    refuse_stale_output,
    shared_languages,
    train_data,
)
from ccrk.train.checkpoint import load_checkpoint
from ccrk.train.config import FinetuneConfig
from ccrk.train.distributed import DistContext, barrier
from ccrk.train.engine import Engine
from ccrk.train.monitor import JsonLines
from ccrk.train.trainer import RunSetup, Trainer
from ccrk.train.validate import validate

log = logging.getLogger(__name__)


def regime_languages(regime: str, language: str | None, configured: list[str], shots: int | None) -> list[str]:
    """The languages a regime fine-tunes and selects on; bad combinations are errors naming the flag."""
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; expected one of {', '.join(REGIMES)}")
    if regime in ("single_language", "few_shot") and not language:
        raise ValueError(f"--regime {regime} needs --language")
    if regime in ("zero_shot", "all_languages") and language:
        raise ValueError(f"--regime {regime} fine-tunes on {'English' if regime == 'zero_shot' else 'all languages'}"
                         f"; --language {language} does not apply")
    if (regime == "few_shot") != (shots is not None):
        raise ValueError("--shots is required with --regime few_shot and only applies to it")
    if shots is not None and shots < 1:
        raise ValueError(f"--shots must be >= 1, got {shots}")
    if regime == "few_shot" and language == "en":
        raise ValueError("--regime few_shot adapts the English model to another language; --language en is not one")
    if regime == "zero_shot":
        return ["en"]
    if regime == "all_languages":
        return list(configured)
    return [str(language)]


def _tied_aliases(state: dict[str, torch.Tensor]) -> dict[str, str]:
    seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
    aliases = {}
    for name, tensor in state.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
    return aliases


def _read_weights(source: Path) -> dict[str, torch.Tensor]:
    if source.is_dir():
        read_model_config(source)  # format check with a clear message
        weights = source / WEIGHTS_FILE
        if not weights.is_file():
            raise FileNotFoundError(f"{weights} does not exist")
        return read_weights_file(weights)
    if source.is_file():
        return load_checkpoint(source)["model"]
    raise FileNotFoundError(f"--pretrained {source} is neither a saved model directory nor a checkpoint file")


def _listing(items: list[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def load_pretrained(model: CCRModel, source: str | os.PathLike[str]) -> None:
    """Load ``source`` (a ``save_model`` directory or a training checkpoint) into ``model``, strictly.

    A file made for another architecture is refused with the missing and
    unexpected keys and the shape mismatches named; tied weights (the MLM
    decoder is the word embedding) may be stored once.
    """
    source = Path(source)
    state = _read_weights(source)
    expected = model.state_dict()
    for note in resize_image_weights(state, expected):  # e.g. 224 px pre-training -> 384 px fine-tuning
        log.info("--pretrained %s: resized %s", source, note)
    aliases = _tied_aliases(expected)
    missing = [k for k in expected if k not in state and not (k in aliases and aliases[k] in state)]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"shape mismatches [{_listing(shapes)}]")
        if missing:
            parts.append(f"missing keys [{_listing(missing)}]")
        if unexpected:
            parts.append(f"unexpected keys [{_listing(unexpected)}]")
        raise ValueError(f"--pretrained {source}: its architecture differs from the configured model: "
                         f"{'; '.join(parts)}")
    model.load_state_dict({k: v for k, v in state.items() if k not in aliases}, strict=False)
    for alias, kept in aliases.items():
        if not torch.equal(model.state_dict()[alias], state.get(alias, state[kept])):
            raise ValueError(f"--pretrained {source}: {alias} should equal the tied {kept}")


@dataclass
class FinetuneSpec:
    """Everything ``ccrk finetune`` was asked to do; ``config`` is the loaded file with ``--set`` applied."""

    config: dict[str, Any]
    pretrained: str
    regime: str
    train_manifest: str
    val_manifest: str
    tokenizer: str
    out: str
    language: str | None = None
    shots: int | None = None
    image_root: str | None = None
    seed: int | None = None
    progress: bool = True
    check_images: bool = True

    def finetune_config(self) -> FinetuneConfig:
        return FinetuneConfig.from_dict(section(self.config, "finetune"))

    def train_section(self) -> dict[str, Any]:
        return copy.deepcopy(section(self.config, "train"))


class Finetuner(Trainer):
    """``ccrk finetune``: see the module docstring for the regimes."""

    command = "finetune"

    def _train_config(self):  # noqa: ANN202 - TrainConfig
        fcfg = self.spec.finetune_config()
        tcfg = fcfg.train_config(self.spec.train_section())
        if self.spec.seed is not None:
            tcfg = dataclasses.replace(tcfg, seed=int(self.spec.seed))
        return fcfg, tcfg

    def device_setting(self) -> str:
        return self._train_config()[1].device

    def prepare(self, ctx: DistContext) -> RunSetup:
        from ccrk.objectives import ObjectiveConfig, build_objective

        spec: FinetuneSpec = self.spec
        out = Path(spec.out)
        fcfg, tcfg = self._train_config()
        ocfg = ObjectiveConfig.from_dict(fcfg.objective)
        mcfg = model_config(spec.config)
        refuse_stale_output(out, self.resume)
        image_root = Path(spec.image_root) if spec.image_root else Path(spec.train_manifest).parent
        check = spec.check_images and ctx.is_main

        val_records = read_manifest(spec.val_manifest, image_root=image_root, check_images=check)
        configured = tcfg.languages or shared_languages(val_records)
        langs = regime_languages(spec.regime, spec.language, configured, spec.shots)
        if ocfg.name == "cross_lingual" and langs[0] != "en":
            raise ConfigError(f"finetune.objective.name 'cross_lingual' needs English among the fine-tuning "
                              f"languages, the {spec.regime} regime uses {langs}")
        records = read_manifest(spec.train_manifest, image_root=image_root, languages=langs,
                                require_languages=langs, check_images=check)
        if spec.shots is not None:
            if len(records) < spec.shots:
                raise ValueError(f"--shots {spec.shots}: {spec.train_manifest} has only {len(records)} records")
            records = records[: spec.shots]
        tcfg = self._fit_batch(tcfg, len(records), ctx, ocfg)
        tcfg.languages = configured

        tokenizer = load_tokenizer(spec.tokenizer)
        fingerprint = tokenizer_fingerprint(tokenizer)
        model = build_seeded_model(mcfg, tokenizer, tcfg.model_seed)
        if Path(spec.pretrained).is_dir():  # a saved model records its tokenizer; a bare checkpoint its run config
            check_model_tokenizer(tokenizer, str(spec.tokenizer), model,
                                  saved_tokenizer(read_model_config(spec.pretrained)), str(spec.pretrained))
        objective = build_objective(ocfg, model, tokenizer)
        dataset, collator = train_data(records, image_root, langs, ocfg.name, mcfg, tokenizer, tcfg.seed,
                                       crop_scale=tuple(tcfg.crop_scale), image_cache=tcfg.image_cache)
        resolved = {
            "model": mcfg.to_dict(),
            "finetune": {**fcfg.to_dict(), "objective": ocfg.to_dict()},
            "train": tcfg.to_dict(),
            "run": {
                "command": "finetune", "pretrained": str(spec.pretrained), "regime": spec.regime,
                "language": spec.language, "shots": spec.shots, "languages": langs,
                "train_manifest": str(spec.train_manifest), "val_manifest": str(spec.val_manifest),
                "image_root": str(image_root), "tokenizer": str(spec.tokenizer), "tokenizer_fingerprint": fingerprint,
                "out": str(out), "n_samples": len(dataset), "world_size": ctx.world_size,
            },
        }
        val_log = JsonLines(out / VAL_LOG, enabled=ctx.is_main)
        select = EpochSelector(model, val_records, image_root, langs, tokenizer, fcfg,
                               num_workers=min(tcfg.num_workers, 2), val_log=val_log)

        def load_start() -> None:
            load_pretrained(model, spec.pretrained)
            log.info(f"loaded {spec.pretrained}")

        def summary(engine: Engine) -> str:
            return (f"{spec.regime} on {', '.join(langs)}: {len(dataset)} samples, {engine.plan.steps_per_epoch} "
                    f"steps/epoch x {tcfg.epochs} epochs, batch {tcfg.batch_size}, {ctx.device}, "
                    f"{engine.precision.name}")

        def finish() -> None:
            self._choose_k_test(out / MODEL_DIR, spec.val_manifest, image_root, langs, tokenizer, fcfg, tcfg,
                                ctx.device)

        return RunSetup(out=out, model=model, objective=objective, dataset=dataset, collator=collator, cfg=tcfg,
                        resolved=resolved, fingerprint=fingerprint, desc=f"finetune {spec.regime}",
                        start="the pre-trained model", summary=summary, finish=finish, load_start=load_start,
                        validate=select, val_log=val_log, val_every=1, checkpoint_each_epoch=True)


    @staticmethod
    def _fit_batch(tcfg: Any, n: int, ctx: DistContext, ocfg: Any) -> Any:
        """Shrink the global batch to the data when there is less of it (few-shot); ITM needs 2 images a rank."""
        if n >= tcfg.batch_size * tcfg.grad_accum:
            return tcfg
        fitted = (n // ctx.world_size) * ctx.world_size
        need = 2 * ctx.world_size if ocfg.enabled("itm") else ctx.world_size
        if fitted < need:
            raise ValueError(
                f"{n} training record(s) cannot make a batch of {need} (with matching, each of the "
                f"{ctx.world_size} process(es) needs 2 images to draw a negative from); use more shots"
            )
        log.info(f"batch {tcfg.batch_size} x {tcfg.grad_accum} exceeds the {n} training records: using "
            f"batch {fitted} x 1")
        return dataclasses.replace(tcfg, batch_size=fitted, grad_accum=1)

    @staticmethod
    def _choose_k_test(model_dir: Path, val_manifest: str, image_root: Path, langs: list[str], tokenizer: Any,
                       fcfg: FinetuneConfig, tcfg: Any, device: torch.device) -> None:
        """Score the saved (selected) model two-stage on validation at each ``finetune.k_test_candidates``.

        The model is read back from ``model_dir`` rather than taken from
        memory (which holds the last epoch, not the selected one), so the
        choice is made for exactly the weights ``ccrk evaluate`` will load.
        ``retrieval.json`` is written into that directory (atomically).
        """
        from ccrk.evaluation.data import load_eval_data
        from ccrk.evaluation.ktest import choose_k_test, validation_scores, write_retrieval_choice
        from ccrk.models import load_model

        # The manifest and its images were checked when validation first read them.
        data = load_eval_data(val_manifest, image_root=image_root, languages=langs, check_images=False)
        model = load_model(model_dir, map_location=device)
        scores = validation_scores(model, tokenizer, data, langs, fcfg.k_test_candidates,
                                   batch_size=fcfg.eval_batch_size, itm_batch_size=fcfg.eval_batch_size,
                                   device=device, num_workers=min(tcfg.num_workers, 2))
        del model
        k_test = choose_k_test(scores)
        path = write_retrieval_choice(model_dir, k_test, chosen_on=str(val_manifest), languages=langs, scores=scores)
        shown = ", ".join(f"k={k}: {v:.2f}" for k, v in sorted(scores.items()))
        log.info(f"validation R@1 by k_test ({shown}): k_test {k_test}, written to {path}")


@dataclass
class EpochSelector:
    """Scores validation after each epoch (0: the starting weights) and keeps the best model so far.

    The best score lives in ``engine.state.extra`` (checkpointed), so a
    resumed run compares later epochs with the same best as an uninterrupted
    one; the kept model is ``<run>/model`` (main rank only, the others wait).
    """

    model: CCRModel
    records: list[Record]
    image_root: Path
    languages: list[str]
    tokenizer: Any
    fcfg: FinetuneConfig
    num_workers: int
    val_log: JsonLines

    def __call__(self, engine: Engine, epoch: int) -> None:
        ctx, st, fcfg = engine.ctx, engine.state, self.fcfg
        if ctx.is_main:
            result = validate(self.model, self.records, self.image_root, self.languages, self.tokenizer,
                              batch_size=fcfg.eval_batch_size, device=ctx.device, precision=engine.precision,
                              ks=fcfg.ks, num_workers=self.num_workers)
            score = result["score"]
            best = st.extra.get("best_score", -math.inf)
            # Epoch 0 (the starting weights) is a candidate too: training that only hurts must not be kept.
            improved = score > best
            if epoch == 0:
                st.extra["initial"] = score
            if improved:
                st.extra.update(best_score=score, best_epoch=epoch, best_step=st.step)
                save_model(self.model, Path(engine.out_dir) / MODEL_DIR,
                           tokenizer_fingerprint=engine.resolved_config["run"]["tokenizer_fingerprint"])
            self.val_log.write({"step": st.step, "epoch": epoch, "score": score, "best": improved,
                            "languages": result["languages"]})
            if engine.tb is not None:
                engine.tb.scalars({"score": score, **{f"{lang}_mean_recall": m["mean_recall"]
                                                      for lang, m in result["languages"].items()}},
                                  st.step, prefix="val/")
            log.info(f"validation after epoch {epoch}: mean recall {score:.2f} over {', '.join(self.languages)}"
                     + (" (best so far, saved)" if improved else ""))
        barrier(ctx)
