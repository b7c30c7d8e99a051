"""ccrk attributes: near-duplicate preference per attribute and language against a caption-by-caption reference,
the pair bootstrap, and the refusals of bad ground truth."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ccrk.cli import main
from ccrk.data.manifest import read_manifest
from ccrk.data.transforms import build_eval_transform
from ccrk.evaluation.data import load_eval_data
from ccrk.models import ModelConfig, build_model, load_model, save_model
from ccrk.models.config import TINY_TEXT_CONFIG
from ccrk.report.attribute_runs import load_attributes
from ccrk.report.attributes import ALL, ATTRIBUTES, FORMAT, attribute_diagnostic, read_pairing
from ccrk.synth.config import SynthConfig
from ccrk.synth.generate import generate
from ccrk.tokenizer import load_tokenizer, manifest_texts, train_tokenizer

LANGS = ["en", "de", "ja", "zh"]
N_TEST = 24  # 12 near-duplicate pairs
BOOT = 200


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("attributes")
    cfg = SynthConfig.from_dict(
        {"images": {"pretrain": 24, "train": 8, "val": 4, "test": N_TEST}, "few_shot": [1], "languages": LANGS}
    )
    generate(cfg, root / "synth")
    train_tokenizer(manifest_texts([root / "synth" / "pretrain.jsonl"]), root / "tok", vocab_size=600, max_length=64)
    tok = load_tokenizer(root / "tok")
    small = ModelConfig(text_config=dict(TINY_TEXT_CONFIG), text_layers=1, fusion_layers=1, embed_dim=64)
    torch.manual_seed(0)
    save_model(build_model(small, tokenizer=tok), root / "model")
    return root


def _cli(bench: Path, out: Path, *extra: str, scenes: Path | None = None, manifest: Path | None = None) -> int:
    return main([
        "attributes", "--model", str(bench / "model"), "--tokenizer", str(bench / "tok"),
        "--manifest", str(manifest or bench / "synth" / "test.jsonl"),
        "--scenes", str(scenes or bench / "synth" / "scenes" / "test.jsonl"),
        "--batch-size", "5", "--itm-batch-size", "7", "--bootstrap", str(BOOT), "--device", "cpu",
        "--out", str(out), *extra,
    ])


@pytest.fixture(scope="module")
def run(bench) -> dict:
    out = bench / "out" / "attributes.json"
    assert _cli(bench, out) == 0
    return json.loads(out.read_text())


def _options():
    from ccrk.evaluation.options import EvalOptions

    return EvalOptions(languages=LANGS, mrv_languages=(), batch_size=5, itm_batch_size=7, bootstrap=BOOT,
                       device="cpu")


@pytest.fixture(scope="module")
def scores(bench) -> dict:
    """The per-caption scores behind the file (the library call the command makes, languages named)."""
    _, got = attribute_diagnostic(bench / "model", bench / "tok", bench / "synth" / "test.jsonl",
                                  bench / "synth" / "scenes" / "test.jsonl", bench / "lib" / "attributes.json",
                                  _options())
    return got


def _reference(bench: Path) -> dict[str, dict[str, np.ndarray]]:
    """Per caption, the slow way: every image and caption encoded alone, partners read from the scenes file."""
    model = load_model(bench / "model")
    tok = load_tokenizer(bench / "tok")
    records = read_manifest(bench / "synth" / "test.jsonl", check_images=False)
    scenes = {s["image_id"]: s for s in map(json.loads, (bench / "synth" / "scenes" / "test.jsonl").open())}
    transform = build_eval_transform(model.config.image_size)
    image_tokens, image_feats = {}, {}
    with torch.no_grad():
        for r in records:
            pixels = transform(Image.open(bench / "synth" / r.image).convert("RGB"), {})[0]
            tokens, feat = model.encode_image(pixels[None])
            image_tokens[r.image_id], image_feats[r.image_id] = tokens, feat[0]
        out: dict[str, dict[str, list]] = {}
        for lang in LANGS:
            rows: dict[str, list] = {k: [] for k in ("itc_own", "itc_partner", "itm_own", "itm_partner", "attribute",
                                                     "pair")}
            for r in records:
                partner = scenes[r.image_id]["near_duplicate_of"]
                for text in r.captions[lang]:
                    enc = tok([text], truncation=True, max_length=model.config.max_length, return_tensors="pt")
                    tokens, feat = model.encode_text(enc["input_ids"], enc["attention_mask"])
                    for name, image_id in (("own", r.image_id), ("partner", partner)):
                        rows[f"itc_{name}"].append(float(feat[0] @ image_feats[image_id]))
                        logits = model.itm_logits(tokens, enc["attention_mask"], image_tokens[image_id])
                        rows[f"itm_{name}"].append(float(logits[0, 1]))
                    rows["attribute"].append(scenes[r.image_id]["changed"][1])
                    rows["pair"].append(min(r.image_id, partner))
            out[lang] = {k: np.array(v) for k, v in rows.items()}
    return out


def _prefer(own: np.ndarray, other: np.ndarray) -> np.ndarray:
    return (own > other) + 0.5 * (own == other)


def test_rates_match_a_caption_by_caption_reference(bench, run, scores):
    ref = _reference(bench)
    assert run["format"] == FORMAT and run["languages"] == LANGS and run["attributes"] == list(ATTRIBUTES)
    assert run["n_images"] == N_TEST and run["n_pairs"] == N_TEST // 2
    assert run["itm_pairs_scored"] == 2 * N_TEST * len(LANGS)
    pooled = {score: [] for score in ("itc", "itm")}
    attrs_all = []
    for lang in LANGS:
        r, s = ref[lang], scores[lang]
        # the batched scores are the caption-by-caption ones (padding and batching change nothing but rounding)
        for key in ("itc_own", "itc_partner", "itm_own", "itm_partner"):
            np.testing.assert_allclose(getattr(s, key), r[key], atol=2e-5, rtol=1e-5, err_msg=f"{lang} {key}")
        assert [ATTRIBUTES[a] for a in s.attribute] == list(r["attribute"])
        for score in ("itc", "itm"):
            want = _prefer(r[f"{score}_own"], r[f"{score}_partner"])
            got = s.preference(score)
            # a reference decision may only differ where the two scores are within rounding of each other
            near_tie = np.abs(r[f"{score}_own"] - r[f"{score}_partner"]) < 1e-4
            assert np.array_equal(got[~near_tie], want[~near_tie]), (lang, score)
            want = np.where(near_tie, got, want)
            pooled[score].append(want)
            for name in (*ATTRIBUTES, ALL):
                keep = (r["attribute"] == name) if name != ALL else np.ones(len(want), bool)
                cell = run["per_language"][lang][name]
                assert cell["n"] == int(keep.sum())
                assert cell["n_pairs"] == len(set(r["pair"][keep]))
                if keep.any():
                    assert cell[score]["value"] == pytest.approx(want[keep].mean(), abs=1e-12), (lang, name, score)
                    assert 0.0 <= cell[score]["low"] <= cell[score]["high"] <= 1.0
                else:
                    assert cell[score] is None
        attrs_all.append(r["attribute"])
    attrs = np.concatenate(attrs_all)
    for score in ("itc", "itm"):
        pref = np.concatenate(pooled[score])
        for name in ATTRIBUTES:
            cell = run["all_languages"][name]
            assert cell["n"] == int((attrs == name).sum())
            if cell["n"]:
                assert cell[score]["value"] == pytest.approx(pref[attrs == name].mean(), abs=1e-12)
        assert run["all_languages"][ALL][score]["value"] == pytest.approx(pref.mean(), abs=1e-12)
    assert run["all_languages"][ALL]["n"] == N_TEST * len(LANGS)
    assert sum(run["all_languages"][name]["n"] for name in ATTRIBUTES) == N_TEST * len(LANGS)
    assert load_attributes(bench / "out" / "attributes.json") == run
    # the command (every language of the manifest, here the four) and the library call agree to the last digit
    lib = json.loads((bench / "lib" / "attributes.json").read_text())
    assert lib["per_language"] == run["per_language"] and lib["all_languages"] == run["all_languages"]


def test_the_interval_resamples_pairs_not_captions(run, scores):
    """The pooled cell's interval, recomputed slowly: a resample draws pairs, each with all its captions."""
    pair = np.concatenate([scores[lang].pair for lang in LANGS])
    pref = np.concatenate([scores[lang].preference("itm") for lang in LANGS])
    units = sorted(set(pair.tolist()))
    index = np.random.default_rng(0).integers(0, len(units), size=(BOOT, len(units)))
    rates = []
    for row in index:
        chosen = [units[i] for i in row]
        wins = sum(pref[pair == u].sum() for u in chosen)
        count = sum((pair == u).sum() for u in chosen)
        rates.append(wins / count)
    low, high = np.quantile(rates, [0.025, 0.975])
    cell = run["all_languages"][ALL]["itm"]
    assert cell["low"] == pytest.approx(low, abs=1e-12) and cell["high"] == pytest.approx(high, abs=1e-12)
    assert run["interval"]["unit"] == "pair" and run["interval"]["n_resamples"] == BOOT


