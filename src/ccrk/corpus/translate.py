"""Translate the pre-training captions into K languages with M2M100 (what the paper's corpus was built with).

The paper's K-language captions are machine translations of English
Conceptual Captions made with M2M100 (``facebook/m2m100_1.2B``, batch 16 on
an A100). This reproduces that step shard by shard: for each shard, the
English captions are read (images are not decoded), translated in batches
sorted by length (so padding is small), and written as one sidecar line a
sample, ``{"key", "captions": {"en": [...], "de": [...], ...}}``, to
``<captions dir>/<shard stem>.jsonl`` - atomically, so a shard's file is
either complete or absent and a rerun after pre-emption redoes only the
missing shards.

A translation that decodes to an empty string (M2M100 occasionally emits
end-of-sentence straight after the language token) is retried with beam
search and at least one new token; if it is still empty the English text is
kept and the sample counted under ``fallbacks`` in the report, so the
pre-training data never holds an empty caption and the rate is visible.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ccrk.atomic import atomic_open, atomic_write_text
from ccrk.config import check_keys
from ccrk.data.languages import is_iso639_1
from ccrk.data.shards import read_shard_corpus, shard_paths

#: The paper's language sets: CCR^6 and CCR^10 (English is the source).
LANGUAGE_SETS = {6: ("en", "de", "fr", "cs", "zh", "ja"), 10: ("en", "de", "fr", "cs", "zh", "ja", "id", "es", "ru", "tr")}


@dataclass
class TranslateConfig:
    """``translate`` config section."""

    model: str = "facebook/m2m100_1.2B"
    languages: list[str] = field(default_factory=lambda: list(LANGUAGE_SETS[6]))
    source_language: str = "en"
    batch_size: int = 16
    max_length: int = 64
    num_beams: int | None = None  # None: the model's generation config (5 for M2M100)
    device: str = "auto"
    precision: str = "auto"  # auto: fp16 on CUDA, fp32 on CPU

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranslateConfig:
        cfg = cls(**check_keys(data, cls.__dataclass_fields__, "translate"))
        bad = [code for code in cfg.languages if not is_iso639_1(code)]
        if bad or not is_iso639_1(cfg.source_language):
            raise ValueError(f"translate.languages: not ISO 639-1 code(s): {bad or [cfg.source_language]}")
        if cfg.source_language not in cfg.languages:
            raise ValueError(f"translate.languages must include the source language {cfg.source_language!r}")
        for key in ("batch_size", "max_length"):
            if getattr(cfg, key) < 1:
                raise ValueError(f"translate.{key} must be >= 1, got {getattr(cfg, key)}")
        if cfg.precision not in ("auto", "fp32", "fp16", "bf16"):
            raise ValueError(f"translate.precision must be auto|fp32|fp16|bf16, got {cfg.precision!r}")
        return cfg


class Translator:
    """A seq2seq model and tokenizer that translate batches from the source language into a target.

    Works with M2M100 (``src_lang`` attribute, ``get_lang_id``) and with any
    tokenizer that has ``__xx__`` language tokens and adds the source token
    itself (how the tests build a tiny one without downloads).
    """

    def __init__(self, model_name: str, source_language: str = "en", device: str = "auto",
                 precision: str = "auto") -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available()
                                   else ("cpu" if device == "auto" else device))
        dtype = torch.float32
        if precision == "fp16" or (precision == "auto" and self.device.type == "cuda"):
            dtype = torch.float16
        elif precision == "bf16":
            dtype = torch.bfloat16
        self.tokenizer = AutoTokenizer.from_pretrained(model_name)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(model_name, dtype=dtype).to(self.device).eval()
        if hasattr(self.tokenizer, "src_lang"):
            self.tokenizer.src_lang = source_language

    def lang_id(self, lang: str) -> int:
        if hasattr(self.tokenizer, "get_lang_id"):
            return int(self.tokenizer.get_lang_id(lang))
        token = f"__{lang}__"
        index = self.tokenizer.convert_tokens_to_ids(token)
        if index is None or index == self.tokenizer.unk_token_id:
            raise ValueError(f"the translation tokenizer has no language token {token!r}")
        return int(index)

    @torch.inference_mode()
    def translate(self, texts: Sequence[str], target: str, *, max_length: int, num_beams: int | None = None,
                  min_new_tokens: int | None = None) -> list[str]:
        batch = self.tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True, max_length=max_length)
        # Generic fast tokenizers may add token_type_ids, which seq2seq generate() refuses.
        batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        kwargs: dict[str, Any] = {"forced_bos_token_id": self.lang_id(target), "max_new_tokens": max_length}
        if num_beams is not None:
            kwargs["num_beams"] = num_beams
        if min_new_tokens is not None:
            kwargs["min_new_tokens"] = min_new_tokens
        out = self.model.generate(**batch, **kwargs)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


def translate_texts(translator: Translator, texts: Sequence[str], target: str, cfg: TranslateConfig,
                    counts: dict[str, int]) -> list[str]:
    """Translate in length-sorted batches, retry empties once with beams, fall back to the source."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[str] = [""] * len(texts)
    for start in range(0, len(order), cfg.batch_size):
        chunk = order[start:start + cfg.batch_size]
        for i, text in zip(chunk, translator.translate([texts[i] for i in chunk], target,
                                                       max_length=cfg.max_length, num_beams=cfg.num_beams)):
            out[i] = text
    empty = [i for i, text in enumerate(out) if not text]
    if empty:
        retried = translator.translate([texts[i] for i in empty], target, max_length=cfg.max_length,
                                       num_beams=max(4, cfg.num_beams or 1), min_new_tokens=1)
        for i, text in zip(empty, retried):
            if text:
                out[i] = text
                counts["retried"] += 1
            else:
                out[i] = texts[i]
                counts["fallbacks"] += 1
    return out


