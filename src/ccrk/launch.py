"""Run a unit of GPU work in this process or as a Slurm job through submitit.

Snakemake rules stay light: they call a ``ccrk`` command, which builds a job
(a callable, ideally with a ``checkpoint()`` method so that submitit can
requeue it after pre-emption or a time-out) and hands it to a launcher.
``local`` calls it here; ``slurm`` submits it with submitit and blocks until it
ends, so the rule finishes exactly when its outputs exist. There is one
submission path only: Snakemake's own Slurm executor is not used for these
rules.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from ccrk.config import check_keys

T = TypeVar("T")

LAUNCHERS: tuple[str, ...] = ("local", "slurm")


@dataclass
class SlurmParams:
    """What a GPU rule asks Slurm for. ``None`` leaves the cluster's default."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    gpus_per_node: int = 1
    nodes: int = 1
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    timeout_min: int = 60 * 24
    constraint: str | None = None
    #: Extra ``#SBATCH`` options, e.g. {"gres": "gpu:a100:4", "exclude": "node12"}.
    additional: dict[str, Any] = field(default_factory=dict)
    #: Where submitit keeps pickles and logs (%j is the job id); must be on a shared file system.
    folder: str = "logs/slurm/%j"
    #: submitit cluster name; "local" runs the job as a local subprocess (used by tests).
    cluster: str = "slurm"
    max_requeues: int = 3

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "launch.slurm") -> "SlurmParams":
        return cls(**check_keys(data, (f.name for f in fields(cls)), where))

    def executor_parameters(self) -> dict[str, Any]:
        """The ``update_parameters`` arguments: one task per GPU, as DDP wants."""
        tasks = max(self.gpus_per_node, 1)
        params: dict[str, Any] = {
            "nodes": self.nodes,
            "tasks_per_node": tasks,
            "gpus_per_node": self.gpus_per_node,
            "timeout_min": self.timeout_min,
        }
        if self.cpus_per_task is not None:
            params["cpus_per_task"] = self.cpus_per_task
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        for key in ("partition", "account", "qos", "constraint"):
            value = getattr(self, key)
            if value is not None:
                params[f"slurm_{key}"] = value
        if self.additional:
            params["slurm_additional_parameters"] = dict(self.additional)
        return params