def _scene_lines(bench: Path) -> list[str]:
    return (bench / "synth" / "scenes" / "test.jsonl").read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bad_ground_truth_is_refused_naming_file_and_line(bench, tmp_path):
    data = load_eval_data(bench / "synth" / "test.jsonl", languages=LANGS, check_images=False)
    lines = _scene_lines(bench)
    missing = tmp_path / "nope" / "test.jsonl"
    with pytest.raises(FileNotFoundError, match=f"scenes file {missing} does not exist"):
        read_pairing(missing, data)

    # an image id the manifest does not have
    bad = [json.loads(line) for line in lines]
    bad[4]["image_id"] = "test-999999"
    path = _write(tmp_path / "foreign.jsonl", [json.dumps(s) for s in bad])
    with pytest.raises(ValueError, match=f"{path}:5: image_id 'test-999999' is not in the manifest "
                                         f"{bench / 'synth' / 'test.jsonl'}"):
        read_pairing(path, data)

    # the partner's line is gone: the image naming it is refused
    partner = json.loads(lines[2])["near_duplicate_of"]
    kept = [line for line in lines if json.loads(line)["image_id"] != partner]
    path = _write(tmp_path / "no_partner.jsonl", kept)
    with pytest.raises(ValueError, match=f"{path}:3: partner {partner!r} of image_id .* has no scene in {path}"):
        read_pairing(path, data)

    # no partner at all (a training split's scenes)
    bad = [json.loads(line) for line in lines]
    bad[0]["near_duplicate_of"], bad[0]["changed"] = None, None
    path = _write(tmp_path / "unpaired.jsonl", [json.dumps(s) for s in bad])
    with pytest.raises(ValueError, match=f"{path}:1: image_id .* has no near-duplicate partner"):
        read_pairing(path, data)

    # partners that disagree, an unknown attribute, broken JSON
    bad = [json.loads(line) for line in lines]
    bad[1]["changed"] = [0, "texture"]
    path = _write(tmp_path / "texture.jsonl", [json.dumps(s) for s in bad])
    with pytest.raises(ValueError, match=f"{path}:2: 'changed' .* got \\[0, 'texture'\\]"):
        read_pairing(path, data)
    path = _write(tmp_path / "broken.jsonl", [*lines[:6], '{"image_id": ', *lines[7:]])
    with pytest.raises(ValueError, match=f"{path}:7: malformed JSON"):
        read_pairing(path, data)

    # a manifest image with no scene (both of a pair removed, so no partner is dangling)
    first = json.loads(lines[0])
    path = _write(tmp_path / "short.jsonl", lines[2:])
    with pytest.raises(ValueError, match=f"{bench / 'synth' / 'test.jsonl'}: image_id {first['image_id']!r} has no "
                                         f"scene in {path}"):
        read_pairing(path, data)


