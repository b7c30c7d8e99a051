"""GPU rules as real Slurm jobs through submitit, against the local Slurm of tests/slurm/local-slurm.sh.

Marked ``slurm``: ``make test`` leaves them out; ``make test-slurm`` (and CI)
starts the cluster and runs them one at a time. Without a running Slurm they
skip, unless ``CCRK_REQUIRE_SLURM=1`` (CI), where that is a failure.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from test_train import (_env, _metric_rows, _pretrain_cmd, _run, assert_ddp_equals_accumulation, build_bench,
                        ddp_comparison_config)
from test_workflow import _config, _copy_workflow, _snakemake, _write_config, miniature

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[1]
SUBMITTED = re.compile(r"submitted (\S+) as Slurm job (\d+)")


def _slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    probe = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=30)
    return probe.returncode == 0 and any(s in probe.stdout for s in ("idle", "mixed", "allocated"))


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster() -> None:
    if not _slurm_up():
        message = "no local Slurm running: start it with `tests/slurm/local-slurm.sh start` (as root)"
        if os.environ.get("CCRK_REQUIRE_SLURM") == "1":
            pytest.fail(message)
        pytest.skip(message)


def _sacct(job_ids: list[str]) -> dict[str, str]:
    """State of each job's allocation, from the accounting database (what submitit trusts too)."""
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return dict(line.split("|", 1) for line in out.splitlines() if line)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# -- the embedded DAG with the Slurm profile ----------------------------------------------------------


def test_the_slurm_profile_runs_every_gpu_rule_as_a_slurm_job_with_the_local_results(tmp_path: Path) -> None:
    runs = {}
    for name, profile in (("local", []), ("slurm", ["--profile", "slurm"])):
        (tmp_path / name).mkdir()
        workdir = _copy_workflow(tmp_path / name)
        _write_config(workdir, miniature(_config(workdir)))
        start = time.perf_counter()
        result = _snakemake(workdir, *profile, "--cores", "2")
        runs[name] = (workdir, time.perf_counter() - start)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    slurm_dir, local_dir = runs["slurm"][0], runs["local"][0]

    # every GPU rule's log names its Slurm job; accounting has them all COMPLETED
    jobs = {}
    for log in sorted((slurm_dir / "logs").rglob("*.log")):
        rule = log.relative_to(slurm_dir / "logs").parts[0]
        found = SUBMITTED.search(log.read_text())
        if rule in ("pretrain", "finetune", "evaluate"):
            assert found, f"{log} names no Slurm job"
            jobs[str(log.relative_to(slurm_dir / "logs"))] = found.group(2)
            assert "stdout: " in log.read_text() and "stderr: " in log.read_text()
        else:
            assert not found, f"{log}: the light rule {rule} should stay local"
    assert len(jobs) == 3 + 6 + 6, sorted(jobs)
    # accounting records a job's end a moment after its rule has read the result
    _wait(lambda: all(s == "COMPLETED" for s in _sacct(list(jobs.values())).values())
          and len(_sacct(list(jobs.values()))) == len(jobs), 60, "sacct to record every job COMPLETED")

    # the same numbers as the local profile
    for metrics in sorted((local_dir / "results" / "metrics").rglob("metrics.json")):
        a = json.loads(metrics.read_text())
        b = json.loads((slurm_dir / metrics.relative_to(local_dir)).read_text())
        for key in ("per_language", "average", "recall_spread", "mrv"):
            assert a[key] == b[key], f"{metrics.relative_to(local_dir)}: {key} differs between local and Slurm"
    for weights in sorted((local_dir / "results" / "models").rglob("model.safetensors")):
        a, b = load_file(str(weights)), load_file(str(slurm_dir / weights.relative_to(local_dir)))
        assert all(torch.equal(a[k], b[k]) for k in a), weights.relative_to(local_dir)
    (tmp_path / "timings.json").write_text(json.dumps({k: v[1] for k, v in runs.items()}))
    print(f"embedded miniature DAG: local {runs['local'][1]:.1f} s, Slurm profile {runs['slurm'][1]:.1f} s")