def translate_shards(shards: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                     cfg: TranslateConfig, *, translator: Translator | None = None,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write ``out/<shard stem>.jsonl`` for every shard that lacks one; returns the report (also written)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = shard_paths(shards)
    targets = [lang for lang in cfg.languages if lang != cfg.source_language]
    todo = [p for p in paths if not (out / f"{p.stem}.jsonl").is_file()]
    log(f"{len(paths)} shard(s), {len(paths) - len(todo)} already translated; targets: {', '.join(targets)}")
    counts = {"samples": 0, "captions": 0, "retried": 0, "fallbacks": 0}
    start = time.perf_counter()
    if todo and translator is None:
        translator = Translator(cfg.model, cfg.source_language, cfg.device, cfg.precision)
    for shard in todo:
        corpus = read_shard_corpus([shard], require_languages=[cfg.source_language])
        # Every caption of the source language, flattened, so one batch may span samples.
        texts = [t for rec in corpus.records for t in rec.captions[cfg.source_language]]
        translated = {lang: translate_texts(translator, texts, lang, cfg, counts) for lang in targets}
        with atomic_open(out / f"{shard.stem}.jsonl", "w") as handle:
            offset = 0
            for rec in corpus.records:
                n = len(rec.captions[cfg.source_language])
                captions = {cfg.source_language: rec.captions[cfg.source_language]}
                for lang in targets:
                    captions[lang] = translated[lang][offset:offset + n]
                offset += n
                handle.write(json.dumps({"key": rec.image_id, "captions": captions}, ensure_ascii=False) + "\n")
        counts["samples"] += len(corpus.records)
        counts["captions"] += len(texts) * len(targets)
        log(f"  {shard.name}: {len(corpus.records)} samples, {len(texts) * len(targets)} translations")
    seconds = time.perf_counter() - start
    report = {"model": cfg.model, "languages": cfg.languages, "shards": len(paths), "translated_shards": len(todo),
              **counts, "seconds": round(seconds, 3),
              "captions_per_second": round(counts["captions"] / seconds, 2) if seconds > 0 and counts["captions"] else None}
    atomic_write_text(out / "translate_report.json", json.dumps(report, indent=2) + "\n")
    return report
