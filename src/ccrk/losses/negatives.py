"""Positive-language choice and hard-negative sampling for image-text matching (model-independent).

The matching head is trained on triples of pairs per image, so per step the
model needs, for each image i of a batch with K captions each:

1. a *positive language* ``pos_lang[i]`` in ``[0, K)`` - its caption
   ``i*K + pos_lang[i]`` is the positive text (also the text used for MLM);
2. a *negative text* - a caption of another image, sampled in proportion to
   ``softmax(sim_i2t[i])``, i.e. hard captions preferred;
3. a *negative image* for the positive caption, sampled in proportion to
   ``softmax(sim_t2i[positive caption])`` over the other images.

Everything here only draws indices; gathering embeddings is the model's job.
Each kind of draw is one vectorised call on a whole ``[rows, N]`` weight matrix
(never a Python loop over rows with ``.item()``), so sampling costs no host
sync. The call is :func:`sample_rows`, an inverse-CDF sampler, rather than
``torch.multinomial``: on the CPU the latter spends ~5 ms per [128, 1280]
matrix in its exponential random numbers (profiled with torch 2.14), more
than the whole contrastive forward+backward, while the inverse CDF needs one
uniform number per row.

Conventions: ``sim_i2t`` is ``[B, B*K]`` image-to-text *logits* (cosine / temp,
as the contrastive loss uses them) with image i's captions in columns
``i*K .. i*K+K-1``; ``sim_t2i`` is ``[B*K, B]`` and defaults to ``sim_i2t.T``.

Fidelity to the public code of the paper: softmax weights get a floor of
``1e-5`` before the positives are dropped - it keeps every negative drawable
(no all-zero row when the softmax underflows). The ``hard`` positive-language
rule also uses those floored softmax weights ``w`` and the *batch-global*
maximum: ``p_ij ∝ max(w) + 1e-5 - w[i, i*K+j]``, so the language the image is
least similar to is the most likely, every language keeps a chance, and equal
similarities give a uniform choice.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "POSITIVE_LANGUAGE_RULES",
    "sample_rows",
    "HardNegatives",
    "choose_positive_language",
    "positive_text_index",
    "sample_hard_negatives",
    "itm_labels",
    "itm_loss",
]

POSITIVE_LANGUAGE_RULES = ("hard", "random", "english")
_FLOOR = 1e-5  # the public code's additive floor on softmax weights


class HardNegatives(NamedTuple):
    """Sampled negatives, one per image; ``text`` indexes the B*K texts, ``image`` the B images."""

    text: Tensor  # LongTensor [B]: negative caption of image i (a caption of some other image)
    image: Tensor  # LongTensor [B]: negative image for image i's positive caption (never image i)


def sample_rows(weights: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One index per row of ``weights`` ``[R, N]``, drawn with probability ∝ the row's weights.

    Weights must be non-negative with a positive sum per row (not checked: that
    would cost a host sync). Inverse CDF: one uniform number per row, kept
    strictly below the row total, located in the running sum. A zero-weight
    entry is never drawn where the running sum is sequential (the CPU); a
    parallel scan (CUDA) may round it open by an ulp, which is why the
    hard-negative sampler removes the positives from the candidates instead of
    relying on zero weights.
    """
    if weights.dim() != 2 or weights.shape[1] == 0:
        raise ValueError(f"sample_rows: weights must be [rows, N>0], got shape {tuple(weights.shape)}")
    if weights.dtype in (torch.float16, torch.bfloat16):
        weights = weights.float()  # running sums need more than 8-11 mantissa bits
    cdf = weights.cumsum(1)
    total = cdf[:, -1:]
    u = torch.rand(total.shape, generator=generator, dtype=cdf.dtype, device=cdf.device) * total
    u = torch.minimum(u, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=weights.shape[1] - 1)


def _drop_own(x: Tensor) -> Tensor:
    """``[B, B, ...] -> [B, B-1, ...]``: row i without its entry i (the positive), order kept."""
    b = x.shape[0]
    return x.flatten(0, 1)[1:].unflatten(0, (b - 1, b + 1))[:, :-1].reshape(b, b - 1, *x.shape[2:])


def _skip_own(other: Tensor) -> Tensor:
    """Map an index into the B-1 *other* images of row i back to an image index in ``[0, B)``."""
    rows = torch.arange(other.shape[0], device=other.device)
    return other + (other >= rows).long()


