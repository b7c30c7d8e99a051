"""ccrk tables / ccrk figures: a fake results layout in, every table and figure out, numbers traceable."""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ccrk.evaluation.compare import compare_runs
from ccrk.evaluation.rankset import RankSet
from ccrk.evaluation.run import FORMAT as METRICS_FORMAT
from ccrk.evaluation.summary import summarize
from ccrk.layout import METRICS_FILE, OBJECTIVES, RANKS_FILE
from ccrk.metrics import mean_rank_variance
from ccrk.report import cli as report_cli
from ccrk.report.attribute_runs import attribute_runs
from ccrk.report.attributes import ATTRIBUTES, FORMAT as ATTRIBUTES_FORMAT, LanguageScores
from ccrk.report.attributes import summarize_preferences
from ccrk.report.figures import ATTRIBUTE_FIGURES, FIGURES, write_figures
from ccrk.report.logs import discover_pretrain
from ccrk.report.runs import ResultsError, discover
from ccrk.report.tables import TABLES, build_table1, write_tables

MRV_LANGS = ["en", "de", "ja", "zh"]
N_IMAGES = 40
BOOT = 30
#: how much each objective's ranks vary across languages (1-to-K the least)
NOISE = {"one_to_k": 0.3, "cross_lingual": 0.8, "cross_modal": 1.2}


def _rankset(objective: str, seed: int, languages: list[str], mrv: list[str]) -> RankSet:
    rng = np.random.default_rng([seed, OBJECTIVES.index(objective), len(languages)])
    base = rng.normal(1.0, 1.0, N_IMAGES)
    t2i, i2t = {}, {}
    for lang in languages:
        for table in (t2i, i2t):
            log_rank = base + NOISE[objective] * rng.normal(0.0, 1.0, N_IMAGES)
            table[lang] = np.clip(np.exp(log_rank) - 1, 0, N_IMAGES - 1).astype(np.int64)
    return RankSet(
        image_ids=[f"img{i:03d}" for i in range(N_IMAGES)], languages=languages, mrv_languages=mrv,
        t2i=t2i, txt2img={lang: np.arange(N_IMAGES) for lang in languages}, i2t=i2t,
    )


def write_run(directory: Path, rs: RankSet, revision: str = "0123456789abcdef") -> dict:
    """A run directory as ccrk evaluate writes it (the metric tree from the library's own summarize)."""
    metrics = {
        "format": METRICS_FORMAT, "git_revision": revision, "git_dirty": False,
        "languages": list(rs.languages), "mrv_languages": list(rs.mrv_languages), "n_images": rs.n_images,
        "bootstrap": {"n_resamples": BOOT, "alpha": 0.05, "seed": 0, "unit": "image"},
        **summarize(rs, n_resamples=BOOT, seed=0),
    }
    directory.mkdir(parents=True, exist_ok=True)
    rs.save(directory / RANKS_FILE)
    (directory / METRICS_FILE).write_text(json.dumps(metrics, allow_nan=False), encoding="utf-8")
    return metrics


