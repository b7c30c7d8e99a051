"""Collation row layout per objective, tokenisation, cross-modal language sampling, EpochSampler."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ccrk.data.collate import Batch, Collator
from ccrk.data.dataset import CaptionDataset, EpochSampler
from ccrk.data.manifest import Record
from ccrk.data.transforms import build_eval_transform

LANGS = ["en", "de", "fr", "ja"]


def _samples(n: int, langs: list[str] = LANGS, size: int = 8) -> list[dict]:
    return [
        {
            "image": torch.full((3, size, size), float(i)),
            "image_id": f"img{i}",
            "captions": {lang: f"img{i}|{lang}|" + "x" * (i % 3) for lang in langs},
            "modal_lang": langs[(i * 7) % len(langs)],
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("objective", ["one_to_k", "cross_lingual"])
def test_all_language_rows_grouped_by_image(objective: str) -> None:
    batch = Collator(objective, LANGS)(_samples(5))
    B, K = 5, len(LANGS)
    assert isinstance(batch, Batch) and batch.k == K and len(batch) == B
    assert batch.images.shape == (B, 3, 8, 8)
    assert len(batch.texts) == len(batch.text_langs) == B * K
    assert batch.input_ids is None and batch.attention_mask is None
    for i in range(B):
        assert batch.image_ids[i] == f"img{i}"
        assert torch.all(batch.images[i] == i)
        for j, lang in enumerate(LANGS):
            image_id, text_lang, _ = batch.texts[i * K + j].split("|")
            assert (image_id, text_lang) == (f"img{i}", lang)
            assert batch.text_langs[i * K + j] == lang


def test_cross_modal_rows_use_modal_lang() -> None:
    samples = _samples(6)
    batch = Collator("cross_modal", LANGS)(samples)
    assert batch.k == 1 and len(batch.texts) == 6 and batch.images.shape[0] == 6
    for i, sample in enumerate(samples):
        assert batch.texts[i] == sample["captions"][sample["modal_lang"]]
        assert batch.text_langs[i] == sample["modal_lang"]


def test_collator_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="'one_to_many'"):
        Collator("one_to_many", LANGS)
    with pytest.raises(ValueError, match="'en'"):
        Collator("cross_lingual", ["de", "en"])
    with pytest.raises(ValueError, match="'en'"):
        Collator("cross_lingual", ["de", "fr"])
    with pytest.raises(ValueError, match="'en' first"):
        Collator("one_to_k", ["de", "en"])
    Collator("one_to_k", ["de", "fr"])  # no English: any order
    Collator("cross_modal", ["de", "en"])
    samples = _samples(3)
    del samples[1]["captions"]["fr"]
    with pytest.raises(ValueError, match="img1.*'fr'"):
        Collator("one_to_k", LANGS)(samples)
    samples = _samples(3)
    samples[2]["modal_lang"] = "zh"
    with pytest.raises(ValueError, match="zh"):
        Collator("cross_modal", LANGS)(samples)


def test_tokenised_rows_match_bytes() -> None:
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.ByT5Tokenizer()
    samples = _samples(3, ["en", "ja"])
    samples[0]["captions"]["ja"] = "日本語の長いキャプション" * 3  # longer than max_length bytes
    batch = Collator("one_to_k", ["en", "ja"], tokenizer=tokenizer, max_length=20)(samples)
    assert batch.input_ids.shape[0] == batch.attention_mask.shape[0] == 6
    lengths = [min(len(t.encode("utf-8")) + 1, 20) for t in batch.texts]  # + </s>, truncated
    assert batch.input_ids.shape[1] == max(lengths)
    assert batch.attention_mask.sum(1).tolist() == lengths
    for row, text in enumerate(batch.texts):
        ids = [b + 3 for b in text.encode("utf-8")][: lengths[row] - 1] + [1]  # ByT5: byte + 3, eos = 1
        assert batch.input_ids[row, : lengths[row]].tolist() == ids
    moved = batch.to("cpu")
    assert moved.texts is batch.texts and torch.equal(moved.input_ids, batch.input_ids)


def test_cross_modal_language_sampling_is_uniform(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4), (10, 20, 30)).save(tmp_path / "a.png")
    records = [Record(str(i), "a.png", {lang: [f"{lang}{i}"] for lang in LANGS}) for i in range(600)]
    ds = CaptionDataset(records, tmp_path, LANGS, build_eval_transform(4), seed=11)
    counts = dict.fromkeys(LANGS, 0)
    collate = Collator("cross_modal", LANGS)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for start in range(0, len(ds), 100):
            batch = collate([ds[i] for i in range(start, start + 100)])
            for lang, text in zip(batch.text_langs, batch.texts):
                assert text.startswith(lang)
                counts[lang] += 1
    n = sum(counts.values())
    expected = n / len(LANGS)
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert min(counts.values()) > 0
    assert chi2 < 16.27, counts  # chi-square, 3 dof, p = 0.001


def _collect(sampler: EpochSampler) -> list[int]:
    out = list(sampler)
    assert len(out) == len(sampler)
    return out


@pytest.mark.parametrize("n,world", [(23, 4), (24, 4), (5, 1), (3, 5)])
@pytest.mark.parametrize("drop_last", [True, False])
def test_sampler_shards_disjoint_and_cover(n: int, world: int, drop_last: bool) -> None:
    shards = []
    for rank in range(world):
        sampler = EpochSampler(n, seed=7, rank=rank, world_size=world, drop_last=drop_last)
        sampler.set_epoch(3)
        shards.append(_collect(sampler))
    assert len({len(s) for s in shards}) == 1
    flat = [i for s in shards for i in s]
    if drop_last:
        assert len(flat) == len(set(flat)) == n - n % world  # disjoint
    else:
        assert set(flat) == set(range(n))  # cover; only the padding repeats
        assert len(flat) == -(-n // world) * world
    # rank r takes positions r, r + world, ... of one seeded permutation
    whole = EpochSampler(n, seed=7)
    whole.set_epoch(3)
    perm = whole.order().tolist()
    assert sorted(perm) == list(range(n))
    padded = (perm * (world + 1))[: len(flat)]
    for rank in range(world):
        assert shards[rank] == padded[rank::world]


def test_sampler_epochs_and_seeds() -> None:
    sampler = EpochSampler(50, seed=1)
    e0 = _collect(sampler)
    assert e0 == _collect(sampler)  # same epoch, same order
    sampler.set_epoch(1)
    e1 = _collect(sampler)
    assert sorted(e1) == list(range(50)) and e1 != e0
    sampler.set_epoch(0)
    assert _collect(sampler) == e0
    assert _collect(EpochSampler(50, seed=2)) != e0
    assert _collect(EpochSampler(50, seed=1, shuffle=False)) == list(range(50))


def test_sampler_start_resumes_exactly() -> None:
    full = EpochSampler(41, seed=5, rank=1, world_size=3)
    full.set_epoch(4)
    order = _collect(full)
    full.set_epoch(5)
    next_order = _collect(full)
    for start in (0, 1, 6, len(order)):
        # the usual resume loop: constructor start, then plain set_epoch per epoch
        resumed = EpochSampler(41, seed=5, rank=1, world_size=3, start=start)
        resumed.set_epoch(4)
        assert _collect(resumed) == order[start:]
        resumed.set_epoch(5)  # the next epoch runs whole
        assert _collect(resumed) == next_order
        resumed.set_epoch(4, start=start)  # explicit start
        assert _collect(resumed) == order[start:]
    resumed = EpochSampler(41, seed=5, rank=1, world_size=3, start=6)  # epoch 0 without set_epoch
    assert _collect(resumed) == _collect(EpochSampler(41, seed=5, rank=1, world_size=3))[6:]
    with pytest.raises(ValueError, match="start"):
        EpochSampler(41, seed=5, rank=1, world_size=3, start=len(order) + 1)
    with pytest.raises(ValueError, match="rank"):
        EpochSampler(41, seed=5, rank=3, world_size=3)


def test_sampler_with_dataloader_batches() -> None:
    sampler = EpochSampler(20, seed=0, rank=0, world_size=2)
    ds = torch.utils.data.TensorDataset(torch.arange(20))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, sampler=sampler)
    got = np.concatenate([b[0].numpy() for b in loader]).tolist()
    assert got == list(sampler)
