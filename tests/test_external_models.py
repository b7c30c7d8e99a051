"""``ccrk evaluate`` on models trained elsewhere: a tiny random open_clip model and a tiny random CLIPModel.

Both are built in the test and saved the way their libraries save them (an
open_clip model-config JSON and a state-dict checkpoint; a ``save_pretrained``
directory with tokenizer and image processor), then evaluated offline on the
embedded test set and on IGLUE's real xFlickr&CO test structure. Their ranks
must equal a loop over the library's own API: each image and each caption
encoded alone, each query's candidates counted by hand.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ccrk.cli import main
from ccrk.data.manifest import read_manifest
from ccrk.evaluation import RankSet
from ccrk.synth.config import SynthConfig
from ccrk.synth.generate import generate
from ccrk.tokenizer import manifest_texts, train_tokenizer

open_clip = pytest.importorskip("open_clip", reason="the open_clip extra: pip install -e '.[open_clip]'")

LANGS = ["en", "de", "ja", "zh"]
N_TEST = 10
#: Similarities closer than this to the true candidate's may order either way on another processor: float32
#: features of these tiny models differ by ~1e-7 between batch layouts, a hundred times less.
EPS = 1e-5

TINY_OPEN_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 48, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("external")
    cfg = SynthConfig.from_dict(
        {"images": {"pretrain": 16, "train": 4, "val": 4, "test": N_TEST}, "few_shot": [1], "languages": LANGS}
    )
    generate(cfg, root / "synth")
    return root


def build_tiny_open_clip(root: Path) -> tuple[Path, Path]:
    """A model-config JSON (architecture ``tiny-oc``) and a random-weight checkpoint saved from it."""
    config = root / "tiny-oc.json"
    config.write_text(json.dumps(TINY_OPEN_CLIP))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-oc")
    ckpt = root / "tiny-oc.pt"
    torch.save(model.state_dict(), ckpt)
    return config, ckpt


def build_tiny_hf_clip(root: Path, texts: Iterable[str], family: str = "clip") -> Path:
    """A random-weight ``CLIPModel`` (or ``SiglipModel``) with a tokenizer trained on ``texts`` and an image processor.

    The SigLIP tokenizer returns input ids only, as SigLIP's own does (the model was trained on captions
    padded to the full length, without a mask).
    """
    import transformers

    texts = list(texts)
    tok = train_tokenizer(texts, root / f"hf-tok-{family}", vocab_size=500, max_length=96)
    text = {"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 96, "pad_token_id": tok.pad_token_id,
            "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}
    torch.manual_seed(0)
    if family == "clip":
        model = transformers.CLIPModel(transformers.CLIPConfig(
            text_config={**text, "projection_dim": 32}, vision_config={**vision, "projection_dim": 32},
            projection_dim=32))
        processor = transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    else:
        model = transformers.SiglipModel(transformers.SiglipConfig(text_config=text, vision_config=vision))
        processor = transformers.SiglipImageProcessor(size={"height": 32, "width": 32})
        tok.model_input_names = ["input_ids"]
    out = root / f"hf-{family}"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    processor.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_open_clip(bench) -> tuple[Path, Path]:
    return build_tiny_open_clip(bench)


@pytest.fixture(scope="module")
def tiny_hf_clip(bench) -> Path:
    return build_tiny_hf_clip(bench, manifest_texts([bench / "synth" / "pretrain.jsonl"]))


@pytest.fixture(scope="module")
def tiny_hf_siglip(bench) -> Path:
    return build_tiny_hf_clip(bench, manifest_texts([bench / "synth" / "pretrain.jsonl"]), family="siglip")


def _evaluate(model: list[str], manifest: Path, out: Path, *extra: str) -> int:
    return main(["evaluate", "--model", *model, "--manifest", str(manifest), "--bootstrap", "50",
                 "--batch-size", "4", "--device", "cpu", "--out", str(out), *extra])


def _open_clip_args(tiny_open_clip) -> list[str]:
    config, ckpt = tiny_open_clip
    return [f"open_clip:{config}", "--pretrained", str(ckpt)]


@pytest.fixture(scope="module")
def open_clip_run(bench, tiny_open_clip) -> Path:
    out = bench / "runs" / "open_clip"
    assert _evaluate(_open_clip_args(tiny_open_clip), bench / "synth" / "test.jsonl", out) == 0
    return out


@pytest.fixture(scope="module")
def hf_run(bench, tiny_hf_clip) -> Path:
    out = bench / "runs" / "hf"
    assert _evaluate([f"hf:{tiny_hf_clip}"], bench / "synth" / "test.jsonl", out) == 0
    return out


@pytest.fixture(scope="module")
def siglip_run(bench, tiny_hf_siglip) -> Path:
    out = bench / "runs" / "siglip"
    assert _evaluate([f"hf:{tiny_hf_siglip}"], bench / "synth" / "test.jsonl", out) == 0
    return out


# -- the reference: the library's own API, one item at a time ------------------------------------------------


def _open_clip_features(tiny_open_clip, images: list[Path], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    _, ckpt = tiny_open_clip
    model, _, preprocess = open_clip.create_model_and_transforms("tiny-oc", pretrained=str(ckpt))
    model.eval()
    tokenizer = open_clip.get_tokenizer("tiny-oc")
    with torch.no_grad():
        img = [model.encode_image(preprocess(Image.open(p).convert("RGB"))[None], normalize=True)[0] for p in images]
        txt = [model.encode_text(tokenizer([t]), normalize=True)[0] for t in texts]
    return torch.stack(img).numpy(), torch.stack(txt).numpy()


def _hf_features(directory: Path, images: list[Path], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each image and caption alone through ``get_image_features``/``get_text_features``; SigLIP's captions padded
    to its full length, as it was trained."""
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(directory).eval()
    tok, proc = AutoTokenizer.from_pretrained(directory), AutoImageProcessor.from_pretrained(directory)
    padding = "max_length" if model.config.model_type == "siglip" else False

    def pooled(out):
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    with torch.no_grad():
        img = [pooled(model.get_image_features(**proc(images=Image.open(p).convert("RGB"), return_tensors="pt")))[0]
               for p in images]
        txt = [pooled(model.get_text_features(**tok([t], padding=padding, max_length=96, return_tensors="pt")))[0]
               for t in texts]
    img_t, txt_t = torch.stack(img), torch.stack(txt)
    return (img_t / img_t.norm(dim=-1, keepdim=True)).numpy(), (txt_t / txt_t.norm(dim=-1, keepdim=True)).numpy()


