"""ccrk evaluate / ccrk compare: outputs, agreement with a per-direction reference, errors, atomicity."""
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
from ccrk.evaluation import RankSet, topk_candidates
from ccrk.metrics import mean_rank_variance, mean_recall, recall_at_k, recall_spread
from ccrk.models import ModelConfig, build_model, load_model, save_model
from ccrk.models.config import TINY_TEXT_CONFIG
from ccrk.synth.config import SynthConfig
from ccrk.synth.generate import generate
from ccrk.tokenizer import load_tokenizer, manifest_texts, train_tokenizer

LANGS = ["en", "de", "ja", "zh"]
K = 8  # of 12 test images: 12*8 + 12*8 > 12*12 pairs, so the two directions' lists must overlap
N_TEST = 12


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    cfg = SynthConfig.from_dict(
        {"images": {"pretrain": 24, "train": 8, "val": 4, "test": N_TEST}, "few_shot": [1], "languages": LANGS}
    )
    generate(cfg, root / "synth")
    train_tokenizer(manifest_texts([root / "synth" / "pretrain.jsonl"]), root / "tok", vocab_size=600, max_length=64)
    tok = load_tokenizer(root / "tok")
    small = ModelConfig(text_config=dict(TINY_TEXT_CONFIG), text_layers=1, fusion_layers=1, embed_dim=64)
    for seed in (0, 1):
        torch.manual_seed(seed)
        save_model(build_model(small, tokenizer=tok), root / f"model{seed}")
    return root


def _evaluate(bench: Path, out: Path, *extra: str, model: str = "model0", manifest: Path | None = None) -> int:
    return main([
        "evaluate", "--model", str(bench / model), "--tokenizer", str(bench / "tok"),
        "--manifest", str(manifest or bench / "synth" / "test.jsonl"), "--k-test", str(K),
        "--bootstrap", "200", "--batch-size", "5", "--itm-batch-size", "7", "--device", "cpu",
        "--out", str(out), *extra,
    ])


@pytest.fixture(scope="module")
def run_a(bench) -> Path:
    out = bench / "runs" / "a"
    assert _evaluate(bench, out) == 0
    return out


@pytest.fixture(scope="module")
def run_b(bench) -> Path:
    out = bench / "runs" / "b"
    assert _evaluate(bench, out, model="model1") == 0
    return out


def _leaves(tree, path=()):
    if isinstance(tree, dict) and set(tree) == {"value", "low", "high"}:
        yield path, tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, (*path, key))


def test_metrics_json_has_every_number_with_an_interval(run_a):
    m = json.loads((run_a / "metrics.json").read_text())
    for key in ("per_language", "average", "recall_spread", "mrv", "itm_pairs", "config", "model", "git_revision",
                "n_images", "n_captions", "timings"):
        assert key in m, key
    assert m["languages"] == LANGS and m["n_images"] == N_TEST and m["n_captions"] == {lang: N_TEST for lang in LANGS}
    assert m["config"]["evaluate"]["k_test"] == K and m["config"]["evaluate"]["bootstrap"] == 200
    assert len(m["model"]["config_hash"]) == 64
    for lang in LANGS:
        assert set(m["per_language"][lang]) == {"t2i", "i2t", "mR"}
        for d in ("t2i", "i2t"):
            assert set(m["per_language"][lang][d]) == {"R@1", "R@5", "R@10"}
    assert m["mrv"]["languages"] == LANGS and m["mrv"]["kind"] == "std"
    assert {"t2i", "i2t", "mean"} <= set(m["mrv"])
    leaves = list(_leaves({k: m[k] for k in ("per_language", "average", "recall_spread", "mrv")}))
    assert len(leaves) == 4 * 7 + 7 + 4 + 3
    for path, ci in leaves:
        assert ci["low"] <= ci["high"], path
        if path[0] != "recall_spread":  # a max-min/std across languages is biased; its interval need not cover it
            assert ci["low"] <= ci["value"] <= ci["high"], path
    assert set(m["timings"]["per_language"]) == set(LANGS)