def write_pretrain_log(path: Path, objective: str, seed: int, steps: int = 12) -> None:
    rng = np.random.default_rng([seed, OBJECTIVES.index(objective)])
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for n in range(1, steps + 1):
        k = OBJECTIVES.index(objective)
        itc = (3.0 + k) / n ** (0.3 + 0.1 * k) + 0.05 * rng.random()
        itm, mlm = 0.7 - 0.01 * n * (1 + k / 4), 7.0 / n**0.4
        lines.append(json.dumps({"epoch": 0, "step": 10 * n, "loss": itc + itm + mlm, "loss_itc": itc,
                                 "loss_itm": itm, "loss_mlm": mlm, "lr": 1e-3, "temp": 0.07,
                                 "samples_per_s": 50.0, "time": 1.0e9 + n}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> dict:
    """synth zero_shot x 3 objectives x seeds 0,1 (+ comparisons); xflickrco zero_shot and few-shot, seed 0."""
    root = tmp_path_factory.mktemp("report")
    metrics_dir, pretrain_dir = root / "metrics", root / "pretrain"
    docs: dict = {}
    for seed in (0, 1):
        for objective in OBJECTIVES:
            run = metrics_dir / "synth" / "zero_shot" / objective / f"seed{seed}"
            rs = _rankset(objective, seed, ["en", "de", "fr", "ja", "zh"], MRV_LANGS)
            docs["synth", "zero_shot", objective, seed] = write_run(run, rs)
            docs["ranks", objective, seed] = rs
            write_pretrain_log(pretrain_dir / objective / f"seed{seed}" / "metrics.jsonl", objective, seed)
        compare = metrics_dir / "synth" / "zero_shot" / "compare" / f"seed{seed}"
        compare.mkdir(parents=True)
        for baseline in ("cross_lingual", "cross_modal"):
            doc = compare_runs(metrics_dir / "synth" / "zero_shot" / "one_to_k" / f"seed{seed}",
                               metrics_dir / "synth" / "zero_shot" / baseline / f"seed{seed}", n_resamples=BOOT)
            (compare / f"one_to_k-vs-{baseline}.json").write_text(json.dumps(doc), encoding="utf-8")
            docs["compare", baseline, seed] = doc
    for objective in ("one_to_k", "cross_modal"):
        run = metrics_dir / "xflickrco" / "zero_shot" / objective / "seed0"
        docs["xflickrco", "zero_shot", objective, 0] = write_run(run, _rankset(objective, 0, MRV_LANGS, MRV_LANGS))
        for lang in ("de", "ja"):
            setting = f"few_shot.{lang}.10"
            run = metrics_dir / "xflickrco" / setting / objective / "seed0"
            docs["xflickrco", setting, objective, 0] = write_run(run, _rankset(objective, 1, [lang], []))
    (root / "pretrain" / "one_to_k" / "seed0" / "model").mkdir()  # other run files are ignored
    return {"root": root, "metrics": metrics_dir, "pretrain": pretrain_dir, "docs": docs}


@pytest.fixture(scope="module")
def outputs(layout, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("out")
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    report_cli.register(sub)
    m, p = str(layout["metrics"]), str(layout["pretrain"])
    args = parser.parse_args(["tables", "--metrics-dir", m, "--out", str(out / "tables"),
                              "--summary-dir", str(out / "summary"), "--plots-dir", str(out / "plots")])
    assert args.func(args) == 0
    args = parser.parse_args(["figures", "--metrics-dir", m, "--pretrain-dir", p, "--out", str(out / "figures"),
                              "--dpi", "60"])
    assert args.func(args) == 0
    return {"out": out}


def _stat(doc: dict, *key: str) -> dict:
    for k in key:
        doc = doc[k]
    return doc


def test_every_table_and_figure_is_written(outputs) -> None:
    out = outputs["out"]
    for name in TABLES:
        for ext in ("csv", "md", "tex"):
            assert (out / "tables" / f"{name}.{ext}").stat().st_size > 0, (name, ext)
    for name in FIGURES:
        assert (out / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / "figures" / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in (out / "summary").iterdir()) == sorted(f"{o}.json" for o in OBJECTIVES)
    assert (out / "plots" / "recall_per_language.csv").is_file()
    assert not [p for p in out.rglob(".*")]  # no temporary files left behind


def test_values_are_the_metrics_json_numbers_and_their_seed_mean(layout, outputs) -> None:
    docs, out = layout["docs"], outputs["out"]
    per_lang = pd.read_csv(out / "tables" / "per_language.csv")
    row = per_lang[(per_lang.dataset == "synth") & (per_lang.objective == "cross_modal") & (per_lang.language == "ja")]
    seeds = [_stat(docs["synth", "zero_shot", "cross_modal", s], "per_language", "ja", "t2i", "R@1") for s in (0, 1)]
    assert row["t2i R@1"].item() == pytest.approx(np.mean([s["value"] for s in seeds]), abs=1e-12)
    assert row["t2i low"].item() == pytest.approx(np.mean([s["low"] for s in seeds]), abs=1e-12)
    assert row["t2i high"].item() == pytest.approx(np.mean([s["high"] for s in seeds]), abs=1e-12)
    assert row["t2i std"].item() == pytest.approx(np.std([s["value"] for s in seeds], ddof=1), abs=1e-12)
    assert row["seeds"].item() == 2
    spread = per_lang[(per_lang.dataset == "synth") & (per_lang.objective == "one_to_k")
                      & (per_lang.language == "spread: max-min")]
    want = np.mean([_stat(docs["synth", "zero_shot", "one_to_k", s], "recall_spread", "i2t", "R@1", "max_minus_min")
                    ["value"] for s in (0, 1)])
    assert spread["i2t R@1"].item() == pytest.approx(want, abs=1e-12)
    # a single-seed run reports its own number
    single = per_lang[(per_lang.dataset == "xflickrco") & (per_lang.setting == "zero_shot")
                      & (per_lang.objective == "one_to_k") & (per_lang.language == "zh")]
    assert single["i2t R@1"].item() == _stat(docs["xflickrco", "zero_shot", "one_to_k", 0],
                                             "per_language", "zh", "i2t", "R@1")["value"]
    assert single["seeds"].item() == 1

    mrv = pd.read_csv(out / "tables" / "mrv.csv")
    row = mrv[(mrv.dataset == "synth") & (mrv.objective == "one_to_k")]
    assert row["mean MRV"].item() == pytest.approx(
        np.mean([docs["synth", "zero_shot", "one_to_k", s]["mrv"]["mean"]["value"] for s in (0, 1)]), abs=1e-12)
    # and MRV is the library's own number on the saved ranks
    rs = docs["ranks", "one_to_k", 0]
    assert docs["synth", "zero_shot", "one_to_k", 0]["mrv"]["t2i"]["value"] == pytest.approx(
        mean_rank_variance(rs.mrv_ranks("t2i")))
    assert set(mrv.setting) == {"zero_shot"}  # few-shot runs have no MRV

    sig = pd.read_csv(out / "tables" / "significance.csv")
    row = sig[(sig.b == "cross_modal") & (sig.metric == "MRV mean")]
    per_seed = [next(m for m in docs["compare", "cross_modal", s]["metrics"] if m["metric"] == "MRV mean")
                for s in (0, 1)]
    assert row["diff"].item() == pytest.approx(np.mean([m["diff"] for m in per_seed]), abs=1e-12)
    assert row["low"].item() == pytest.approx(np.mean([m["low"] for m in per_seed]), abs=1e-12)
    assert row["p_value"].item() == max(m["p_value"] for m in per_seed)
    assert row["diff"].item() < 0  # the fake 1-to-K is built to be more consistent

    summary = json.loads((out / "summary" / "cross_lingual.json").read_text())
    want = np.mean([docs["synth", "zero_shot", "cross_lingual", s]["average"]["t2i"]["R@1"]["value"] for s in (0, 1)])
    assert summary["synth/zero_shot/t2i_R@1"] == pytest.approx(want, abs=1e-4)
    assert {"synth/zero_shot/mR", "synth/zero_shot/MRV"} <= set(summary) and not any("xflickrco" in k for k in summary)
    summary = json.loads((out / "summary" / "one_to_k.json").read_text())
    assert "xflickrco/few_shot.de.10/i2t_R@1" in summary and "xflickrco/few_shot.de.10/MRV" not in summary

    plots = pd.read_csv(out / "plots" / "recall_per_language.csv")
    assert list(plots.columns) == ["dataset", "setting", "objective", "language", "direction", "R@1", "low", "high"]
    assert len(plots) == 2 * (3 * 5 + 2 * 4 + 2 * 2)


def test_the_seeds_table_names_each_seeds_headline_and_their_range(layout, outputs) -> None:
    docs, out = layout["docs"], outputs["out"]
    table = pd.read_csv(out / "tables" / "seeds.csv")
    assert list(table.columns) == ["dataset", "setting", "objective", "seed0", "seed1", "range", "IR range",
                                   "TR range", "CI half-width", "seeds"]

    def headline(doc: dict) -> float:
        return (doc["average"]["t2i"]["R@1"]["value"] + doc["average"]["i2t"]["R@1"]["value"]) / 2

    for objective in OBJECTIVES:
        row = table[(table.dataset == "synth") & (table.objective == objective)]
        per_seed = [docs["synth", "zero_shot", objective, s] for s in (0, 1)]
        assert row["seed0"].item() == pytest.approx(headline(per_seed[0]), abs=1e-12)
        assert row["seed1"].item() == pytest.approx(headline(per_seed[1]), abs=1e-12)
        assert row["range"].item() == pytest.approx(abs(headline(per_seed[0]) - headline(per_seed[1])), abs=1e-12)
        ir = [d["average"]["t2i"]["R@1"]["value"] for d in per_seed]
        assert row["IR range"].item() == pytest.approx(abs(ir[0] - ir[1]), abs=1e-12)
        widths = [(d["average"][k]["R@1"]["high"] - d["average"][k]["R@1"]["low"]) / 2
                  for d in per_seed for k in ("t2i", "i2t")]
        assert row["CI half-width"].item() == pytest.approx(np.mean(widths), abs=1e-12)
        assert row["seeds"].item() == 2
    # the fake runs differ by seed, so the range is a real number, not a placeholder
    assert (table[table.dataset == "synth"]["range"] > 0).all()
    # one seed: its own number, no range, the missing seed empty
    single = table[(table.dataset == "xflickrco") & (table.setting == "zero_shot") & (table.objective == "one_to_k")]
    assert single["seed0"].item() == pytest.approx(headline(docs["xflickrco", "zero_shot", "one_to_k", 0]), abs=1e-12)
    assert single["seed1"].isna().item() and single["range"].isna().item() and single["seeds"].item() == 1
    md = (out / "tables" / "seeds.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| dataset"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "dataset", "setting", "objective", "seed 0", "seed 1", "range", "IR range", "TR range", "CI half-width", "seeds"]
    row = table[(table.dataset == "synth") & (table.objective == "cross_modal")]
    line = next(line for line in md.splitlines() if "synth" in line and "cross-modal" in line)
    assert [c.strip() for c in line.strip("|").split("|")][3:6] == [
        f"{row['seed0'].item():.2f}", f"{row['seed1'].item():.2f}", f"{row['range'].item():.2f}"]


def test_table1_keeps_the_papers_numbers_beside_the_reproduced_ones(layout, outputs) -> None:
    docs, out = layout["docs"], outputs["out"]
    t1 = pd.read_csv(out / "tables" / "table1.csv", dtype=str, keep_default_na=False)
    paper = t1[t1.source == "paper"]
    # published cells exactly as printed, only the datasets that ran (no WIT, Multi30K, COCO columns)
    ccr10e = paper[(paper.setting == "zero_shot") & (paper.model == "CCR10-E")].iloc[0]
    assert (ccr10e.xfc_ir_r1, ccr10e.xfc_tr_r1, ccr10e.xfc_mrv4) == ("73.30", "72.64", "7.89")
    assert "xfc_mrv4" in t1.columns and "wit_ir" not in t1.columns and "m30k_en" not in t1.columns
    assert {"synth_ir_r1", "synth_tr_r1", "synth_mr", "synth_mrv"} <= set(t1.columns)
    assert "Table 1" in ccr10e.reference
    md = (out / "tables" / "table1.md").read_text()
    assert "73.30" in md and "50.60" in md and "paper has no numbers" in md and "Nie et al." in md
    tex = (out / "tables" / "table1.tex").read_text()
    assert "xFlickr\\&CO" in tex and "73.30" in tex

    rep = t1[t1.source == "reproduced"]
    # zero-shot 1-to-K on xFlickr&CO: "value ± std [low, high]" of the single seed (no std)
    zs = rep[(rep.setting == "zero_shot") & (rep.model == "1-to-K (ccrk)")].iloc[0]
    s = docs["xflickrco", "zero_shot", "one_to_k", 0]["average"]["t2i"]["R@1"]
    assert zs.xfc_ir_r1 == f"{s['value']:.2f} [{s['low']:.2f}, {s['high']:.2f}]"
    m = docs["xflickrco", "zero_shot", "one_to_k", 0]["mrv"]["mean"]
    assert zs.xfc_mrv4 == f"{m['value']:.2f} [{m['low']:.2f}, {m['high']:.2f}]"
    # synth: the mean over two seeds with its std
    ms = [docs["synth", "zero_shot", "one_to_k", sd]["average"]["mR"] for sd in (0, 1)]
    mean = [np.mean([x[k] for x in ms]) for k in ("value", "low", "high")]
    std = np.std([x["value"] for x in ms], ddof=1)
    assert zs.synth_mr == f"{mean[0]:.2f} ± {std:.2f} [{mean[1]:.2f}, {mean[2]:.2f}]"
    # few-shot rows: averaged over the per-language runs, each language's own R@1
    fs = rep[(rep.setting == "few_shot_or_single_language") & (rep.model == "cross-modal (ccrk)")].iloc[0]
    per = [docs["xflickrco", f"few_shot.{lang}.10", "cross_modal", 0]["per_language"][lang]["i2t"]["R@1"]
           for lang in ("de", "ja")]
    want = [np.mean([p[k] for p in per]) for k in ("value", "low", "high")]
    assert fs.xfc_tr_r1 == f"{want[0]:.2f} [{want[1]:.2f}, {want[2]:.2f}]"
    assert fs.xfc_mrv4 == "" and "de, ja" in fs.detail
    assert list(t1.source).index("reproduced") > list(t1.source).index("paper")


def test_synth_only_has_no_paper_rows(tmp_path) -> None:
    run = tmp_path / "m" / "synth" / "all_languages" / "one_to_k" / "seed3"
    write_run(run, _rankset("one_to_k", 3, MRV_LANGS, MRV_LANGS))
    table = build_table1(discover(tmp_path / "m"))
    assert set(table.frame.source) == {"reproduced"} and "seeds" not in table.frame.columns
    assert "paper has no numbers" in table.markdown()
    write_tables(discover(tmp_path / "m"), tmp_path / "t")
    assert pd.read_csv(tmp_path / "t" / "significance.csv").empty
    assert "No comparisons" in (tmp_path / "t" / "significance.md").read_text()


def _copy_run(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    for name in (METRICS_FILE, RANKS_FILE):
        (dst / name).write_bytes((src / name).read_bytes())


def test_corrupt_or_misplaced_inputs_name_the_path(layout, tmp_path) -> None:
    good = layout["metrics"] / "synth" / "zero_shot" / "one_to_k" / "seed0"
    run = tmp_path / "m" / "synth" / "zero_shot" / "one_to_k" / "seed0"
    _copy_run(good, run)
    (run / METRICS_FILE).write_text('{"format": "ccrk.metrics/1", "languages": ', encoding="utf-8")
    with pytest.raises(ResultsError, match=re.escape(str(run / METRICS_FILE)) + ".*not valid JSON"):
        discover(tmp_path / "m")
    doc = json.loads((good / METRICS_FILE).read_text())
    del doc["per_language"]["de"]["i2t"]
    (run / METRICS_FILE).write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ResultsError, match="missing per_language.de.i2t"):
        discover(tmp_path / "m")
    (run / METRICS_FILE).write_bytes((good / METRICS_FILE).read_bytes())
    (run / RANKS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(run / RANKS_FILE))):
        discover(tmp_path / "m")

    cases = {
        "synth/zero-shot/one_to_k/seed0": "synth/zero-shot",
        "synth/few_shot.de/one_to_k/seed0": "synth/few_shot.de",
        "synth/zero_shot/1to1/seed0": "synth/zero_shot/1to1",
        "cifar/zero_shot/one_to_k/seed0": "cifar",
        "synth/zero_shot/one_to_k/run0": "synth/zero_shot/one_to_k/run0",
    }
    for n, (bad, culprit) in enumerate(cases.items()):
        _copy_run(good, tmp_path / f"bad{n}" / bad)
        with pytest.raises(ResultsError, match=re.escape(str(tmp_path / f"bad{n}" / culprit)) + ": "):
            discover(tmp_path / f"bad{n}")
    with pytest.raises(ResultsError, match="no evaluation runs"):
        (tmp_path / "empty").mkdir()
        discover(tmp_path / "empty")

    cmp_dir = tmp_path / "m" / "synth" / "zero_shot" / "compare" / "seed0"
    cmp_dir.mkdir(parents=True)
    (run / RANKS_FILE).write_bytes((good / RANKS_FILE).read_bytes())
    (cmp_dir / "one_to_k-vs-cross_modal.json").write_text('{"format": "ccrk.compare/1"}', encoding="utf-8")
    with pytest.raises(ResultsError, match=re.escape(str(cmp_dir / "one_to_k-vs-cross_modal.json")) + ".*'metrics'"):
        discover(tmp_path / "m")


def test_pretrain_logs_layout_and_errors(layout, tmp_path) -> None:
    logs = discover_pretrain(layout["pretrain"])
    assert {(log.objective, log.seed) for log in logs} == {(o, s) for o in OBJECTIVES for s in (0, 1)}
    path = tmp_path / "p" / "one_to_k" / "seed0" / "metrics.jsonl"
    write_pretrain_log(path, "one_to_k", 0)
    path.write_text(path.read_text() + '{"step": 5, "lo\n', encoding="utf-8")
    with pytest.raises(ResultsError, match=re.escape(f"{path}:13")):
        discover_pretrain(tmp_path / "p")
    path.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        discover_pretrain(tmp_path / "p")


def test_cli_reports_a_bad_layout_in_one_line(tmp_path, capsys, monkeypatch) -> None:
    import ccrk.cli

    if "ccrk.report.cli" not in ccrk.cli._COMMAND_MODULES:  # until ccrk.cli registers it
        monkeypatch.setattr(ccrk.cli, "_COMMAND_MODULES", (*ccrk.cli._COMMAND_MODULES, "ccrk.report.cli"))
    (tmp_path / "m" / "synth" / "zero_shot" / "one_to_k" / "seed0").mkdir(parents=True)
    assert ccrk.cli.main(["tables", "--metrics-dir", str(tmp_path / "m"), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ccrk tables: error: ") and err.count("\n") == 1
    assert str(tmp_path / "m" / "synth" / "zero_shot" / "one_to_k" / "seed0" / "metrics.json") in err
    assert not (tmp_path / "t").exists()
    assert ccrk.cli.main(["figures", "--metrics-dir", str(tmp_path / "m"), "--pretrain-dir", str(tmp_path / "p"),
                          "--out", str(tmp_path / "f")]) == 2
    assert "metrics.json is missing" in capsys.readouterr().err


def test_figures_without_mrv_are_drawn_and_deterministic(tmp_path) -> None:
    for lang in ("de", "fr"):
        write_run(tmp_path / "m" / "multi30k" / f"single_language.{lang}" / "one_to_k" / "seed0",
                  _rankset("one_to_k", 0, [lang], []))
    write_pretrain_log(tmp_path / "p" / "one_to_k" / "seed0" / "metrics.jsonl", "one_to_k", 0)
    results, logs = discover(tmp_path / "m"), discover_pretrain(tmp_path / "p")
    first = write_figures(results, logs, tmp_path / "a", dpi=40)
    second = write_figures(results, logs, tmp_path / "b", dpi=40)
    assert sorted(p.name for p in first) == sorted(f"{n}.{e}" for n in FIGURES for e in ("png", "pdf"))
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_table1_fills_the_wit_multi30k_and_coco_columns(tmp_path) -> None:
    """The paper DAG's other datasets: per-language mR (Multi30K, COCO), WIT R@1, MRV only where defined."""
    m = tmp_path / "m"
    docs = {}
    runs = {("multi30k", "zero_shot"): (["en", "de", "fr", "cs"], ["en", "de", "fr", "cs"]),
            ("multi30k", "single_language.de"): (["de"], []),
            ("wit", "zero_shot"): (["ar", "en", "ja"], []),
            ("mscoco", "zero_shot"): (["en", "ja", "zh"], []),
            ("mscoco", "single_language.ja"): (["ja"], [])}
    for (dataset, setting), (langs, mrv) in runs.items():
        docs[dataset, setting] = write_run(m / dataset / setting / "one_to_k" / "seed0",
                                           _rankset("one_to_k", len(setting), langs, mrv))
    t1 = build_table1(discover(m)).frame
    rep = t1[t1.source == "reproduced"].set_index("setting")
    for col in ("m30k_de", "m30k_mrv4", "wit_ir", "wit_tr", "coco_ja", "coco_zh"):
        assert col in t1.columns, col

    def cell(stat):
        return f"{stat['value']:.2f} [{stat['low']:.2f}, {stat['high']:.2f}]"

    zs, single = rep.loc["zero_shot"], rep.loc["few_shot_or_single_language"]
    assert zs.m30k_de == cell(docs["multi30k", "zero_shot"]["per_language"]["de"]["mR"])
    assert zs.m30k_mrv4 == cell(docs["multi30k", "zero_shot"]["mrv"]["mean"])
    assert zs.wit_ir == cell(docs["wit", "zero_shot"]["average"]["t2i"]["R@1"])
    assert zs.coco_zh == cell(docs["mscoco", "zero_shot"]["per_language"]["zh"]["mR"])
    assert single.m30k_de == cell(docs["multi30k", "single_language.de"]["per_language"]["de"]["mR"])
    assert single.coco_ja == cell(docs["mscoco", "single_language.ja"]["per_language"]["ja"]["mR"])
    assert single.m30k_mrv4 == "" and single.m30k_en == ""


def write_attributes(path: Path, objective: str, seed: int, languages: list[str]) -> dict:
    """An attributes.json as ccrk attributes writes it (summary from the library), from made-up scores.

    Pairs of images 2k, 2k+1 share an attribute; 1-to-K is built to tell colour apart best, and the matching
    head to be sharper than the similarity.
    """
    rng = np.random.default_rng([seed, OBJECTIVES.index(objective), 7])
    n = N_IMAGES
    image = np.arange(n)
    partner = image ^ 1
    attribute = (image // 2) % len(ATTRIBUTES)
    scores = {}
    for lang in languages:
        edge = 0.3 * (attribute == ATTRIBUTES.index("colour")) * (objective == "one_to_k")
        itc = rng.normal(edge, 1.0, n)
        itm = rng.normal(2 * edge, 1.0, n)
        scores[lang] = LanguageScores(image=image, partner=partner, attribute=attribute, pair=image // 2,
                                      itc_own=itc, itc_partner=np.zeros(n), itm_own=itm, itm_partner=np.zeros(n))
    doc = {"format": ATTRIBUTES_FORMAT, "languages": languages, "attributes": list(ATTRIBUTES), "n_images": n,
           "interval": {"n_resamples": BOOT, "alpha": 0.05, "seed": 0, "unit": "pair"},
           **summarize_preferences(scores, n_resamples=BOOT)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")
    return doc


def test_attribute_figures_are_drawn_from_the_files_named(layout, tmp_path, capsys) -> None:
    files = []
    for setting in ("zero_shot", "all_languages"):
        for objective in OBJECTIVES:
            for seed in (0, 1):
                path = tmp_path / "a" / "synth" / setting / objective / f"seed{seed}" / "attributes.json"
                write_attributes(path, objective, seed, ["en", "de", "ja"])
                files.append(str(path))
    runs = attribute_runs(files)
    assert len(runs) == 12 and {r.setting.name for r in runs} == {"zero_shot", "all_languages"}
    cell = runs[0].cell(None, "colour")
    assert cell["n"] == 3 * sum(1 for i in range(N_IMAGES) if (i // 2) % 4 == 1) and cell["itc"]["low"] <= 1

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    report_cli.register(sub)
    out = tmp_path / "figures"
    args = parser.parse_args(["figures", "--metrics-dir", str(layout["metrics"]), "--pretrain-dir",
                              str(layout["pretrain"]), "--out", str(out), "--dpi", "40", "--attributes", *files])
    assert args.func(args) == 0
    for name in (*FIGURES, *ATTRIBUTE_FIGURES):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-", name
    assert not [p for p in out.rglob(".*")]
    # without --attributes there are no attribute figures
    args = parser.parse_args(["figures", "--metrics-dir", str(layout["metrics"]), "--pretrain-dir",
                              str(layout["pretrain"]), "--out", str(tmp_path / "plain"), "--dpi", "40"])
    assert args.func(args) == 0
    assert sorted(p.stem for p in (tmp_path / "plain").glob("*.png")) == sorted(FIGURES)

    # a file outside the layout, or not what its name says, is named
    stray = tmp_path / "attributes.json"
    stray.write_bytes(Path(files[0]).read_bytes())
    with pytest.raises(ResultsError, match=re.escape(str(stray)) + ": expected a path ending in"):
        attribute_runs([stray])
    broken = tmp_path / "b" / "synth" / "zero_shot" / "one_to_k" / "seed0" / "attributes.json"
    doc = json.loads(Path(files[0]).read_text())
    doc["per_language"]["de"]["size"]["itm"] = None
    broken.parent.mkdir(parents=True)
    broken.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ResultsError, match=re.escape(str(broken)) + ": per_language.de.size.itm needs"):
        attribute_runs([broken])
    import ccrk.cli

    capsys.readouterr()
    assert ccrk.cli.main(["figures", "--metrics-dir", str(layout["metrics"]), "--pretrain-dir",
                          str(layout["pretrain"]), "--out", str(tmp_path / "x"), "--attributes", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ccrk figures: error: ") and str(broken) in err and not (tmp_path / "x").exists()


def test_a_validation_log_record_without_r1_is_refused_naming_the_line(tmp_path):
    from ccrk.report.logs import read_validation_log
    from ccrk.report.runs import ResultsError

    log = tmp_path / "val.jsonl"
    log.write_text('{"step": 0, "r1": 1.5}\n{"step": 62, "r1": NaN}\n')
    with pytest.raises(ResultsError, match=r"val\.jsonl:2: a validation record needs a numeric 'step' and 'r1'"):
        read_validation_log(log)
    log.write_text('{"step": 0, "r1": 1.5}\n\n{"step": 62, "r1": 30.0, "mrv": 1.2}\n')
    assert [r["r1"] for r in read_validation_log(log)] == [1.5, 30.0]


def test_a_stale_run_on_disk_changes_no_table_when_the_runs_are_named(layout, outputs, tmp_path) -> None:
    """The workflow passes the runs it declares (--metrics/--compare): a seed or objective dropped from the config
    leaves its folders behind, and walking the tree would average them in."""
    import shutil

    import ccrk.cli

    metrics = tmp_path / "metrics"
    shutil.copytree(layout["metrics"], metrics)
    declared = sorted(str(p) for p in metrics.rglob(METRICS_FILE))
    compares = sorted(str(p) for p in metrics.rglob("one_to_k-vs-*.json"))
    # a run of a seed no longer configured, with other numbers (another seed's ranks)
    stale = metrics / "synth" / "zero_shot" / "one_to_k" / "seed7"
    _copy_run(metrics / "synth" / "zero_shot" / "cross_modal" / "seed1", stale)
    out = tmp_path / "tables"
    assert ccrk.cli.main(["tables", "--metrics", *declared, "--compare", *compares, "--out", str(out)]) == 0
    for name in ("table1", "per_language", "mrv", "significance"):
        expected = (outputs["out"] / "tables" / f"{name}.csv").read_text()
        assert (out / f"{name}.csv").read_text() == expected, name
    walked = tmp_path / "walked"
    assert ccrk.cli.main(["tables", "--metrics-dir", str(metrics), "--out", str(walked)]) == 0
    assert (walked / "table1.csv").read_text() != (out / "table1.csv").read_text()  # what the named runs avoid

    fig = tmp_path / "figures"
    logs = sorted(str(p) for p in layout["pretrain"].rglob("metrics.jsonl"))
    assert ccrk.cli.main(["figures", "--metrics", *declared, "--pretrain-logs", *logs, "--out", str(fig),
                          "--dpi", "40"]) == 0
    assert (fig / "recall_per_language.png").is_file()
    # a file outside the layout, both ways of naming the runs, or neither: one-line errors
    assert ccrk.cli.main(["tables", "--metrics", str(tmp_path / "x.json"), "--out", str(tmp_path / "t2")]) == 2
    assert ccrk.cli.main(["tables", "--metrics", *declared, "--metrics-dir", str(metrics), "--out",
                          str(tmp_path / "t3")]) == 2
    assert ccrk.cli.main(["tables", "--out", str(tmp_path / "t4")]) == 2
    assert not any((tmp_path / t).exists() for t in ("t2", "t3", "t4"))
