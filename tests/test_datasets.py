"""Real-benchmark parsers on the real annotation fixtures, the resumable downloader, ccrk download/prepare."""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import shutil
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from ccrk.cli import main
from ccrk.data.manifest import read_manifest
from ccrk.datasets import flickr30k, multi30k, mscoco, wit, xflickrco
from ccrk.datasets._io import AnnotationError
from ccrk.datasets.download import check_manual, fetch_source, manual_message
from ccrk.datasets.http import DownloadError, download_file, extract_archive
from ccrk.datasets.sources import SOURCES, ManualCheck, RemoteFile, Source, sources_for

LANGS4 = ("en", "de", "ja", "zh")


def _raw_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture()
def ann(fixtures_dir: Path) -> Path:
    return fixtures_dir / "iglue" / "xFlickrCO" / "annotations"


@pytest.fixture()
def data_root(tmp_path: Path, fixtures_dir: Path) -> Path:
    """A data root laid out as `ccrk download` leaves it, pointing at the read-only fixtures."""
    root = tmp_path / "data"
    for link, target in {
        "xflickrco/annotations": fixtures_dir / "iglue" / "xFlickrCO" / "annotations",
        "flickr30k/annotations": fixtures_dir / "iglue" / "flickr30k" / "annotations",
        "multi30k/task1": fixtures_dir / "multi30k" / "task1",
    }.items():
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        (root / link).symlink_to(target, target_is_directory=True)
    return root


# ------------------------------------------------------------------ xFlickr&CO


@pytest.mark.parametrize("lang", LANGS4)
def test_xflickrco_test_file_has_1000_flickr_and_1000_coco_images(ann: Path, lang: str) -> None:
    path = ann / lang / "test.jsonl"
    records = xflickrco.read_iglue_retrieval(path, lang)
    raw = _raw_jsonl(path)
    assert len(records) == len(raw) == 2000
    assert all(isinstance(r.image_id, str) for r in records)
    coco = [r for r in records if r.image.startswith("mscoco/images/val2014/COCO_val2014_")]
    flickr = [r for r in records if r.image.startswith("flickr30k/images/")]
    assert len(coco) == 1000 and len(flickr) == 1000
    # upstream: int ids for COCO, str ids for Flickr; ours are the same values as strings
    for rec, obj in zip(records, raw):
        assert rec.image_id == str(obj["id"])
        assert isinstance(obj["id"], int) == rec.image.startswith("mscoco/")
        assert rec.image.endswith("/" + obj["img_path"])


def test_xflickrco_merged_test_is_parallel_in_four_languages(data_root: Path, ann: Path) -> None:
    prepared = xflickrco.prepare(data_root, languages=list(LANGS4))
    test = prepared.splits["test"]
    assert len(test) == 2000
    raw = {lang: _raw_jsonl(ann / lang / "test.jsonl") for lang in LANGS4}
    ids = {lang: [str(o["id"]) for o in objs] for lang, objs in raw.items()}
    assert ids["en"] == ids["de"] == ids["ja"] == ids["zh"] == [r.image_id for r in test]
    incomplete = []
    for i, rec in enumerate(test):
        for lang in LANGS4:
            text = raw[lang][i]["sentences"][0]
            if text.strip():
                assert rec.captions[lang] == [text]
            else:
                assert lang not in rec.captions
                incomplete.append((rec.image_id, lang))
    # the one empty upstream caption: German, COCO 122239 (test line 1960)
    assert incomplete == [("122239", "de")]
    assert any("de/test.jsonl:1960" in note for note in prepared.notes)


def test_xflickrco_japanese_digit_markers_are_kept(ann: Path) -> None:
    records = xflickrco.read_iglue_retrieval(ann / "ja" / "test.jsonl", "ja")
    assert records[0].captions["ja"] == ["耳ピアスをした1男が、3メガネをかけて4オレンジ色の帽子をかぶっている。"]
    raw = _raw_jsonl(ann / "ja" / "test.jsonl")
    with_digits = sum(bool(re.search(r"[0-9]", o["sentences"][0])) for o in raw)
    assert with_digits > 500
    assert sum(bool(re.search(r"[0-9]", r.captions["ja"][0])) for r in records) == with_digits


