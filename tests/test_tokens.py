"""TokenCache: the same tensors as the tokenizer's own padded call, each distinct caption tokenized once."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from ccrk.data.collate import Collator
from ccrk.data.tokens import TokenCache
from ccrk.synth.generate import sample_scene
from ccrk.synth.languages import LANGUAGE_CODES, get_language
from ccrk.tokenizer import load_tokenizer, train_tokenizer


def _captions(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        desc = sample_scene(rng, (0.2, 0.4, 0.4)).description()
        for lang in LANGUAGE_CODES:
            grammar = get_language(lang)
            out.append(grammar.describe(desc, int(rng.integers(grammar.N_TEMPLATES))))
    return out


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    train_tokenizer(_captions(200, 0), out, vocab_size=800)
    return load_tokenizer(out)


def _reference(tokenizer, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    enc = tokenizer(texts, padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


@pytest.mark.parametrize("max_length", [8, 72])
def test_batches_equal_the_tokenizers_padded_call_including_truncation_and_repeats(tokenizer, max_length: int) -> None:
    texts = _captions(40, 1)
    cache = TokenCache(tokenizer, max_length)
    rng = np.random.default_rng(0)
    for _ in range(6):  # overlapping batches: some texts cached, some new, some twice in one batch
        batch = [texts[i] for i in rng.integers(0, len(texts), size=24)]
        ids, mask = cache(batch)
        ref_ids, ref_mask = _reference(tokenizer, batch, max_length)
        assert ids.dtype == ref_ids.dtype and mask.dtype == ref_mask.dtype
        assert torch.equal(ids, ref_ids) and torch.equal(mask, ref_mask)
    assert 0 < len(cache) <= len(set(texts))
    if max_length == 8:  # the test would prove nothing about truncation if no caption were cut
        assert max(len(tokenizer(t)["input_ids"]) for t in texts) > 8


def test_left_padding_follows_the_tokenizer(tokenizer) -> None:
    texts = _captions(5, 2)
    tokenizer.padding_side = "left"
    try:
        ids, mask = TokenCache(tokenizer, 72)(texts)
        ref_ids, ref_mask = _reference(tokenizer, texts, 72)
    finally:
        tokenizer.padding_side = "right"
    assert torch.equal(ids, ref_ids) and torch.equal(mask, ref_mask)
    assert (mask[:, -1] == 1).all()


def test_each_distinct_text_is_tokenized_once_and_the_capacity_bounds_memory(tokenizer) -> None:
    calls: list[int] = []

    class Counting:
        pad_token_id = tokenizer.pad_token_id
        padding_side = "right"

        def __call__(self, texts, **kwargs):
            calls.append(len(texts))
            return tokenizer(texts, **kwargs)

    texts = _captions(10, 3)
    cache = TokenCache(Counting(), 72)
    cache(texts[:30] + texts[:5])
    cache(texts[:30])
    assert calls == [len(set(texts[:30]))]  # the repeat in the first batch and the whole second batch: no call

    calls.clear()
    small = TokenCache(Counting(), 72, capacity=4)
    ids, _ = small(texts[:10])
    assert len(small) == 4
    ids_again, _ = small(texts[:10])  # beyond capacity: tokenized again, same result
    assert torch.equal(ids, ids_again) and calls == [len(set(texts[:10])), len(set(texts[4:10]))]


def test_refuses_a_tokenizer_without_pad_token_and_a_bare_string(tokenizer) -> None:
    class NoPad:
        pad_token_id = None

    with pytest.raises(ValueError, match="no pad token"):
        TokenCache(NoPad(), 16)
    with pytest.raises(TypeError, match="list of strings"):
        TokenCache(tokenizer, 16)("a red circle")


def test_the_collator_batches_through_the_cache(tokenizer) -> None:
    texts = _captions(4, 4)
    langs = ["en", "de"]
    samples = [
        {"image": torch.zeros(3, 4, 4), "image_id": str(i), "captions": {"en": texts[2 * i], "de": texts[2 * i + 1]},
         "modal_lang": "en"}
        for i in range(4)
    ]
    batch = Collator("one_to_k", langs, tokenizer, max_length=72)(samples)
    ref_ids, ref_mask = _reference(tokenizer, batch.texts, 72)
    assert torch.equal(batch.input_ids, ref_ids) and torch.equal(batch.attention_mask, ref_mask)
