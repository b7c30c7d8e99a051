"""Webdataset shards: writer, indexed reader, streaming reader, sidecar captions, errors."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ccrk.data.collate import Collator
from ccrk.data.dataset import CaptionDataset
from ccrk.data.manifest import Record, read_manifest, write_manifest
from ccrk.data.shard_stream import ShardStream, iter_shard
from ccrk.data.shards import ShardError, is_shard_source, read_shard_corpus, write_shards
from ccrk.data.transforms import build_eval_transform, build_train_transform

LANGS = ["en", "de", "ja"]


@pytest.fixture()
def corpus(tmp_path: Path) -> tuple[Path, list[Record]]:
    """Seven images with distinct pixels and captions; one record has two English captions."""
    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(0)
    records = []
    for i in range(7):
        ext = "png" if i % 2 else "jpg"
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(root / f"im.{i}.{ext}")
        captions = {"en": [f"english {i}"] + ([f"english {i} again"] if i == 3 else []),
                    "de": [f"deutsch {i}"], "ja": [f"日本語 {i}"]}
        records.append(Record(image_id=f"id/{i}.x", image=f"im.{i}.{ext}", captions=captions))
    write_manifest(root / "manifest.jsonl", records)
    return root, records


def test_written_shards_index_back_to_the_same_records_and_pixels(corpus, tmp_path):
    root, records = corpus
    paths = write_shards(records, root, tmp_path / "shards", samples_per_shard=3)
    assert [p.name for p in paths] == ["00000.tar", "00001.tar", "00002.tar"]
    assert is_shard_source(tmp_path / "shards") and is_shard_source(paths[0])
    assert not is_shard_source(root / "manifest.jsonl")
    with tarfile.open(paths[0]) as tar:
        names = tar.getnames()
    assert names[:3] == ["000000000.jpg", "000000000.json", "000000000.txt"]  # a sample's members adjacent

    got = read_shard_corpus(tmp_path / "shards")
    assert [r.captions for r in got.records] == [r.captions for r in records]
    for rec, original in zip(got.records, records):
        with Image.open(root / original.image) as img:
            expected = np.asarray(img.convert("RGB"))
        assert np.array_equal(np.asarray(got.images(rec)), expected)  # bytes copied, never re-encoded
    # languages keeps only those captions, in that order
    assert list(read_shard_corpus(paths[1], languages=["ja", "en"]).records[0].captions) == ["ja", "en"]


def test_shard_dataset_gives_the_samples_of_the_manifest_dataset(corpus, tmp_path):
    root, records = corpus
    write_shards(records, root, tmp_path / "shards", samples_per_shard=4)
    shard = read_shard_corpus(tmp_path / "shards")
    transform = build_train_transform(16)
    a = CaptionDataset(records, root, LANGS, transform, seed=5)
    b = CaptionDataset(shard.records, root / "nowhere", LANGS, transform, seed=5, image_reader=shard.images)
    for ds in (a, b):
        ds.set_epoch(2)
    collate = Collator("one_to_k", LANGS)
    batch_a, batch_b = collate([a[i] for i in range(7)]), collate([b[i] for i in range(7)])
    assert torch.equal(batch_a.images, batch_b.images)
    assert batch_a.texts == batch_b.texts


def test_stream_reads_every_sample_once_across_ranks_and_workers(corpus, tmp_path):
    root, records = corpus
    write_shards(records, root, tmp_path / "shards", samples_per_shard=2)  # 4 shards
    transform = build_eval_transform(16)
    expected = {r.captions["de"][0] for r in records}

    whole = list(ShardStream(tmp_path / "shards", LANGS, transform, shuffle_buffer=0))
    assert sorted(s["captions"]["de"] for s in whole) == sorted(expected)
    assert all(s["image"].shape == (3, 16, 16) and s["modal_lang"] in LANGS for s in whole)

    ranks = [list(ShardStream(tmp_path / "shards", LANGS, transform, rank=r, world_size=2, seed=1))
             for r in range(2)]
    seen = [s["captions"]["de"] for part in ranks for s in part]
    assert sorted(seen) == sorted(expected) and all(ranks)

    stream = ShardStream(tmp_path / "shards", LANGS, transform, shuffle_buffer=3, seed=1)
    loader = DataLoader(stream, batch_size=2, num_workers=2, collate_fn=Collator("one_to_k", LANGS))
    texts = [t for batch in loader for t in batch.texts]
    assert sorted(t for t in texts if t.startswith("deutsch")) == sorted(expected)

    # the epoch reshuffles the shard order, the same epoch repeats it
    stream.set_epoch(0)
    first = stream.reader_shards()
    assert stream.reader_shards() == first
    orders = set()
    for epoch in range(6):
        stream.set_epoch(epoch)
        orders.add(tuple(stream.reader_shards()))
    assert len(orders) > 1


def _img2dataset_style_shard(path: Path, n: int) -> None:
    """What img2dataset writes: <key>.jpg, <key>.txt (the caption), <key>.json (crawl metadata)."""
    with tarfile.open(path, "w") as tar:
        for i in range(n):
            key = f"{i:09d}"
            buf = io.BytesIO()
            Image.new("RGB", (8, 8), (i, 0, 0)).save(buf, format="JPEG")
            meta = json.dumps({"url": f"http://x/{i}.jpg", "key": key, "status": "success"}).encode()
            for name, data in [(f"{key}.jpg", buf.getvalue()), (f"{key}.txt", f"caption {i}".encode()),
                               (f"{key}.json", meta)]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_img2dataset_shards_read_their_txt_as_english_and_a_sidecar_adds_languages(tmp_path):
    shards = tmp_path / "cc"
    shards.mkdir()
    _img2dataset_style_shard(shards / "00000.tar", 3)
    got = read_shard_corpus(shards)
    assert [r.captions for r in got.records] == [{"en": [f"caption {i}"]} for i in range(3)]
    with pytest.raises(ShardError, match=r"00000.tar: sample '000000000' has no caption in required language 'de'"):
        read_shard_corpus(shards, require_languages=["en", "de"])

    side = shards / "captions"
    side.mkdir()
    (side / "00000.jsonl").write_text("".join(
        json.dumps({"key": f"{i:09d}", "captions": {"en": [f"caption {i}"], "de": [f"Bild {i}"]}}) + "\n"
        for i in range(3)), encoding="utf-8")
    got = read_shard_corpus(shards, require_languages=["en", "de"])
    assert got.records[2].captions == {"en": ["caption 2"], "de": ["Bild 2"]}
    # a sidecar elsewhere (what the workflow does: translations outside the raw-data directory)
    (side / "00000.jsonl").rename(tmp_path / "00000.jsonl")
    got = read_shard_corpus(shards, captions_dir=tmp_path, require_languages=["de"])
    assert got.records[0].captions["de"] == ["Bild 0"]
    streamed = list(ShardStream(shards, ["en", "de"], build_eval_transform(8), captions_dir=tmp_path,
                                shuffle_buffer=0))
    assert [s["captions"]["de"] for s in streamed] == ["Bild 0", "Bild 1", "Bild 2"]

    (tmp_path / "00000.jsonl").write_text('{"key": "000000000"}\n', encoding="utf-8")
    with pytest.raises(ShardError, match=r"00000.jsonl:1: expected"):
        read_shard_corpus(shards, captions_dir=tmp_path)


def test_truncated_corrupt_and_incomplete_shards_fail_naming_the_file(corpus, tmp_path):
    root, records = corpus
    (path,) = write_shards(records[:2], root, tmp_path / "ok")
    data = path.read_bytes()
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "00000.tar").write_bytes(data[: len(data) // 2 + 100])
    with pytest.raises(ShardError, match=r"cut/00000.tar: corrupt or truncated"):
        read_shard_corpus(cut)
    with pytest.raises(ShardError, match=r"cut/00000.tar"):
        list(iter_shard(cut / "00000.tar"))
    (cut / "00000.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ShardError, match=r"cut/00000.tar: not a readable tar shard"):
        read_shard_corpus(cut)

    lonely = tmp_path / "lonely.tar"
    with tarfile.open(lonely, "w") as tar:
        info = tarfile.TarInfo("000000000.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(ShardError, match=r"lonely.tar: sample '000000000' has no image member"):
        read_shard_corpus(lonely)
    with pytest.raises(ShardError, match=r"no \*.tar shards"):
        read_shard_corpus(tmp_path / "ok" / ".." / "cut" / ".." / "images")


def test_writing_fails_before_any_shard_when_an_image_is_missing(corpus, tmp_path):
    root, records = corpus
    (root / records[5].image).unlink()
    with pytest.raises(FileNotFoundError, match=r"im\.5\.png \(record 5"):
        write_shards(records, root, tmp_path / "shards", samples_per_shard=2)
    assert not (tmp_path / "shards").exists()  # checked before anything is written

    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "ccrk.cli", "shards", "--manifest", str(root / "manifest.jsonl"),
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2 and "im.5.png" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".cli.*"))


def test_ccrk_shards_writes_a_manifest_as_shards(corpus, tmp_path):
    root, records = corpus
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "ccrk.cli", "shards", "--manifest", str(root / "manifest.jsonl"),
                           "--out", str(out), "--samples-per-shard", "5"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "7 samples in 2 shard(s)" in proc.stdout
    assert len(read_shard_corpus(out).records) == len(read_manifest(root / "manifest.jsonl")) == 7