def test_cli_refuses_in_one_line_and_writes_nothing(bench, tmp_path, capsys):
    out = tmp_path / "attributes.json"
    assert _cli(bench, out, scenes=tmp_path / "missing.jsonl") == 2
    err = capsys.readouterr().err
    assert err.startswith("ccrk attributes: error: ") and err.count("\n") == 1
    assert str(tmp_path / "missing.jsonl") in err
    lines = _scene_lines(bench)
    scenes = _write(tmp_path / "s.jsonl", [line for n, line in enumerate(lines) if n != 9])
    assert _cli(bench, out, scenes=scenes) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{scenes}:" in err and "has no scene" in err
    assert not out.exists() and not list(tmp_path.glob(".*"))
    (tmp_path / "dir").mkdir()
    assert _cli(bench, tmp_path / "dir") == 2
    assert "is a directory" in capsys.readouterr().err


def test_evaluate_with_scenes_writes_the_same_diagnostic_beside_its_metrics(bench, run, tmp_path):
    """rule evaluate_synth: one job scores ranks and the diagnostic from the same encodings."""
    out = tmp_path / "run"
    code = main([
        "evaluate", "--model", str(bench / "model"), "--tokenizer", str(bench / "tok"),
        "--manifest", str(bench / "synth" / "test.jsonl"), "--scenes", str(bench / "synth" / "scenes" / "test.jsonl"),
        "--languages", ",".join(LANGS), "--k-test", "2", "--batch-size", "5", "--itm-batch-size", "7",
        "--bootstrap", str(BOOT), "--device", "cpu", "--out", str(out),
    ])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["attributes.json", "metrics.json", "ranks.npz", "ranks_itc.npz"]
    doc = json.loads((out / "attributes.json").read_text())
    for key in ("languages", "attributes", "n_images", "n_pairs", "n_captions", "per_language", "all_languages",
                "interval"):
        assert doc[key] == run[key], key

    # bad ground truth: refused before the model is loaded, and the run directory is not created
    bad = tmp_path / "bad"
    code = main([
        "evaluate", "--model", str(bench / "model"), "--tokenizer", str(bench / "tok"),
        "--manifest", str(bench / "synth" / "test.jsonl"), "--scenes", str(tmp_path / "missing.jsonl"),
        "--device", "cpu", "--out", str(bad),
    ])
    assert code == 2 and not bad.exists()
