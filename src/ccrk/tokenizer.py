"""A subword tokenizer for the embedded model, saved as a Hugging Face directory.

At paper scale the text side is XLM-R, loaded with
``AutoTokenizer.from_pretrained("xlm-roberta-large")``. The embedded default
trains a small BPE model on its own pre-training captions instead, with
XLM-R's special tokens and ids, and saves it so the very same
``AutoTokenizer.from_pretrained(directory)`` call loads it.

Two choices matter on a small 10-language corpus:

* Chinese and Japanese are split into characters before BPE (as multilingual
  BERT does). Without spaces, the whole sentence is one pre-token and BPE (or
  Unigram) spends the vocabulary on multi-word CJK phrases such as 红色的大
  ("red's big"), which fuses attributes the model must tell apart.
* Byte fallback (the 256 ``<0xNN>`` pieces): no input ever maps to ``<unk>``;
  an emoji or a character never seen in training is spelled out in UTF-8 bytes.

A Unigram model was tried first: on this repetitive corpus its trainer split
even the most frequent English words into letters ("gr e e n"), so English
captions ran past 40 tokens; BPE keeps them at whole words.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ccrk.atomic import atomic_directory

#: XLM-R's special tokens, in XLM-R's id order (<s>=0, <pad>=1, </s>=2, <unk>=3); <mask> comes last.
SPECIAL_TOKENS: tuple[str, ...] = ("<s>", "<pad>", "</s>", "<unk>")
MASK_TOKEN = "<mask>"

#: Kana, CJK ideographs (incl. extension A and compatibility), full-width forms and CJK punctuation.
CJK_CHARACTER = r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"


def manifest_texts(paths: Iterable[str | os.PathLike[str]], languages: Iterable[str] | None = None) -> Iterator[str]:
    """Every caption of the given manifests (optionally only some languages)."""
    from ccrk.data.manifest import read_manifest

    wanted = list(languages) if languages is not None else None
    for path in paths:
        for record in read_manifest(path, languages=wanted, check_images=False):
            for texts in record.captions.values():
                yield from texts


def train_tokenizer(texts: Iterable[str], out_dir: str | os.PathLike[str], vocab_size: int = 2000, max_length: int = 64):
    """Train, save to ``out_dir`` (atomically) and return the reloaded tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [t for t in texts]
    if not corpus:
        raise ValueError("cannot train a tokenizer on an empty corpus: no captions were found")
    if vocab_size < 300:
        raise ValueError(f"vocab_size {vocab_size} is too small: the 256 byte-fallback pieces alone need 256 entries")

    pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(),
            pre_tokenizers.Split(Regex(CJK_CHARACTER), behavior="isolated"),
            pre_tokenizers.Punctuation(behavior="isolated"),
        ]
    )
    base = Tokenizer(models.BPE(unk_token="<unk>"))
    # NFC, not NFKC: NFKC would fold CJK full-width punctuation ("，" -> ","),
    # so Chinese and Japanese captions would not decode to what was encoded.
    base.normalizer = normalizers.NFC()
    base.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 256 - 1, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    base.train_from_iterator(corpus, trainer)

    # Rebuild the model with byte fallback: the learnt pieces and merges, then
    # the 256 bytes, used only for characters no learnt piece covers.
    learnt = json.loads(base.to_str())["model"]
    vocab = dict(learnt["vocab"])
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learnt["merges"]]
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True))
    tok.normalizer = base.normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens([*SPECIAL_TOKENS, MASK_TOKEN])
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token=MASK_TOKEN,
        model_max_length=max_length,
    )
    with atomic_directory(out_dir) as tmp:
        wrapped.save_pretrained(tmp)
    return load_tokenizer(out_dir)


def save_pretrained_tokenizer(name_or_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]):
    """Copy a hub (or local) tokenizer into ``out_dir`` (atomically) and return it reloaded from there.

    At paper scale the text encoder is XLM-R-large, so its own tokenizer is
    used; saving it once into the workflow's tokenizer directory means GPU
    nodes without network access (or a hub outage) never need the hub.
    """
    tok = load_tokenizer(name_or_dir)
    with atomic_directory(out_dir) as tmp:
        tok.save_pretrained(tmp)
    return load_tokenizer(out_dir)


def load_tokenizer(name_or_dir: str | os.PathLike[str]):
    """``AutoTokenizer.from_pretrained`` - the call that also loads ``xlm-roberta-large``."""
    from transformers import AutoTokenizer

    path = Path(name_or_dir)
    local = bool(path.suffix or os.sep in str(name_or_dir) or path.exists())
    if local:
        if not path.is_dir():
            raise FileNotFoundError(f"tokenizer directory {path} does not exist (run `ccrk tokenizer` first)")
        if not any(path.iterdir()):
            raise ValueError(f"tokenizer directory {path} is empty (run `ccrk tokenizer` to write one)")
    try:
        return AutoTokenizer.from_pretrained(str(name_or_dir))
    except Exception as err:  # the tokenizers library raises its own exception types for a corrupt file
        if not local:
            raise
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise ValueError(f"tokenizer directory {path} cannot be loaded (a missing, truncated or corrupt "
                         f"tokenizer.json?): {reason}") from err


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A short hash of what decides the ids a caption becomes: the vocabulary (token -> id) and the special ids.

    Saved with every model (``config.json``) and in every run's resolved config (so in every checkpoint's
    resume check): a tokenizer with another vocabulary gives the model ids its embedding rows were not trained
    for, and the results are silently wrong, not an error, unless the pairing is checked.
    """
    vocab = sorted(tokenizer.get_vocab().items())
    specials = {name: getattr(tokenizer, f"{name}_token_id", None) for name in ("bos", "eos", "pad", "unk", "mask")}
    blob = json.dumps({"vocab": vocab, "special_ids": specials}, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def check_model_tokenizer(tokenizer: Any, name: str, model: Any, saved_fingerprint: str | None,
                          model_name: str) -> None:
    """Refuse a tokenizer other than the one the model was trained with, naming both.

    Models saved with a fingerprint are compared exactly; older ones only by what the model itself shows
    (the vocabulary must fit its embedding, the pad id must be its pad id).
    """
    if saved_fingerprint is not None:
        got = tokenizer_fingerprint(tokenizer)
        if got != saved_fingerprint:
            raise ValueError(f"tokenizer {name} (fingerprint {got}) is not the tokenizer model {model_name} was "
                             f"trained with (fingerprint {saved_fingerprint})")
    if len(tokenizer) > model.vocab_size:
        raise ValueError(f"tokenizer {name} has {len(tokenizer)} tokens but model {model_name} embeds only "
                         f"{model.vocab_size}: not the tokenizer the model was built with")
    pad = getattr(model.text.config, "pad_token_id", None)
    if pad is not None and tokenizer.pad_token_id != pad:
        raise ValueError(f"tokenizer {name} pads with id {tokenizer.pad_token_id} but model {model_name}'s pad id "
                         f"is {pad}: not the tokenizer the model was built with")
