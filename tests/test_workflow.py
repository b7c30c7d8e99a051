"""The Snakemake DAG: it plans, validates its config by key, and runs the embedded default's first steps."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _snakemake(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A copy of the workflow files, so runs never touch the checkout's resources/."""
    for name in ("Snakefile", "workflow", "config", "profiles"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


def test_dry_run_lists_every_rule(workdir: Path) -> None:
    result = _snakemake(workdir, "-n")
    assert result.returncode == 0, result.stderr
    for rule in ("synth", "tokenizer", "all"):
        assert f"rule {rule}:" in result.stdout or f"\n{rule} " in result.stdout, result.stdout


def test_misspelt_config_key_is_named(workdir: Path) -> None:
    cfg = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    cfg["synth"]["imagez"] = cfg["synth"].pop("images")
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    result = _snakemake(workdir, "-n")
    assert result.returncode != 0
    assert "imagez" in result.stdout + result.stderr


def test_lint_is_clean(workdir: Path) -> None:
    result = _snakemake(workdir, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_miniature_run_builds_benchmark_and_tokenizer(workdir: Path) -> None:
    cfg = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    cfg["synth"]["images"] = {"pretrain": 40, "train": 12, "val": 6, "test": 8}
    cfg["synth"]["few_shot"] = [1, 5]
    cfg["tokenizer"]["vocab_size"] = 800
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    result = _snakemake(workdir, "--cores", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (workdir / "resources" / "synth" / "test.jsonl").is_file()
    assert (workdir / "resources" / "tokenizer" / "tokenizer.json").is_file()
    assert "images a split: pretrain 40" in (workdir / "logs" / "synth.log").read_text()
    again = _snakemake(workdir, "--cores", "1", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
