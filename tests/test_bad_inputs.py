"""The bad-input corpus: every command refuses a bad input in one line, with exit status 2, leaving nothing.

Each case builds one bad input (a malformed, truncated or mismatched file, a wrong config value, an output
that cannot be written) next to otherwise good ones, runs the command as a user would (``ccrk.cli.main``,
in process, so the corpus stays fast) and asserts what the project promises for bad input: exit status 2,
exactly one line on stderr that starts with ``ccrk <command>: error:`` and names the file (and line) or the
config key, no traceback, and nothing at the output location.

Cases that need an unwritable or a full file system run only where this process can make one: a non-root
user for permission bits (root ignores them), and a mountable tmpfs for a read-only or full disk; elsewhere
they are skipped with the reason.
"""
from __future__ import annotations

import copy
import gzip
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from ccrk.cli import main

LANGS = ["en", "de", "ja"]
MODEL = {
    "image_encoder": "test_resnet", "image_kwargs": {"output_stride": 16}, "image_size": 32,
    "text_config": {"model_type": "xlm-roberta", "hidden_size": 32, "num_attention_heads": 2,
                    "intermediate_size": 64, "max_position_embeddings": 80, "type_vocab_size": 1},
    "text_layers": 1, "fusion_layers": 1, "embed_dim": 32, "max_length": 72,
}
TRAIN = {"epochs": 1, "batch_size": 4, "lr": 1e-3, "warmup": 0, "num_workers": 0, "languages": LANGS}
BASE_CONFIG = {"model": MODEL, "train": TRAIN, "finetune": {"train": {"epochs": 1}, "k_test_candidates": [1]},
               "evaluate": {"bootstrap": 20, "mrv_languages": ["en", "de"]}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny benchmark, two tokenizers, a saved model (with its tokenizer's fingerprint) and one evaluation."""
    from ccrk.models import ModelConfig, build_model, save_model
    from ccrk.synth.config import SynthConfig
    from ccrk.synth.generate import generate
    from ccrk.tokenizer import load_tokenizer, manifest_texts, tokenizer_fingerprint, train_tokenizer

    root = tmp_path_factory.mktemp("bad_inputs")
    synth = root / "synth"
    generate(SynthConfig.from_dict({"images": {"pretrain": 12, "train": 8, "val": 8, "test": 8}, "few_shot": [1],
                                    "languages": LANGS}), synth)
    train_tokenizer(manifest_texts([synth / "pretrain.jsonl"]), root / "tok", vocab_size=700, max_length=72)
    train_tokenizer(manifest_texts([synth / "val.jsonl"]), root / "tok_other", vocab_size=400, max_length=72)
    tok = load_tokenizer(root / "tok")
    torch.manual_seed(0)
    save_model(build_model(ModelConfig.from_dict(MODEL), tokenizer=tok), root / "model",
               tokenizer_fingerprint=tokenizer_fingerprint(tok))
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(BASE_CONFIG))
    run = root / "run"
    assert main(["evaluate", "--config", str(config), "--model", str(root / "model"), "--tokenizer",
                 str(root / "tok"), "--manifest", str(synth / "test.jsonl"), "--k-test", "1", "--device", "cpu",
                 "--out", str(run)]) == 0
    return {"root": root, "synth": synth, "tok": root / "tok", "tok_other": root / "tok_other",
            "model": root / "model", "config": config, "run": run}


# -- building bad inputs ------------------------------------------------------------------------------------------


def _config(tmp: Path, **overrides: Any) -> Path:
    """BASE_CONFIG with ``section={key: value}`` merged in, written to ``tmp/config.yaml``."""
    cfg = copy.deepcopy(BASE_CONFIG)
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(cfg.get(section), dict):
            cfg[section].update(values)
        else:
            cfg[section] = values
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _manifest(env: dict[str, Path], tmp: Path, split: str, edit: Callable[[list[dict]], list[dict]]) -> Path:
    """A copy of a synthetic manifest (in the benchmark's directory, so image paths resolve) with ``edit`` applied."""
    records = [json.loads(line) for line in _lines(env["synth"] / f"{split}.jsonl")]
    path = env["synth"] / f"bad_{tmp.name}_{split}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in edit(records)), encoding="utf-8")
    return path


def _raw_manifest(env: dict[str, Path], tmp: Path, split: str, text: bytes) -> Path:
    path = env["synth"] / f"bad_{tmp.name}_{split}.jsonl"
    path.write_bytes(text)
    return path


def _image_copy(env: dict[str, Path], tmp: Path, content: Callable[[Path], None]) -> Path:
    """A pre-training manifest whose second record points at a new image made by ``content``."""
    records = [json.loads(line) for line in _lines(env["synth"] / "pretrain.jsonl")]
    image = env["synth"] / f"bad_{tmp.name}.png"
    content(image)
    records[1]["image"] = image.name
    path = env["synth"] / f"bad_{tmp.name}_pretrain.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _model_copy(env: dict[str, Path], tmp: Path, edit: Callable[[Path], None]) -> Path:
    model = tmp / "model_copy"
    shutil.copytree(env["model"], model)
    edit(model)
    return model


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# -- the commands, with good inputs by default ----------------------------------------------------------------------


def _synth(tmp: Path, config: Path | None = None, out: Path | None = None) -> list[str]:
    args = ["synth", "--out", str(out or tmp / "out")]
    return args + (["--config", str(config)] if config else [])


def _synth_config(tmp: Path, **synth: Any) -> Path:
    path = tmp / "synth.yaml"
    path.write_text(yaml.safe_dump({"synth": {"images": {"pretrain": 4, "train": 2, "val": 2, "test": 2},
                                              "few_shot": [1], **synth}}))
    return path


def _tokenizer(env: dict[str, Path], tmp: Path, manifest: Path | None = None, config: Path | None = None,
               out: Path | None = None) -> list[str]:
    args = ["tokenizer", "--manifest", str(manifest or env["synth"] / "pretrain.jsonl"), "--out",
            str(out or tmp / "out")]
    return args + (["--config", str(config)] if config else [])


def _pretrain(env: dict[str, Path], tmp: Path, manifest: Path | None = None, config: Path | None = None,
              tokenizer: Path | None = None, *extra: str) -> list[str]:
    return ["pretrain", "--config", str(config or env["config"]), "--manifest",
            str(manifest or env["synth"] / "pretrain.jsonl"), "--tokenizer", str(tokenizer or env["tok"]),
            "--objective", "one_to_k", "--out", str(tmp / "out"), "--no-progress", *extra]


def _finetune(env: dict[str, Path], tmp: Path, pretrained: Path | None = None, config: Path | None = None,
              tokenizer: Path | None = None, manifest: Path | None = None, *extra: str) -> list[str]:
    return ["finetune", "--config", str(config or env["config"]), "--pretrained", str(pretrained or env["model"]),
            "--regime", "all_languages", "--train-manifest", str(manifest or env["synth"] / "train.jsonl"),
            "--val-manifest", str(env["synth"] / "val.jsonl"), "--image-root", str(env["synth"]),
            "--tokenizer", str(tokenizer or env["tok"]), "--out", str(tmp / "out"), "--no-progress", *extra]


def _evaluate(env: dict[str, Path], tmp: Path, model: Path | None = None, tokenizer: Path | None = None,
              manifest: Path | None = None, config: Path | None = None, out: Path | None = None,
              *extra: str) -> list[str]:
    return ["evaluate", "--config", str(config or env["config"]), "--model", str(model or env["model"]),
            "--tokenizer", str(tokenizer or env["tok"]), "--manifest", str(manifest or env["synth"] / "test.jsonl"),
            "--device", "cpu", "--out", str(out or tmp / "out"), *(extra or ("--k-test", "1"))]


def _compare(a: Path, b: Path, out: Path, *extra: str) -> list[str]:
    return ["compare", str(a), str(b), "--bootstrap", "20", "--out", str(out), *extra]


def _ranks_copy(env: dict[str, Path], tmp: Path, edit: Callable[[Path], None]) -> Path:
    run = tmp / "run_copy"
    shutil.copytree(env["run"], run)
    edit(run)
    return run


# -- the corpus -----------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One bad input: ``build(env, tmp)`` returns the argv, the text the error must contain, the output path."""

    id: str
    build: Callable[[dict[str, Path], Path], tuple[list[str], str, Path | None]]


CASES: list[Case] = []


def case(id: str) -> Callable[[Callable], Callable]:
    def register(build: Callable) -> Callable:
        CASES.append(Case(id, build))
        return build
    return register


# synth ----------------------------------------------------------------------------------------------------------

@case("synth: images.pretrain is not a number")
def _(env, tmp):
    return _synth(tmp, _synth_config(tmp, images={"pretrain": "lots", "train": 2, "val": 2, "test": 2})), \
        "synth.images.pretrain", tmp / "out"


@case("synth: image_size is a word")
def _(env, tmp):
    return _synth(tmp, _synth_config(tmp, image_size="big")), "synth.image_size", tmp / "out"


@case("synth: misspelt key")
def _(env, tmp):
    return _synth(tmp, _synth_config(tmp, imagez=3)), "imagez", tmp / "out"


@case("synth: noise rate out of range names the language")
def _(env, tmp):
    cfg = _synth_config(tmp, languages=LANGS, noise={"de": {"substitute": 1.5}})
    return _synth(tmp, cfg), "synth.noise.de.substitute", tmp / "out"


@case("synth: unknown language")
def _(env, tmp):
    return _synth(tmp, _synth_config(tmp, languages=["en", "xx"])), "xx", tmp / "out"


@case("synth: negative seed")
def _(env, tmp):
    return _synth(tmp, _synth_config(tmp, seed=-1)), "synth.seed", tmp / "out"


@case("synth: non-finite number")
def _(env, tmp):
    return _synth(tmp, _synth_config(tmp, background_noise=float("nan"))), "synth.background_noise", tmp / "out"


@case("synth: YAML syntax error")
def _(env, tmp):
    path = tmp / "broken.yaml"
    path.write_text("synth:\n  images: {pretrain: 4\n  seed: 1\n")
    return _synth(tmp, path), str(path), tmp / "out"


@case("synth: config file missing")
def _(env, tmp):
    return _synth(tmp, tmp / "nope.yaml"), str(tmp / "nope.yaml"), tmp / "out"


@case("synth: --out is an existing file")
def _(env, tmp):
    out = tmp / "taken"
    out.write_text("mine")
    return _synth(tmp, _synth_config(tmp), out), str(out), None


@case("synth: --out under a file")
def _(env, tmp):
    (tmp / "afile").write_text("mine")
    return _synth(tmp, _synth_config(tmp), tmp / "afile" / "out"), str(tmp / "afile"), None


# tokenizer ------------------------------------------------------------------------------------------------------

@case("tokenizer: manifest missing")
def _(env, tmp):
    return _tokenizer(env, tmp, tmp / "missing.jsonl"), str(tmp / "missing.jsonl"), tmp / "out"


@case("tokenizer: malformed JSON line")
def _(env, tmp):
    good = (env["synth"] / "pretrain.jsonl").read_bytes().splitlines(keepends=True)
    path = _raw_manifest(env, tmp, "pretrain", b"".join(good[:2]) + b'{"image_id": "x", \n' + b"".join(good[2:]))
    return _tokenizer(env, tmp, path), f"{path}:3", tmp / "out"


@case("tokenizer: non-UTF-8 bytes")
def _(env, tmp):
    good = (env["synth"] / "pretrain.jsonl").read_bytes().splitlines(keepends=True)
    path = _raw_manifest(env, tmp, "pretrain", b"".join(good[:1]) + b"\xff\xfe\xfa\n" + b"".join(good[1:]))
    return _tokenizer(env, tmp, path), str(path), tmp / "out"


@case("tokenizer: vocab_size is a word")
def _(env, tmp):
    cfg = tmp / "tok.yaml"
    cfg.write_text(yaml.safe_dump({"tokenizer": {"vocab_size": "big"}}))
    return _tokenizer(env, tmp, config=cfg), "tokenizer.vocab_size", tmp / "out"


@case("tokenizer: empty caption")
def _(env, tmp):
    def edit(records):
        records[2]["captions"]["de"] = [""]
        return records
    path = _manifest(env, tmp, "pretrain", edit)
    return _tokenizer(env, tmp, path), f"{path}:3", tmp / "out"


@case("tokenizer: --out is an existing file")
def _(env, tmp):
    out = tmp / "taken"
    out.write_text("mine")
    return _tokenizer(env, tmp, out=out), str(out), None


# pretrain -------------------------------------------------------------------------------------------------------

@case("pretrain: manifest missing")
def _(env, tmp):
    return _pretrain(env, tmp, tmp / "missing.jsonl"), str(tmp / "missing.jsonl"), tmp / "out"


@case("pretrain: last line truncated")
def _(env, tmp):
    data = (env["synth"] / "pretrain.jsonl").read_bytes()
    path = _raw_manifest(env, tmp, "pretrain", data[:-40])
    return _pretrain(env, tmp, path), f"{path}:{len(data.splitlines())}", tmp / "out"


@case("pretrain: record without captions")
def _(env, tmp):
    def edit(records):
        del records[3]["captions"]
        return records
    path = _manifest(env, tmp, "pretrain", edit)
    return _pretrain(env, tmp, path), f"{path}:4", tmp / "out"


@case("pretrain: captions of the wrong type")
def _(env, tmp):
    def edit(records):
        records[0]["captions"]["en"] = 42
        return records
    path = _manifest(env, tmp, "pretrain", edit)
    return _pretrain(env, tmp, path), f"{path}:1", tmp / "out"


@case("pretrain: a configured language missing from a record")
def _(env, tmp):
    def edit(records):
        del records[5]["captions"]["ja"]
        return records
    path = _manifest(env, tmp, "pretrain", edit)
    return _pretrain(env, tmp, path), "ja", tmp / "out"


@case("pretrain: duplicate image ids")
def _(env, tmp):
    def edit(records):
        records[4]["image_id"] = records[1]["image_id"]
        return records
    path = _manifest(env, tmp, "pretrain", edit)
    return _pretrain(env, tmp, path), f"{path}:5", tmp / "out"


@case("pretrain: whitespace-only caption")
def _(env, tmp):
    def edit(records):
        records[6]["captions"]["en"] = ["   "]
        return records
    path = _manifest(env, tmp, "pretrain", edit)
    return _pretrain(env, tmp, path), f"{path}:7", tmp / "out"


@case("pretrain: image missing")
def _(env, tmp):
    path = _image_copy(env, tmp, lambda image: None)
    return _pretrain(env, tmp, path), f"bad_{tmp.name}.png", tmp / "out"


@case("pretrain: zero-byte image")
def _(env, tmp):
    path = _image_copy(env, tmp, lambda image: image.write_bytes(b""))
    return _pretrain(env, tmp, path), f"bad_{tmp.name}.png", tmp / "out"


@case("pretrain: truncated image")
def _(env, tmp):
    first = json.loads(_lines(env["synth"] / "pretrain.jsonl")[0])["image"]
    path = _image_copy(env, tmp, lambda image: image.write_bytes((env["synth"] / first).read_bytes()[:200]))
    return _pretrain(env, tmp, path), f"bad_{tmp.name}.png", tmp / "out"


@case("pretrain: not an image")
def _(env, tmp):
    path = _image_copy(env, tmp, lambda image: image.write_text("this is text, not a PNG"))
    return _pretrain(env, tmp, path), f"bad_{tmp.name}.png", tmp / "out"


@case("pretrain: image path is a directory")
def _(env, tmp):
    path = _image_copy(env, tmp, lambda image: image.mkdir())
    return _pretrain(env, tmp, path), f"bad_{tmp.name}.png", tmp / "out"


@case("pretrain: misspelt train key")
def _(env, tmp):
    return _pretrain(env, tmp, config=_config(tmp, train={"epoch": 2})), "train.epoch", tmp / "out"


@case("pretrain: epochs is a word")
def _(env, tmp):
    return _pretrain(env, tmp, config=_config(tmp, train={"epochs": "ten"})), "train.epochs", tmp / "out"


@case("pretrain: negative learning rate")
def _(env, tmp):
    return _pretrain(env, tmp, config=_config(tmp, train={"lr": -1})), "train.lr", tmp / "out"


@case("pretrain: warmup neither a fraction nor whole steps")
def _(env, tmp):
    return _pretrain(env, tmp, config=_config(tmp, train={"warmup": 5.5})), "train.warmup", tmp / "out"


@case("pretrain: learning rate .inf")
def _(env, tmp):
    return _pretrain(env, tmp, None, None, None, "--set", "train.lr=.inf"), "train.lr", tmp / "out"


@case("pretrain: learning rate .nan")
def _(env, tmp):
    return _pretrain(env, tmp, None, None, None, "--set", "train.lr=.nan"), "train.lr", tmp / "out"


@case("pretrain: unknown objective weight")
def _(env, tmp):
    return _pretrain(env, tmp, config=_config(tmp, objective={"weights": {"itc": 1, "xyz": 1}})), "xyz", tmp / "out"


@case("pretrain: unknown language code")
def _(env, tmp):
    return _pretrain(env, tmp, config=_config(tmp, train={"languages": ["en", "english"]})), "english", tmp / "out"


@case("pretrain: language no record has")
def _(env, tmp):
    return _pretrain(env, tmp, config=_config(tmp, train={"languages": ["en", "fr"]})), "fr", tmp / "out"


@case("pretrain: model key misspelt")
def _(env, tmp):
    return _pretrain(env, tmp, config=_config(tmp, model={"embed_dimm": 8})), "embed_dimm", tmp / "out"


@case("pretrain: tokenizer directory missing")
def _(env, tmp):
    return _pretrain(env, tmp, None, None, tmp / "no_tok"), str(tmp / "no_tok"), tmp / "out"


@case("pretrain: tokenizer directory empty")
def _(env, tmp):
    (tmp / "empty_tok").mkdir()
    return _pretrain(env, tmp, None, None, tmp / "empty_tok"), str(tmp / "empty_tok"), tmp / "out"


@case("pretrain: corrupt tokenizer.json")
def _(env, tmp):
    tok = tmp / "bad_tok"
    shutil.copytree(env["tok"], tok)
    _truncate(tok / "tokenizer.json", 0.3)
    return _pretrain(env, tmp, None, None, tok), str(tok), tmp / "out"


@case("pretrain: validation manifest missing")
def _(env, tmp):
    return _pretrain(env, tmp, None, None, None, "--val-manifest", str(tmp / "val.jsonl")), \
        str(tmp / "val.jsonl"), tmp / "out"


@case("pretrain: --out is an existing file")
def _(env, tmp):
    args = _pretrain(env, tmp)
    (tmp / "out").write_text("mine")
    return args, str(tmp / "out"), None


# finetune -------------------------------------------------------------------------------------------------------

@case("finetune: pre-trained model missing")
def _(env, tmp):
    return _finetune(env, tmp, tmp / "nope"), str(tmp / "nope"), tmp / "out"


@case("finetune: truncated model.safetensors")
def _(env, tmp):
    model = _model_copy(env, tmp, lambda m: _truncate(m / "model.safetensors"))
    return _finetune(env, tmp, model), str(model / "model.safetensors"), tmp / "out"


@case("finetune: truncated checkpoint as the starting point")
def _(env, tmp):
    checkpoint = tmp / "step_0000004.pt"
    torch.save({"format": "x", "model": {"w": torch.zeros(1000)}}, checkpoint)
    _truncate(checkpoint, 0.5)
    return _finetune(env, tmp, checkpoint), str(checkpoint), tmp / "out"


@case("finetune: a file that is not a checkpoint as the starting point")
def _(env, tmp):
    checkpoint = tmp / "model.pt"
    checkpoint.write_text("not a checkpoint")
    return _finetune(env, tmp, checkpoint), str(checkpoint), tmp / "out"


@case("finetune: corrupt config.json")
def _(env, tmp):
    model = _model_copy(env, tmp, lambda m: (m / "config.json").write_text('{"format": "ccrk.model/1", '))
    return _finetune(env, tmp, model), str(model / "config.json"), tmp / "out"


@case("finetune: a tokenizer other than the model's")
def _(env, tmp):
    return _finetune(env, tmp, None, None, env["tok_other"]), str(env["tok_other"]), tmp / "out"


@case("finetune: architecture differs from the saved model")
def _(env, tmp):
    return _finetune(env, tmp, config=_config(tmp, model={"embed_dim": 16})), str(env["model"]), tmp / "out"


@case("finetune: --shots larger than the manifest")
def _(env, tmp):
    args = _finetune(env, tmp)
    args[args.index("all_languages")] = "few_shot"
    return args + ["--language", "de", "--shots", "500"], "--shots 500", tmp / "out"


@case("finetune: fine-tuning lr is a word")
def _(env, tmp):
    return _finetune(env, tmp, config=_config(tmp, finetune={"train": {"lr": "fast"}})), "finetune.train.lr", \
        tmp / "out"


@case("finetune: train manifest lacks a language")
def _(env, tmp):
    def edit(records):
        del records[0]["captions"]["de"]
        return records
    path = _manifest(env, tmp, "train", edit)
    return _finetune(env, tmp, None, None, None, path), "de", tmp / "out"


# evaluate -------------------------------------------------------------------------------------------------------

@case("evaluate: model directory missing")
def _(env, tmp):
    return _evaluate(env, tmp, tmp / "nope"), str(tmp / "nope"), tmp / "out"


@case("evaluate: truncated model.safetensors")
def _(env, tmp):
    model = _model_copy(env, tmp, lambda m: _truncate(m / "model.safetensors", 0.9))
    return _evaluate(env, tmp, model), str(model / "model.safetensors"), tmp / "out"


@case("evaluate: model.safetensors missing")
def _(env, tmp):
    model = _model_copy(env, tmp, lambda m: (m / "model.safetensors").unlink())
    return _evaluate(env, tmp, model), str(model / "model.safetensors"), tmp / "out"


@case("evaluate: a smaller tokenizer than the model's")
def _(env, tmp):
    return _evaluate(env, tmp, None, env["tok_other"]), str(env["tok_other"]), tmp / "out"


@case("evaluate: two captions of one test image in an MRV language")
def _(env, tmp):
    # (An image lacking an MRV language is left out of MRV and listed: real test sets have such holes.)
    def edit(records):
        records[2]["captions"]["de"] = records[2]["captions"]["de"] * 2
        return records
    path = _manifest(env, tmp, "test", edit)
    return _evaluate(env, tmp, None, None, path), str(path), tmp / "out"


@case("evaluate: test image missing")
def _(env, tmp):
    def edit(records):
        records[1]["image"] = "images/none.png"
        return records
    path = _manifest(env, tmp, "test", edit)
    return _evaluate(env, tmp, None, None, path), "none.png", tmp / "out"


@case("evaluate: --out is an existing file")
def _(env, tmp):
    (tmp / "out").write_text("mine")
    return _evaluate(env, tmp), str(tmp / "out"), None


@case("evaluate: k_test auto without retrieval.json")
def _(env, tmp):
    return _evaluate(env, tmp, None, None, None, None, None, "--k-test", "auto"), "retrieval.json", tmp / "out"


@case("evaluate: bootstrap 0")
def _(env, tmp):
    return _evaluate(env, tmp, config=_config(tmp, evaluate={"bootstrap": 0})), "bootstrap", tmp / "out"


@case("evaluate: language not in the manifest")
def _(env, tmp):
    return _evaluate(env, tmp, None, None, None, None, None, "--k-test", "1", "--languages", "en,fr"), "fr", \
        tmp / "out"


@case("evaluate: misspelt evaluate key")
def _(env, tmp):
    return _evaluate(env, tmp, config=_config(tmp, evaluate={"bootstrapp": 3})), "bootstrapp", tmp / "out"


@case("evaluate: scenes file missing")
def _(env, tmp):
    return _evaluate(env, tmp, None, None, None, None, None, "--k-test", "1", "--scenes", str(tmp / "s.jsonl")), \
        str(tmp / "s.jsonl"), tmp / "out"


# compare --------------------------------------------------------------------------------------------------------

@case("compare: truncated ranks.npz")
def _(env, tmp):
    run = _ranks_copy(env, tmp, lambda r: _truncate(r / "ranks.npz"))
    return _compare(run, env["run"], tmp / "cmp.json"), str(run / "ranks.npz"), tmp / "cmp.json"


@case("compare: ranks missing")
def _(env, tmp):
    return _compare(tmp / "none", env["run"], tmp / "cmp.json"), str(tmp / "none"), tmp / "cmp.json"


@case("compare: ranks.npz that is not a zip")
def _(env, tmp):
    run = _ranks_copy(env, tmp, lambda r: (r / "ranks.npz").write_text("not numpy"))
    return _compare(run, env["run"], tmp / "cmp.json"), str(run / "ranks.npz"), tmp / "cmp.json"


@case("compare: runs on different test images")
def _(env, tmp):
    import numpy as np

    def edit(run: Path) -> None:
        with np.load(run / "ranks.npz") as data:
            arrays = {k: data[k] for k in data.files}
        arrays["image_ids"] = np.array([f"other-{i}" for i in range(len(arrays["image_ids"]))])
        np.savez(run / "ranks.npz", **arrays)
    run = _ranks_copy(env, tmp, edit)
    return _compare(run, env["run"], tmp / "cmp.json"), "image", tmp / "cmp.json"


@case("compare: --bootstrap 0")
def _(env, tmp):
    return _compare(env["run"], env["run"], tmp / "cmp.json", "--bootstrap", "0"), "--bootstrap", tmp / "cmp.json"


@case("compare: --out under a file")
def _(env, tmp):
    (tmp / "afile").write_text("mine")
    return _compare(env["run"], env["run"], tmp / "afile" / "cmp.json"), str(tmp / "afile"), None


# tables ---------------------------------------------------------------------------------------------------------

def _metrics_tree(env: dict[str, Path], tmp: Path, edit: Callable[[Path], None]) -> Path:
    root = tmp / "metrics"
    run = root / "synth" / "all_languages" / "one_to_k" / "seed0"
    shutil.copytree(env["run"], run)
    edit(run / "metrics.json")
    return root


@case("tables: metrics directory missing")
def _(env, tmp):
    return ["tables", "--metrics-dir", str(tmp / "none"), "--out", str(tmp / "out")], str(tmp / "none"), tmp / "out"


@case("tables: corrupt metrics.json")
def _(env, tmp):
    root = _metrics_tree(env, tmp, lambda m: _truncate(m, 0.5))
    return ["tables", "--metrics-dir", str(root), "--out", str(tmp / "out")], "metrics.json", tmp / "out"


@case("tables: metrics.json of another format")
def _(env, tmp):
    def edit(m: Path) -> None:
        doc = json.loads(m.read_text())
        doc["format"] = "someone-else/9"
        m.write_text(json.dumps(doc))
    root = _metrics_tree(env, tmp, edit)
    return ["tables", "--metrics-dir", str(root), "--out", str(tmp / "out")], "someone-else/9", tmp / "out"


# prepare --------------------------------------------------------------------------------------------------------

@case("prepare: multi30k annotations missing")
def _(env, tmp):
    (tmp / "data").mkdir()
    return ["prepare", "--dataset", "multi30k", "--root", str(tmp / "data"), "--out", str(tmp / "out")], \
        str(tmp / "data"), tmp / "out"


@case("prepare: xflickrco annotations missing")
def _(env, tmp):
    (tmp / "data").mkdir()
    return ["prepare", "--dataset", "xflickrco", "--root", str(tmp / "data"), "--out", str(tmp / "out")], \
        str(tmp / "data"), tmp / "out"


@case("prepare: a multi30k caption file shorter than its image list")
def _(env, tmp):
    fixtures = Path(__file__).resolve().parent / "fixtures" / "multi30k" / "task1"
    task = tmp / "data" / "multi30k" / "task1"
    shutil.copytree(fixtures, task)
    short = task / "raw" / "val.de.gz"
    short.chmod(0o644)  # the fixtures are kept read-only
    with gzip.open(short, "rt", encoding="utf-8") as handle:
        kept = handle.read().splitlines()[:-3]
    with gzip.open(short, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(kept) + "\n")
    return ["prepare", "--dataset", "multi30k", "--root", str(tmp / "data"), "--out", str(tmp / "out")], \
        str(short), tmp / "out"


# -- the assertion --------------------------------------------------------------------------------------------------


def _leftovers(out: Path) -> list[str]:
    if not out.parent.exists():
        return []
    return [p.name for p in out.parent.iterdir() if p.name == out.name or p.name.startswith(f".{out.name}.")]


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(bad: Case, env: dict[str, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    argv, names, out = bad.build(env, tmp_path)
    before = sorted(p.name for p in env["synth"].iterdir())
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}: {err}"
    assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{err}"
    assert lines[0].startswith(f"ccrk {argv[0]}: error: "), lines[0]
    assert names in lines[0], f"{names!r} not named in: {lines[0]}"
    assert "Traceback" not in err
    if out is not None:
        assert not _leftovers(out), f"left behind: {_leftovers(out)}"
    assert sorted(p.name for p in env["synth"].iterdir()) == before  # nothing written beside the inputs


def test_the_corpus_covers_every_command_with_at_least_60_cases() -> None:
    commands = {c.id.split(":")[0] for c in CASES}
    assert commands >= {"synth", "tokenizer", "pretrain", "finetune", "evaluate", "compare", "tables", "prepare"}
    assert len(CASES) >= 60, len(CASES)


# -- outputs that cannot be written -----------------------------------------------------------------------------------


def _mount_tmpfs(where: Path, options: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                              timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", str(where)], capture_output=True, timeout=20)


@pytest.mark.parametrize("command", ["synth", "evaluate", "compare"])
def test_a_read_only_output_is_refused_before_any_work(command: str, env: dict[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "ro"
    if os.geteuid() != 0:
        target.mkdir()
        target.chmod(0o555)
    elif not _mount_tmpfs(target, "ro,size=1m"):
        pytest.skip("running as root (permission bits do not apply) and no tmpfs can be mounted read-only here")
    try:
        out = target / "out"
        argv = {"synth": _synth(tmp_path, _synth_config(tmp_path), out),
                "evaluate": _evaluate(env, tmp_path, out=out),
                "compare": _compare(env["run"], env["run"], out)}[command]
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and str(target) in lines[0] and "writ" in lines[0], lines
        assert not out.exists()
    finally:
        if os.geteuid() == 0:
            _umount(target)


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "full"
    if not _mount_tmpfs(target, "size=24k"):
        pytest.skip("no small tmpfs can be mounted here (needs root and mount permission) to fill a disk")
    try:
        out = target / "synth"
        cfg = _synth_config(tmp_path, image_size=64)
        assert main(_synth(tmp_path, cfg, out)) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "No space left on device" in lines[0], lines
        assert not any(target.iterdir()), list(target.iterdir())
    finally:
        _umount(target)


def test_a_corrupt_image_met_during_training_stops_it_in_one_line(env: dict[str, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """--skip-image-check trusts the images, so training starts; the bad one stops it with an error naming it
    (after the run's own progress line), and no model is written."""
    path = _image_copy(env, tmp_path, lambda image: image.write_text("this is text, not a PNG"))
    assert main(_pretrain(env, tmp_path, path, None, None, "--skip-image-check")) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and all(line.startswith("[ccrk pretrain] ") for line in lines[:-1]), err
    assert lines[-1].startswith("ccrk pretrain: error: ") and f"bad_{tmp_path.name}.png" in lines[-1]
    assert not (tmp_path / "out" / "model").exists()
