"""ccrk translate: shard captions into K languages, with a tiny random M2M100 and a locally trained tokenizer."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from ccrk.corpus.translate import TranslateConfig, translate_shards
from ccrk.data.shards import read_shard_corpus

SRC = Path(__file__).resolve().parents[1] / "src"
ENGLISH = ["a dog runs on the grass", "two men play football", "a red car in the street",
           "a woman reads a book", "children swim in a lake", "a cat sleeps on a sofa", "EMPTY"]


def _cc_shard(path: Path, captions: list[str]) -> None:
    """An img2dataset-style shard: <key>.jpg and <key>.txt."""
    with tarfile.open(path, "w") as tar:
        for i, text in enumerate(captions):
            buf = io.BytesIO()
            Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(buf, format="JPEG")
            for name, data in [(f"{path.stem}{i:04d}.jpg", buf.getvalue()), (f"{path.stem}{i:04d}.txt", text.encode())]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.fixture()
def shards(tmp_path: Path) -> Path:
    out = tmp_path / "shards"
    out.mkdir()
    _cc_shard(out / "00000.tar", ENGLISH[:4])
    _cc_shard(out / "00001.tar", ENGLISH[4:])
    return out


class Tagger:
    """A stand-in translator whose output shows which text and language it came from."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int | None]] = []

    def translate(self, texts, target, *, max_length, num_beams=None, min_new_tokens=None):
        self.calls.append((target, len(texts), min_new_tokens))
        return ["" if t == "EMPTY" else f"<{target}> {t}" for t in texts]


def test_each_sample_gets_its_own_translations_and_empties_fall_back(shards, tmp_path):
    cfg = TranslateConfig.from_dict({"languages": ["en", "de", "ja"], "batch_size": 2})
    tagger = Tagger()
    report = translate_shards(shards, tmp_path / "captions", cfg, translator=tagger, log=lambda _: None)
    got = read_shard_corpus(shards, captions_dir=tmp_path / "captions", require_languages=["en", "de", "ja"])
    for rec, text in zip(got.records, ENGLISH):
        expected = {"en": [text], "de": [f"<de> {text}"], "ja": [f"<ja> {text}"]}
        if text == "EMPTY":
            expected = {"en": [text], "de": [text], "ja": [text]}
        assert rec.captions == expected
    assert report["samples"] == 7 and report["captions"] == 14 and report["fallbacks"] == 2
    assert report["translated_shards"] == 2
    # batches of at most 2, and the empty one retried with a minimum length
    assert all(n <= 2 for _, n, m in tagger.calls if m is None)
    assert [(t, m) for t, _, m in tagger.calls if m is not None] == [("de", 1), ("ja", 1)]

    # a rerun redoes nothing; a lost shard file is redone alone
    before = (tmp_path / "captions" / "00000.jsonl").stat().st_mtime_ns
    assert translate_shards(shards, tmp_path / "captions", cfg, translator=Tagger(),
                            log=lambda _: None)["translated_shards"] == 0
    (tmp_path / "captions" / "00001.jsonl").unlink()
    again = translate_shards(shards, tmp_path / "captions", cfg, translator=Tagger(), log=lambda _: None)
    assert again["translated_shards"] == 1 and again["samples"] == 3
    assert (tmp_path / "captions" / "00000.jsonl").stat().st_mtime_ns == before


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="translate.beams"):
        TranslateConfig.from_dict({"beams": 4})
    with pytest.raises(ValueError, match="source language 'en'"):
        TranslateConfig.from_dict({"languages": ["de", "fr"]})
    with pytest.raises(ValueError, match="not ISO 639-1"):
        TranslateConfig.from_dict({"languages": ["en", "deu"]})


def _tiny_m2m100(path: Path) -> None:
    """A randomly initialised 1+1-layer M2M100 with a word-level tokenizer trained here, saved like a hub model."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import M2M100Config, M2M100ForConditionalGeneration, PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "__en__", "__de__", "__ja__"]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(ENGLISH * 3, trainers.WordLevelTrainer(special_tokens=specials))
    # M2M100's encoder input: source-language token, the text, end of sentence.
    tok.post_processor = processors.TemplateProcessing(
        single="__en__ $A </s>", special_tokens=[("__en__", tok.token_to_id("__en__")), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", additional_special_tokens=specials[4:],
                                   model_input_names=["input_ids", "attention_mask"])
    fast.save_pretrained(path)
    config = M2M100Config(vocab_size=tok.get_vocab_size(), d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                          decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=1, bos_token_id=0,
                          eos_token_id=2, decoder_start_token_id=2)
    M2M100ForConditionalGeneration(config).save_pretrained(path)


def test_ccrk_translate_runs_a_real_m2m100_offline(shards, tmp_path):
    model = tmp_path / "m2m100-tiny"
    _tiny_m2m100(model)
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ccrk.cli", "translate", "--shards", str(shards), "--out", str(tmp_path / "cap"),
           "--model", str(model), "--set", 'translate.languages=["en","de","ja"]', "--set", "translate.batch_size=3",
           "--set", "translate.max_length=8", "--set", "translate.num_beams=1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "cap" / "translate_report.json").read_text())
    assert report["samples"] == 7 and report["captions"] == 14 and report["model"] == str(model)
    got = read_shard_corpus(shards, captions_dir=tmp_path / "cap", require_languages=["en", "de", "ja"])
    assert [r.captions["en"] for r in got.records] == [[t] for t in ENGLISH]
    assert all(r.captions["de"][0].strip() and r.captions["ja"][0].strip() for r in got.records)

    proc = subprocess.run(cmd[:-2] + ["--set", "translate.beams=2"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "translate.beams" in proc.stderr


def test_the_workflow_translate_rule_runs_on_shards_with_a_local_model(shards, tmp_path):
    """The paper DAG's `translate` rule itself, on crawled shards in place, with the tiny model."""
    import shutil

    import yaml

    from test_workflow import _copy_workflow, _snakemake

    model = tmp_path / "m2m100-tiny"
    _tiny_m2m100(model)
    (tmp_path / "wf").mkdir()
    workdir = _copy_workflow(tmp_path / "wf")
    crawled = workdir / "data" / "cc3m" / "shards"
    shutil.copytree(shards, crawled)
    stamp = workdir / "data" / ".ccrk" / "cc3m-urls.json"
    stamp.parent.mkdir(parents=True)
    stamp.write_text("{}\n")
    (crawled / "fetch_done.json").write_text("{}\n")
    os.utime(stamp, (1_000_000_000, 1_000_000_000))  # older than the crawl it fed
    overlay = {"translate": {"model": str(model), "languages": ["en", "de", "ja"], "batch_size": 3, "max_length": 8,
                             "num_beams": 1, "device": "cpu", "precision": "fp32"}}
    (workdir / "local.yaml").write_text(yaml.safe_dump(overlay))
    target = "resources/corpus/captions/translate_report.json"
    result = _snakemake(workdir, target, "--cores", "1", "--configfile", "config/paper.yaml", "local.yaml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "rule translate:" in result.stdout + result.stderr and "rule corpus:" not in result.stdout + result.stderr
    report = json.loads((workdir / target).read_text())
    assert report["samples"] == 7 and report["translated_shards"] == 2
    got = read_shard_corpus(crawled, captions_dir=workdir / "resources" / "corpus" / "captions",
                            require_languages=["en", "de", "ja"])
    assert len(got.records) == 7
