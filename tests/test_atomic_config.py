"""Atomic writes never leave partial files; config overrides parse and fail clearly."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ccrk.atomic import atomic_directory, atomic_open, atomic_write_text
from ccrk.config import ConfigError, apply_overrides, check_keys, load_config


def test_atomic_open_keeps_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_atomic_directory_replaces_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic_directory(target) as d:
        (d / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as d:
            (d / "b").write_text("2")
            raise RuntimeError("killed")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    with atomic_directory(target) as d:
        (d / "c").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_overrides_set_nested_values_as_yaml() -> None:
    cfg = apply_overrides({"synth": {"seed": 0}}, ["synth.seed=3", "synth.images.test=8", "model.name=vit"])
    assert cfg == {"synth": {"seed": 3, "images": {"test": 8}}, "model": {"name": "vit"}}


@pytest.mark.parametrize("bad", ["synth.seed", "synth..seed=1", "synth.seed.x=1"])
def test_bad_overrides_are_named(bad: str) -> None:
    with pytest.raises(ConfigError, match="override"):
        apply_overrides({"synth": {"seed": 0}}, [bad])


def test_missing_or_invalid_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("synth: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(scalar)


def test_atomic_outputs_get_the_umask_mode_not_mkstemps_0600(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "t.md", "x")
        with atomic_directory(tmp_path / "d") as d:
            (d / "a").write_text("1")
    finally:
        os.umask(old)
    assert (tmp_path / "t.md").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_override_values_parse_as_json_first_so_exponent_floats_stay_floats() -> None:
    out = apply_overrides({}, ["model.text_config={\"layer_norm_eps\": 1e-05}", "train.lr=1e-4", "a.b=de", "a.c=[1, 2]"])
    assert out["model"]["text_config"]["layer_norm_eps"] == 1e-05
    assert isinstance(out["train"]["lr"], float) and out["a"] == {"b": "de", "c": [1, 2]}


@pytest.mark.parametrize(("text", "override", "key"), [
    ("train:\n  lr: .inf\n", None, "train.lr"),
    ("train:\n  lr: 1.0e-3\n", "train.lr=.nan", "train.lr"),
    ("synth:\n  noise:\n    de: {substitute: -.inf}\n", None, "synth.noise.de.substitute"),
    ("train:\n  crop_scale: [0.5, .nan]\n", None, "train.crop_scale[1]"),
])
def test_non_finite_numbers_are_refused_naming_their_key(tmp_path: Path, text: str, override: str | None,
                                                         key: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^config key {re.escape(key)} is not a finite number: (inf|-inf|nan) "):
        load_config(path, [override] if override else None)


def test_a_non_finite_rate_stops_the_command_before_any_output(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "ccrk.cli", "pretrain", "--set", "train.lr=.inf", "--manifest",
                           str(tmp_path / "m.jsonl"), "--tokenizer", str(tmp_path / "tok"), "--objective", "one_to_k",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "ccrk pretrain: error: config key train.lr is not a finite number: inf (--set)"]
    assert not out.exists()


def test_an_output_directory_never_replaces_a_file(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("the user's file")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(target))} exists and is not a directory"):
        with atomic_directory(target) as d:
            (d / "a").write_text("1")
    assert target.read_text() == "the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_leftovers_of_a_killed_directory_write_are_recovered(tmp_path: Path) -> None:
    target = tmp_path / "out"
    # Killed between the two renames: the previous output sits at .out.old, the new one in a temp dir.
    old = tmp_path / ".out.old"
    old.mkdir()
    (old / "v").write_text("previous")
    (tmp_path / ".out.abc123.tmp").mkdir()
    (tmp_path / ".other.abc.tmp").mkdir()  # another output's: not ours to touch
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as d:
            raise RuntimeError("killed again")
    assert (target / "v").read_text() == "previous"  # the output is back where readers look
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.abc.tmp", "out"]
    with atomic_directory(target) as d:
        (d / "v").write_text("new")
    assert (target / "v").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.abc.tmp", "out"]


def test_a_yaml_syntax_error_is_one_line_naming_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: [1, 2\n  epochs: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (f"{path}: not valid YAML: line 3, column 9: expected ',' or ']', but got ':' "
                               "(while parsing a flow sequence)")


@pytest.mark.parametrize(("data", "where", "message"), [
    ({"epoch": 1}, "train", r"unknown key\(s\) train\.epoch; allowed keys are \['epochs', 'lr'\]"),
    ({"b": 1, "a": 2}, "x.y", r"unknown key\(s\) x\.y\.a, x\.y\.b;"),
    ([1, 2], "train", r"train must be a mapping, got list"),
])
def test_one_rule_refuses_unknown_keys_naming_each(data: object, where: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_keys(data, ["epochs", "lr"], where)
    assert check_keys(None, ["lr"], "train") == {}
    given = {"lr": 1}
    assert check_keys(given, ["lr"], "train") == given and check_keys(given, ["lr"], "train") is not given


def test_every_section_applies_the_rule_with_a_config_error() -> None:
    """The sections that used to raise KeyError (launch, synth) now raise ConfigError like the others."""
    from ccrk.evaluation.options import EvalOptions
    from ccrk.launch import SlurmParams
    from ccrk.models.config import ModelConfig
    from ccrk.objectives import ObjectiveConfig
    from ccrk.synth.config import SynthConfig
    from ccrk.train.config import TrainConfig

    for build, key in [(SlurmParams.from_dict, "launch.slurm.partiton"), (SynthConfig.from_dict, "synth.imagez"),
                       (ModelConfig.from_dict, "model.imagez"), (ObjectiveConfig.from_dict, "objective.imagez"),
                       (TrainConfig.from_dict, "train.imagez"), (EvalOptions.from_config, "evaluate.imagez")]:
        with pytest.raises(ConfigError, match=re.escape(f"unknown key(s) {key};")):
            build({key.rsplit(".", 1)[1]: 1})


def test_a_key_error_from_a_bug_is_not_passed_off_as_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only input errors become one line and exit 2; a KeyError in ccrk's own code keeps its traceback."""
    from ccrk import cli

    def broken(args: object) -> int:
        return {}["missing"]

    parser = cli.build_parser()
    args = parser.parse_args(["tokenizer", "--out", "x"])
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(args, "func", broken, raising=False)
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: args)
    with pytest.raises(KeyError, match="missing"):
        cli.main(["tokenizer", "--out", "x"])
