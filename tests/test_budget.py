"""ccrk budget: the same comparison at several pre-training lengths, side by side, steps read from the logs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from test_report import _rankset, write_pretrain_log, write_run

from ccrk.cli import main as ccrk_main
from ccrk.evaluation.compare import compare_runs
from ccrk.report.budget import collect, write_budget
from ccrk.layout import OBJECTIVES
from ccrk.report.runs import ResultsError

LANGS = ["en", "de", "ja", "zh"]
#: log records every 10 steps: a length of n records is 10 n steps
LENGTHS = {"short": 5, "middle": 10, "long": 20}


def _length(root: Path, records: int, offset: int) -> tuple[Path, Path]:
    metrics, pretrain = root / "metrics", root / "models" / "pretrain"
    for seed in (0, 1):
        for objective in OBJECTIVES:
            write_run(metrics / "synth" / "all_languages" / objective / f"seed{seed}",
                      _rankset(objective, seed + offset, LANGS, LANGS))
            write_pretrain_log(pretrain / objective / f"seed{seed}" / "metrics.jsonl", objective, seed, records)
        compare = metrics / "synth" / "all_languages" / "compare" / f"seed{seed}"
        compare.mkdir(parents=True)
        for baseline in ("cross_lingual", "cross_modal"):
            doc = compare_runs(metrics / "synth" / "all_languages" / "one_to_k" / f"seed{seed}",
                               metrics / "synth" / "all_languages" / baseline / f"seed{seed}", n_resamples=30)
            (compare / f"one_to_k-vs-{baseline}.json").write_text(json.dumps(doc), encoding="utf-8")
    return metrics, pretrain


@pytest.fixture(scope="module")
def lengths(tmp_path_factory) -> list[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("budget")
    return [_length(root / name, records, offset=10 * i) for i, (name, records) in enumerate(LENGTHS.items())]


def test_rows_carry_each_runs_steps_and_its_metrics_json_numbers(lengths) -> None:
    frame = collect(lengths)
    assert len(frame) == 3 * 2 * len(OBJECTIVES)
    assert sorted(set(frame["steps"])) == [10 * n for n in LENGTHS.values()]
    metrics_dir = lengths[1][0]
    row = frame[(frame["metrics_dir"] == str(metrics_dir)) & (frame["objective"] == "cross_modal")
                & (frame["seed"] == 1)].iloc[0]
    doc = json.loads((metrics_dir / "synth" / "all_languages" / "cross_modal" / "seed1" / "metrics.json").read_text())
    assert row["steps"] == 100
    assert row["IR R@1"] == doc["average"]["t2i"]["R@1"]["value"]
    assert row["TR R@1"] == doc["average"]["i2t"]["R@1"]["value"]
    assert row["mean R@1"] == pytest.approx((row["IR R@1"] + row["TR R@1"]) / 2)
    assert row["MRV"] == doc["mrv"]["mean"]["value"]


def test_cli_writes_the_table_and_figure_with_seed_means_and_differences(lengths, tmp_path) -> None:
    out = tmp_path / "out"
    argv = ["budget", "--out", str(out), "--dpi", "50"]
    for metrics, pretrain in lengths:
        argv += ["--length", str(metrics), str(pretrain)]
    assert ccrk_main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["budget.csv", "budget.md", "budget.pdf", "budget.png"]
    table = pd.read_csv(out / "budget.csv")
    assert list(table["steps"]) == sorted(table["steps"])  # lengths in order
    frame = collect(lengths)
    for (steps, objective), group in frame.groupby(["steps", "objective"]):
        label = {"one_to_k": "1-to-K", "cross_lingual": "cross-lingual", "cross_modal": "cross-modal"}[objective]
        row = table[(table["steps"] == steps) & (table["objective"] == label)].iloc[0]
        assert row["mean R@1"] == pytest.approx(group["mean R@1"].mean(), abs=0.005)
        assert row["seeds"] == 2
    one_to_k = table[table["objective"] == "1-to-K"]
    diff_col = "1-to-K - cross-lingual: IR R@1"
    assert one_to_k[diff_col].str.match(r"^[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\] p=\d\.\d{3}$").all()
    assert table[table["objective"] != "1-to-K"][diff_col].isna().all()


def test_a_run_without_its_pretraining_log_or_a_repeated_length_is_refused(lengths, tmp_path) -> None:
    metrics, pretrain = lengths[0]
    broken = tmp_path / "pretrain"
    shutil.copytree(pretrain, broken)
    shutil.rmtree(broken / "cross_modal" / "seed1")
    with pytest.raises(ResultsError, match=r"cross_modal/seed1/metrics.json: no pre-training log of cross_modal "
                                           r"seed 1"):
        collect([(metrics, broken), lengths[1]])
    with pytest.raises(ResultsError, match="each length of a budget study must differ"):
        collect([lengths[0], (lengths[1][0], pretrain)])
    with pytest.raises(ValueError, match="at least two"):
        write_budget(lengths[:1], tmp_path / "out")
    assert not (tmp_path / "out").exists()
