"""The embedded tokenizer: trained on every language, loads like xlm-roberta, never emits <unk>."""
from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from ccrk.cli import main
from ccrk.data.manifest import Record, write_manifest
from ccrk.synth.generate import sample_scene
from ccrk.synth.languages import LANGUAGE_CODES, get_language
from ccrk.tokenizer import load_tokenizer, train_tokenizer

import numpy as np


def _captions(n: int, seed: int) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {lang: [] for lang in LANGUAGE_CODES}
    for _ in range(n):
        desc = sample_scene(rng, (0.2, 0.4, 0.4)).description()
        for lang in LANGUAGE_CODES:
            grammar = get_language(lang)
            out[lang].append(grammar.describe(desc, int(rng.integers(grammar.N_TEMPLATES))))
    return out


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    corpus = [t for texts in _captions(300, 0).values() for t in texts]
    train_tokenizer(corpus, out, vocab_size=1200)
    return out


def test_loads_with_auto_tokenizer_and_xlmr_special_ids(tok_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.mask_token == "<mask>" and tok.mask_token_id is not None
    ids = tok("ein roter Kreis")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert len(tok) <= 1200


@pytest.mark.parametrize("lang", LANGUAGE_CODES)
def test_round_trips_every_language_without_unknowns(tok_dir: Path, lang: str) -> None:
    tok = load_tokenizer(tok_dir)
    for text in _captions(20, 99)[lang]:  # captions the tokenizer did not see in training
        ids = tok(text)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids, skip_special_tokens=True) == text


def test_unseen_characters_fall_back_to_bytes(tok_dir: Path) -> None:
    tok = load_tokenizer(tok_dir)
    text = "Zebra 🦓 猫 ψυχή ok"
    ids = tok(text)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert any(t.startswith("<0x") for t in tok.convert_ids_to_tokens(ids))


def test_padding_batches_for_the_model(tok_dir: Path) -> None:
    tok = load_tokenizer(tok_dir)
    batch = tok(["a", "ein großer roter Kreis links"], padding="longest", return_tensors="pt")
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert batch["input_ids"][0, -1].item() == tok.pad_token_id
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()


def test_cli_trains_from_manifest_and_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    caps = _captions(50, 3)
    records = [Record(str(i), "x.png", {lang: [caps[lang][i]] for lang in LANGUAGE_CODES}) for i in range(50)]
    manifest = tmp_path / "pretrain.jsonl"
    write_manifest(manifest, records)
    out = tmp_path / "tok"
    assert main(["tokenizer", "--manifest", str(manifest), "--out", str(out), "--set", "tokenizer.vocab_size=800"]) == 0
    assert (out / "tokenizer.json").is_file()
    assert load_tokenizer(out)(caps["ja"][0])["input_ids"]

    assert main(["tokenizer", "--manifest", str(manifest), "--out", str(tmp_path / "t2"), "--set", "tokenizer.vocab=8"]) == 2
    assert "tokenizer.vocab" in capsys.readouterr().err
    assert not (tmp_path / "t2").exists()

    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tokenizer(tmp_path / "missing")


def test_words_stay_whole_and_cjk_is_split_into_characters(tok_dir: Path) -> None:
    tok = load_tokenizer(tok_dir)
    pieces = tok.tokenize("The picture shows a small green heart.")
    assert "▁green" in pieces and "▁small" in pieces, pieces
    zh = tok.tokenize("左边有一个红色的大圆形。")
    assert [p.lstrip("▁") for p in zh if p != "▁"] == list("左边有一个红色的大圆形。")


@pytest.mark.parametrize("lang", LANGUAGE_CODES)
def test_captions_fit_the_model_length(tok_dir: Path, lang: str) -> None:
    tok = load_tokenizer(tok_dir)
    lengths = [len(tok(text)["input_ids"]) for text in _captions(200, 7)[lang]]
    assert max(lengths) <= 64, (lang, max(lengths))


def test_the_fingerprint_identifies_the_vocabulary(tok_dir: Path, tmp_path: Path) -> None:
    from ccrk.tokenizer import tokenizer_fingerprint

    fp = tokenizer_fingerprint(load_tokenizer(tok_dir))
    assert len(fp) == 16 and fp == tokenizer_fingerprint(load_tokenizer(tok_dir))  # a reload is the same tokenizer
    copy = tmp_path / "copy"
    load_tokenizer(tok_dir).save_pretrained(copy)
    assert tokenizer_fingerprint(load_tokenizer(copy)) == fp
    other = tmp_path / "other"
    train_tokenizer([t for texts in _captions(300, 0).values() for t in texts], other, vocab_size=900)
    assert tokenizer_fingerprint(load_tokenizer(other)) != fp
