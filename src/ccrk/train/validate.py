"""Contrastive-only retrieval on the validation split, the score fine-tuning selects models by.

Only the dual encoder is used (no matching-head re-ranking): it is cheap
enough to run after every epoch and ranks models the same way the full
evaluation's first stage does. Ranks, recall and the mean over R@1/5/10 in
both directions come from ``ccrk.metrics`` so selection and evaluation agree
on conventions (0-based ranks, index tie-break).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ccrk.data.manifest import Record
from ccrk.data.tokens import TokenCache
from ccrk.data.transforms import build_eval_transform
from ccrk.metrics import mean_recall, ranks_i2t, ranks_t2i, recall_at_k
from ccrk.train.precision import Precision


class _Images(Dataset):
    def __init__(self, records: Sequence[Record], root: Path, image_size: int) -> None:
        self.records = list(records)
        self.root = root
        self.transform = build_eval_transform(image_size)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> torch.Tensor:
        with Image.open(self.root / self.records[index].image) as img:
            image = img.convert("RGB")
        return self.transform(image, {})[0]


def caption_index(records: Sequence[Record], lang: str) -> tuple[list[str], np.ndarray, list[list[int]]]:
    """All captions of ``lang`` flattened: texts, ``txt2img`` and ``img2txt`` (every image needs one)."""
    counts = [len(r.captions.get(lang, [])) for r in records]
    missing = [r.image_id for r, n in zip(records, counts) if n == 0]
    if missing:
        raise ValueError(f"validation image {missing[0]!r} has no caption in {lang!r} "
                         f"({len(missing)} image(s) lack one)")
    texts = [text for r in records for text in r.captions[lang]]
    txt2img = np.repeat(np.arange(len(records)), counts)
    ends = np.cumsum(counts)
    img2txt = [list(range(end - n, end)) for n, end in zip(counts, ends)]
    return texts, txt2img, img2txt


@torch.no_grad()
def encode_images(model: Any, records: Sequence[Record], image_root: str | os.PathLike[str], batch_size: int,
                  device: torch.device, precision: Precision, num_workers: int = 0) -> torch.Tensor:
    loader = DataLoader(_Images(records, Path(image_root), model.config.image_size), batch_size=batch_size,
                        num_workers=num_workers, shuffle=False)
    feats = []
    for images in loader:
        with precision.autocast():
            feats.append(model.encode_image(images.to(device, non_blocking=True))[1].float())
    return torch.cat(feats)


@torch.no_grad()
def encode_texts(model: Any, texts: Sequence[str], tokenizer: Any, batch_size: int, device: torch.device,
                 precision: Precision) -> torch.Tensor:
    feats = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[start:start + batch_size]), padding="longest", truncation=True,
                        max_length=model.config.max_length, return_tensors="pt")
        with precision.autocast():
            feats.append(model.encode_text(enc["input_ids"].to(device), enc["attention_mask"].to(device))[1].float())
    return torch.cat(feats)


def retrieval_metrics(image_feat: torch.Tensor, text_feat: torch.Tensor, txt2img: np.ndarray,
                      img2txt: list[list[int]], ks: Sequence[int]) -> dict[str, float]:
    """R@k both ways and their mean (the paper's Multi30K/COCO ``mR`` for ks 1, 5, 10)."""
    scores = (text_feat @ image_feat.T).cpu().numpy()  # [T, I]
    t2i = ranks_t2i(scores, txt2img)
    i2t = ranks_i2t(scores.T, img2txt)
    out = {f"t2i_r{k}": recall_at_k(t2i, k) for k in ks}
    out.update({f"i2t_r{k}": recall_at_k(i2t, k) for k in ks})
    out["mean_recall"] = mean_recall(t2i, i2t, ks)
    return out


def validate(model: Any, records: Sequence[Record], image_root: str | os.PathLike[str], languages: Sequence[str],
             tokenizer: Any, *, batch_size: int, device: torch.device, precision: Precision,
             ks: Sequence[int] = (1, 5, 10), num_workers: int = 0) -> dict[str, Any]:
    """Per-language retrieval metrics and ``score`` = their mean ``mean_recall`` (the selection criterion).

    The model is put in eval mode for the duration and its mode restored.
    """
    was_training = model.training
    model.eval()
    try:
        image_feat = encode_images(model, records, image_root, batch_size, device, precision, num_workers)
        per_lang = {}
        for lang in languages:
            texts, txt2img, img2txt = caption_index(records, lang)
            text_feat = encode_texts(model, texts, tokenizer, batch_size, device, precision)
            per_lang[lang] = retrieval_metrics(image_feat, text_feat, txt2img, img2txt, ks)
    finally:
        model.train(was_training)
    score = float(np.mean([m["mean_recall"] for m in per_lang.values()]))
    return {"languages": per_lang, "score": score}


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a matched pair scores above a mismatched one), ties counting 1/2 (the Mann-Whitney AUC)."""
    neg = np.sort(negative)
    below = np.searchsorted(neg, positive, side="left")
    at_or_below = np.searchsorted(neg, positive, side="right")
    return float((below + 0.5 * (at_or_below - below)).sum() / (len(positive) * len(negative)))


def pretraining_validation(model: Any, records: Sequence[Record], image_root: str | os.PathLike[str],
                           languages: Sequence[str], tokenizer: Any, *, batch_size: int, device: torch.device,
                           precision: Precision, seed: int = 0, num_workers: int = 0,
                           tokens: TokenCache | None = None) -> dict[str, Any]:
    """What a learning curve shows: contrastive R@1, MRV across languages, and how well ITM tells pairs apart.

    Each image's first caption in every language is one instance: ``r1`` is
    R@1 averaged over both directions and the languages, ``mrv`` the mean
    over images of the std of their text-to-image rank across the languages
    (the paper's MRV), ``itm_auc`` the AUC of the matching head on every
    (image, own caption) pair against the same caption with another image
    drawn at random (``seed``). The model's mode is restored afterwards.
    ``tokens``: a :class:`TokenCache` kept across calls, so a run that
    validates every epoch tokenizes its validation captions once.
    """
    from ccrk.metrics import mean_rank_variance

    tokens = tokens or TokenCache(tokenizer, model.config.max_length)
    was_training = model.training
    model.eval()
    try:
        loader = DataLoader(_Images(records, Path(image_root), model.config.image_size), batch_size=batch_size,
                            num_workers=num_workers, shuffle=False)
        image_tokens, feats = [], []
        with torch.no_grad():
            for images in loader:
                with precision.autocast():
                    tok, feat = model.encode_image(images.to(device, non_blocking=True))
                image_tokens.append(tok.float())
                feats.append(feat.float())
        image_tok, image_feat = torch.cat(image_tokens), torch.cat(feats)
        n = len(records)
        own = np.arange(n)
        rng = np.random.default_rng(seed)
        other = (own + rng.integers(1, n, size=n)) % n if n > 1 else own
        per_lang, t2i_ranks, positive, negative = {}, [], [], []
        for lang in languages:
            texts, txt2img, img2txt = caption_index(records, lang)
            first = np.array([rows[0] for rows in img2txt])
            text_feat, pos, neg = _encode_and_match(model, texts, first, image_tok, own, other, tokens, batch_size,
                                                    device, precision)
            scores = (text_feat @ image_feat.T).cpu().numpy()
            t2i, i2t = ranks_t2i(scores, txt2img), ranks_i2t(scores.T, img2txt)
            per_lang[lang] = {"t2i_r1": recall_at_k(t2i, 1), "i2t_r1": recall_at_k(i2t, 1)}
            t2i_ranks.append(t2i[first])
            positive.append(pos)
            negative.append(neg)
    finally:
        model.train(was_training)
    r1 = float(np.mean([(m["t2i_r1"] + m["i2t_r1"]) / 2 for m in per_lang.values()]))
    mrv = mean_rank_variance(np.stack(t2i_ranks)) if len(languages) > 1 else None
    auc = _auc(np.concatenate(positive), np.concatenate(negative)) if n > 1 else None
    return {"r1": r1, "mrv": mrv, "itm_auc": auc, "languages": per_lang}


@torch.no_grad()
def _encode_and_match(model: Any, texts: Sequence[str], first: np.ndarray, image_tokens: torch.Tensor,
                      own: np.ndarray, other: np.ndarray, tokens: TokenCache, batch_size: int, device: torch.device,
                      precision: Precision) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Features of every caption, and the matching logit of each image's first caption with image ``own[i]``
    and with ``other[i]``: one pass of the text encoder serves the ranking and both matching scores."""
    image_of_row = np.full(len(texts), -1, dtype=np.int64)
    image_of_row[first] = np.arange(len(first))
    feats, pos, neg = [], np.empty(len(first)), np.empty(len(first))
    for start in range(0, len(texts), batch_size):
        ids, mask = tokens(list(texts[start:start + batch_size]))
        ids, mask = ids.to(device), mask.to(device)
        with precision.autocast():
            tok, feat = model.encode_text(ids, mask)
            feats.append(feat.float())
            images = image_of_row[start:start + batch_size]
            rows = np.flatnonzero(images >= 0)
            if rows.size:
                sel, images = torch.from_numpy(rows).to(device), images[rows]
                for target, out in ((own, pos), (other, neg)):
                    index = torch.from_numpy(np.ascontiguousarray(target[images])).to(device)
                    out[images] = model.itm_logits(tok[sel], mask[sel], image_tokens, index)[:, 1].float().cpu().numpy()
    return torch.cat(feats), pos, neg
