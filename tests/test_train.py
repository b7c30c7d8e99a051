"""ccrk.train: config validation, step counting, schedule, checkpoints, exact resumption, DDP, fine-tuning.

The heavy tests share one tiny synthetic benchmark, one tokenizer and one
uninterrupted reference pre-training run (session fixtures); runs that must be
killed are subprocesses of ``ccrk pretrain`` that SIGKILL themselves at a
chosen point through the trainer's test hooks.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from ccrk.config import ConfigError
from ccrk.data.dataset import EpochSampler
from ccrk.models import ModelConfig, save_model
from ccrk.train import checkpoint as ckpt
from ccrk.train.builders import build_seeded_model
from ccrk.train.config import FinetuneConfig, TrainConfig
from ccrk.train.distributed import detect_launch
from ccrk.train.finetune import Finetuner, FinetuneSpec, load_pretrained, regime_languages
from ccrk.train.monitor import JsonLines
from ccrk.train.optim import WarmupSchedule, parameter_groups, plan_steps, warmup_steps
from ccrk.train.seeding import capture_rng_state, restore_rng_state
from ccrk.train.trainer import Pretrainer, PretrainSpec

SRC = Path(__file__).resolve().parents[1] / "src"
FAULTS = Path(__file__).resolve().parent / "faults"

MODEL = {
    "image_encoder": "vit_tiny_patch16_224",
    "image_size": 32,
    "image_kwargs": {"depth": 2, "embed_dim": 64, "num_heads": 2, "patch_size": 8},
    "text_config": {
        "model_type": "xlm-roberta", "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128,
        "max_position_embeddings": 48, "type_vocab_size": 1, "layer_norm_eps": 1e-5,
        # No dropout: the 1- vs 2-process comparison needs the same forward on both.
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
    },
    "text_layers": 1,
    "fusion_layers": 1,
    "embed_dim": 32,
    "max_length": 40,
}
TRAIN = {"epochs": 3, "batch_size": 8, "lr": 1e-3, "warmup": 2, "num_workers": 0, "log_every": 1,
         "save_every": 4, "keep_last": 2}
# 48 pre-training images, batch 8: 6 steps an epoch, 18 in all; checkpoints at 4, 8, 12, 16 and 18.


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # tests/faults: its sitecustomize installs the kill/pause hooks the CCRK_TRAIN_* variables ask for.
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(FAULTS), env.get("PYTHONPATH", "")])
    env.update({"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    for name in ("CCRK_TRAIN_KILL_IN_SAVE", "CCRK_TRAIN_KILL_AFTER_STEP", "CCRK_TRAIN_PAUSE_AFTER_STEP"):
        env.pop(name, None)
    return env


def build_bench(root: Path) -> dict[str, Path]:
    """48 pre-training images, a tokenizer and the config of this module's runs, under ``root``."""
    from ccrk.synth.config import SynthConfig
    from ccrk.synth.generate import generate
    from ccrk.tokenizer import manifest_texts, train_tokenizer

    synth = root / "synth"
    generate(SynthConfig.from_dict({"images": {"pretrain": 48, "train": 24, "val": 16, "test": 8},
                                    "few_shot": [1, 5], "languages": ["en", "de", "ja"]}), synth)
    train_tokenizer(manifest_texts([synth / "pretrain.jsonl"]), root / "tok", vocab_size=1000, max_length=40)
    config = {"model": MODEL, "objective": {"weights": {"itc": 1, "itm": 1, "mlm": 1}}, "train": TRAIN}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return {"root": root, "synth": synth, "tok": root / "tok", "config": root / "config.yaml"}


@pytest.fixture(scope="session")
def bench(tmp_path_factory) -> dict[str, Path]:
    return build_bench(tmp_path_factory.mktemp("train_bench"))


def _pretrain_cmd(bench: dict[str, Path], out: Path, *extra: str, config: Path | None = None) -> list[str]:
    return [sys.executable, "-m", "ccrk.cli", "pretrain", "--config", str(config or bench["config"]),
            "--manifest", str(bench["synth"] / "pretrain.jsonl"), "--tokenizer", str(bench["tok"]),
            "--objective", "one_to_k", "--seed", "3", "--out", str(out), "--no-progress", *extra]


