"""The generated benchmark: deterministic, gold where it must be, noisy where configured, well-formed."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from ccrk.cli import main
from ccrk.data.manifest import read_manifest
from ccrk.synth import generate as gen
from ccrk.synth.config import SynthConfig
from ccrk.synth.languages import LANGUAGE_CODES, get_language
from ccrk.synth.scene import Description, Obj

SMALL = {"images": {"pretrain": 60, "train": 16, "val": 8, "test": 12}, "few_shot": [1, 5]}


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "bench"
    gen.generate(SynthConfig.from_dict(SMALL), out)
    return out


def _scenes(root: Path, split: str) -> dict[str, dict]:
    lines = (root / "scenes" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return {d["image_id"]: d for d in map(json.loads, lines)}


def _gold(objects: list[list[str]]) -> Description:
    return Description(tuple(Obj(*o) for o in objects))


def _apply(gold: Description, noise: dict | None) -> Description:
    """Re-apply a logged noise event independently of ccrk.synth.noise."""
    if not noise:
        return gold
    objs = list(gold.objects)
    if noise["substituted"]:
        i, attr, old, new = noise["substituted"]
        assert getattr(objs[i], attr) == old
        objs[i] = replace(objs[i], **{attr: new})
    if noise["dropped_attribute"]:
        i, attr = noise["dropped_attribute"]
        objs[i] = replace(objs[i], **{attr: None})
    if noise["dropped_object"] is not None:
        del objs[noise["dropped_object"]]
    return Description(tuple(objs))


def test_same_seed_is_byte_identical_other_seed_differs(bench: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    gen.generate(SynthConfig.from_dict(SMALL), again)
    assert _tree_digest(again) == _tree_digest(bench)

    other = tmp_path / "other"
    gen.generate(SynthConfig.from_dict({**SMALL, "seed": 1}), other)
    a, b = _tree_digest(bench), _tree_digest(other)
    assert a.keys() == b.keys()
    assert a["test.jsonl"] != b["test.jsonl"]
    differing_images = [k for k in a if k.startswith("images/") and a[k] != b[k]]
    assert len(differing_images) == sum(SMALL["images"].values())


def test_manifests_are_valid_and_complete(bench: Path) -> None:
    for split, n in SMALL["images"].items():
        records = read_manifest(bench / f"{split}.jsonl", check_images=True)
        assert len(records) == n
        for r in records:
            assert list(r.captions) == list(LANGUAGE_CODES)  # English first, configured order
            per_lang = {len(v) for v in r.captions.values()}
            assert per_lang == ({2} if split in ("train", "val") else {1})


def test_gold_splits_carry_no_noise_and_pretrain_noise_is_what_was_logged(bench: Path) -> None:
    for split in ("pretrain", "train", "val", "test"):
        scenes = _scenes(bench, split)
        for record in read_manifest(bench / f"{split}.jsonl", check_images=False):
            info = scenes[record.image_id]
            gold = _gold(info["objects"])
            for lang, texts in record.captions.items():
                grammar = get_language(lang)
                for text, note in zip(texts, info["captions"][lang]):
                    if split != "pretrain" or lang == "en":
                        assert note["noise"] is None, (split, lang, record.image_id)
                    assert text == grammar.describe(_apply(gold, note["noise"]), note["template"])
    noisy = sum(
        n["noise"] is not None for d in _scenes(bench, "pretrain").values() for notes in d["captions"].values() for n in notes
    )
    assert noisy > 0


def test_test_split_is_parallel_near_duplicate_pairs(bench: Path) -> None:
    scenes = _scenes(bench, "test")
    records = {r.image_id: r for r in read_manifest(bench / "test.jsonl", check_images=False)}
    for image_id, info in scenes.items():
        partner = scenes[info["near_duplicate_of"]]
        assert partner["near_duplicate_of"] == image_id
        a, b = info["objects"], partner["objects"]
        assert len(a) == len(b)
        changed = [(i, k) for i in range(len(a)) for k in range(4) if a[i][k] != b[i][k]]
        assert len(changed) == 1, (a, b)
        for lang in LANGUAGE_CODES:
            assert records[image_id].captions[lang] != records[info["near_duplicate_of"]].captions[lang]


def test_no_scene_appears_twice_anywhere(bench: Path) -> None:
    keys = [
        frozenset(map(tuple, d["objects"])) for split in SMALL["images"] for d in _scenes(bench, split).values()
    ]
    assert len(keys) == len(set(keys))


SCRIPTS = {
    "ja": re.compile(r"[\u3040-\u30ff]"),
    "zh": re.compile(r"[\u4e00-\u9fff]"),
    "ru": re.compile(r"[\u0400-\u04ff]"),
}


def test_languages_differ_from_english_and_use_their_script(bench: Path) -> None:
    records = read_manifest(bench / "test.jsonl", check_images=False)
    english_words = {w.lower().strip(".,") for r in records for w in r.captions["en"][0].split()}
    for lang in LANGUAGE_CODES[1:]:
        for r in records:
            text = r.captions[lang][0]
            assert text != r.captions["en"][0]
            if lang in SCRIPTS:
                assert SCRIPTS[lang].search(text), (lang, text)
            if lang in ("ja", "zh"):
                assert " " not in text and not re.search(r"[A-Za-z]", text)
            if lang == "zh":
                assert not re.search(r"[\u3040-\u30ff]", text)
        words = {w.lower().strip(".,") for r in records for w in r.captions[lang][0].split()}
        # Only true cognates may coincide (fr "triangle", "orange"; "a" in fr/es/cs).
        shared = words & english_words
        assert len(shared) <= 3 and len(shared) < 0.1 * len(words), (lang, shared)


def test_few_shot_subsets_are_nested_and_single_language(bench: Path) -> None:
    train_ids = {r.image_id for r in read_manifest(bench / "train.jsonl", check_images=False)}
    for lang in LANGUAGE_CODES[1:]:
        one = read_manifest(bench / "fewshot" / lang / "train_1.jsonl", check_images=True, image_root=bench)
        five = read_manifest(bench / "fewshot" / lang / "train_5.jsonl", check_images=True, image_root=bench)
        assert len(one) == 1 and len(five) == 5
        assert {r.image_id for r in one} <= {r.image_id for r in five} <= train_ids
        assert all(list(r.captions) == [lang] for r in five)
    assert not (bench / "fewshot" / "en").exists()


def test_stats_report_sizes_and_applied_noise(bench: Path) -> None:
    stats = json.loads((bench / "stats.json").read_text())
    assert stats["synthetic"] is True
    assert stats["images"] == SMALL["images"]
    assert stats["captions"]["train"]["de"] == 2 * SMALL["images"]["train"]
    assert set(stats["noise_applied"]) == set(LANGUAGE_CODES[1:])


def test_a_failed_generation_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = gen.render_scene

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 20:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(gen, "render_scene", flaky)
    out = tmp_path / "bench"
    with pytest.raises(RuntimeError):
        gen.generate(SynthConfig.from_dict(SMALL), out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_cli_prints_summary_and_rejects_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"synth": SMALL}))
    assert main(["synth", "--config", str(cfg), "--set", "synth.seed=3", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "images a split: pretrain 60, train 16, val 8, test 12" in out
    assert "captions a language" in out and "noise applied" in out
    assert json.loads((tmp_path / "b" / "stats.json").read_text())["seed"] == 3

    assert main(["synth", "--config", str(cfg), "--set", "synth.sede=3", "--out", str(tmp_path / "c")]) == 2
    assert "synth.sede" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