# -- pre-emption and multi-task jobs ------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> dict[str, Path]:
    return build_bench(tmp_path_factory.mktemp("slurm_bench"))


def _submitted_job(proc: subprocess.Popen) -> str:
    """The Slurm job id a running `ccrk ... --launcher slurm` reports on its stderr."""
    lines: list[str] = []

    def submitted() -> bool:
        lines.append(proc.stderr.readline())
        return any(SUBMITTED.search(line) for line in lines)

    _wait(submitted, 120, "the job to be submitted")
    return next(SUBMITTED.search(line) for line in lines if SUBMITTED.search(line)).group(2)


def _slurm_flags(folder: Path, *extra: str) -> list[str]:
    return ["--launcher", "slurm", "--slurm-folder", str(folder / "%j"), "--slurm-timeout-min", "20", *extra]


@pytest.mark.parametrize("interruption", ["requeue", "timeout"])
def test_a_requeued_pretraining_job_resumes_to_the_uninterrupted_weights(bench, tmp_path: Path,
                                                                          interruption: str) -> None:
    """`scontrol requeue` (pre-emption from outside: the job reruns as submitted) and a time-out (submitit's
    USR2 handler calls Trainer.checkpoint() and requeues the resubmission) both end with the weights of a
    run that was never interrupted."""
    reference = tmp_path / "reference"
    _run(_pretrain_cmd(bench, reference))

    out = tmp_path / "requeued"
    env = {**_env(), "CCRK_TRAIN_PAUSE_AFTER_STEP": "8"}  # save_every 4: a checkpoint at step 8
    proc = subprocess.Popen(_pretrain_cmd(bench, out, *_slurm_flags(tmp_path / "slurm")), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        job = _submitted_job(proc)
        _wait(lambda: any((tmp_path / "slurm" / job).glob("*_log.err")) and "pausing after step 8" in
              next((tmp_path / "slurm" / job).glob("*_log.err")).read_text(), 300, "step 8")
        assert [p.name for p in sorted((out / "checkpoints").iterdir())][-1] == "step_0000008.pt"
        if interruption == "requeue":
            subprocess.run(["scontrol", "requeue", job], check=True, timeout=30)
        else:  # what Slurm sends ahead of the time limit (submitit's own test hook does the same)
            subprocess.run(["scancel", job, "--signal", "USR2"], check=True, timeout=30)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    err = next((tmp_path / "slurm" / job).glob("*_log.err")).read_text()
    assert "resumed from" in err and "step_0000008.pt" in err
    if interruption == "requeue":
        assert "Slurm restart 1: resuming" in err
    else:  # submitit's handler resubmitted Trainer.checkpoint()'s resume=True trainer
        assert "Caught signal SIGUSR2" in err and "Slurm restart 1: resuming" not in err, err[-2000:]
    ref = load_file(str(reference / "model" / "model.safetensors"))
    got = load_file(str(out / "model" / "model.safetensors"))
    for key in ref:
        assert torch.equal(ref[key], got[key]), f"{key} differs after the requeue"
    assert _metric_rows(out) == _metric_rows(reference)

    def history() -> str:  # every run of the job (-D): the requeued one, then the completed one
        return subprocess.run(["sacct", "-n", "-X", "-P", "-D", "-o", "JobID,State", "-j", job],
                              capture_output=True, text=True, timeout=60).stdout.strip()

    # accounting records the end a moment after submitit has read the result
    _wait(lambda: history().endswith("COMPLETED"), 60, f"sacct to record job {job} COMPLETED")
    assert "REQUEUED" in history(), history()


def test_a_job_asking_for_two_tasks_runs_two_process_ddp(bench, tmp_path: Path) -> None:
    config = ddp_comparison_config(bench)
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    one = tmp_path / "one"
    _run(_pretrain_cmd(bench, one, config=path))
    two = tmp_path / "two"
    proc = _run(_pretrain_cmd(bench, two, *_slurm_flags(tmp_path / "slurm", "--slurm-gpus-per-node", "2"),
                              config=path))
    job = SUBMITTED.search(proc.stderr).group(2)
    resolved = yaml.safe_load((two / "config.resolved.yaml").read_text())
    def two_task_step() -> bool:  # accounting records a finished step a moment after the job returns
        steps = subprocess.run(["sacct", "-n", "-P", "-o", "JobID,NTasks,State", "-j", job], capture_output=True,
                               text=True, timeout=60).stdout
        return any(line.split("|")[1] == "2" and line.endswith("COMPLETED") for line in steps.splitlines())

    _wait(two_task_step, 60, f"sacct to show job {job}'s 2-task step COMPLETED")
    assert_ddp_equals_accumulation(bench, config, one, two)
    assert resolved["run"]["world_size"] == 2


def test_cancelling_the_waiting_command_cancels_its_slurm_job(bench, tmp_path: Path) -> None:
    """What happens when Snakemake is interrupted: the rule's process gets SIGTERM and must not orphan a job."""
    env = {**_env(), "CCRK_TRAIN_PAUSE_AFTER_STEP": "2"}
    proc = subprocess.Popen(_pretrain_cmd(bench, tmp_path / "run", *_slurm_flags(tmp_path / "slurm")), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job = _submitted_job(proc)
    _wait(lambda: _sacct([job]).get(job) == "RUNNING", 120, "the job to run")
    proc.terminate()
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    _wait(lambda: _sacct([job]).get(job, "").startswith("CANCELLED"), 60, "the job to be cancelled")


def test_interrupting_snakemake_cancels_the_slurm_jobs_of_its_running_rules(tmp_path: Path) -> None:
    (tmp_path / "wf").mkdir()
    workdir = _copy_workflow(tmp_path / "wf")
    config = miniature(_config(workdir))
    _write_config(workdir, config)
    n_pretrain = len(config["workflow"]["objectives"]) * len(config["workflow"]["seeds"])
    env = {**_env(), "CCRK_TRAIN_PAUSE_AFTER_STEP": "1"}  # pre-training jobs wait, so there is a job to cancel
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--profile", "slurm", "--cores", "2"], cwd=workdir,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def running_jobs() -> list[str]:
            """The running Slurm jobs of the pre-training rules, once every such rule has submitted its job."""
            logs = list((workdir / "logs" / "pretrain").rglob("*.log")) if (workdir / "logs" / "pretrain").is_dir() else []
            ids = [found.group(2) for log in logs if (found := SUBMITTED.search(log.read_text()))]
            if len(ids) < n_pretrain:
                return []
            return [j for j in ids if _sacct([j]).get(j) == "RUNNING"]

        # Every rule's process up (its job submitted; the local Slurm runs two at a time, the third pends) before
        # Ctrl-C, as on a DAG a user interrupts: once in CI a SIGINT sent 11 s after the rules started reached
        # one rule's process only, and Snakemake then waited for the others' jobs, which nothing cancelled.
        _wait(lambda: bool(running_jobs()), 300, f"all {n_pretrain} pre-training rules to submit, one to run")
        jobs = running_jobs()
        # Ctrl-C in a terminal: SIGINT to the foreground process group, i.e. Snakemake and its rules' processes
        # (Snakemake's local executor itself only waits for running rules).
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    _wait(lambda: all(_sacct(jobs).get(j, "").startswith("CANCELLED") for j in jobs), 60,
          f"jobs {jobs} to be cancelled")
    # and they leave the queue (after CG, "completing", while slurmd kills their processes)
    _wait(lambda: not subprocess.run(["squeue", "-h", "-j", ",".join(jobs)], capture_output=True,
                                     text=True).stdout.strip(), 60, f"jobs {jobs} to leave the queue")