def test_metrics_agree_with_the_metric_functions_on_the_saved_ranks(run_a):
    m = json.loads((run_a / "metrics.json").read_text())
    rs = RankSet.load(run_a / "ranks.npz")
    with np.load(run_a / "ranks.npz", allow_pickle=False) as z:
        assert z["image_ids"].shape == (N_TEST,)
        for lang in LANGS:
            assert z[f"t2i/{lang}"].shape == (N_TEST,) and z[f"i2t/{lang}"].shape == (N_TEST,)
            assert np.array_equal(z[f"txt2img/{lang}"], np.arange(N_TEST))
    assert rs.image_ids == [r.image_id for r in read_manifest(Path(m["manifest"]), check_images=False)]
    r1 = {"t2i": {}, "i2t": {}}
    for lang in LANGS:
        got = m["per_language"][lang]
        for d, ranks in (("t2i", rs.t2i[lang]), ("i2t", rs.i2t[lang])):
            assert ranks.min() >= 0 and ranks.max() < N_TEST
            for k in (1, 5, 10):
                assert got[d][f"R@{k}"]["value"] == pytest.approx(recall_at_k(ranks, k))
            r1[d][lang] = recall_at_k(ranks, 1)
        assert got["mR"]["value"] == pytest.approx(mean_recall(rs.t2i[lang], rs.i2t[lang]))
    for d in ("t2i", "i2t"):
        assert m["average"][d]["R@1"]["value"] == pytest.approx(np.mean(list(r1[d].values())))
        spread = recall_spread(r1[d])
        assert m["recall_spread"][d]["R@1"]["max_minus_min"]["value"] == pytest.approx(spread["max_minus_min"])
        assert m["recall_spread"][d]["R@1"]["std"]["value"] == pytest.approx(spread["std"])
        # One caption a language an image: instance n's ranks are column n of [L, N].
        mrv = mean_rank_variance(np.stack([getattr(rs, d)[lang] for lang in LANGS]))
        assert m["mrv"][d]["value"] == pytest.approx(mrv)
    assert m["mrv"]["mean"]["value"] == pytest.approx((m["mrv"]["t2i"]["value"] + m["mrv"]["i2t"]["value"]) / 2)


def _encode_test_split(bench: Path, lang: str):
    """model0's image and ``lang`` caption tokens and features of the test split, all at once (no batching)."""
    model = load_model(bench / "model0")
    tok = load_tokenizer(bench / "tok")
    records = read_manifest(bench / "synth" / "test.jsonl", check_images=False)
    transform = build_eval_transform(model.config.image_size)
    pixels = torch.stack([
        transform(Image.open(bench / "synth" / r.image).convert("RGB"), {})[0] for r in records
    ])
    texts = [r.captions[lang][0] for r in records]
    enc = tok(texts, padding="longest", truncation=True, max_length=model.config.max_length, return_tensors="pt")
    with torch.no_grad():
        img_tok, img_feat = model.encode_image(pixels)
        txt_tok, txt_feat = model.encode_text(enc["input_ids"], enc["attention_mask"])
    return model, enc, img_tok, img_feat, txt_tok, txt_feat