def _run(cmd: list[str], env: dict[str, str] | None = None, expect: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env or _env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == expect, f"exit {proc.returncode}, expected {expect}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="session")
def reference_run(bench) -> Path:
    """An uninterrupted pre-training run: the yardstick for resumed ones, and the model fine-tuning starts from."""
    out = bench["root"] / "reference"
    _run(_pretrain_cmd(bench, out))
    return out


def _metric_rows(run: Path) -> list[dict]:
    # Wall-clock fields differ between runs by nature; everything else must match.
    return [{k: v for k, v in r.items() if k not in ("time", "samples_per_s")}
            for r in JsonLines(run / "metrics.jsonl").read()]


# -- config ------------------------------------------------------------------------------------------


def test_train_config_rejects_unknown_keys_and_bad_values_by_name():
    with pytest.raises(ConfigError, match=r"train\.warmpu"):
        TrainConfig.from_dict({"warmpu": 0.1})
    with pytest.raises(ConfigError, match=r"train\.epochs must be an integer"):
        TrainConfig.from_dict({"epochs": True})
    with pytest.raises(ConfigError, match=r"train\.warmup .* \[0, 1\]"):
        TrainConfig.from_dict({"warmup": 1.5})
    with pytest.raises(ConfigError, match=r"train\.languages must list 'en' first"):
        TrainConfig.from_dict({"languages": ["de", "en"]})
    with pytest.raises(ConfigError, match=r"train\.precision"):
        TrainConfig.from_dict({"precision": "fp8"})
    with pytest.raises(ConfigError, match=r"train\.optimizer must be one of \['adamw', 'sgd'\]"):
        TrainConfig.from_dict({"optimizer": "lamb"})
    for scale in ([0.0, 1.0], [0.9, 0.5], [0.5], "0.5,1", [0.5, 1.5]):
        with pytest.raises(ConfigError, match=r"train\.crop_scale must be \[min, max\]"):
            TrainConfig.from_dict({"crop_scale": scale})
    for betas in ([0.9], [0.9, 1.0], [-0.1, 0.98], "0.9,0.98", [0.9, True]):
        with pytest.raises(ConfigError, match=r"train\.betas must be \[beta1, beta2\]"):
            TrainConfig.from_dict({"betas": betas})
    with pytest.raises(ConfigError, match=r"train\.val_every must be >= 1"):
        TrainConfig.from_dict({"val_every": 0})
    for init_seed in (-1, 2.5, "1", True):
        with pytest.raises(ConfigError, match=r"train\.init_seed must be a non-negative integer or null"):
            TrainConfig.from_dict({"init_seed": init_seed})
    with pytest.raises(ConfigError, match=r"finetune\.train\.crop_scale"):
        FinetuneConfig.from_dict({"train": {"crop_scale": [1, 0.2]}}).train_config({})
    with pytest.raises(ConfigError, match=r"finetune\.train\.lr"):
        FinetuneConfig.from_dict({"train": {"lr": "fast"}}).train_config({})
    with pytest.raises(ConfigError, match=r"finetune\.train\.bogus"):
        FinetuneConfig.from_dict({"train": {"bogus": 1}}).train_config({})
    with pytest.raises(ConfigError, match=r"finetune\.evals"):
        FinetuneConfig.from_dict({"evals": 1})
    with pytest.raises(ConfigError, match=r"finetune\.k_test_candidates"):
        FinetuneConfig.from_dict({"k_test_candidates": [0]})
    with pytest.raises(ConfigError, match=r"finetune\.k_test_candidates"):
        FinetuneConfig.from_dict({"k_test_candidates": []})
    assert FinetuneConfig.from_dict({"k_test_candidates": [4, 1]}).k_test_candidates == [4, 1]
    merged = FinetuneConfig.from_dict({"train": {"lr": 5e-5}}).train_config({"lr": 1e-4, "epochs": 7})
    assert (merged.lr, merged.epochs) == (5e-5, 7)
    assert FinetuneConfig.from_dict({"objective": {"weights": {"itc": 2}}}).objective["weights"] == {
        "itc": 2, "itm": 1.0, "mlm": 0.0}


# -- step counting and schedule ------------------------------------------------------------------------


@pytest.mark.parametrize("n,batch,accum,world", [(48, 8, 1, 1), (50, 8, 2, 1), (50, 6, 3, 2), (101, 10, 1, 2),
                                                 (37, 4, 4, 4)])
def test_planned_steps_equal_the_steps_a_loop_over_the_sampler_takes(n, batch, accum, world):
    cfg = TrainConfig.from_dict({"batch_size": batch, "grad_accum": accum, "epochs": 2})
    counts = []
    for rank in range(world):
        sampler = EpochSampler(n, seed=0, rank=rank, world_size=world)
        plan = plan_steps(sampler, cfg)
        # Slow reference: cut this rank's order into whole micro-batches, group them into whole steps.
        order = list(sampler)
        micro = [order[i:i + batch // world] for i in range(0, len(order), batch // world)]
        micro = [m for m in micro if len(m) == batch // world]
        counts.append(len(micro) // accum)
        assert plan.steps_per_epoch == len(micro) // accum
        assert plan.total_steps == 2 * plan.steps_per_epoch
    assert len(set(counts)) == 1, "every rank must take the same number of steps"
    assert counts[0] == (n // batch) // accum  # the global formula, at any world size


def test_batch_must_divide_over_ranks_and_give_a_step():
    with pytest.raises(ValueError, match="divisible by the 2"):
        plan_steps(EpochSampler(40, seed=0, world_size=2), TrainConfig.from_dict({"batch_size": 7}))
    with pytest.raises(ValueError, match="no optimiser step"):
        plan_steps(EpochSampler(10, seed=0), TrainConfig.from_dict({"batch_size": 8, "grad_accum": 2}))


def test_warmup_then_linear_decay_reaches_zero_exactly_after_the_last_step():
    schedule = WarmupSchedule(warmup=3, total=10)
    factors = [schedule(s) for s in range(11)]
    assert factors[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert factors[3] == 1.0 and factors[9] == pytest.approx(1 / 7) and factors[10] == 0.0
    assert all(a >= b for a, b in zip(factors[3:], factors[4:]))
    assert min(factors[:10]) > 0, "no step trains at lr 0"
    assert warmup_steps(0.25, 20) == 5 and warmup_steps(50, 20) == 20 and warmup_steps(0, 20) == 0


def test_parameter_groups_split_new_and_no_decay_parameters(bench):
    from ccrk.tokenizer import load_tokenizer

    model = build_seeded_model(ModelConfig.from_dict(MODEL), load_tokenizer(bench["tok"]), seed=0)
    cfg = TrainConfig.from_dict({"lr": 1e-4, "lr_mult_new": 3.0, "weight_decay": 0.05})
    groups = parameter_groups(model, cfg, model.new_parameter_names())
    ids = {id(p): g for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(ids) == sum(len(g["params"]) for g in groups) == len(named)
    for name, param in named.items():
        group = ids[id(param)]
        is_new = name in model.new_parameter_names()
        assert group["lr"] == pytest.approx(3e-4 if is_new else 1e-4), name
        no_decay = name.endswith("bias") or name == "temp" or ".norm" in name or "LayerNorm" in name \
            or "layer_norm" in name or name.endswith(("norm1.weight", "norm2.weight", "norm.weight"))
        assert group["weight_decay"] == (0.0 if no_decay else 0.05), name
    assert ids[id(named["temp"])]["weight_decay"] == 0.0 and ids[id(named["temp"])]["lr_mult"] == 3.0


def test_the_configured_betas_reach_adamw(bench):
    from ccrk.tokenizer import load_tokenizer
    from ccrk.train.optim import build_optimizer

    model = build_seeded_model(ModelConfig.from_dict(MODEL), load_tokenizer(bench["tok"]), seed=0)
    for betas, expected in (({}, (0.9, 0.999)), ({"betas": [0.8, 0.98]}, (0.8, 0.98))):
        optimiser = build_optimizer(model, TrainConfig.from_dict(betas), model.new_parameter_names())
        assert {g["betas"] for g in optimiser.param_groups} == {expected}
    finetune = FinetuneConfig.from_dict({"train": {"lr": 1e-4}}).train_config({"betas": [0.9, 0.95]})
    assert finetune.betas == [0.9, 0.95]  # fine-tuning inherits the train section's betas


# -- small pieces --------------------------------------------------------------------------------------


def test_rng_state_round_trip():
    import random

    state = capture_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3))
    restore_rng_state(state)
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == again[0] and first[1] == again[1] and torch.equal(first[2], again[2])


def test_checkpoint_files_atomic_listing_pruning_and_corrupt_skipping(tmp_path, caplog):
    payload = {key: {} for key in ckpt.REQUIRED_KEYS}
    payload.update(format=ckpt.FORMAT, model={"w": torch.arange(3.0)}, git_revision="abc")
    for step in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, step, payload)
    (tmp_path / ".step_0000004.pt.x1.tmp").write_bytes(b"half")  # a save that was killed
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [1, 2, 3]
    good = ckpt.checkpoint_path(tmp_path, 3).read_bytes()
    ckpt.checkpoint_path(tmp_path, 5).write_bytes(good[: len(good) // 2])  # truncated by some other means
    with caplog.at_level(logging.WARNING, logger="ccrk.train.checkpoint"):
        path, loaded = ckpt.load_latest(tmp_path)
    assert path.name == "step_0000003.pt" and torch.equal(loaded["model"]["w"], torch.arange(3.0))
    assert "step_0000005.pt" in caplog.records[0].getMessage()
    assert [p.name for p in ckpt.prune_checkpoints(tmp_path, 2)] == ["step_0000001.pt", "step_0000002.pt"]
    assert ckpt.remove_temp_files(tmp_path)[0].name == ".step_0000004.pt.x1.tmp"
    with pytest.raises(ValueError, match="lacks"):
        ckpt.save_checkpoint(tmp_path, 9, {"format": ckpt.FORMAT})


def test_metrics_log_truncates_records_a_resumed_run_redoes(tmp_path):
    log = JsonLines(tmp_path / "m.jsonl")
    for step in range(1, 6):
        log.write({"step": step, "loss": float(step)})
    with (tmp_path / "m.jsonl").open("a") as handle:
        handle.write('{"step": 6, "lo')  # torn by a kill
    log.truncate_after(3)
    assert [r["step"] for r in log.read()] == [1, 2, 3]
    assert JsonLines(tmp_path / "other.jsonl", enabled=False).read() == []


def test_launch_detection_torchrun_and_submitit(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SUBMITIT_EXECUTOR"):
        monkeypatch.delenv(key, raising=False)
    assert detect_launch() == (0, 1, 0, "single")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert detect_launch() == (3, 4, 1, "torchrun")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key)

    class FakeJob:
        global_rank, num_tasks, local_rank, job_id = 5, 8, 1, "4242_1"
        hostnames = ["node-a", "node-b"]

    import ccrk.train.distributed as distributed

    monkeypatch.setattr(distributed, "_submitit_environment", lambda: FakeJob())
    assert detect_launch() == (5, 8, 1, "submitit")
    assert os.environ["MASTER_ADDR"] == "node-a" and os.environ["RANK"] == "5" and os.environ["WORLD_SIZE"] == "8"
    assert 20000 <= int(os.environ["MASTER_PORT"]) < 40000


def test_regime_languages_and_flag_errors():
    langs = ["en", "de", "ja"]
    assert regime_languages("zero_shot", None, langs, None) == ["en"]
    assert regime_languages("all_languages", None, langs, None) == langs
    assert regime_languages("single_language", "ja", langs, None) == ["ja"]
    assert regime_languages("few_shot", "de", langs, 5) == ["de"]
    with pytest.raises(ValueError, match="--language"):
        regime_languages("single_language", None, langs, None)
    with pytest.raises(ValueError, match="--shots"):
        regime_languages("few_shot", "de", langs, None)
    with pytest.raises(ValueError, match="--shots"):
        regime_languages("zero_shot", None, langs, 5)
    with pytest.raises(ValueError, match="unknown regime"):
        regime_languages("some_shot", None, langs, None)


def test_trainer_checkpoint_resubmits_itself_with_resume(bench, tmp_path):
    spec = PretrainSpec(config={"model": MODEL}, manifest="m.jsonl", tokenizer=str(bench["tok"]), out=str(tmp_path))
    resubmission = pickle.loads(pickle.dumps(Pretrainer(spec).checkpoint()))
    trainer = resubmission.function
    assert isinstance(trainer, Pretrainer) and trainer.resume is True and trainer.spec == spec


# -- pre-training: exact resumption ------------------------------------------------------------------


@pytest.mark.slow
def test_killed_runs_resume_to_bitwise_identical_weights(bench, reference_run, tmp_path):
    out = tmp_path / "killed"
    env = _env()
    # Kill 1: mid-epoch 1 (step 7 of 18), three steps after the checkpoint of step 4 (itself mid-epoch 0).
    _run(_pretrain_cmd(bench, out), env={**env, "CCRK_TRAIN_KILL_AFTER_STEP": "7"}, expect=-9)
    assert [s for s, _ in ckpt.list_checkpoints(out / "checkpoints")] == [4]
    # Kill 2: inside the save of step 12, after the temporary file is written, before the rename.
    _run(_pretrain_cmd(bench, out, "--resume"), env={**env, "CCRK_TRAIN_KILL_IN_SAVE": "12"}, expect=-9)
    assert [s for s, _ in ckpt.list_checkpoints(out / "checkpoints")] == [4, 8]
    assert list((out / "checkpoints").glob(".step_0000012.pt.*.tmp")), "the killed save left its temp file"
    path, payload = ckpt.load_latest(out / "checkpoints")
    assert path.name == "step_0000008.pt" and payload["state"]["step"] == 8
    assert payload["position"]["epoch"] == 1 and payload["position"]["sampler_start"] == 16
    # Resume to the end.
    proc = _run(_pretrain_cmd(bench, out, "--resume"))
    assert "resumed from" in proc.stderr and "step_0000008.pt" in proc.stderr

    ref = load_file(str(reference_run / "model" / "model.safetensors"))
    got = load_file(str(out / "model" / "model.safetensors"))
    assert ref.keys() == got.keys()
    for key in ref:
        assert torch.equal(ref[key], got[key]), f"{key} differs after resumption"
    assert _metric_rows(out) == _metric_rows(reference_run)
    assert [r["step"] for r in _metric_rows(out)] == list(range(1, 19))
    # keep_last=2 and no temp file left behind.
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["step_0000016.pt", "step_0000018.pt"]


@pytest.mark.slow
def test_a_rerun_with_changed_settings_starts_over_and_an_interrupted_one_resumes(bench, reference_run, tmp_path):
    """``--resume --restart-on-change``, what the DAG passes: a checkpoint made with other settings is deleted and the
    run starts over (Snakemake reran the job because its config changed); one made with the same settings continues."""
    out = tmp_path / "run"
    env = _env()
    flags = ("--resume", "--restart-on-change")
    # A run with another learning rate, killed at step 7 (its checkpoint: step 4).
    _run(_pretrain_cmd(bench, out, "--set", "train.lr=0.0005"), env={**env, "CCRK_TRAIN_KILL_AFTER_STEP": "7"},
         expect=-9)
    assert (out / "tb").is_dir()
    # Plain --resume refuses it, naming the change, and leaves it as it was.
    proc = _run(_pretrain_cmd(bench, out, "--resume"), expect=2)
    assert "train.lr: 0.0005 -> 0.001" in proc.stderr
    assert [s for s, _ in ckpt.list_checkpoints(out / "checkpoints")] == [4]
    # With the DAG's flags the reference settings start over (killed at step 7 again: step 4 is now theirs) ...
    proc = _run(_pretrain_cmd(bench, out, *flags), env={**env, "CCRK_TRAIN_KILL_AFTER_STEP": "7"}, expect=-9)
    assert "starting over (--restart-on-change)" in proc.stderr and "train.lr: 0.0005 -> 0.001" in proc.stderr
    assert ckpt.load_latest(out / "checkpoints")[1]["config"]["train"]["lr"] == 0.001
    # ... and the same settings resume, not restart, to the uninterrupted run's weights and log.
    proc = _run(_pretrain_cmd(bench, out, *flags))
    assert "resumed from" in proc.stderr and "starting over" not in proc.stderr
    ref = load_file(str(reference_run / "model" / "model.safetensors"))
    got = load_file(str(out / "model" / "model.safetensors"))
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)
    assert _metric_rows(out) == _metric_rows(reference_run)


def test_pretraining_on_webdataset_shards_matches_the_manifest_run(bench, reference_run, tmp_path):
    """The shard path (the translated corpus at paper scale) trains exactly as the manifest path does."""
    shards = tmp_path / "shards"
    _run([sys.executable, "-m", "ccrk.cli", "shards", "--manifest", str(bench["synth"] / "pretrain.jsonl"),
          "--out", str(shards), "--samples-per-shard", "20"])
    assert len(list(shards.glob("*.tar"))) == 3
    cmd = _pretrain_cmd(bench, tmp_path / "run")
    cmd[cmd.index("--manifest") + 1] = str(shards)
    _run(cmd)
    ref = load_file(str(reference_run / "model" / "model.safetensors"))
    got = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    for key in ref:
        assert torch.equal(ref[key], got[key]), f"{key} differs between the shard and the manifest run"
    # --captions is for shards only
    cmd = _pretrain_cmd(bench, tmp_path / "bad", "--captions", str(tmp_path))
    assert "--captions applies to webdataset shards" in _run(cmd, expect=2).stderr


def test_reference_run_outputs_resolved_config_and_checkpoint_contents(bench, reference_run):
    resolved = yaml.safe_load((reference_run / "config.resolved.yaml").read_text())
    assert {"model", "objective", "train", "run", "git_revision"} <= set(resolved)
    assert resolved["train"]["seed"] == 3 and resolved["train"]["languages"] == ["en", "de", "ja"]
    assert resolved["objective"]["name"] == "one_to_k" and resolved["model"]["embed_dim"] == 32
    assert list((reference_run / "tb").glob("events.out.tfevents.*"))
    payload = ckpt.load_checkpoint(ckpt.checkpoint_path(reference_run / "checkpoints", 18))
    assert payload["config"]["train"] == resolved["train"]
    assert payload["git_revision"] == resolved["git_revision"] != ""
    assert payload["state"] == {"step": 18, "epoch": 2, "epoch_step": 6, "epochs_closed": 3, "extra": {}}
    assert {"python", "numpy", "torch", "cuda"} <= set(payload["rng"])
    # The scheduler was sized with the number of steps really taken: its factor is 0 after the last.
    assert payload["scheduler"]["last_epoch"] == 18 and payload["scheduler"]["lr_lambdas"][0]["total"] == 18
    adam_steps = {float(s["step"]) for s in payload["optimizer"]["state"].values()}
    assert adam_steps == {18.0}
    assert payload["plan"]["steps_per_epoch"] * payload["plan"]["epochs"] == 18


def test_fresh_run_refuses_an_output_with_checkpoints_and_resume_refuses_changed_settings(bench, reference_run,
                                                                                        tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reference_run, out)
    spec = PretrainSpec(config=yaml.safe_load(bench["config"].read_text()),
                        manifest=str(bench["synth"] / "pretrain.jsonl"), tokenizer=str(bench["tok"]), out=str(out),
                        objective="one_to_k", seed=3, progress=False)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        Pretrainer(spec)()
    spec.config["train"]["lr"] = 5e-4
    with pytest.raises(ConfigError, match=r"train\.lr: 0\.001 -> 0\.0005"):
        Pretrainer(spec, resume=True)()
    # another tokenizer (same directory name, another vocabulary): its ids would feed the wrong embedding rows
    from ccrk.tokenizer import train_tokenizer

    spec.config["train"]["lr"] = 1e-3
    other = tmp_path / "other" / "tok"
    train_tokenizer(["a red circle", "ein blauer Kreis", "赤い丸"] * 20, other, vocab_size=300, max_length=40)
    spec.tokenizer = str(other)
    with pytest.raises(ConfigError, match=r"run\.tokenizer_fingerprint: '[0-9a-f]{16}' -> '[0-9a-f]{16}'"):
        Pretrainer(spec, resume=True)()


# -- data parallel ---------------------------------------------------------------------------------------


@pytest.mark.slow
def ddp_comparison_config(bench) -> dict:
    """A pre-training config whose 2-process run must equal 1-process gradient accumulation.

    Contrastive only: matching negatives and MLM masks are drawn per rank, so
    they differ by construction. 48 samples, global batch 6 (3 a rank), 3
    micro-batches a step: 8 micro-batches an epoch give 2 steps and 2 dropped
    micro-batches; 6 steps in all, each checkpointed. SGD, because its update
    is linear in the gradient: AdamW divides by the root of the second moment
    and turns a last-bit difference of a near-zero gradient (a gloo all-reduce
    sums in another order than local accumulation, and the order depends on
    the processor) into a visible weight change.
    """
    config = yaml.safe_load(bench["config"].read_text())
    config["objective"] = {"weights": {"itc": 1, "itm": 0, "mlm": 0}}
    config["train"].update(batch_size=6, grad_accum=3, save_every=1, keep_last=6, optimizer="sgd", lr=0.05)
    return config


def _close_at_float32_scale(got: torch.Tensor, want: torch.Tensor, scale: torch.Tensor, what: str) -> None:
    """|got - want| within 1e-4 of ``scale``'s largest entry: far above summation-order noise, far below a bug."""
    bound = 1e-4 * float(scale.abs().max()) + 1e-9
    err = float((got - want).abs().max())
    assert err <= bound, f"{what}: max difference {err:.3g} exceeds {bound:.3g}"


def assert_ddp_equals_accumulation(bench, config: dict, one: Path, two: Path) -> None:
    """What DDP promises, checked independently of the processor's summation order.

    The first step's averaged gradients (SGD's momentum buffer after one step)
    and each weight's change over all steps agree to a tolerance scaled by
    their own magnitude; the loss and the schedule agree step by step.
    """
    first = [ckpt.load_checkpoint(ckpt.checkpoint_path(run / "checkpoints", 1)) for run in (one, two)]
    states = [payload["optimizer"]["state"] for payload in first]
    assert set(states[0]) == set(states[1]) and len(states[0]) > 10
    for index in states[0]:
        g1, g2 = states[0][index]["momentum_buffer"], states[1][index]["momentum_buffer"]
        _close_at_float32_scale(g2, g1, g1, f"first-step gradient of parameter {index}")

    from ccrk.tokenizer import load_tokenizer

    start = build_seeded_model(ModelConfig.from_dict(config["model"]), load_tokenizer(bench["tok"]), seed=3).state_dict()
    w1, w2 = load_file(str(one / "model" / "model.safetensors")), load_file(str(two / "model" / "model.safetensors"))
    moved = 0
    for key in w1:
        change = w1[key] - start[key]
        moved += bool(change.abs().max() > 0)
        _close_at_float32_scale(w2[key] - start[key], change, change, key)
    assert moved > 10  # the weights did train

    rows_one, rows_two = _metric_rows(one), _metric_rows(two)
    assert [r["step"] for r in rows_one] == [r["step"] for r in rows_two] == list(range(1, 7))
    np.testing.assert_allclose([r["loss"] for r in rows_two], [r["loss"] for r in rows_one], rtol=1e-4)
    np.testing.assert_allclose([r["lr"] for r in rows_two], [r["lr"] for r in rows_one], rtol=1e-12)

    payload = ckpt.load_checkpoint(ckpt.checkpoint_path(two / "checkpoints", 6))
    assert payload["position"]["world_size"] == 2
    assert payload["scheduler"]["lr_lambdas"][0]["total"] == 6 == payload["scheduler"]["last_epoch"]


def test_two_process_gloo_run_matches_one_process_with_gradient_accumulation(bench, tmp_path):
    config = ddp_comparison_config(bench)
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    two = tmp_path / "two"
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          *_pretrain_cmd(bench, two, config=path)[1:]])
    one = tmp_path / "one"
    torch.set_num_threads(1)
    Pretrainer(PretrainSpec(config=config, manifest=str(bench["synth"] / "pretrain.jsonl"),
                            tokenizer=str(bench["tok"]), out=str(one), objective="one_to_k", seed=3,
                            progress=False))()
    assert_ddp_equals_accumulation(bench, config, one, two)


def test_the_ddp_comparison_catches_a_wrong_gradient(bench, tmp_path):
    """The tolerance is not vacuous: a run whose first step averaged a different batch fails it."""
    config = ddp_comparison_config(bench)
    one, other = tmp_path / "one", tmp_path / "other"
    torch.set_num_threads(1)
    for out, seed in ((one, 3), (other, 4)):  # seed 4: another data order, and so other gradients
        spec_config = {**config, "train": {**config["train"]}}
        Pretrainer(PretrainSpec(config=spec_config, manifest=str(bench["synth"] / "pretrain.jsonl"),
                                tokenizer=str(bench["tok"]), out=str(out), objective="one_to_k", seed=seed,
                                progress=False))()
    with pytest.raises(AssertionError, match="first-step gradient"):
        assert_ddp_equals_accumulation(bench, config, one, other)


# -- fine-tuning -------------------------------------------------------------------------------------------


def _finetune_spec(bench, pretrained: Path, out: Path, config: dict, **kw) -> FinetuneSpec:
    synth = bench["synth"]
    return FinetuneSpec(config=config, pretrained=str(pretrained), train_manifest=str(synth / "train.jsonl"),
                        val_manifest=str(synth / "val.jsonl"), tokenizer=str(bench["tok"]), out=str(out),
                        image_root=str(synth), progress=False, **kw)


def test_finetune_refuses_a_pretrained_model_of_another_architecture(bench, reference_run, tmp_path):
    other = {**MODEL, "embed_dim": 16, "fusion_layers": 2}
    spec = _finetune_spec(bench, reference_run / "model", tmp_path / "ft", {"model": other}, regime="zero_shot")
    with pytest.raises(ValueError) as info:
        Finetuner(spec)()
    message = str(info.value)
    assert "architecture differs" in message
    assert "vision_proj.weight: file (32, 64) vs model (16, 64)" in message
    assert "missing keys [fusion.layers.1." in message
    # The same through a training checkpoint instead of a model directory.
    model = build_seeded_model(ModelConfig.from_dict(other), __import__("ccrk.tokenizer").tokenizer.load_tokenizer(
        bench["tok"]), seed=0)
    with pytest.raises(ValueError, match=r"text_proj\.weight: file \(32, 64\) vs model \(16, 64\)"):
        load_pretrained(model, ckpt.checkpoint_path(reference_run / "checkpoints", 18))


def test_load_pretrained_accepts_a_model_directory_and_a_checkpoint(bench, reference_run, tmp_path):
    from ccrk.tokenizer import load_tokenizer

    tok = load_tokenizer(bench["tok"])
    saved = load_file(str(reference_run / "model" / "model.safetensors"))
    for source in (reference_run / "model", ckpt.checkpoint_path(reference_run / "checkpoints", 18)):
        model = build_seeded_model(ModelConfig.from_dict(MODEL), tok, seed=11)
        load_pretrained(model, source)
        state = model.state_dict()
        assert all(torch.equal(state[k], v) for k, v in saved.items())
        assert state["mlm_head.decoder.weight"].data_ptr() == state["text.embeddings.word_embeddings.weight"].data_ptr()


@pytest.mark.slow
def test_finetune_raises_validation_recall_and_keeps_the_best_epoch(bench, reference_run, tmp_path):
    from ccrk.models import load_model
    from ccrk.tokenizer import load_tokenizer
    from ccrk.train.precision import Precision
    from ccrk.train.validate import validate

    config = {"model": MODEL, "train": {"num_workers": 0, "log_every": 10},
              "finetune": {"train": {"epochs": 30, "lr": 1e-3, "warmup": 0, "batch_size": 8, "save_every": 0},
                           "objective": {"weights": {"itm": 0}}, "eval_batch_size": 32}}
    out = tmp_path / "zero_shot"
    torch.set_num_threads(1)
    Finetuner(_finetune_spec(bench, reference_run / "model", out, config, regime="zero_shot"))()
    rows = JsonLines(out / "val.jsonl").read()
    assert [r["epoch"] for r in rows] == list(range(31))
    assert set(rows[0]["languages"]) == {"en"}
    initial = rows[0]["score"]
    best = max(rows[1:], key=lambda r: r["score"])
    scores = [round(r["score"], 1) for r in rows]
    print(scores)
    assert best["score"] > initial + 3.0, scores
    assert np.mean([r["score"] for r in rows[-10:]]) > initial, scores
    assert [r["epoch"] for r in rows if r["best"]][-1] == best["epoch"]
    # out/model is the best epoch's model: re-scoring it reproduces the recorded score.
    val = __import__("ccrk.data.manifest").data.manifest.read_manifest(bench["synth"] / "val.jsonl")
    again = validate(load_model(out / "model"), val, bench["synth"], ["en"], load_tokenizer(bench["tok"]),
                     batch_size=32, device=torch.device("cpu"), precision=Precision("fp32", "cpu"))
    assert again["score"] == pytest.approx(best["score"], abs=1e-9)
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["run"]["regime"] == "zero_shot" and resolved["finetune"]["objective"]["weights"]["mlm"] == 0.0


def test_finetune_that_only_hurts_keeps_the_starting_model_and_chooses_k_test_on_validation(
        bench, reference_run, tmp_path, capsys):
    """Epoch 0 (the starting weights) is a selection candidate: a learning rate of 1 wrecks the model, so
    out/model must stay the starting one, bit for bit. Then the selected model's k_test is chosen on
    validation and ``ccrk evaluate --k-test auto`` ranks with it."""
    from ccrk.cli import main

    # A starting model far above chance on validation (the tiny pre-trained one is at chance, where a wrecked
    # model can score as high): fitted to the validation images themselves, the best of 30 epochs.
    fitted = {"model": MODEL, "train": {"num_workers": 0, "log_every": 10},
              "finetune": {"train": {"epochs": 30, "lr": 1e-3, "warmup": 0, "batch_size": 8, "save_every": 0},
                           "objective": {"weights": {"itm": 0}}, "eval_batch_size": 32, "k_test_candidates": [1]}}
    start = _finetune_spec(bench, reference_run / "model", tmp_path / "start", fitted, regime="all_languages")
    start.train_manifest = start.val_manifest
    torch.set_num_threads(1)
    Finetuner(start)()
    config = {"model": MODEL, "train": {"num_workers": 0, "log_every": 10},
              "finetune": {"train": {"epochs": 2, "lr": 1.0, "warmup": 0, "batch_size": 8, "save_every": 0},
                           "eval_batch_size": 32}}
    out = tmp_path / "hurt"
    Finetuner(_finetune_spec(bench, tmp_path / "start" / "model", out, config, regime="all_languages"))()
    rows = JsonLines(out / "val.jsonl").read()
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    scores = [r["score"] for r in rows]
    assert max(scores[1:]) < scores[0], f"the premise failed: training did not lower the score {scores}"
    assert [r["best"] for r in rows] == [True, False, False]
    kept = load_file(str(out / "model" / "model.safetensors"))
    starting = load_file(str(tmp_path / "start" / "model" / "model.safetensors"))
    assert set(kept) == set(starting) and all(torch.equal(kept[k], starting[k]) for k in kept)
    final = ckpt.load_latest(out / "checkpoints")[1]["state"]["extra"]
    assert (final["best_epoch"], final["best_step"], final["best_score"]) == (0, 0, scores[0])

    doc = json.loads((out / "model" / "retrieval.json").read_text())
    candidates = FinetuneConfig().k_test_candidates
    langs = ["en", "de", "ja"]
    assert doc["languages"] == langs and doc["chosen_on"] == str(bench["synth"] / "val.jsonl")
    assert sorted(int(k) for k in doc["scores"]) == sorted(candidates) and doc["k_test"] in candidates
    assert doc["k_test"] == min(candidates, key=lambda k: (-doc["scores"][str(k)], k))
    # k = 1 is contrastive-only: the R@1 of epoch 0's validation (the same weights), both directions, every language.
    itc_r1 = np.mean([(rows[0]["languages"][lang]["t2i_r1"] + rows[0]["languages"][lang]["i2t_r1"]) / 2
                      for lang in langs])
    assert doc["scores"]["1"] == pytest.approx(itc_r1, abs=1e-9)

    run = tmp_path / "eval"
    assert main(["evaluate", "--model", str(out / "model"), "--tokenizer", str(bench["tok"]),
                 "--manifest", str(bench["synth"] / "test.jsonl"), "--k-test", "auto", "--mrv-languages", "none",
                 "--bootstrap", "20", "--device", "cpu", "--out", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["k_test"] == doc["k_test"] and metrics["config"]["evaluate"]["k_test"] == "auto"
    assert metrics["k_test_source"] == str(out / "model" / "retrieval.json")
    assert {p["k_t2i"] for p in metrics["itm_pairs"]["per_language"].values()} == {min(doc["k_test"], 8)}
    assert "ITC only" in capsys.readouterr().out


def test_finetune_command_refuses_a_bad_k_test_candidate_by_name(bench, reference_run, tmp_path, capsys):
    from ccrk.cli import main

    synth = bench["synth"]
    code = main(["finetune", "--config", str(bench["config"]), "--set", "finetune.k_test_candidates=[0]",
                 "--pretrained", str(reference_run / "model"), "--regime", "zero_shot",
                 "--train-manifest", str(synth / "train.jsonl"), "--val-manifest", str(synth / "val.jsonl"),
                 "--image-root", str(synth), "--tokenizer", str(bench["tok"]), "--out", str(tmp_path / "ft"),
                 "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "finetune.k_test_candidates" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "ft").exists()


def test_few_shot_shrinks_the_batch_to_the_shots_and_refuses_one_shot(bench, reference_run, tmp_path):
    config = {"model": MODEL, "train": {"num_workers": 0, "batch_size": 8},
              "finetune": {"train": {"epochs": 2, "save_every": 0}, "eval_batch_size": 32}}
    out = tmp_path / "few"
    few = bench["synth"] / "fewshot" / "de" / "train_5.jsonl"
    spec = _finetune_spec(bench, reference_run / "model", out, config, regime="few_shot", language="de", shots=5)
    spec.train_manifest = str(few)
    Finetuner(spec)()
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["train"]["batch_size"] == 5 and resolved["run"]["n_samples"] == 5
    assert [r["epoch"] for r in JsonLines(out / "val.jsonl").read()] == [0, 1, 2]
    assert (out / "model" / "model.safetensors").is_file()
    one = _finetune_spec(bench, reference_run / "model", tmp_path / "one", config, regime="few_shot",
                         language="de", shots=1)
    one.train_manifest = str(bench["synth"] / "fewshot" / "de" / "train_1.jsonl")
    with pytest.raises(ValueError, match="needs 2 images"):
        Finetuner(one)()


@pytest.mark.slow
def _japanese_finetune_cmd(bench, reference_run: Path, config: dict, path: Path):
    """``cmd(out, *extra)``: fine-tune the reference run on Japanese alone with ``config`` (written to ``path``)."""
    path.write_text(yaml.safe_dump(config))
    synth = bench["synth"]

    def cmd(out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "ccrk.cli", "finetune", "--config", str(path), "--pretrained",
                str(reference_run / "model"), "--regime", "single_language", "--language", "ja",
                "--train-manifest", str(synth / "train.jsonl"), "--val-manifest", str(synth / "val.jsonl"),
                "--image-root", str(synth), "--tokenizer", str(bench["tok"]), "--out", str(out), "--no-progress",
                *extra]
    return cmd


def test_finetune_killed_before_validation_resumes_to_the_same_selection(bench, reference_run, tmp_path):
    config = {"model": MODEL, "train": {"num_workers": 0, "log_every": 1},
              "finetune": {"train": {"epochs": 3, "lr": 1e-3, "warmup": 0, "batch_size": 8, "save_every": 3,
                                     "keep_last": 5}, "eval_batch_size": 32}}
    cmd = _japanese_finetune_cmd(bench, reference_run, config, tmp_path / "ft.yaml")

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _run(cmd(whole))
    # 24 images, batch 8: 3 steps an epoch. Step 6 ends epoch 1; its checkpoint is written, then the kill
    # comes before that epoch is validated.
    _run(cmd(killed), env={**_env(), "CCRK_TRAIN_KILL_AFTER_STEP": "6"}, expect=-9)
    payload = ckpt.load_latest(killed / "checkpoints")[1]
    assert (payload["state"]["step"], payload["state"]["epochs_closed"]) == (6, 1)
    assert [r["epoch"] for r in JsonLines(killed / "val.jsonl").read()] == [0, 1]
    _run(cmd(killed, "--resume"))

    assert JsonLines(killed / "val.jsonl").read() == JsonLines(whole / "val.jsonl").read()
    assert [r["epoch"] for r in JsonLines(whole / "val.jsonl").read()] == [0, 1, 2, 3]
    assert _metric_rows(killed) == _metric_rows(whole)
    a, b = load_file(str(whole / "model" / "model.safetensors")), load_file(str(killed / "model" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the k_test chosen for the selected model too (the choice is made after training, on the saved model)
    assert (killed / "model" / "retrieval.json").read_text() == (whole / "model" / "retrieval.json").read_text()
    final = ckpt.load_checkpoint(ckpt.checkpoint_path(killed / "checkpoints", 9))["state"]["extra"]
    assert final["best_epoch"] in (0, 1, 2, 3) and set(final) == {"initial", "best_score", "best_epoch", "best_step"}


def test_finetune_resumed_inside_a_logging_window_logs_what_an_uninterrupted_run_logs(bench, reference_run,
                                                                                      tmp_path):
    """The loss sums of a logging window are in the checkpoint: the mean logged at the window's end is the same."""
    config = {"model": MODEL, "train": {"num_workers": 0, "log_every": 5},
              "finetune": {"train": {"epochs": 2, "lr": 1e-3, "warmup": 0, "batch_size": 8, "save_every": 4,
                                     "keep_last": 5}, "eval_batch_size": 32}}
    cmd = _japanese_finetune_cmd(bench, reference_run, config, tmp_path / "ft.yaml")

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _run(cmd(whole))
    # 3 steps an epoch, a log at steps 3 (epoch end), 5 (every 5th step) and 6; the checkpoint of step 4 is
    # inside the window 4-5. Killed after step 5, the run resumes from step 4 and logs step 5 as the mean of 4, 5.
    _run(cmd(killed), env={**_env(), "CCRK_TRAIN_KILL_AFTER_STEP": "5"}, expect=-9)
    assert ckpt.load_latest(killed / "checkpoints")[1]["window"]["steps"] == 1
    _run(cmd(killed, "--resume"))
    assert [r["step"] for r in _metric_rows(whole)] == [3, 5, 6]
    assert _metric_rows(killed) == _metric_rows(whole)


def test_finetuning_at_a_higher_resolution_resizes_swin_and_vit_position_tables(bench, tmp_path):
    """The paper pre-trains at 224 px (Swin window 7) and fine-tunes at 384 px (window 12)."""
    from ccrk.tokenizer import load_tokenizer

    tok = load_tokenizer(bench["tok"])
    swin = {"embed_dim": 24, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 1, 1)}
    low = {**MODEL, "image_encoder": "swin_tiny_patch4_window7_224", "image_size": 64,
           "image_kwargs": {**swin, "window_size": 4}}
    high = {**low, "image_size": 128, "image_kwargs": {**swin, "window_size": 8}}
    small = build_seeded_model(ModelConfig.from_dict(low), tok, seed=0)
    save_model(small, tmp_path / "low")
    big = build_seeded_model(ModelConfig.from_dict(high), tok, seed=1)
    load_pretrained(big, tmp_path / "low")
    a, b = small.state_dict(), big.state_dict()
    tables = [k for k in b if k.endswith("relative_position_bias_table")]
    assert tables and b[tables[0]].shape[0] == 15 * 15 and a[tables[0]].shape[0] == 7 * 7
    for key in b:
        if key not in tables:
            assert torch.equal(a[key], b[key]), f"{key} should be loaded unchanged"
    images = torch.rand(2, 3, 128, 128)
    assert all(torch.isfinite(t).all() for t in big.encode_image(images))

    vit_low = {**MODEL, "image_size": 32}
    vit_high = {**MODEL, "image_size": 64}
    small = build_seeded_model(ModelConfig.from_dict(vit_low), tok, seed=0)
    save_model(small, tmp_path / "vit")
    big = build_seeded_model(ModelConfig.from_dict(vit_high), tok, seed=1)
    load_pretrained(big, tmp_path / "vit")
    key = next(k for k in big.state_dict() if k.endswith("pos_embed"))
    assert small.state_dict()[key].shape[1] == 1 + 16 and big.state_dict()[key].shape[1] == 1 + 64
    # the [CLS] position is carried over as it is
    assert torch.equal(small.state_dict()[key][:, 0], big.state_dict()[key][:, 0])

    # a real architecture change is still refused
    other = build_seeded_model(ModelConfig.from_dict({**high, "embed_dim": 16}), tok, seed=1)
    with pytest.raises(ValueError, match="architecture differs"):
        load_pretrained(other, tmp_path / "low")


def test_the_configured_crop_scale_reaches_the_training_transform(bench):
    from ccrk.data.manifest import read_manifest
    from ccrk.tokenizer import load_tokenizer
    from ccrk.train.builders import train_data

    records = read_manifest(bench["synth"] / "train.jsonl", image_root=bench["synth"])
    dataset, _ = train_data(records, bench["synth"], ["en"], "one_to_k", ModelConfig.from_dict(MODEL),
                            load_tokenizer(bench["tok"]), seed=0, crop_scale=(0.9, 1.0))
    assert dataset.transform.scale == (0.9, 1.0)
    assert TrainConfig().crop_scale == [0.5, 1.0]  # the default keeps the earlier behaviour


def test_auc_equals_a_pairwise_count():
    from ccrk.train.validate import _auc

    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 6, 40).astype(float), rng.integers(0, 6, 30).astype(float)  # many ties
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    assert _auc(pos, neg) == pytest.approx(wins / (len(pos) * len(neg)), abs=1e-12)
    assert _auc(np.array([2.0]), np.array([1.0])) == 1.0 and _auc(np.array([1.0]), np.array([1.0])) == 0.5


@pytest.mark.slow
def test_pretraining_validation_is_logged_every_epoch_and_changes_no_weight(bench, reference_run, tmp_path):
    """``--val-manifest``: the learning curve in val.jsonl, the same weights, and the same curve after a kill."""
    from ccrk.models import load_model
    from ccrk.tokenizer import load_tokenizer
    from ccrk.train.precision import Precision
    from ccrk.train.validate import _Images, pretraining_validation

    val = ["--val-manifest", str(bench["synth"] / "val.jsonl")]
    out = tmp_path / "validated"
    proc = _run(_pretrain_cmd(bench, out, *val))
    assert "validation after epoch 3: R@1" in proc.stderr
    rows = [{k: v for k, v in r.items() if k not in ("time", "val_s")} for r in JsonLines(out / "val.jsonl").read()]
    assert [(r["epoch"], r["step"]) for r in rows] == [(0, 0), (1, 6), (2, 12), (3, 18)]
    for r in rows:
        assert 0 <= r["r1"] <= 100 and r["mrv"] >= 0 and 0 <= r["itm_auc"] <= 1
        assert set(r["languages"]) == {"en", "de", "ja"}
    ref = load_file(str(reference_run / "model" / "model.safetensors"))
    got = load_file(str(out / "model" / "model.safetensors"))
    assert all(torch.equal(ref[k], got[k]) for k in ref)  # validating takes nothing from training's randomness
    # The last row is the saved model's own validation.
    from ccrk.data.manifest import read_manifest

    records = read_manifest(bench["synth"] / "val.jsonl", image_root=bench["synth"])
    again = pretraining_validation(load_model(out / "model"), records, bench["synth"], ["en", "de", "ja"],
                                   load_tokenizer(bench["tok"]), batch_size=100, device=torch.device("cpu"),
                                   precision=Precision("fp32", "cpu"), seed=3)
    assert again["r1"] == pytest.approx(rows[-1]["r1"]) and again["itm_auc"] == pytest.approx(rows[-1]["itm_auc"])

    # ITM AUC against a slow reference: each first caption encoded alone, its matching logit with its own image
    # and with the random other image, every (positive, negative) pair compared.
    model, tok = load_model(out / "model").eval(), load_tokenizer(bench["tok"])
    with torch.no_grad():
        image_tokens = torch.cat([model.encode_image(torch.stack([_Images(records, bench["synth"],
                                  model.config.image_size)[i]]))[0] for i in range(len(records))])
        n = len(records)
        other = (np.arange(n) + np.random.default_rng(3).integers(1, n, size=n)) % n
        pos, neg = [], []
        for lang in ["en", "de", "ja"]:
            for i, record in enumerate(records):
                enc = tok([record.captions[lang][0]], truncation=True, max_length=model.config.max_length,
                          return_tensors="pt")
                t, _ = model.encode_text(enc["input_ids"], enc["attention_mask"])
                for j, out_list in ((i, pos), (int(other[i]), neg)):
                    logit = model.itm_logits(t, enc["attention_mask"], image_tokens, torch.tensor([j]))[0, 1]
                    out_list.append(float(logit))
    pairs = [(p > q) + 0.5 * (p == q) for p in pos for q in neg]
    assert again["itm_auc"] == pytest.approx(sum(pairs) / len(pairs), abs=2 / len(pairs))

    killed = tmp_path / "killed"
    _run(_pretrain_cmd(bench, killed, *val), env={**_env(), "CCRK_TRAIN_KILL_AFTER_STEP": "14"}, expect=-9)
    _run(_pretrain_cmd(bench, killed, *val, "--resume"))
    assert [{k: v for k, v in r.items() if k not in ("time", "val_s")}
            for r in JsonLines(killed / "val.jsonl").read()] == rows


def test_init_seed_fixes_the_initial_weights_and_leaves_the_rest_to_the_seed(bench, tmp_path):
    """``train.init_seed``: runs with different seeds start from the same weights and still train differently
    (data order, the steps' draws); without it the seed draws the weights. At lr 1e-7 six AdamW steps move
    a weight by at most ~6e-7, so the trained weights show where each run started."""
    runs = {}
    for name, seed, extra in (("seed3", "3", []), ("seed5_init3", "5", ["--set", "train.init_seed=3"]),
                              ("seed5", "5", [])):
        out = tmp_path / name
        cmd = _pretrain_cmd(bench, out, "--set", "train.epochs=1", "--set", "train.lr=1e-7", *extra)
        cmd[cmd.index("--seed") + 1] = seed
        _run(cmd)
        runs[name] = load_file(str(out / "model" / "model.safetensors"))
    ref, same_start, other = runs["seed3"], runs["seed5_init3"], runs["seed5"]
    assert all(torch.allclose(ref[k], same_start[k], rtol=0, atol=1e-5) for k in ref)
    assert not all(torch.equal(ref[k], same_start[k]) for k in ref)  # the seed still orders the data
    assert not all(torch.allclose(ref[k], other[k], rtol=0, atol=1e-3) for k in ref)
    resolved = yaml.safe_load((tmp_path / "seed5_init3" / "config.resolved.yaml").read_text())
    assert (resolved["train"]["seed"], resolved["train"]["init_seed"]) == (5, 3)


def test_a_non_finite_loss_stops_training_naming_the_step_and_keeps_the_last_good_checkpoint(bench, tmp_path):
    """An absurd rate (finite, so the config accepts it) blows the weights up: the run refuses to go on."""
    out = tmp_path / "run"
    proc = _run(_pretrain_cmd(bench, out, "--set", "train.lr=1e30", "--set", "train.save_every=1",
                              "--set", "train.keep_last=100"), expect=2)
    last = proc.stderr.strip().splitlines()[-1]
    match = re.fullmatch(r"ccrk pretrain: error: step (\d+): (the loss is|the gradient norm is) .*; stopped before "
                         r"updating the weights \(lower train\.lr or check the data\); (.*)", last)
    assert match, proc.stderr[-2000:]
    step = int(match.group(1))
    saved = ckpt.list_checkpoints(out / "checkpoints")
    assert [s for s, _ in saved] == list(range(1, step))  # every step before the bad one, none after
    if saved:
        assert match.group(3) == f"the last checkpoint, {saved[-1][1]}, is kept"
        state = ckpt.load_checkpoint(saved[-1][1])["model"]
        assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())
    assert not (out / "model").exists()