@dataclass
class RestartableJob:
    """GPU work that is correct to run again from the start (atomic outputs, or resumable by itself).

    ``ccrk evaluate`` writes its outputs atomically and ``ccrk translate``
    skips finished shards, so after a pre-emption or time-out submitit's
    requeue simply calls it again. ``fn`` must be a module-level function
    (the job is pickled to reach the compute node).
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: The ``ccrk`` command it runs for: names its progress lines in the job's own process (a Slurm job's .err).
    command: str = "job"

    def __call__(self) -> Any:
        from ccrk.cli import configure_logging

        configure_logging(self.command)
        return self.fn(*self.args, **self.kwargs)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(RestartableJob(self.fn, self.args, dict(self.kwargs), self.command))


def launch_from_args(job: Callable[[], T], args: argparse.Namespace, config: dict[str, Any] | None,
                     name: str, single_device: bool = False) -> T:
    """``launch`` with the launcher and Slurm parameters a command was given (``add_launcher_args``).

    ``single_device`` work (evaluation, translation) runs as one task on at
    most one GPU even where ``launch.slurm`` asks for more for training: N
    tasks would each redo the whole job and race on its outputs.
    """
    slurm = slurm_params_from_args(args, config) if args.launcher == "slurm" else None
    if slurm is not None and single_device and (slurm.gpus_per_node > 1 or slurm.nodes > 1):
        print(f"{name}: one task on one GPU (launch asked for {slurm.nodes} node(s) x {slurm.gpus_per_node} GPUs)",
              file=sys.stderr, flush=True)
        slurm.gpus_per_node, slurm.nodes = 1, 1
    return launch(job, launcher=args.launcher, slurm=slurm, name=name)


def run_local(job: Callable[[], T]) -> T:
    return job()


def run_slurm(job: Callable[[], T], params: SlurmParams, name: str, log: Callable[[str], None] = print) -> T:
    """Submit ``job``, report its id and log files, wait for it, return its result.

    If this process is interrupted or terminated (Snakemake cancelled), the
    Slurm job is cancelled too, so no orphan keeps a GPU.
    """
    import submitit

    executor = submitit.AutoExecutor(
        folder=params.folder, cluster=params.cluster, slurm_max_num_timeout=params.max_requeues
    )
    executor.update_parameters(name=name, **params.executor_parameters())
    submitted: Any = None
    pending: list[int] = []

    def cancel(signum: int, _frame: Any) -> None:
        if submitted is None:
            # sbatch may already have queued the job: act once its id is known.
            pending.append(signum)
            return
        log(f"received signal {signum}: cancelling Slurm job {submitted.job_id}")
        submitted.cancel(check=False)
        raise SystemExit(128 + signum)

    # The handler is in place before sbatch runs: a Ctrl-C that lands while the
    # job is being queued must not leave it running with nobody waiting for it.
    previous = {sig: signal.signal(sig, cancel) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            submitted = executor.submit(job)
        except Exception:
            if pending:  # the submission failed under the signal: no job id to cancel
                raise SystemExit(128 + pending[0]) from None
            raise
        log(f"submitted {name} as Slurm job {submitted.job_id} (cluster={params.cluster})")
        log(f"  stdout: {submitted.paths.stdout}")
        log(f"  stderr: {submitted.paths.stderr}")
        if pending:
            cancel(pending[0], None)
        # One result a task (a multi-GPU job runs one task a GPU); rank 0's is the run's.
        result = submitted.results()[0]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log(f"Slurm job {submitted.job_id} finished: {submitted.state}")
    return result


def launch(
    job: Callable[[], T],
    launcher: str = "local",
    slurm: SlurmParams | None = None,
    name: str = "ccrk",
    log: Callable[[str], None] | None = None,
) -> T:
    """Run ``job`` with the chosen launcher and return what it returns."""
    say = log or (lambda message: print(message, file=sys.stderr, flush=True))
    if launcher == "local":
        return run_local(job)
    if launcher == "slurm":
        return run_slurm(job, slurm or SlurmParams(), name, say)
    raise ValueError(f"unknown launcher {launcher!r}; expected one of {LAUNCHERS}")


_ARG_TYPES: dict[str, type] = {
    "gpus_per_node": int, "nodes": int, "cpus_per_task": int, "mem_gb": float, "timeout_min": int, "max_requeues": int,
}


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """--launcher and the Slurm options every GPU command accepts."""
    group = parser.add_argument_group("launching (GPU work)")
    group.add_argument("--launcher", choices=LAUNCHERS, default=os.environ.get("CCRK_LAUNCHER", "local"),
                       help="run in this process (local) or as a Slurm job through submitit (slurm)")
    for f in fields(SlurmParams):
        if f.name == "additional":
            group.add_argument("--slurm-additional", action="append", default=[], metavar="KEY=VALUE",
                               help="extra #SBATCH option (repeatable), e.g. gres=gpu:a100:4")
            continue
        group.add_argument(f"--slurm-{f.name.replace('_', '-')}", dest=f"slurm_{f.name}",
                           type=_ARG_TYPES.get(f.name, str), default=None)


def slurm_params_from_args(args: argparse.Namespace, config: dict[str, Any] | None = None) -> SlurmParams:
    """Config section ``launch.slurm`` first, then command-line flags on top."""
    section = dict(((config or {}).get("launch") or {}).get("slurm") or {})
    params = SlurmParams.from_dict(section)
    for f in fields(SlurmParams):
        if f.name == "additional":
            for item in getattr(args, "slurm_additional", []) or []:
                key, sep, value = item.partition("=")
                if not sep:
                    raise ValueError(f"--slurm-additional {item!r} is not KEY=VALUE")
                params.additional[key] = value
            continue
        value = getattr(args, f"slurm_{f.name}", None)
        if value is not None:
            setattr(params, f.name, value)
    return params