def _loop_ranks(sim: np.ndarray) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """0-based ranks by similarity, as intervals ``(low, high)`` that hold whatever the summation order.

    ``sim`` is [image, caption] with caption ``n`` describing image ``n`` (one caption a language an image).
    A candidate within :data:`EPS` of the true one may fall on either side of it on another processor (or
    batch layout), so it widens the interval instead of deciding the rank; every other one counts exactly.
    """
    def interval(scores: np.ndarray, true: int) -> tuple[int, int]:
        others = np.delete(scores, true)
        return int((others > scores[true] + EPS).sum()), int((others >= scores[true] - EPS).sum())

    n = sim.shape[0]
    return [interval(sim[:, c], c) for c in range(n)], [interval(sim[i], i) for i in range(n)]


def _within(got: np.ndarray, intervals: list[tuple[int, int]]) -> bool:
    return all(lo <= g <= hi for g, (lo, hi) in zip(got.tolist(), intervals))


def _test_split(bench: Path) -> tuple[list[Path], dict[str, list[str]]]:
    records = read_manifest(bench / "synth" / "test.jsonl", check_images=False)
    images = [bench / "synth" / r.image for r in records]
    return images, {lang: [r.captions[lang][0] for r in records] for lang in LANGS}


@pytest.mark.parametrize("kind", ["open_clip", "hf", "siglip"])
def test_ranks_equal_a_loop_over_the_library_api(request, bench, kind):
    run = request.getfixturevalue(f"{kind}_run")
    images, captions = _test_split(bench)
    texts = [t for lang in LANGS for t in captions[lang]]
    if kind == "open_clip":
        img, txt = _open_clip_features(request.getfixturevalue("tiny_open_clip"), images, texts)
    else:
        directory = request.getfixturevalue("tiny_hf_clip" if kind == "hf" else "tiny_hf_siglip")
        img, txt = _hf_features(directory, images, texts)
    ranks = RankSet.load(run / "ranks.npz")
    itc = RankSet.load(run / "ranks_itc.npz")
    exact = 0
    for n, lang in enumerate(LANGS):
        sim = img @ txt[n * N_TEST : (n + 1) * N_TEST].T
        t2i, i2t = _loop_ranks(sim)
        assert _within(ranks.t2i[lang], t2i) and _within(ranks.i2t[lang], i2t), lang
        assert np.array_equal(itc.t2i[lang], ranks.t2i[lang]) and np.array_equal(itc.i2t[lang], ranks.i2t[lang])
        exact += sum(lo == hi for lo, hi in t2i + i2t)
    assert exact >= 0.9 * 2 * N_TEST * len(LANGS)  # the intervals pin (nearly) every rank: not a vacuous check
    assert ranks.mrv_languages == ["en", "de", "ja", "zh"]