def _reference(bench: Path, lang: str, k: int = K, folds: int = 1) -> tuple[np.ndarray, np.ndarray, int]:
    """Each direction re-ranked on its own, pair by pair, with no cache: the public code's flow, total order.

    With ``folds`` the test images form that many contiguous galleries and a query meets only its own's
    candidates (one caption an image, so caption t belongs to image t)."""
    model, enc, img_tok, img_feat, txt_tok, txt_feat = _encode_test_split(bench, lang)
    with torch.no_grad():
        sim = (img_feat @ txt_feat.T).numpy()
        n = sim.shape[0]
        size = n // folds

        def itm(image: int, text: int) -> float:
            mask = enc["attention_mask"][text : text + 1]
            out = model.itm_logits(txt_tok[text : text + 1], mask, img_tok[image : image + 1])
            return float(out[0, 1])

        def rank(row: np.ndarray, score, target: int) -> int:
            start = target // size * size
            by_sim = [start + int(c) for c in np.argsort(-row[start:start + size], kind="stable")]  # ties: lower index
            top = by_sim[:k]
            reranked = sorted(top, key=lambda c: (-score(c), c))
            order = reranked + [c for c in by_sim if c not in top]
            return order.index(target)

        t2i = np.array([rank(sim[:, t], lambda i, t=t: itm(i, t), t) for t in range(n)])
        i2t = np.array([rank(sim[i], lambda t, i=i: itm(i, t), i) for i in range(n)])
        pairs = set()
        for q in range(n):
            start = q // size * size
            pairs |= {(start + int(i), q) for i in np.argsort(-sim[start:start + size, q], kind="stable")[:k]}
            pairs |= {(q, start + int(t)) for t in np.argsort(-sim[q, start:start + size], kind="stable")[:k]}
    return t2i, i2t, len(pairs)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_shared_itm_cache_gives_the_ranks_of_separate_scoring(bench, run_a, lang):
    rs = RankSet.load(run_a / "ranks.npz")
    pairs = json.loads((run_a / "metrics.json").read_text())["itm_pairs"]
    t2i, i2t, n_union = _reference(bench, lang)
    assert np.array_equal(rs.t2i[lang], t2i)
    assert np.array_equal(rs.i2t[lang], i2t)
    assert pairs["per_language"][lang]["scored"] == n_union < 2 * N_TEST * K
    assert pairs["per_language"][lang]["public_code"] == 2 * N_TEST * K
    assert pairs["scored"] == sum(p["scored"] for p in pairs["per_language"].values())


def _itc_reference(bench: Path, lang: str) -> tuple[list[int], list[int]]:
    """ITC-only ranks the slow way: per query, count the candidates ordered before the true one (similarity
    descending, ties to the lower index); one caption an image, so caption t belongs to image t."""
    _, _, _, img_feat, _, txt_feat = _encode_test_split(bench, lang)
    sim = (img_feat @ txt_feat.T).numpy()  # [image, caption]
    n = sim.shape[0]

    def rank(scores: np.ndarray, true: int) -> int:
        return sum(1 for c in range(n) if scores[c] > scores[true] or (scores[c] == scores[true] and c < true))

    return [rank(sim[:, t], t) for t in range(n)], [rank(sim[i], i) for i in range(n)]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_itc_only_ranks_are_the_similarity_order(bench, run_a, lang):
    itc = RankSet.load(run_a / "ranks_itc.npz")
    t2i, i2t = _itc_reference(bench, lang)
    assert itc.t2i[lang].tolist() == t2i
    assert itc.i2t[lang].tolist() == i2t
    assert itc.image_ids == RankSet.load(run_a / "ranks.npz").image_ids


def test_itc_only_section_summarizes_the_itc_ranks_with_intervals(run_a, capsys):
    from ccrk.evaluation import format_summary

    m = json.loads((run_a / "metrics.json").read_text())
    itc = RankSet.load(run_a / "ranks_itc.npz")
    assert m["k_test"] == K and m["k_test_source"] == "config"
    section = m["itc_only"]
    assert set(section) >= {"average", "per_language", "mrv"}
    for lang in LANGS:
        for d, ranks in (("t2i", itc.t2i[lang]), ("i2t", itc.i2t[lang])):
            for k in (1, 5, 10):
                ci = section["per_language"][lang][d][f"R@{k}"]
                assert ci["value"] == pytest.approx(recall_at_k(ranks, k)) and ci["low"] <= ci["value"] <= ci["high"]
        assert section["per_language"][lang]["mR"]["value"] == pytest.approx(mean_recall(itc.t2i[lang], itc.i2t[lang]))
    for d in ("t2i", "i2t"):
        mrv = mean_rank_variance(np.stack([getattr(itc, d)[lang] for lang in LANGS]))
        assert section["mrv"][d]["value"] == pytest.approx(mrv)
    avg = section["average"]
    line = [row for row in format_summary(m).splitlines() if row.startswith("ITC only")]
    assert len(line) == 1
    assert f"{avg['t2i']['R@1']['value']:.2f}" in line[0] and f"mR {avg['mR']['value']:.2f}" in line[0]