def test_xflickrco_few_shot_files(data_root: Path, ann: Path) -> None:
    prepared = xflickrco.prepare(data_root)
    for shots in (1, 5, 10, 100):
        records = prepared.splits[f"few_shot/de/train_{shots}"]
        assert len(records) == shots
        raw = _raw_jsonl(ann / "de" / f"train_{shots}.jsonl")
        assert [r.captions for r in records] == [{"de": o["sentences"]} for o in raw]
        assert all(r.image == f"flickr30k/images/{o['img_path']}" for r, o in zip(records, raw))
    assert list(prepared.splits)[1:] == [f"few_shot/de/train_{n}" for n in (1, 5, 10, 100)]


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def test_xflickrco_truncated_file_names_file_and_line(tmp_path: Path, ann: Path) -> None:
    path = _copy(ann / "en" / "test.jsonl", tmp_path / "en" / "test.jsonl")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # cut inside the last line
    with pytest.raises(AnnotationError, match=rf"{re.escape(str(path))}:2000: malformed JSON.*truncated"):
        xflickrco.read_iglue_retrieval(path, "en")


def test_xflickrco_corrupt_and_incomplete_lines(tmp_path: Path, ann: Path) -> None:
    lines = (ann / "en" / "test.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(lines[:4] + ['{"sentences": ["x"], "id": \n'] + lines[5:]), encoding="utf-8")
    with pytest.raises(AnnotationError, match=rf"{re.escape(str(bad))}:5: malformed JSON"):
        xflickrco.read_iglue_retrieval(bad, "en")
    obj = json.loads(lines[6])
    del obj["img_path"]
    bad.write_text("".join(lines[:6] + [json.dumps(obj) + "\n"] + lines[7:]), encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"bad.jsonl:7: missing field 'img_path'"):
        xflickrco.read_iglue_retrieval(bad, "en")
    obj = json.loads(lines[1000])
    obj["id"] = str(obj["id"] + 1)
    bad.write_text("".join(lines[:1000] + [json.dumps(obj) + "\n"] + lines[1001:]), encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"bad.jsonl:1001: id .* does not match img_path"):
        xflickrco.read_iglue_retrieval(bad, "en")


def test_xflickrco_language_missing_images_is_not_parallel(tmp_path: Path, ann: Path) -> None:
    for lang in ("en", "de"):
        _copy(ann / lang / "test.jsonl", tmp_path / lang / "test.jsonl")
    de = tmp_path / "de" / "test.jsonl"
    de.write_text("".join(de.read_text(encoding="utf-8").splitlines(keepends=True)[:-3]), encoding="utf-8")
    with pytest.raises(AnnotationError, match=rf"{re.escape(str(de))}: not parallel .* 3 image id\(s\) missing"):
        xflickrco.read_test(tmp_path, ["en", "de"])


# ------------------------------------------------------------------ Multi30K


def _first_line(path: Path) -> str:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return handle.readline().rstrip("\n")


@pytest.mark.parametrize("split,n", [("test_2016_flickr", 1000), ("val", 1014)])
def test_multi30k_split_is_line_aligned(fixtures_dir: Path, split: str, n: int) -> None:
    task = fixtures_dir / "multi30k" / "task1"
    records = multi30k.read_split(task, split)
    names = (task / "image_splits" / f"{split}.txt").read_text().split()
    assert len(records) == n == len(names)
    assert [r.image for r in records] == [f"flickr30k/images/{name}" for name in names]
    assert [r.image_id for r in records] == [name[:-4] for name in names]
    for lang in multi30k.LANGUAGES:
        assert records[0].captions[lang] == [_first_line(task / "raw" / f"{split}.{lang}.gz")]
        with gzip.open(task / "raw" / f"{split}.{lang}.gz", "rt", encoding="utf-8") as handle:
            assert [r.captions[lang][0] for r in records] == handle.read().splitlines()
    assert all(len(r.captions) == 4 and all(len(v) == 1 for v in r.captions.values()) for r in records)
    if split == "test_2016_flickr":
        assert records[0].captions["en"] == ["A man in an orange hat starring at something."]


def _multi30k_copy(tmp_path: Path, fixtures_dir: Path) -> Path:
    task = tmp_path / "task1"
    shutil.copytree(fixtures_dir / "multi30k" / "task1", task)
    for p in task.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return task


def test_multi30k_truncated_bad_and_misaligned_gzip(tmp_path: Path, fixtures_dir: Path) -> None:
    task = _multi30k_copy(tmp_path, fixtures_dir)
    de = task / "raw" / "val.de.gz"
    data = de.read_bytes()
    de.write_bytes(data[: len(data) // 2])
    with pytest.raises(AnnotationError, match=rf"{re.escape(str(de))}: corrupt or truncated gzip"):
        multi30k.read_split(task, "val")
    de.write_bytes(b"this is not gzip data\n")
    with pytest.raises(AnnotationError, match=rf"{re.escape(str(de))}: corrupt or truncated gzip"):
        multi30k.read_split(task, "val")
    lines = gzip.decompress(data).decode("utf-8").splitlines(keepends=True)
    de.write_bytes(gzip.compress("".join(lines[:500] + lines[501:]).encode("utf-8")))
    with pytest.raises(AnnotationError, match=r"val.de.gz:1014: 1013 caption lines but .*val.txt lists 1014 images"):
        multi30k.read_split(task, "val")
    de.write_bytes(gzip.compress("".join(lines[:9] + ["\n"] + lines[10:]).encode("utf-8")))
    with pytest.raises(AnnotationError, match=r"val.de.gz:10: empty caption for image"):
        multi30k.read_split(task, "val")


# ------------------------------------------------------------------ Flickr30k, Karpathy, COCO, WIT


def test_flickr30k_valid_has_five_english_captions_an_image(data_root: Path, fixtures_dir: Path) -> None:
    prepared = flickr30k.prepare(data_root, splits=["val"])
    val = prepared.splits["val"]
    raw = _raw_jsonl(fixtures_dir / "iglue" / "flickr30k" / "annotations" / "valid_ann.jsonl")
    assert len(val) == len(raw) == 1014
    assert all(list(r.captions) == ["en"] and len(r.captions["en"]) == 5 for r in val)
    assert [r.captions["en"] for r in val] == [o["sentences"] for o in raw]
    with pytest.raises(FileNotFoundError, match="dataset_flickr30k.json"):
        flickr30k.prepare(data_root, splits=["train"])


def _karpathy_coco(path: Path) -> None:
    def img(cocoid: int, split: str, sub: str, texts: list[str]) -> dict:
        return {"filepath": sub, "filename": f"COCO_{sub}_{cocoid:012d}.jpg", "split": split, "cocoid": cocoid,
                "sentences": [{"raw": t, "tokens": t.split()} for t in texts]}

    images = [img(9, "train", "train2014", ["a cat", "a cat on a mat"]), img(42, "restval", "val2014", ["a dog"]),
              img(391895, "test", "val2014", ["a man on a moped", ""]), img(77, "val", "val2014", ["a bus"])]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"dataset": "coco", "images": images}), encoding="utf-8")