def _check_sim(sim_i2t: Tensor, k: int, where: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{where}: k must be a positive int, got {k!r}")
    if sim_i2t.dim() != 2 or sim_i2t.shape[0] == 0 or sim_i2t.shape[1] != sim_i2t.shape[0] * k:
        raise ValueError(f"{where}: sim_i2t must be [B, B*K] with K={k}, got shape {tuple(sim_i2t.shape)}")
    return sim_i2t.shape[0]


def _floored_softmax(logits: Tensor) -> Tensor:
    return F.softmax(logits.detach().float(), dim=-1) + _FLOOR


def _own_caption_weights(weights: Tensor, k: int) -> Tensor:
    """View ``[B, K]`` of ``weights[i, i*K + j]`` (image i against its own captions)."""
    b = weights.shape[0]
    return weights.view(b, b, k).diagonal(dim1=0, dim2=1).T


def positive_text_index(pos_lang: Tensor, k: int) -> Tensor:
    """Row of image i's positive caption among the B*K texts: ``i*K + pos_lang[i]``."""
    return torch.arange(pos_lang.shape[0], device=pos_lang.device) * k + pos_lang


def choose_positive_language(sim_i2t: Tensor, k: int, rule: str = "hard",
                             generator: torch.Generator | None = None) -> Tensor:
    """Language index in ``[0, K)`` of each image's positive caption -> LongTensor ``[B]``.

    ``hard``: the public code's rule (module docstring) - prefer the caption the
    image matches least, so the matching head trains on the difficult languages;
    ``random``: uniform; ``english``: always 0 (English is slot 0).
    """
    where = "choose_positive_language"
    if rule not in POSITIVE_LANGUAGE_RULES:
        raise ValueError(f"{where}: unknown rule {rule!r}; expected one of {POSITIVE_LANGUAGE_RULES}")
    b = _check_sim(sim_i2t, k, where)
    device = sim_i2t.device
    if rule == "english":
        return torch.zeros(b, dtype=torch.long, device=device)
    if rule == "random":
        return torch.randint(k, (b,), generator=generator, device=device)
    with torch.no_grad():
        weights = _floored_softmax(sim_i2t)
        own = _own_caption_weights(weights, k)
        probs = weights.max() + _FLOOR - own
        return sample_rows(probs, generator)


def sample_hard_negatives(sim_i2t: Tensor, k: int, pos_lang: Tensor, *, sim_t2i: Tensor | None = None,
                          generator: torch.Generator | None = None) -> HardNegatives:
    """Draw one negative caption per image and one negative image per positive caption.

    The negative caption of image i is any caption (any language) of another
    image; the negative image of caption ``i*K + pos_lang[i]`` is any image but
    i. Both are drawn with probability proportional to the floored softmax of
    the similarities (normalised over all B*K texts, resp. all B images), the
    positives being removed from the candidates, so they can never be drawn.
    ``sim_t2i`` (keyword) defaults to ``sim_i2t.T``. Needs B >= 2.
    """
    where = "sample_hard_negatives"
    b = _check_sim(sim_i2t, k, where)
    if b < 2:
        raise ValueError(f"{where}: a batch of {b} image has no other image to draw negatives from; need B >= 2")
    if pos_lang.shape != (b,) or pos_lang.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"{where}: pos_lang must be an integer tensor of shape ({b},), got "
                         f"{pos_lang.dtype} {tuple(pos_lang.shape)}")
    if int(pos_lang.min()) < 0 or int(pos_lang.max()) >= k:
        raise ValueError(f"{where}: pos_lang values must lie in [0, {k}), got range "
                         f"[{int(pos_lang.min())}, {int(pos_lang.max())}]")
    if sim_t2i is not None and sim_t2i.shape != (b * k, b):
        raise ValueError(f"{where}: sim_t2i must be [B*K, B] = [{b * k}, {b}], got {tuple(sim_t2i.shape)}")
    with torch.no_grad():
        pos_text = positive_text_index(pos_lang.long(), k)
        # Candidates exclude the positives outright (image i's K captions; the caption's own image),
        # so every remaining weight is >= the floor and no rounding can ever yield a positive.
        weights_text = _drop_own(_floored_softmax(sim_i2t).view(b, b, k)).reshape(b, (b - 1) * k)
        t2i_rows = (sim_i2t.index_select(1, pos_text).T if sim_t2i is None
                    else sim_t2i.index_select(0, pos_text))  # [B captions, B images]
        weights_image = _drop_own(_floored_softmax(t2i_rows))
        drawn = sample_rows(weights_text, generator)
        neg_text = _skip_own(drawn // k) * k + drawn % k
        neg_image = _skip_own(sample_rows(weights_image, generator))
    return HardNegatives(text=neg_text, image=neg_image)


def itm_labels(b: int, device: torch.device | str | None = None) -> Tensor:
    """Matching labels for the 3B pairs: ``[1]*B + [0]*2B`` (see :func:`itm_loss` for the pair order)."""
    labels = torch.zeros(3 * b, dtype=torch.long, device=device)
    labels[:b] = 1
    return labels


def itm_loss(itm_logits: Tensor, b: int) -> Tensor:
    """Cross-entropy of the matching head over 3B pairs; class 1 = "matches".

    Pair order the model must use for the rows of ``itm_logits`` ``[3B, 2]``:
    rows ``0..B-1`` the positives (image i, caption ``i*K + pos_lang[i]``),
    rows ``B..2B-1`` (image i, negative caption ``HardNegatives.text[i]``),
    rows ``2B..3B-1`` (negative image ``HardNegatives.image[i]``, image i's
    positive caption). Both negative blocks are labelled 0, so swapping them
    (as the public code does) leaves the loss unchanged.
    """
    if isinstance(b, bool) or not isinstance(b, int) or b < 1:
        raise ValueError(f"itm_loss: b must be a positive int, got {b!r}")
    if itm_logits.shape != (3 * b, 2):
        raise ValueError(f"itm_loss: itm_logits must be [3B, 2] = [{3 * b}, 2], got {tuple(itm_logits.shape)}")
    return F.cross_entropy(itm_logits, itm_labels(b, itm_logits.device))
