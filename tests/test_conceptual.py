"""ccrk corpus: the Conceptual Captions TSV checks and the img2dataset call (a stand-in img2dataset on PATH)."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ccrk.corpus.conceptual import CorpusError, headed_tsv

SRC = Path(__file__).resolve().parents[1] / "src"
ROWS = "a dog on a beach\thttp://img.example/1.jpg\nsunset over the sea\thttps://img.example/2.jpg\n"

# Writes one webdataset shard from the headed TSV it is given and records its own arguments,
# as img2dataset would (the real one needs the network).
FAKE = r'''#!{python}
import io, json, sys, tarfile
args = sys.argv[1:]
opts = dict(zip(args[::2], args[1::2]))
json.dump(args, open(opts["--output_folder"] + "/_args.json", "w"))
rows = open(opts["--url_list"], encoding="utf-8").read().splitlines()
assert rows[0] == "caption\turl", rows[0]
with tarfile.open(opts["--output_folder"] + "/00000.tar", "w") as tar:
    for i, row in enumerate(rows[1:]):
        caption = row.split("\t")[0].encode()
        for name, data in [("%09d.jpg" % i, b"\xff\xd8jpeg"), ("%09d.txt" % i, caption)]:
            info = tarfile.TarInfo(name); info.size = len(data); tar.addfile(info, io.BytesIO(data))
'''


def test_headed_tsv_adds_the_header_and_refuses_bad_rows(tmp_path):
    src = tmp_path / "Train_GCC-training.tsv"
    src.write_text(ROWS, encoding="utf-8")
    assert headed_tsv(src, tmp_path / "out.tsv") == 2
    assert (tmp_path / "out.tsv").read_text(encoding="utf-8").splitlines()[0] == "caption\turl"
    assert headed_tsv(src, tmp_path / "one.tsv", limit=1) == 1
    src.write_text(ROWS + "no url here\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"Train_GCC-training.tsv:3: expected 'caption<TAB>url'"):
        headed_tsv(src, tmp_path / "bad.tsv")
    assert not (tmp_path / "bad.tsv").exists()
    src.write_text("caption\tftp://x/y.jpg\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="not a URL"):
        headed_tsv(src, tmp_path / "bad.tsv")
    with pytest.raises(CorpusError, match="ConceptualCaptions/download"):
        headed_tsv(tmp_path / "missing.tsv", tmp_path / "x.tsv")


def test_ccrk_corpus_runs_img2dataset_incrementally_into_webdataset_shards(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "img2dataset"
    fake.write_text(FAKE.replace("{python}", sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    tsv = tmp_path / "Train_GCC-training.tsv"
    tsv.write_text(ROWS, encoding="utf-8")
    out = tmp_path / "shards"
    env = {**os.environ, "PYTHONPATH": str(SRC), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "ccrk.cli", "corpus", "--tsv", str(tsv), "--out", str(out),
                           "--image-size", "256", "--processes", "2", "--threads", "4"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    args = json.loads((out / "_args.json").read_text())
    opts = dict(zip(args[::2], args[1::2]))
    assert opts["--output_format"] == "webdataset" and opts["--incremental_mode"] == "incremental"
    assert opts["--image_size"] == "256" and opts["--caption_col"] == "caption" and opts["--enable_wandb"] == "False"
    assert json.loads((out / "fetch_done.json").read_text())["shards"] == 1

    from ccrk.data.shards import read_shard_corpus
    assert [r.captions for r in read_shard_corpus(out).records] == [{"en": ["a dog on a beach"]},
                                                                     {"en": ["sunset over the sea"]}]

    env["PATH"] = os.defpath  # no img2dataset
    proc = subprocess.run([sys.executable, "-m", "ccrk.cli", "corpus", "--tsv", str(tsv), "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "pip install img2dataset" in proc.stderr