def test_k_test_one_makes_the_headline_the_itc_only_result(bench, tmp_path):
    out = tmp_path / "k1"
    assert _evaluate(bench, out, "--k-test", "1") == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["k_test"] == 1
    assert m["itc_only"] == {key: m[key] for key in m["itc_only"]}
    assert set(m["itc_only"]) >= {"average", "per_language", "mrv"}
    two_stage, itc = RankSet.load(out / "ranks.npz"), RankSet.load(out / "ranks_itc.npz")
    for lang in LANGS:
        assert np.array_equal(two_stage.t2i[lang], itc.t2i[lang]) and np.array_equal(two_stage.i2t[lang], itc.i2t[lang])


def test_several_k_from_one_itm_pass_equal_separate_runs(bench):
    """rank_language_ks scores the largest k's pairs once; each smaller k must rank as a run at that k alone."""
    from ccrk.evaluation import (
        encode_images,
        encode_texts,
        itm_scorer,
        load_eval_data,
        rank_language,
        rank_language_ks,
    )

    model, tok = load_model(bench / "model0"), load_tokenizer(bench / "tok")
    data = load_eval_data(bench / "synth" / "test.jsonl", languages=["de"])
    images = encode_images(model, data.image_paths, 5, torch.device("cpu"))
    texts = encode_texts(model, tok, data.captions["de"].texts, 5, torch.device("cpu"))
    owners = data.captions["de"].txt2img
    match = itm_scorer(model)
    together = rank_language_ks(match, images, texts, owners, [K, 1, 3], 7)
    assert sorted(together) == [1, 3, K]
    for k, got in together.items():
        alone = rank_language(match, images, texts, owners, k, 7)
        assert np.array_equal(got.t2i, alone.t2i) and np.array_equal(got.i2t, alone.i2t), k
        assert (got.pairs_scored, got.pairs_public, got.k_t2i) == (alone.pairs_scored, alone.pairs_public, k)
        assert np.array_equal(got.itc_t2i, alone.itc_t2i) and np.array_equal(got.itc_i2t, alone.itc_i2t)
    assert np.array_equal(together[1].t2i, together[1].itc_t2i) and np.array_equal(together[1].i2t, together[1].itc_i2t)
    assert not np.array_equal(together[K].t2i, together[K].itc_t2i)  # the ITM head re-orders: k matters here


