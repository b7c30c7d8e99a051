"""The Snakemake DAG and the DVC pipeline: they plan, validate the config by key, and run end to end.

The end-to-end tests run a miniature config (tens of images, one optimiser
step or so a run) in a copy of the workflow files, so they never touch the
checkout's resources/ or results/.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RULES = ("synth", "tokenizer", "pretrain", "finetune", "evaluate_synth", "compare", "tables", "figures", "all")
TABLES = ("table1", "per_language", "mrv", "significance", "seeds")
FIGURES = ("recall_per_language", "rank_std", "rank_scatter", "loss_curves")
#: Only with the synthetic benchmark (rule evaluate_synth also writes the near-duplicate diagnostic).
ATTRIBUTE_FIGURES = ("attribute_preference", "attribute_preference_per_language")
OBJECTIVES = ("one_to_k", "cross_lingual", "cross_modal")


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
            "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}


def _snakemake(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=900)


def _dvc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "dvc"), *args], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=900)


def _copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "workflow", "config", "profiles", "dvc.yaml"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    os.symlink(os.readlink(ROOT / "slurm"), dest / "slurm")
    return dest


def miniature(config: dict) -> dict:
    """Seconds-level sizes: the same DAG, every rule, a handful of images."""
    config["synth"]["images"] = {"pretrain": 48, "train": 24, "val": 12, "test": 12}
    config["synth"]["few_shot"] = [1, 5]
    config["tokenizer"]["vocab_size"] = 700
    config["model"].update({"image_encoder": "vit_tiny_patch16_224", "image_kwargs": {"depth": 1, "embed_dim": 32, "num_heads": 2, "patch_size": 16},
                            "text_layers": 1, "fusion_layers": 1, "embed_dim": 16, "max_length": 40,
                            "text_config": {"model_type": "xlm-roberta", "hidden_size": 32,
                                            "num_attention_heads": 2, "intermediate_size": 64,
                                            "max_position_embeddings": 48, "type_vocab_size": 1}})
    config["train"].update({"epochs": 1, "batch_size": 16, "save_every": 0})
    config["finetune"]["train"].update({"epochs": 1, "batch_size": 12})
    config["evaluate"].update({"bootstrap": 30})  # k_test auto: as chosen on validation by fine-tuning
    config["workflow"]["seeds"] = [0]
    return config


def _write_config(workdir: Path, config: dict) -> None:
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))


def _config(workdir: Path) -> dict:
    return yaml.safe_load((workdir / "config" / "config.yaml").read_text())


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    return _copy_workflow(tmp_path)


def test_dry_run_lists_every_rule(workdir: Path) -> None:
    result = _snakemake(workdir, "-n")
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    for rule in RULES:
        assert f"rule {rule}:" in out or f"\n{rule} " in out, f"{rule} missing from the plan:\n{out[-3000:]}"
    # 3 objectives x 2 seeds pre-trained; each fine-tuned under 2 settings and evaluated.
    jobs = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}
    # the synthetic benchmark's evaluation also scores the near-duplicate diagnostic, in the same job
    assert jobs["pretrain"] == 6 and jobs["finetune"] == 12 and jobs["evaluate_synth"] == 12, jobs
    assert "evaluate" not in jobs and "attributes" not in jobs, jobs


@pytest.mark.parametrize(("section", "good", "bad"), [("synth", "images", "imagez"), ("train", "epochs", "epoch"),
                                                      ("workflow", "seeds", "seed")])
def test_misspelt_config_key_is_named(workdir: Path, section: str, good: str, bad: str) -> None:
    cfg = _config(workdir)
    cfg[section][bad] = cfg[section].pop(good)
    _write_config(workdir, cfg)
    result = _snakemake(workdir, "-n")
    assert result.returncode != 0
    assert repr(bad) in result.stdout + result.stderr


def test_unknown_top_level_section_is_named(workdir: Path) -> None:
    cfg = _config(workdir)
    cfg["evaluation"] = cfg.pop("evaluate")
    _write_config(workdir, cfg)
    result = _snakemake(workdir, "-n")
    assert result.returncode != 0 and "'evaluation'" in result.stdout + result.stderr


def test_a_non_finite_number_in_the_config_is_named(workdir: Path) -> None:
    """JSON Schema's `number` admits YAML's .nan and .inf; the workflow refuses them before planning."""
    (workdir / "config" / "nan.yaml").write_text("train:\n  lr: .nan\n")
    result = _snakemake(workdir, "-n", "--configfile", "config/config.yaml", "config/nan.yaml")
    assert result.returncode != 0
    assert "config key train.lr is not a finite number" in result.stdout + result.stderr


def test_external_models_plan_one_evaluation_per_dataset_and_feed_the_tables(workdir: Path) -> None:
    (workdir / "ext.pt").write_bytes(b"")
    (workdir / "hf").mkdir()
    cfg = _config(workdir)
    cfg["external_models"] = {"oc": {"kind": "open_clip", "arch": "ViT-B-32", "path": "ext.pt"},
                              "clip": {"kind": "hf", "path": "hf", "datasets": ["synth"]}}
    _write_config(workdir, cfg)
    result = _snakemake(workdir, "-n", "-p", "tables")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "ccrk evaluate" in out and "--model open_clip:ViT-B-32 --pretrained ext.pt" in out
    assert "--model hf:hf" in out and "--external results/metrics/synth/external/" in out
    jobs = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert jobs["evaluate_external"] == 2, jobs


@pytest.mark.parametrize(("entry", "message"), [
    ({"kind": "open_clip", "path": "x.pt"}, "'arch' is a required property"),
    ({"kind": "hf", "path": "d", "arch": "ViT-B-32"}, "should not be valid"),
    ({"kind": "onnx", "path": "m.onnx"}, "'onnx' is not one of"),
    ({"kind": "hf", "path": "d", "datasets": ["wit"]}, "external_models.m.datasets: ['wit'] are not among"),
])
def test_a_bad_external_model_entry_is_refused_before_planning(workdir: Path, entry: dict, message: str) -> None:
    cfg = _config(workdir)
    cfg["external_models"] = {"m": entry}
    _write_config(workdir, cfg)
    result = _snakemake(workdir, "-n")
    assert result.returncode != 0 and message in result.stdout + result.stderr


def test_a_download_that_reads_another_sources_files_waits_for_it(workdir: Path) -> None:
    """WIT's images are decoded for the URLs its annotations list: that job must not start before them."""
    result = _snakemake(workdir, "-n", "data/.ccrk/wit-kaggle-pixels.json", "--configfile", "config/paper.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "input: data/.ccrk/iglue-wit.json" in out and "output: data/.ccrk/wit-kaggle-pixels.json" in out


def test_profile_slurm_resolves_from_the_root_and_sends_gpu_rules_to_the_slurm_launcher(workdir: Path) -> None:
    result = _snakemake(workdir, "--profile", "slurm", "-n", "-p")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "--objective one_to_k" in out and "--launcher slurm" in out
    assert "--launcher local" not in out
    gpu_rules = [line for line in out.splitlines() if re.search(r"ccrk (pretrain|finetune|evaluate) ", line)]
    assert gpu_rules and all("--launcher slurm" in line for line in gpu_rules)
    light = [line for line in out.splitlines()
             if re.search(r"ccrk (synth|tokenizer|compare|tables|figures) ", line)]
    assert light and not any("--launcher" in line for line in light)
    paper = _snakemake(workdir, "--profile", "slurm", "-n", "-p", "--configfile", "config/paper.yaml")
    assert paper.returncode == 0, paper.stderr[-3000:]
    translate = next(line for line in (paper.stdout + paper.stderr).splitlines() if "ccrk translate " in line)
    assert "--launcher slurm" in translate


@pytest.mark.parametrize("configfile", [[], ["--configfile", "config/paper.yaml"]], ids=["embedded", "paper"])
def test_lint_is_clean(workdir: Path, configfile: list[str]) -> None:
    result = _snakemake(workdir, "--lint", *configfile)
    assert result.returncode == 0, result.stdout + result.stderr


def _external_models(root: Path) -> dict:
    """A tiny random open_clip model and a tiny random CLIPModel, as a user would list them in the config."""
    from test_external_models import build_tiny_hf_clip, build_tiny_open_clip

    root.mkdir()
    arch, ckpt = build_tiny_open_clip(root)
    texts = ["a red square", "zwei blaue Kreise", "un triangle vert", "dva modré kruhy", "红色方块", "赤い四角"]
    return {"tiny-oc": {"kind": "open_clip", "arch": str(arch), "path": str(ckpt)},
            "tiny-hf": {"kind": "hf", "path": str(build_tiny_hf_clip(root, texts))}}


def test_miniature_config_runs_end_to_end(workdir: Path) -> None:
    config = miniature(_config(workdir))
    config["external_models"] = _external_models(workdir.parent / "external")
    _write_config(workdir, config)
    result = _snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    # the external models' evaluations, beside the trained ones and in the per-language and MRV tables
    for name in ("tiny-oc", "tiny-hf"):
        metrics = json.loads((workdir / "results" / "metrics" / "synth" / "external" / name / "metrics.json")
                             .read_text())
        assert metrics["k_test"] == 1 and metrics["mrv"]["languages"] == ["en", "de", "ja", "zh"]
        assert metrics["languages"] == ["en", "de", "fr", "cs", "zh", "ja"]
        for table in ("per_language", "mrv"):
            rows = pd.read_csv(workdir / "results" / "tables" / f"{table}.csv")
            assert ((rows["setting"] == "external") & (rows["objective"] == name)).any(), (table, name)
    for table in TABLES:
        for ext in ("csv", "md", "tex"):
            assert (workdir / "results" / "tables" / f"{table}.{ext}").stat().st_size > 0
    for figure in FIGURES + ATTRIBUTE_FIGURES:
        for ext in ("png", "pdf"):
            assert (workdir / "results" / "figures" / f"{figure}.{ext}").stat().st_size > 0
    for objective in OBJECTIVES:
        summary = json.loads((workdir / "results" / "summary" / f"{objective}.json").read_text())
        assert summary and all(isinstance(v, (int, float)) for v in summary.values())
        for setting in ("zero_shot", "all_languages"):
            metrics = workdir / "results" / "metrics" / "synth" / setting / objective / "seed0" / "metrics.json"
            assert json.loads(metrics.read_text())["mrv"]["languages"] == ["en", "de", "ja", "zh"]
            # beside it, written after evaluate replaced the run directory
            attributes = json.loads((metrics.parent / "attributes.json").read_text())
            assert attributes["languages"] == ["en", "de", "fr", "cs", "zh", "ja"]
            assert attributes["all_languages"]["all"]["n"] == 6 * 12
    # Every rule wrote its log.
    assert (workdir / "logs" / "pretrain" / "one_to_k" / "seed0.log").stat().st_size > 0
    assert "images a split: pretrain 48" in (workdir / "logs" / "synth.log").read_text()
    again = _snakemake(workdir, "--cores", "2", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    report = _snakemake(workdir, "--report", "report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    assert (workdir / "report.html").stat().st_size > 0


def test_budget_study_runs_the_comparison_at_three_lengths_and_reuses_the_default_run(workdir: Path) -> None:
    """workflow/budget.smk on the miniature: lengths 1 (= train.epochs, the default run), 2 and 3 epochs."""
    config = miniature(_config(workdir))
    config["workflow"]["settings"] = ["all_languages"]
    _write_config(workdir, config)
    budget = yaml.safe_load((workdir / "config" / "budget.yaml").read_text())
    assert len(budget["budget"]["epochs"]) == 3 and config["train"]["epochs"] == 1
    budget["budget"]["epochs"] = [1, 2, 3]
    (workdir / "config" / "mini-budget.yaml").write_text(yaml.safe_dump(budget))
    args = ("-s", "workflow/budget.smk", "--configfile", "config/config.yaml", "config/mini-budget.yaml")
    lint = _snakemake(workdir, *args, "--lint")
    assert lint.returncode == 0 and "good condition" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    plan = _snakemake(workdir, *args, "-n", "-p")
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = _job_counts(plan.stdout)
    assert jobs["short_synth"] == jobs["short_tokenizer"] == jobs["budget"] == 1
    assert "middle_synth" not in jobs and "long_tokenizer" not in jobs  # the data are shared
    assert jobs["short_pretrain"] == jobs["middle_pretrain"] == jobs["long_pretrain"] == 3
    for epochs, out in ((1, "results/models"), (2, "results/runs/budget-e2/models"),
                        (3, "results/runs/budget-e3/models")):
        assert re.search(rf"train\.epochs='{epochs}'.* --out {out}/pretrain/one_to_k/seed0", plan.stdout)

    result = _snakemake(workdir, *args, "--cores", "2")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    table = pd.read_csv(workdir / "results" / "runs" / "budget" / "budget.csv")
    steps_per_epoch = 48 // 16
    assert sorted(set(table["steps"])) == [steps_per_epoch * e for e in (1, 2, 3)]
    assert len(table) == 3 * 3 and set(table["seeds"]) == {1}
    assert (workdir / "results" / "runs" / "budget" / "budget.png").stat().st_size > 0
    assert (workdir / "results" / "tables" / "significance.md").is_file()  # the default run's own tables
    assert (workdir / "results" / "runs" / "budget-e3" / "tables" / "significance.md").is_file()
    assert "wrote" in (workdir / "logs" / "runs" / "budget" / "budget.log").read_text()


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


def test_dvc_repro_then_noop_and_push_pull_round_trip(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    repo = _copy_workflow(tmp_path / "repo")
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    _write_config(repo, miniature(_config(repo)))
    _git(repo, "init", "-q")
    init = _dvc(repo, "init", "-q")
    assert init.returncode == 0, init.stderr
    _dvc(repo, "config", "core.analytics", "false")
    first = _dvc(repo, "repro")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    assert (repo / "dvc.lock").is_file() and (repo / "results" / "tables" / "table1.md").is_file()
    second = _dvc(repo, "repro")
    assert second.returncode == 0, second.stderr
    for stage in ("benchmark", "experiments", "report"):
        assert f"Stage '{stage}' didn't change, skipping" in second.stdout, second.stdout
    # A change in what a stage declares (here the plumbing every rule shares) makes DVC report the stage.
    common = repo / "workflow" / "rules" / "common.smk"
    original = common.read_text()
    common.write_text(original + "\n# a change\n")
    status = _dvc(repo, "status")
    assert status.returncode == 0, status.stderr
    for stage in ("benchmark", "experiments", "report"):
        assert f"{stage}:" in status.stdout and "modified:" in status.stdout, status.stdout
    common.write_text(original)
    assert "up to date" in _dvc(repo, "status").stdout.lower()
    shown = _dvc(repo, "metrics", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    files = next(iter(json.loads(shown.stdout).values()))["data"]
    assert {Path(f).stem for f in files} == set(OBJECTIVES)

    remote = tmp_path / "remote"
    assert _dvc(repo, "remote", "add", "-d", "local", str(remote)).returncode == 0
    push = _dvc(repo, "push")
    assert push.returncode == 0, push.stderr
    table = (repo / "results" / "tables" / "table1.md").read_text()
    shutil.rmtree(repo / "results" / "tables")
    shutil.rmtree(repo / ".dvc" / "cache")
    pull = _dvc(repo, "pull")
    assert pull.returncode == 0, pull.stderr
    assert (repo / "results" / "tables" / "table1.md").read_text() == table


def test_the_embedded_config_builds_its_model_and_every_section_validates() -> None:
    """The default config's own sections pass ccrk's validation and build the model the DAG trains."""
    import torch

    from ccrk.evaluation.options import EvalOptions
    from ccrk.models import ModelConfig, build_model
    from ccrk.objectives import ObjectiveConfig
    from ccrk.train.config import FinetuneConfig, TrainConfig

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    TrainConfig.from_dict(cfg["train"])
    FinetuneConfig.from_dict(cfg["finetune"]).train_config(cfg["train"])
    ObjectiveConfig.from_dict(cfg["objective"])
    EvalOptions.from_config(cfg["evaluate"])
    model = build_model(ModelConfig.from_dict(cfg["model"]), vocab_size=300)
    size = cfg["model"]["image_size"]
    tokens, feat = model.encode_image(torch.randn(2, 3, size, size))
    assert feat.shape == (2, cfg["model"]["embed_dim"]) and tokens.shape[0] == 2


def _job_counts(out: str) -> dict[str, int]:
    return {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}


def test_paper_config_plans_the_whole_paper_dag(workdir: Path) -> None:
    """snakemake -n --configfile config/paper.yaml: download -> prepare -> corpus -> translate -> pretrain
    -> fine-tune (every regime of Table 1) -> evaluate -> compare -> tables and figures."""
    result = _snakemake(workdir, "-n", "-p", "--configfile", "config/paper.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    jobs = _job_counts(out)
    # 12 registry sources (11 for the benchmarks + the CC3M list), 5 prepare rules (Flickr30k for xFlickr&CO's
    # English fine-tuning), one crawl and one translation, 3 objectives x 1 seed pre-trained.
    assert jobs["download"] == 12 and jobs["corpus"] == 1 and jobs["translate"] == 1, jobs
    for dataset in ("xflickrco", "flickr30k", "multi30k", "wit", "mscoco"):
        assert jobs[f"prepare_{dataset}"] == 1, jobs
    # settings: xFlickr&CO 1 + 7 few-shot, WIT 1, Multi30K 1 + 4, COCO 1 + 3 = 18, for 3 objectives
    assert jobs["pretrain"] == 3 and jobs["finetune"] == 54 and jobs["evaluate"] == 54, jobs
    assert jobs["compare"] == 36 and jobs["tables"] == 1 and jobs["figures"] == 1, jobs
    # the near-duplicate diagnostic needs the synthetic ground truth
    assert "evaluate_synth" not in jobs and "--scenes" not in out, jobs

    lines = [line for line in out.splitlines() if "ccrk " in line]
    pretrain = next(line for line in lines if "ccrk pretrain" in line and "one_to_k" in line)
    assert "--manifest data/cc3m/shards --captions resources/corpus/captions" in pretrain
    assert "train.languages='[\"en\", \"de\", \"fr\", \"cs\", \"zh\", \"ja\"]'" in pretrain
    assert "--tokenizer resources/tokenizers/FacebookAI--xlm-roberta-large" in pretrain
    few = next(line for line in lines if "ccrk finetune" in line and "few_shot/ja/train_100.jsonl" in line)
    assert "model.image_size='384'" in few and '"window_size": 12' in few and '"lr": 1e-05' in few
    assert "--val-manifest resources/manifests/flickr30k/val.jsonl" in few
    assert "--pretrained results/models/finetune/xflickrco/zero_shot/" in few
    zero = next(line for line in lines if "ccrk finetune" in line and "xflickrco/zero_shot" in line)
    assert "--train-manifest resources/manifests/flickr30k/train.jsonl" in zero and '"lr": 3e-05' in zero
    wit = next(line for line in lines if "ccrk evaluate" in line and "/wit/" in line)
    assert "--languages ar,bg,da,el,en,et,id,ja,ko,tr,vi" in wit and "evaluate.mrv_languages='[]'" in wit
    xfc = next(line for line in lines if "ccrk evaluate" in line and "xflickrco/zero_shot/one_to_k" in line)
    assert "evaluate.mrv_languages='[\"en\", \"de\", \"ja\", \"zh\"]'" in xfc and "evaluate.k_test='128'" in xfc
    assert any("ccrk download --source flickr30k-images --root data --stamp data/.ccrk/flickr30k-images.json"
               in line for line in lines)
    assert any("ccrk prepare --dataset xflickrco --root data --out resources/manifests/xflickrco --check-images"
               in line for line in lines)
    assert any("ccrk tokenizer" in line and "tokenizer.pretrained='\"FacebookAI/xlm-roberta-large\"'" in line
               for line in lines)

    # CCR^10 layered over it: own results, same data and translations, ten languages
    result = _snakemake(workdir, "-n", "-p", "--configfile", "config/paper.yaml", "config/paper-ccr10.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    pretrain = next(line for line in out.splitlines() if "ccrk pretrain" in line)
    assert "--out results/runs/ccr10/models/pretrain/" in pretrain and '"ru", "tr"]' in pretrain
    assert "--captions resources/corpus/captions" in pretrain


def test_the_paper_config_sections_validate() -> None:
    """paper.yaml's sections pass ccrk's own validation, the per-dataset ones merged as the DAG merges them."""
    from ccrk.corpus.translate import TranslateConfig
    from ccrk.evaluation.options import EvalOptions
    from ccrk.models import ModelConfig
    from ccrk.objectives import ObjectiveConfig
    from ccrk.train.config import FinetuneConfig, TrainConfig

    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    TrainConfig.from_dict(cfg["train"])
    ObjectiveConfig.from_dict(cfg["objective"])
    TranslateConfig.from_dict(cfg["translate"])
    assert ModelConfig.from_dict(cfg["model"]).to_dict() == ModelConfig.paper().to_dict()
    for name, bench in cfg["benchmarks"].items():
        model = ModelConfig.from_dict({**cfg["model"], **bench["model"]})
        assert model.image_size == 384 and model.image_pretrained is None, name
        for extra in (bench.get("finetune"), bench.get("finetune_few_shot")):
            merged = {**cfg["finetune"], "train": {**cfg["finetune"]["train"], **((extra or {}).get("train") or {})}}
            FinetuneConfig.from_dict(merged).train_config(cfg["train"])
        EvalOptions.from_config({**cfg["evaluate"], **bench["evaluate"]})


def test_the_prepare_rules_declare_the_manifests_ccrk_writes(workdir: Path) -> None:
    """The workflow takes dataset sources and few-shot files from ccrk itself; the paper DAG's plan shows them."""
    from ccrk.datasets import multi30k, xflickrco
    from ccrk.datasets.sources import SOURCES
    from ccrk.layout import DATASET_SOURCES, SOURCE_NEEDS

    assert all(name in SOURCES for names in DATASET_SOURCES.values() for name in names)
    assert all(name in SOURCES for names in SOURCE_NEEDS.values() for name in names)
    assert "cc3m-urls" in SOURCES and SOURCES["cc3m-urls"].manual
    assert sorted(multi30k.OUTPUT_NAMES.values()) == ["test", "train", "val"]
    result = _snakemake(workdir, "-n", "--configfile", "config/paper.yaml")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for lang in xflickrco.FEW_SHOT_LANGUAGES:
        for shots in xflickrco.FEW_SHOT_SIZES:
            assert f"resources/manifests/xflickrco/few_shot/{lang}/train_{shots}.jsonl" in out