@pytest.mark.parametrize("kind", ["open_clip", "hf", "siglip"])
def test_metrics_json_is_a_complete_run_without_a_matching_head(request, kind):
    from ccrk.report.runs import load_metrics

    run = request.getfixturevalue(f"{kind}_run")
    m = load_metrics(run / "metrics.json")  # every number the tables read, checked
    assert m["model"]["kind"] == ("open_clip" if kind == "open_clip" else "hf")
    assert len(m["model"]["config_hash"]) == 64
    assert m["k_test"] == 1 and m["k_test_source"].startswith("no matching head")
    assert m["itm_score"] is None and m["itm_pairs"]["scored"] == 0
    assert m["mrv"]["languages"] == ["en", "de", "ja", "zh"] and np.isfinite(m["mrv"]["mean"]["value"])
    # no re-ranking: the headline is the similarity order, so both summaries agree
    assert m["average"] == m["itc_only"]["average"] and m["mrv"] == m["itc_only"]["mrv"]
    if kind == "open_clip":
        assert m["model"]["arch"] == "tiny-oc" and len(m["model"]["sha256"]) == 64
    else:
        assert m["model"]["class"] == {"hf": "CLIPModel", "siglip": "SiglipModel"}[kind]


def test_compare_pairs_two_external_models_on_the_same_test_set(open_clip_run, hf_run, tmp_path, capsys):
    out = tmp_path / "cmp.json"
    assert main(["compare", str(open_clip_run), str(hf_run), "--bootstrap", "50", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert "MRV mean" in {m["metric"] for m in doc["metrics"]} and all(np.isfinite(m["diff"]) for m in doc["metrics"])


@pytest.fixture(scope="module")
def xflickrco(fixtures_dir, tmp_path_factory) -> tuple[Path, Path]:
    """IGLUE's real xFlickr&CO test files (en/de/ja/zh) prepared into a manifest, placeholder images."""
    from ccrk.datasets.prepare import prepare_dataset

    root = tmp_path_factory.mktemp("xflickrco")
    data = root / "data"
    (data / "xflickrco").mkdir(parents=True)
    (data / "xflickrco" / "annotations").symlink_to(fixtures_dir / "iglue" / "xFlickrCO" / "annotations")
    prepare_dataset("xflickrco", data, root / "manifests", languages=LANGS)
    rng = np.random.default_rng(0)
    for rec in read_manifest(root / "manifests" / "test.jsonl", check_images=False):
        path = data / rec.image
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(path, format="JPEG")
    return root / "manifests" / "test.jsonl", data


@pytest.mark.parametrize("kind", ["open_clip", "hf"])
def test_external_models_run_on_the_real_xflickrco_test_structure(request, xflickrco, tmp_path, kind):
    manifest, data = xflickrco
    model = (_open_clip_args(request.getfixturevalue("tiny_open_clip")) if kind == "open_clip"
             else [f"hf:{request.getfixturevalue('tiny_hf_clip')}"])
    out = tmp_path / "run"
    assert main(["evaluate", "--model", *model, "--manifest", str(manifest), "--image-root", str(data),
                 "--languages", "en,de,ja,zh", "--mrv-languages", "en,de,ja,zh", "--bootstrap", "20",
                 "--batch-size", "256", "--device", "cpu", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_images"] == 2000 and m["n_captions"] == {"en": 2000, "de": 1999, "ja": 2000, "zh": 2000}
    assert m["mrv"]["excluded"] == ["122239"] and m["mrv"]["instances"] == 1999
    ranks = RankSet.load(out / "ranks.npz")
    assert ranks.t2i["ja"].shape == (2000,) and (ranks.i2t["de"] >= 0).sum() == 1999


# -- bad input: one line, exit 2, nothing written ------------------------------------------------------------


def test_bad_external_model_arguments_are_one_line_errors(bench, tiny_open_clip, tiny_hf_clip, tmp_path, capsys):
    manifest = bench / "synth" / "test.jsonl"
    config, ckpt = tiny_open_clip
    cases = [
        ([f"open_clip:{config}"], "needs --pretrained"),
        ([f"open_clip:{config}", "--pretrained", str(tmp_path / "absent.pt")], "absent.pt does not exist"),
        ([f"open_clip:{tmp_path / 'absent.json'}", "--pretrained", str(ckpt)], "absent.json does not exist"),
        ([f"hf:{tmp_path / 'nowhere'}"], "nowhere does not exist"),
        ([f"hf:{tiny_hf_clip}", "--tokenizer", str(tiny_hf_clip)], "--tokenizer is for ccrk models"),
        ([f"hf:{tiny_hf_clip}", "--pretrained", str(ckpt)], "--pretrained is for open_clip"),
        ([str(tiny_hf_clip)], "needs --tokenizer"),
        ([f"hf:{tiny_hf_clip}", "--scenes", str(bench / "synth" / "scenes" / "test.jsonl")], "matching head"),
        ([f"open_clip:local-dir:{tmp_path}"], "has no open_clip_config.json"),
        ([f"open_clip:local-dir:{tmp_path}", "--pretrained", str(ckpt)], "--pretrained is not used"),
    ]
    for model, message in cases:
        out = tmp_path / "run"
        assert _evaluate(model, manifest, out) == 2, model
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, (model, err)
        assert not out.exists()
    (tmp_path / "empty").mkdir()
    assert _evaluate([f"hf:{tmp_path / 'empty'}"], manifest, tmp_path / "run") == 2
    assert "has no config.json" in capsys.readouterr().err


def test_a_checkpoint_of_another_architecture_is_refused(bench, tiny_open_clip, tmp_path, capsys):
    config, _ = tiny_open_clip
    torch.manual_seed(0)
    wrong = tmp_path / "wrong.pt"
    torch.save({"visual.proj": torch.zeros(3, 3)}, wrong)
    assert _evaluate([f"open_clip:{config}", "--pretrained", str(wrong)], bench / "synth" / "test.jsonl",
                     tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "open_clip cannot build 'tiny-oc'" in err and len(err.strip().splitlines()) == 1


def test_open_clip_local_dir_ranks_as_the_same_checkpoint_by_file(bench, tiny_open_clip, open_clip_run, tmp_path):
    """open_clip's own folder format (open_clip_config.json + weights) gives the ranks of --pretrained FILE."""
    import shutil

    _, ckpt = tiny_open_clip
    folder = tmp_path / "tiny-oc-dir"
    folder.mkdir()
    shutil.copy(ckpt, folder / "open_clip_pytorch_model.bin")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPEN_CLIP}))
    out = tmp_path / "run"
    assert _evaluate([f"open_clip:local-dir:{folder}"], bench / "synth" / "test.jsonl", out) == 0
    got, want = RankSet.load(out / "ranks.npz"), RankSet.load(open_clip_run / "ranks.npz")
    for lang in LANGS:
        assert np.array_equal(got.t2i[lang], want.t2i[lang]) and np.array_equal(got.i2t[lang], want.i2t[lang])
    assert json.loads((out / "metrics.json").read_text())["model"]["path"] is None


def test_an_open_clip_text_tower_missing_from_the_hub_cache_is_named(bench, tiny_open_clip, tmp_path, capsys):
    """XLM-R open_clip models build their text tower from Hugging Face files: offline (conftest) and uncached,
    one line naming the model to fetch (where a cache did hold it, the tiny checkpoint would not fit the
    architecture, and the same line names it too)."""
    _, ckpt = tiny_open_clip
    assert _evaluate(["open_clip:xlm-roberta-base-ViT-B-32", "--pretrained", str(ckpt)],
                     bench / "synth" / "test.jsonl", tmp_path / "run") == 2
    err = capsys.readouterr().err.strip()
    assert "'xlm-roberta-base'" in err and "huggingface-cli download xlm-roberta-base" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "run").exists()