@pytest.mark.parametrize(("k", "folds"), [(3, 2), (2, 3)])
def test_folds_rank_every_query_within_its_own_gallery(bench, tmp_path, k, folds):
    """COCO's 1K-of-5K protocol: ranks within each fold equal the per-direction reference on that fold alone."""
    out = tmp_path / "run"
    assert _evaluate(bench, out, "--k-test", str(k), "--folds", str(folds)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["folds"], metrics["gallery_images"], metrics["n_images"]) == (folds, N_TEST // folds, N_TEST)
    ranks, itc = RankSet.load(out / "ranks.npz"), RankSet.load(out / "ranks_itc.npz")
    assert ranks.folds == itc.folds == folds
    for lang in ("en", "ja"):
        t2i, i2t, n_union = _reference(bench, lang, k=k, folds=folds)
        assert np.array_equal(ranks.t2i[lang], t2i) and np.array_equal(ranks.i2t[lang], i2t)
        itc_t2i, itc_i2t, _ = _reference(bench, lang, k=1, folds=folds)
        assert np.array_equal(itc.t2i[lang], itc_t2i) and np.array_equal(itc.i2t[lang], itc_i2t)
        assert max(ranks.t2i[lang].max(), ranks.i2t[lang].max()) < N_TEST // folds
        pairs = metrics["itm_pairs"]["per_language"][lang]
        assert (pairs["scored"], pairs["public_code"]) == (n_union, 2 * N_TEST * k)
    # pooled over equal folds, recall is the mean of the folds' recalls
    size = N_TEST // folds
    per_fold = [100 * np.mean(ranks.t2i["en"][f * size:(f + 1) * size] < 1) for f in range(folds)]
    assert metrics["per_language"]["en"]["t2i"]["R@1"]["value"] == pytest.approx(np.mean(per_fold))


def test_folds_that_do_not_split_the_test_set_evenly_are_refused(bench, run_a, tmp_path, capsys):
    out = tmp_path / "run"
    assert _evaluate(bench, out, "--folds", "5") == 2
    err = capsys.readouterr().err
    assert "evaluate.folds 5" in err and "12 test images" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert _evaluate(bench, out, "--folds", "0") == 2
    assert "evaluate.folds must be a positive integer" in capsys.readouterr().err
    # a comparison across gallery sizes would report a difference of difficulty as one of models
    assert _evaluate(bench, out, "--folds", "2") == 0
    assert main(["compare", str(run_a), str(out)]) == 2
    assert "galleries of different sizes" in capsys.readouterr().err


def test_rank_files_written_before_folds_existed_load_as_one_gallery(run_a, tmp_path):
    with np.load(run_a / "ranks.npz") as data:
        arrays = {key: data[key] for key in data.files if key != "folds"}
    np.savez(tmp_path / "old.npz", **arrays)
    old, new = RankSet.load(tmp_path / "old.npz"), RankSet.load(run_a / "ranks.npz")
    assert old.folds == new.folds == 1 and old.t2i["en"].tolist() == new.t2i["en"].tolist()


def test_k_test_auto_needs_the_retrieval_json_of_ccrk_finetune(bench, tmp_path, capsys):
    assert _evaluate(bench, tmp_path / "run", "--k-test", "auto") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(bench / "model0" / "retrieval.json") in err and "ccrk finetune" in err
    assert not (tmp_path / "run").exists()
    # Without --k-test the config value counts, and a value that is neither a number nor 'auto' is refused by name.
    args = ["evaluate", "--model", str(bench / "model0"), "--tokenizer", str(bench / "tok"), "--manifest",
            str(bench / "synth" / "test.jsonl"), "--device", "cpu", "--out", str(tmp_path / "run")]
    assert main([*args, "--set", "evaluate.k_test=sometimes"]) == 2
    assert "evaluate.k_test" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_topk_candidates_breaks_ties_by_index():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (50, 30), generator=g).float()  # heavy ties at every boundary
    for k in (1, 5, 29):
        got = topk_candidates(scores, k)
        want = np.argsort(-scores.numpy(), axis=1, kind="stable")[:, :k]
        assert np.array_equal(np.sort(got.numpy(), axis=1), np.sort(want, axis=1))


