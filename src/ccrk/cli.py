"""The ``ccrk`` command: one subcommand a pipeline step.

Snakemake rules and users call these; the library behind them never knows
which. Errors in input or config exit with status 2 and one clear line
(set ``CCRK_DEBUG=1`` to see the traceback instead).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from importlib import import_module

from ccrk import __version__

#: Modules that add subcommands: each exposes ``register(subparsers)`` which
#: adds its parsers and sets ``func`` (a callable taking the parsed args and
#: returning an exit status).
_COMMAND_MODULES: tuple[str, ...] = (
    "ccrk.evaluation.cli", "ccrk.datasets.cli", "ccrk.corpus.cli", "ccrk.train.cli", "ccrk.report.cli",
)


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """--config FILE and repeatable --set KEY=VALUE, the same for every command."""
    parser.add_argument("--config", "-c", type=Path, help="YAML config file (e.g. config/config.yaml)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set synth.seed=1 (repeatable)",
    )


def cmd_synth(args: argparse.Namespace) -> int:
    from ccrk.atomic import check_writable
    from ccrk.config import load_config, section
    from ccrk.synth.config import SynthConfig
    from ccrk.synth.generate import format_stats, generate

    config = load_config(args.config, args.overrides)
    cfg = SynthConfig.from_dict(section(config, "synth"))
    check_writable(args.out, directory=True)
    start = time.perf_counter()
    stats = generate(cfg, args.out)
    elapsed = time.perf_counter() - start
    print(format_stats(stats))
    print(f"\nwrote {args.out} in {elapsed:.1f} s")
    return 0


def cmd_tokenizer(args: argparse.Namespace) -> int:
    from ccrk.atomic import check_writable
    from ccrk.config import ConfigError, check_keys, load_config, section
    from ccrk.tokenizer import manifest_texts, save_pretrained_tokenizer, train_tokenizer

    config = load_config(args.config, args.overrides)
    opts = {"vocab_size": 2000, "max_length": 64, "pretrained": None}
    opts.update(check_keys(section(config, "tokenizer"), opts, "tokenizer"))
    for key in ("vocab_size", "max_length"):
        value = opts[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"tokenizer.{key} must be a positive whole number, got {value!r}")
    if opts["pretrained"] is not None and not isinstance(opts["pretrained"], str):
        raise ConfigError(f"tokenizer.pretrained must be a hub name or a directory, got {opts['pretrained']!r}")
    check_writable(args.out, directory=True)
    start = time.perf_counter()
    pretrained = args.pretrained or opts["pretrained"]
    if pretrained:
        if args.manifest:
            raise ValueError("--manifest and a pretrained tokenizer exclude each other: train one or copy one")
        tok = save_pretrained_tokenizer(pretrained, args.out)
        print(f"saved the {len(tok)}-piece tokenizer of {pretrained} to {args.out} in {time.perf_counter() - start:.1f} s")
        return 0
    if not args.manifest:
        raise ValueError("name the captions to train on (--manifest) or a tokenizer to copy (--pretrained)")
    tok = train_tokenizer(manifest_texts(args.manifest), args.out, vocab_size=opts["vocab_size"], max_length=opts["max_length"])
    print(f"trained a {len(tok)}-piece BPE tokenizer (byte fallback) on {', '.join(map(str, args.manifest))}")
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s; load it with AutoTokenizer.from_pretrained({str(args.out)!r})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ccrk", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ccrk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="generate the synthetic multilingual benchmark (the embedded default)")
    add_config_args(p)
    p.add_argument("--out", type=Path, required=True, help="output directory (replaced atomically)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("tokenizer", help="train a subword tokenizer on manifest captions, or save a pretrained one")
    add_config_args(p)
    p.add_argument("--manifest", type=Path, nargs="+", help="manifest(s) whose captions to train on")
    p.add_argument("--pretrained", default=None,
                   help="instead: copy this hub or local tokenizer (e.g. FacebookAI/xlm-roberta-large; "
                        "default tokenizer.pretrained)")
    p.add_argument("--out", type=Path, required=True, help="output directory (replaced atomically)")
    p.set_defaults(func=cmd_tokenizer)

    for module_name in _COMMAND_MODULES:
        import_module(module_name).register(sub)
    return parser


class _ProgressSafeHandler(logging.Handler):
    """Writes a record as one stderr line, clearing and redrawing any active tqdm progress bar around it."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def configure_logging(command: str) -> None:
    """Progress of every ``ccrk.*`` logger as ``[ccrk <command>] message`` lines on stderr (INFO and up).

    Called by :func:`main` and again by a trainer in a Slurm job's own process; idempotent.
    """
    root = logging.getLogger("ccrk")
    handler = next((h for h in root.handlers if isinstance(h, _ProgressSafeHandler)), None)
    if handler is None:
        handler = _ProgressSafeHandler()
        root.addHandler(handler)
    handler.setFormatter(logging.Formatter(f"[ccrk {command}] %(message)s"))
    root.setLevel(logging.INFO)
    top = logging.getLogger()
    if not top.handlers:
        # A library logging through the root logger (open_clip's logging.info) would otherwise run
        # logging.basicConfig, whose handler repeats every ccrk line; other libraries' warnings stay visible.
        others = logging.StreamHandler()
        others.setLevel(logging.WARNING)
        others.addFilter(lambda record: not record.name.startswith("ccrk"))
        top.addHandler(others)


#: Errors that come from the user's input, not from a bug: one line, exit 2.
def _user_errors() -> tuple[type[BaseException], ...]:
    from ccrk.config import ConfigError
    from ccrk.corpus.conceptual import CorpusError
    from ccrk.data.manifest import ManifestError

    # OSError: an unreadable input, a read-only or full disk, a permission: the environment, not a bug.
    return (ConfigError, ManifestError, CorpusError, ValueError, OSError)


def _one_line(exc: BaseException) -> str:
    """The message of a user error on one line; a system OSError as ``file: reason``."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        message = f"{exc.filename}: {exc.strerror}"
    else:
        message = str(exc) or type(exc).__name__
    return " / ".join(part.strip() for part in message.splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    configure_logging(args.command)
    try:
        return func(args)
    except _user_errors() as exc:
        if os.environ.get("CCRK_DEBUG"):
            raise
        print(f"ccrk {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
