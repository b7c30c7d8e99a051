"""Launchers: in process, and through submitit (its local cluster stands in for Slurm here)."""
from __future__ import annotations

import argparse
import functools
import os
import signal
import time
from pathlib import Path

import pytest

from ccrk.config import ConfigError
from ccrk.launch import SlurmParams, add_launcher_args, launch, slurm_params_from_args


class Square:
    """A picklable job, as a submitted trainer is."""

    def __init__(self, x: int) -> None:
        self.x = x

    def __call__(self) -> int:
        return self.x * self.x


def test_local_runs_in_process() -> None:
    assert launch(Square(7), "local") == 49


def test_unknown_launcher_is_named() -> None:
    with pytest.raises(ValueError, match="unknown launcher 'pbs'"):
        launch(Square(1), "pbs")


def test_submitit_job_runs_and_reports_its_id(tmp_path: Path) -> None:
    lines: list[str] = []
    params = SlurmParams(cluster="local", folder=str(tmp_path / "%j"), gpus_per_node=0, timeout_min=5)
    # The job must unpickle in another process: use a callable from an importable module.
    assert launch(functools.partial(pow, 6, 2), "slurm", params, name="square", log=lines.append) == 36
    assert lines[0].startswith("submitted square as Slurm job ")
    assert any("stdout:" in line for line in lines)
    assert "finished" in lines[-1]


def test_a_ctrl_c_while_the_job_is_being_queued_cancels_it(tmp_path: Path, monkeypatch) -> None:
    """The signal lands after sbatch has queued the job but before its id is back."""
    import submitit

    queued: list = []
    real_submit = submitit.AutoExecutor.submit

    def submit_then_interrupt(self, fn, *args, **kwargs):
        job = real_submit(self, fn, *args, **kwargs)
        queued.append(job)
        os.kill(os.getpid(), signal.SIGINT)
        return job

    monkeypatch.setattr(submitit.AutoExecutor, "submit", submit_then_interrupt)
    lines: list[str] = []
    params = SlurmParams(cluster="local", folder=str(tmp_path / "%j"), gpus_per_node=0, timeout_min=5)
    before = signal.getsignal(signal.SIGINT)  # pytest-xdist's workers ignore SIGINT
    with pytest.raises(SystemExit) as stop:
        launch(functools.partial(time.sleep, 120), "slurm", params, name="sleep", log=lines.append)
    assert stop.value.code == 128 + signal.SIGINT
    assert any(line.startswith("received signal 2: cancelling Slurm job") for line in lines)
    (job,) = queued
    deadline = time.monotonic() + 30
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.done(), "the queued job was left running"
    assert signal.getsignal(signal.SIGINT) == before


def test_executor_parameters_one_task_per_gpu() -> None:
    params = SlurmParams(partition="gpu", account="proj", gpus_per_node=4, nodes=2, mem_gb=64, additional={"gres": "gpu:a100:4"})
    got = params.executor_parameters()
    assert got["tasks_per_node"] == 4 and got["gpus_per_node"] == 4 and got["nodes"] == 2
    assert got["slurm_partition"] == "gpu" and got["slurm_account"] == "proj"
    assert got["slurm_additional_parameters"] == {"gres": "gpu:a100:4"}
    assert "slurm_qos" not in got


def test_config_then_flags_and_bad_keys() -> None:
    parser = argparse.ArgumentParser()
    add_launcher_args(parser)
    args = parser.parse_args(["--launcher", "slurm", "--slurm-gpus-per-node", "8", "--slurm-additional", "exclude=n1"])
    params = slurm_params_from_args(args, {"launch": {"slurm": {"partition": "a100", "gpus_per_node": 2}}})
    assert (params.partition, params.gpus_per_node, params.additional) == ("a100", 8, {"exclude": "n1"})
    with pytest.raises(ConfigError, match="launch.slurm.partiton"):
        SlurmParams.from_dict({"partiton": "x"})


def test_single_device_work_runs_one_task_even_where_training_asks_for_more(monkeypatch) -> None:
    import argparse

    from ccrk import launch as launch_module

    seen = {}
    monkeypatch.setattr(launch_module, "launch", lambda job, launcher, slurm, name: seen.setdefault("p", slurm))
    parser = argparse.ArgumentParser()
    add_launcher_args(parser)
    args = parser.parse_args(["--launcher", "slurm"])
    config = {"launch": {"slurm": {"gpus_per_node": 8, "nodes": 2, "partition": "gpu"}}}
    launch_module.launch_from_args(lambda: None, args, config, "evaluate", single_device=True)
    assert (seen["p"].gpus_per_node, seen["p"].nodes, seen["p"].partition) == (1, 1, "gpu")
    assert seen["p"].executor_parameters()["tasks_per_node"] == 1
    seen.clear()
    launch_module.launch_from_args(lambda: None, args, config, "pretrain")
    assert seen["p"].executor_parameters()["tasks_per_node"] == 8