def test_mscoco_joins_three_sources_by_coco_id(tmp_path: Path) -> None:
    _karpathy_coco(tmp_path / "karpathy" / "dataset_coco.json")
    stair = tmp_path / "mscoco" / "stair" / "stair_captions_v1.2_val.json"
    stair.parent.mkdir(parents=True)
    stair.write_text(json.dumps({"images": [], "annotations": [
        {"id": 1, "image_id": 391895, "caption": "バイクに乗る男性"}, {"id": 2, "image_id": 42, "caption": "犬"}]}),
        encoding="utf-8")
    cn = tmp_path / "mscoco" / "coco-cn" / "coco-cn-version1805v1.1"
    cn.mkdir(parents=True)
    (cn / "coco-cn_train.txt").write_text("COCO_train2014_000000000009\n", encoding="utf-8")
    (cn / "coco-cn_val.txt").write_text("", encoding="utf-8")
    (cn / "coco-cn_test.txt").write_text("COCO_val2014_000000391895\nCOCO_val2014_000000000042\n", encoding="utf-8")
    (cn / "imageid.human-written-caption.txt").write_text(
        "COCO_train2014_000000000009#0\t一只猫\nCOCO_val2014_000000391895#0\t骑摩托车的人\n"
        "COCO_val2014_000000000042#0\t一只狗\n", encoding="utf-8")
    prepared = mscoco.prepare(tmp_path)
    by_split = {s: {r.image_id: r for r in recs} for s, recs in prepared.splits.items()}
    assert set(by_split["train"]) == {"9", "42"}  # restval folded into train
    assert by_split["train"]["9"].captions == {"en": ["a cat", "a cat on a mat"], "zh": ["一只猫"]}
    assert by_split["train"]["42"].captions == {"en": ["a dog"], "ja": ["犬"]}
    assert by_split["test"]["391895"].captions == {"en": ["a man on a moped"], "ja": ["バイクに乗る男性"],
                                                     "zh": ["骑摩托车的人"]}
    assert by_split["test"]["391895"].image == "mscoco/images/val2014/COCO_val2014_000000391895.jpg"
    # COCO-CN puts 42 in test while Karpathy has it in train: zh only there, and reported
    assert by_split["test"]["42"].captions == {"zh": ["一只狗"]}
    assert any("1 image(s) are in a different Karpathy split" in n for n in prepared.notes)
    karpathy = tmp_path / "karpathy" / "dataset_coco.json"
    karpathy.write_bytes(karpathy.read_bytes()[:-50])
    with pytest.raises(AnnotationError, match=rf"{re.escape(str(karpathy))}:1: malformed JSON.*truncated"):
        mscoco.prepare(tmp_path)
    _karpathy_coco(karpathy)
    (cn / "imageid.human-written-caption.txt").write_text("COCO_val2014_000000391895#0 no tab\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"imageid.human-written-caption.txt:1: expected"):
        mscoco.prepare(tmp_path)


def test_wit_groups_captions_by_image_url(tmp_path: Path) -> None:
    ann = tmp_path / "wit" / "annotations"
    ann.mkdir(parents=True)
    url_a = "https://upload.wikimedia.org/wikipedia/commons/6/6e/Map_of_Texas_highlighting_Concho_County.svg"
    url_b = "https://upload.wikimedia.org/wikipedia/commons/8/87/Ryan_Howard_at_bat.jpg"
    rows = [(url_a, "Location within the U.S. state of Texas", "en"), (url_a, "Location of Concho County", "en"),
            (url_b, "Howard at bat", "en"), (url_b, "", "en")]
    (ann / "test_en.jsonl").write_text("".join(json.dumps(
        {"image_url": u, "caption_reference_description": c, "language": lang, "wit_ix": "wit-test_1"}) + "\n"
        for u, c, lang in rows), encoding="utf-8")
    (ann / "test_ja.jsonl").write_text(json.dumps(
        {"image_url": url_b, "caption_reference_description": "打席のハワード", "language": "ja"}) + "\n",
        encoding="utf-8")
    prepared = wit.prepare(tmp_path)
    test = prepared.splits["test"]
    assert [r.image_id for r in test] == [hashlib.sha1(u.encode()).hexdigest()[:20] for u in (url_a, url_b)]
    assert test[0].captions == {"en": ["Location within the U.S. state of Texas", "Location of Concho County"]}
    assert test[1].captions == {"en": ["Howard at bat"], "ja": ["打席のハワード"]}
    assert test[1].image == f"wit/images/{test[1].image_id[:2]}/{test[1].image_id}.jpg"
    assert any("skipped 1 line(s) with an empty caption" in n for n in prepared.notes)
    assert wit.wikimedia_urls(url_a, 640) == [
        "https://upload.wikimedia.org/wikipedia/commons/thumb/6/6e/Map_of_Texas_highlighting_Concho_County.svg/"
        "640px-Map_of_Texas_highlighting_Concho_County.svg.png"]
    assert wit.wikimedia_urls(url_b, 640)[1] == url_b
    # Kaggle pixel rows: url <TAB> base64 <TAB> metadata url; a PNG comes out as a JPEG
    png = io.BytesIO()
    Image.new("RGBA", (5, 4), (10, 200, 30, 255)).save(png, format="PNG")
    pixels = tmp_path / "wit" / "kaggle" / "image_data_test" / "image_pixels" / "test_image_pixels_part-00000.csv.gz"
    pixels.parent.mkdir(parents=True)
    pixels.write_bytes(gzip.compress(f"{url_b}\t{base64.b64encode(png.getvalue()).decode()}\thttp://meta\n".encode()))
    targets = wit.image_targets(tmp_path, ["test"])
    missing = wit.extract_kaggle_pixels(wit.pixel_files(tmp_path / "wit" / "kaggle"), targets)
    assert list(missing) == [url_a]
    with Image.open(tmp_path / test[1].image) as img:
        assert img.format == "JPEG" and img.size == (5, 4)
    (ann / "test_ja.jsonl").write_text(json.dumps({"image_url": url_b, "caption_reference_description": "x",
                                                   "language": "ko"}) + "\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"test_ja.jsonl:1: language 'ko' in a file of language 'ja'"):
        wit.prepare(tmp_path)


# ------------------------------------------------------------------ downloader


class _Server:
    """A local HTTP server with Range support, a connection-dropping path and a Range-ignoring path."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        self.dropped: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if rng and not self.path.startswith("/norange"):
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                chunk = body[start:]
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                if self.path.startswith("/drop") and self.path not in server.dropped:
                    server.dropped.add(self.path)
                    self.wfile.write(chunk[: len(chunk) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(chunk)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def payload() -> bytes:
    return bytes((i * 7919 + i // 13) % 251 for i in range(300_000))


@pytest.fixture()
def server(payload: bytes):
    srv = _Server({"/data.bin": payload, "/drop.bin": payload, "/norange.bin": payload})
    yield srv
    srv.close()


def test_download_resumes_partial_file_with_range(tmp_path: Path, server: _Server, payload: bytes) -> None:
    dest = tmp_path / "sub" / "data.bin"
    dest.parent.mkdir()
    (tmp_path / "sub" / "data.bin.part").write_bytes(payload[:123_456])
    digest = hashlib.sha256(payload).hexdigest()
    assert download_file(f"{server.url}/data.bin", dest, sha256=digest, backoff=0) == dest
    assert dest.read_bytes() == payload
    assert server.requests == [("/data.bin", "bytes=123456-")]
    assert not (tmp_path / "sub" / "data.bin.part").exists()
    download_file(f"{server.url}/data.bin", dest, sha256=digest)  # already there: no request
    assert len(server.requests) == 1


def test_download_retries_a_dropped_connection_and_resumes(tmp_path: Path, server: _Server, payload: bytes) -> None:
    dest = tmp_path / "drop.bin"
    messages: list[str] = []
    download_file(f"{server.url}/drop.bin", dest, backoff=0, log=messages.append)
    assert dest.read_bytes() == payload
    assert [r[0] for r in server.requests] == ["/drop.bin", "/drop.bin"]
    assert server.requests[1][1] == f"bytes={len(payload) // 3}-"
    assert "retry 1/" in messages[0]


def test_download_server_ignoring_range_restarts_cleanly(tmp_path: Path, server: _Server, payload: bytes) -> None:
    dest = tmp_path / "norange.bin"
    (tmp_path / "norange.bin.part").write_bytes(b"stale bytes from elsewhere")
    download_file(f"{server.url}/norange.bin", dest, size=len(payload), backoff=0)
    assert dest.read_bytes() == payload


def test_download_checksum_mismatch_leaves_no_file(tmp_path: Path, server: _Server) -> None:
    dest = tmp_path / "data.bin"
    url = f"{server.url}/data.bin"
    with pytest.raises(DownloadError, match=rf"{re.escape(url)}: SHA-256 mismatch for {re.escape(str(dest))}"):
        download_file(url, dest, sha256="0" * 64, backoff=0)
    assert not dest.exists() and not (tmp_path / "data.bin.part").exists()


def test_download_404_fails_at_once_naming_url_and_file(tmp_path: Path, server: _Server) -> None:
    url = f"{server.url}/missing.jsonl"
    where = re.escape(str(tmp_path / "m.jsonl"))
    with pytest.raises(DownloadError, match=rf"{re.escape(url)}: HTTP 404 .*{where}") as info:
        download_file(url, tmp_path / "m.jsonl", backoff=0)
    assert info.value.status == 404 and len(server.requests) == 1
    with pytest.raises(DownloadError, match="giving up after 2 attempts"):
        download_file("http://127.0.0.1:9/nothing", tmp_path / "n.bin", retries=1, backoff=0, timeout=2)


def test_fetch_source_downloads_and_unpacks_atomically(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("dataset_coco.json", "{}")
        zf.writestr("nested/readme.txt", "hi")
    srv = _Server({"/caption_datasets.zip": buf.getvalue(), "/a.txt": b"a\n"})
    try:
        source = Source("toy", "toy source", "annotations", "http://example", (
            RemoteFile(f"{srv.url}/a.txt", "toy/a.txt"),
            RemoteFile(f"{srv.url}/caption_datasets.zip", "toy/k.zip", extract_to="toy/k"),
        ))
        fetch_source(source, tmp_path, log=lambda m: None, backoff=0)
        assert (tmp_path / "toy" / "a.txt").read_bytes() == b"a\n"
        assert (tmp_path / "toy" / "k" / "dataset_coco.json").read_text() == "{}"
        assert (tmp_path / "toy" / "k" / "nested" / "readme.txt").read_text() == "hi"
        n = len(srv.requests)
        fetch_source(source, tmp_path, log=lambda m: None)
        assert len(srv.requests) == n  # everything already there
    finally:
        srv.close()
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DownloadError, match="unsafe member path"):
        extract_archive(evil, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DownloadError, match=r"broken.zip: cannot unpack"):
        extract_archive(tmp_path / "broken.zip", tmp_path / "out2")


def test_registry_pins_and_dataset_groups() -> None:
    urls = [f.url for s in SOURCES.values() for f in s.files]
    iglue = [u for u in urls if "e-bug/iglue" in u]
    assert iglue and all("/43cbac91513388d40b2c6d93925f00ca9fc08a98/" in u for u in iglue)
    m30k = [u for u in urls if "multi30k/dataset" in u]
    assert len(m30k) == 3 + 12 and all("/a3d2e0d26b56f3846f66a952536ffed4e401d05a/" in u for u in m30k)
    # none published upstream: only files fetched from a pinned commit carry a (measured) checksum
    assert all("/43cbac9" in f.url or "/a3d2e0d" in f.url for s in SOURCES.values() for f in s.files if f.sha256)
    xf = [f.path for f in SOURCES["iglue-xflickrco"].files]
    assert {f"xflickrco/annotations/{lang}/test.jsonl" for lang in xflickrco.LANGUAGES} <= set(xf)
    assert "xflickrco/annotations/de/train_100.jsonl" in xf
    assert [s.name for s in sources_for(["xflickrco"], annotations_only=True)] == [
        "iglue-xflickrco", "iglue-flickr30k", "karpathy-splits"]
    assert all(SOURCES[n].manual for n in ("flickr30k-images", "coco-cn", "wit-kaggle-pixels"))
    with pytest.raises(ValueError, match="unknown dataset 'coco'"):
        sources_for(["coco"])


def test_manual_sources_instruct_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flickr = SOURCES["flickr30k-images"]
    status = check_manual(flickr, tmp_path)
    assert not status.ok and f"directory {tmp_path / 'flickr30k/images'} does not exist" in status.problems[0]
    message = manual_message(flickr, tmp_path)
    assert str(tmp_path / "flickr30k" / "images") in message and "1000092795.jpg" in message
    assert "31783" in message and "shannon.cs.illinois.edu" in message

    toy = Source("toy-images", "toy", "images", "http://example", manual=True, instructions="copy them",
                 check=ManualCheck("toy/images", "*.jpg", 3, ("a.jpg",)))
    folder = tmp_path / "toy" / "images"
    folder.mkdir(parents=True)
    (folder / "b.jpg").write_bytes(b"")
    status = check_manual(toy, tmp_path)
    assert not status.ok and status.found == 1
    assert status.problems == ["found 1 file(s) matching '*.jpg', expected at least 3", "missing a.jpg"]
    for name in ("a.jpg", "c.jpg"):
        (folder / name).write_bytes(b"")
    assert check_manual(toy, tmp_path).ok

    assert main(["download", "--source", "flickr30k-images", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "[manual] flickr30k-images" in err and f"fill directory: {tmp_path / 'flickr30k/images'}" in err


# ------------------------------------------------------------------ ccrk prepare


def _placeholder_images(root: Path, relpaths: set[str]) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (2, 2), (90, 90, 90)).save(buf, format="JPEG")
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buf.getvalue())


def test_prepare_cli_writes_manifests_and_checks_images(data_root: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "manifests" / "xflickrco"
    assert main(["prepare", "--dataset", "xflickrco", "--root", str(data_root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"test\s+2000\s+2000/2000\s+1999/1999\s+2000/2000\s+2000/2000", printed)
    test = read_manifest(out / "test.jsonl", image_root=data_root, check_images=False, languages=list(LANGS4))
    assert len(test) == 2000
    assert len(read_manifest(out / "few_shot" / "de" / "train_5.jsonl", check_images=False)) == 5
    info = json.loads((out / "prepare_info.json").read_text(encoding="utf-8"))
    assert info["splits"]["test"]["languages"]["de"] == {"images": 1999, "captions": 1999}
    assert len(info["inputs"]) == 8

    m_out = tmp_path / "manifests" / "multi30k"
    args = ["prepare", "--dataset", "multi30k", "--root", str(data_root), "--out", str(m_out), "--check-images"]
    assert main(args) == 2
    assert "flickr30k/images/1007129816.jpg" in capsys.readouterr().err
    assert not m_out.exists()  # nothing written when images are missing
    needed = {f"flickr30k/images/{n}" for s in ("val", "test_2016_flickr")
              for n in (data_root / "multi30k/task1/image_splits" / f"{s}.txt").read_text().split()}
    _placeholder_images(data_root, needed)
    assert main(args) == 0
    records = read_manifest(m_out / "test.jsonl", image_root=data_root, require_languages=["en", "de", "fr", "cs"])
    assert len(records) == 1000
    assert len(read_manifest(m_out / "val.jsonl", image_root=data_root, check_images=False)) == 1014

    xf_needed = {r.image for recs in xflickrco.prepare(data_root).splits.values() for r in recs}
    _placeholder_images(data_root, xf_needed)
    assert main(["prepare", "--dataset", "xflickrco", "--root", str(data_root), "--out", str(out),
                 "--check-images"]) == 0
    assert (data_root / "mscoco/images/val2014/COCO_val2014_000000391895.jpg").is_file()


def test_download_rule_checks_a_manual_source_and_stamps_it_once_filled(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """What the workflow's `download` job runs for data behind a form: fail naming the directory, then stamp."""
    root, stamp = tmp_path / "data", tmp_path / "data" / ".ccrk" / "coco-cn.json"
    args = ["download", "--source", "coco-cn", "--root", str(root), "--stamp", str(stamp)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"fill directory: {root / 'mscoco' / 'coco-cn'}" in err and "coco-cn_test.txt" in err
    assert not stamp.exists()
    folder = root / "mscoco" / "coco-cn" / "coco-cn-version1805v1.1"
    folder.mkdir(parents=True)
    for name in ("coco-cn_train.txt", "coco-cn_val.txt", "coco-cn_test.txt", "imageid.human-written-caption.txt"):
        (folder / name).write_text("x\n", encoding="utf-8")
    assert main(args) == 0
    record = json.loads(stamp.read_text(encoding="utf-8"))
    assert record["sources"] == [{"source": "coco-cn", "manual": True, "files": [],
                                  "checked_directory": "mscoco/coco-cn"}]
    # the corpus list is a manual source too
    assert main(["download", "--source", "cc3m-urls", "--root", str(root)]) == 1
    assert "Train_GCC-training.tsv" in capsys.readouterr().err


def test_registry_checksums_are_those_of_the_pinned_files(fixtures_dir: Path) -> None:
    """Every SHA-256 in the registry was measured: recompute it from the byte-for-byte fixture copies."""
    from ccrk.datasets.http import file_sha256
    from ccrk.datasets.sources import KNOWN_FILES

    local = {"xflickrco/annotations": fixtures_dir / "iglue" / "xFlickrCO" / "annotations",
             "flickr30k/annotations": fixtures_dir / "iglue" / "flickr30k" / "annotations",
             "multi30k/task1": fixtures_dir / "multi30k" / "task1"}
    pinned = {remote.path: remote for source in SOURCES.values() for remote in source.files if remote.sha256}
    assert set(pinned) == set(KNOWN_FILES) and len(pinned) == 19
    for path, remote in pinned.items():
        prefix = next(p for p in local if path.startswith(p + "/"))
        copy = local[prefix] / path[len(prefix) + 1:]
        assert (file_sha256(copy), copy.stat().st_size) == (remote.sha256, remote.size), path


def _mini_multi30k_2017(root: Path, names: list[str]) -> Path:
    """A miniature test_2017_mscoco laid out as the Multi30K task ships it (no Czech for 2017)."""
    task = root / "multi30k" / "task1"
    (task / "image_splits").mkdir(parents=True)
    (task / "raw").mkdir()
    (task / "image_splits" / "test_2017_mscoco.txt").write_text("\n".join(names) + "\n")
    words = {"en": "A dog on a couch", "de": "Ein Hund auf einem Sofa", "fr": "Un chien sur un canapé"}
    for lang, text in words.items():
        with gzip.open(task / "raw" / f"test_2017_mscoco.{lang}.gz", "wt", encoding="utf-8") as handle:
            handle.write("".join(f"{text} {i}\n" for i in range(len(names))))
    return task


def test_multi30k_test_2017_mscoco_names_carry_the_coco_caption_id(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    names = ["COCO_train2014_000000117071.jpg#367178", "COCO_val2014_000000391895.jpg#770337",
             "COCO_train2014_000000117071.jpg#367550"]
    _mini_multi30k_2017(tmp_path / "data", names)
    out = tmp_path / "out"
    args = ["prepare", "--dataset", "multi30k", "--root", str(tmp_path / "data"), "--splits", "test_2017_mscoco",
            "--languages", "en", "de", "fr", "--out", str(out)]
    assert main(args) == 0
    records = read_manifest(out / "test_2017_mscoco.jsonl", check_images=False)
    assert [(r.image_id, r.image) for r in records] == [
        ("COCO_train2014_000000117071", "mscoco/images/train2014/COCO_train2014_000000117071.jpg"),
        ("COCO_val2014_000000391895", "mscoco/images/val2014/COCO_val2014_000000391895.jpg"),
    ]
    assert records[0].captions["de"] == ["Ein Hund auf einem Sofa 0", "Ein Hund auf einem Sofa 2"]
    info = json.loads((out / "prepare_info.json").read_text())
    assert info["caption_ids"]["test_2017_mscoco"] == {"COCO_train2014_000000117071": [367178, 367550],
                                                       "COCO_val2014_000000391895": [770337]}

    bad = tmp_path / "bad"
    task = _mini_multi30k_2017(bad, [names[0], "COCO_val2014_000000391895.jpg#12x"])
    capsys.readouterr()
    assert main([*args[:4], str(bad), *args[5:-1], str(tmp_path / "out_bad")]) == 2
    err = capsys.readouterr().err
    assert f"{task / 'image_splits' / 'test_2017_mscoco.txt'}:2" in err and "'12x'" in err
    assert not (tmp_path / "out_bad").exists()


def test_wit_images_refuse_to_finish_with_nothing_to_decode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run before the annotations exist, the WIT image step used to report '0 of 0' and stamp an empty dataset."""
    root, stamp = tmp_path / "data", tmp_path / "data" / ".ccrk" / "wit-kaggle-pixels.json"
    pixels = root / "wit" / "kaggle" / "image_data_test" / "image_pixels"
    pixels.mkdir(parents=True)
    (pixels / "test_image_pixels_part-00000.csv").write_text("image_url\tb64_bytes\tmetadata_url\n")
    code = main(["download", "--source", "wit-kaggle-pixels", "--root", str(root), "--stamp", str(stamp)])
    err = capsys.readouterr().err
    assert code == 2 and f"no WIT test/val annotations under {root / 'wit'}" in err and "iglue-wit" in err
    assert not stamp.exists()


def test_wit_download_decodes_the_training_images_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A miniature train_en.jsonl: its images come out of the same Kaggle pixel files, so prepare --check-images
    (which checks every split, as the workflow runs it) passes."""
    root = tmp_path / "data"
    ann = root / "wit" / "annotations"
    (ann / "train").mkdir(parents=True)
    urls = {split: f"https://upload.wikimedia.org/wikipedia/commons/a/ab/{split}.jpg" for split in ("train", "val", "test")}
    for split, name in (("test", "test_en.jsonl"), ("val", "val_en.jsonl"), ("train", "train/train_en.jsonl")):
        (ann / name).write_text(json.dumps({"image_url": urls[split], "caption_reference_description": f"a {split}",
                                            "language": "en"}) + "\n", encoding="utf-8")
    png = io.BytesIO()
    Image.new("RGB", (4, 3), (10, 200, 30)).save(png, format="PNG")
    b64 = base64.b64encode(png.getvalue()).decode()
    pixels = root / "wit" / "kaggle" / "image_data_train" / "image_pixels" / "train_image_pixels_part-00000.csv.gz"
    pixels.parent.mkdir(parents=True)
    pixels.write_bytes(gzip.compress("".join(f"{u}\t{b64}\thttp://meta\n" for u in urls.values()).encode()))
    stamp = root / ".ccrk" / "wit-kaggle-pixels.json"
    assert main(["download", "--source", "wit-kaggle-pixels", "--root", str(root), "--stamp", str(stamp)]) == 0
    assert "WIT images (train/val/test): 3 of 3 present" in capsys.readouterr().out and stamp.is_file()
    out = tmp_path / "manifests"
    assert main(["prepare", "--dataset", "wit", "--root", str(root), "--out", str(out), "--check-images"]) == 0
    train = read_manifest(out / "train.jsonl", image_root=root)
    assert [r.captions for r in train] == [{"en": ["a train"]}]