def _write_manifest(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _records(bench: Path) -> list[dict]:
    return [json.loads(line) for line in (bench / "synth" / "test.jsonl").read_text().splitlines() if line]


def test_mrv_leaves_out_an_instance_that_lacks_a_language(bench, tmp_path, capsys):
    recs = _records(bench)
    del recs[5]["captions"]["ja"]
    manifest = _write_manifest(bench / "synth" / "test_no_ja.jsonl", recs)
    out = tmp_path / "mrv"
    assert _evaluate(bench, out, manifest=manifest) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["mrv"]["excluded"] == [recs[5]["image_id"]] and m["mrv"]["n_excluded"] == 1
    assert m["mrv"]["instances"] == N_TEST - 1
    rs = RankSet.load(out / "ranks.npz")
    keep = np.arange(N_TEST) != 5
    for d in ("t2i", "i2t"):
        table, complete = rs.mrv_table(d)
        assert (complete == keep).all()
        # the slow way: the instances ranked in every language, their population std, the mean
        assert m["mrv"][d]["value"] == pytest.approx(np.std(table[:, keep], axis=0).mean())
    # two captions of one instance in an MRV language stay an error
    recs = _records(bench)
    recs[3]["captions"]["de"] = recs[3]["captions"]["de"] * 2
    twice = _write_manifest(bench / "synth" / "test_de_twice.jsonl", recs)
    assert _evaluate(bench, tmp_path / "twice", manifest=twice) == 2
    err = capsys.readouterr().err
    assert recs[3]["image_id"] in err and "2 captions in language 'de'" in err
    assert not (tmp_path / "twice").exists()
    # Without MRV the run goes through; the image is no ja query and no ja candidate.
    out = tmp_path / "run"
    assert _evaluate(bench, out, "--mrv-languages", "none", manifest=manifest) == 0
    m = json.loads((out / "metrics.json").read_text())
    rs = RankSet.load(out / "ranks.npz")
    assert m["mrv"] is None and rs.mrv_languages == []
    assert rs.i2t["ja"][5] == -1 and (rs.i2t["ja"][np.arange(N_TEST) != 5] >= 0).all()
    assert rs.t2i["ja"].shape == (N_TEST - 1,) and rs.t2i["ja"].max() < N_TEST - 1
    assert m["n_captions"]["ja"] == N_TEST - 1


def test_caption_less_language_is_an_error(bench, tmp_path, capsys):
    recs = _records(bench)
    for r in recs:
        r["captions"]["zh"] = []
    manifest = _write_manifest(bench / "synth" / "test_no_zh.jsonl", recs)
    assert _evaluate(bench, tmp_path / "run", "--mrv-languages", "none", manifest=manifest) == 2
    err = capsys.readouterr().err
    assert "'zh' has no captions" in err and "test_no_zh.jsonl" in err
    assert not (tmp_path / "run").exists()


def test_missing_image_and_non_model_directory_are_errors(bench, tmp_path, capsys):
    recs = _records(bench)
    recs[3]["image"] = "images/test/nowhere.png"
    manifest = _write_manifest(bench / "synth" / "test_missing.jsonl", recs)
    assert _evaluate(bench, tmp_path / "run", manifest=manifest) == 2
    err = capsys.readouterr().err
    assert "test_missing.jsonl:4" in err and "nowhere.png" in err
    assert _evaluate(bench, tmp_path / "run", model="tok") == 2  # a directory, but not a saved model
    assert "not a saved ccrk model" in capsys.readouterr().err
    assert _evaluate(bench, tmp_path / "run", model="absent") == 2
    assert "does not exist" in capsys.readouterr().err
    assert _evaluate(bench, tmp_path / "run", "--set", "evaluate.k_tset=3") == 2
    assert "evaluate.k_tset" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_failed_run_leaves_an_existing_run_directory_unchanged(bench, run_a, tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("metrics.json", "ranks.npz"):
        (out / name).write_bytes((run_a / name).read_bytes())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # Early failure (input): two German captions for one image make MRV undefined.
    recs = _records(bench)
    recs[0]["captions"]["de"] = recs[0]["captions"]["de"] * 2
    assert _evaluate(bench, out, manifest=_write_manifest(tmp_path / "bad.jsonl", recs)) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # Late failure: the ranks file is half written when the run dies.
    def broken_save(self, path):
        Path(path).write_bytes(b"PK\x03\x04 half")
        raise ValueError("disk full")

    monkeypatch.setattr(RankSet, "save", broken_save)
    assert _evaluate(bench, out, model="model1") == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert {p.name for p in tmp_path.iterdir()} == {"run", "bad.jsonl"}  # no temporary directory left behind


def test_compare_a_run_with_itself_shows_no_difference(run_a, tmp_path, capsys):
    out = tmp_path / "cmp.json"
    assert main(["compare", str(run_a), str(run_a), "--bootstrap", "200", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    labels = [row["metric"] for row in doc["metrics"]]
    assert "R@1 t2i en" in labels and "R@1 i2t avg" in labels and "mR zh" in labels and "MRV i2t" in labels
    assert len(labels) == 4 * 2 + 2 + 4 + 1 + 3
    for row in doc["metrics"]:
        assert row["diff"] == 0 and row["low"] == 0 and row["high"] == 0 and row["p_value"] == 1.0
    assert "R@1 t2i en" in capsys.readouterr().out


def test_compare_two_models(run_a, run_b, tmp_path, capsys):
    assert main(["compare", str(run_a), str(run_b), "--bootstrap", "300", "--out", str(tmp_path / "c.json")]) == 0
    table = capsys.readouterr().out
    doc = json.loads((tmp_path / "c.json").read_text())
    ma = json.loads((run_a / "metrics.json").read_text())
    mb = json.loads((run_b / "metrics.json").read_text())
    rows = {row["metric"]: row for row in doc["metrics"]}
    for lang in LANGS:
        row = rows[f"R@1 t2i {lang}"]
        assert row["a"] == pytest.approx(ma["per_language"][lang]["t2i"]["R@1"]["value"])
        assert row["b"] == pytest.approx(mb["per_language"][lang]["t2i"]["R@1"]["value"])
    for row in doc["metrics"]:
        assert row["diff"] == pytest.approx(row["a"] - row["b"])
        assert row["low"] <= row["high"] and 0 < row["p_value"] <= 1
    assert rows["MRV mean"]["diff"] == pytest.approx(ma["mrv"]["mean"]["value"] - mb["mrv"]["mean"]["value"])
    assert rows["MRV t2i"]["metric"] in table and "A-B" in table


def test_compare_refuses_runs_on_different_languages(bench, run_a, tmp_path, capsys):
    out = tmp_path / "run"
    assert _evaluate(bench, out, "--languages", "en,de", "--mrv-languages", "en,de") == 0
    assert main(["compare", str(run_a), str(out)]) == 2
    assert "different languages" in capsys.readouterr().err
    assert main(["compare", str(run_a), str(tmp_path / "nothing")]) == 2
    assert "not a ccrk evaluate run directory" in capsys.readouterr().err


def test_evaluate_runs_on_the_real_xflickrco_test_structure(bench, fixtures_dir, tmp_path):
    """IGLUE's real xFlickr&CO test files (en/de/ja/zh), prepared into one parallel manifest, placeholder images
    under the two image roots, the tiny model: 2000 instances, MRV over en/de/ja/zh as the paper reports it."""
    import time

    from ccrk.datasets.prepare import prepare_dataset

    data = tmp_path / "data"
    (data / "xflickrco").mkdir(parents=True)
    (data / "xflickrco" / "annotations").symlink_to(fixtures_dir / "iglue" / "xFlickrCO" / "annotations")
    summary = prepare_dataset("xflickrco", data, tmp_path / "manifests", languages=LANGS)
    records = read_manifest(tmp_path / "manifests" / "test.jsonl", check_images=False)
    assert len(records) == 2000 and summary["splits"]["test"]["images"] == 2000
    rng = np.random.default_rng(0)
    for rec in records:  # Flickr30k under flickr30k/images/, COCO val2014 under mscoco/images/val2014/
        path = data / rec.image
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(path, format="JPEG")
    assert len(list((data / "flickr30k" / "images").iterdir())) == 1000
    assert len(list((data / "mscoco" / "images" / "val2014").iterdir())) == 1000

    out = tmp_path / "run"
    start = time.perf_counter()
    assert main(["evaluate", "--model", str(bench / "model0"), "--tokenizer", str(bench / "tok"),
                 "--manifest", str(tmp_path / "manifests" / "test.jsonl"), "--image-root", str(data),
                 "--languages", "en,de,ja,zh", "--mrv-languages", "en,de,ja,zh", "--k-test", "2",
                 "--bootstrap", "20", "--device", "cpu", "--out", str(out)]) == 0
    elapsed = time.perf_counter() - start
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_images"] == 2000 and m["n_captions"] == {"en": 2000, "de": 1999, "ja": 2000, "zh": 2000}
    assert m["mrv"]["languages"] == LANGS and np.isfinite(m["mrv"]["mean"]["value"])
    # IGLUE's German line 1960 (COCO 122239) is empty upstream: 1999 complete instances, as the parser documents
    assert m["mrv"]["excluded"] == ["122239"] and m["mrv"]["instances"] == 1999
    ranks = RankSet.load(out / "ranks.npz")
    assert ranks.t2i["ja"].shape == (2000,) and ranks.mrv_languages == LANGS
    assert elapsed < 600
