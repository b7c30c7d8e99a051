"""The total training objective: contrastive + image-text matching + masked LM, one forward per step.

:class:`Objective` owns the model so that a ``DistributedDataParallel`` wrapper
around it sees a single forward that makes every model call of a step (both
towers, the matching pairs through the fusion layers, the masked captions
through the text tower and the fusion layers). Wrapping the bare model instead
would split a step into several DDP forwards, which DDP's gradient hooks do not
support.

Which contrastive loss runs is the experiment's variable (``one_to_k``,
``cross_lingual``, ``cross_modal``; docs/design.md, "Objectives"); matching and MLM
are shared by the three and, as in the paper's public code, stay local to a
rank: only the contrastive loss gathers features across ranks (the loss
functions do it themselves).

Reproducibility: every random choice of a step - the positive language, the
hard negatives, the masked tokens, and the dropout masks of the model - comes
from the ``generator`` passed to :meth:`Objective.forward`, so a step is a
function of (weights, batch, generator) and the trainer can rebuild it from
(seed, step, rank). Dropout draws from the global RNG by construction, so the
forward *forks* the global RNG of the batch's device and seeds the fork from
``generator``; the caller's global RNG state is left exactly as it was.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ccrk.config import ConfigError, check_keys
from ccrk.data.collate import Batch
from ccrk.layout import OBJECTIVES
from ccrk.losses import (
    IGNORE_INDEX,
    POSITIVE_LANGUAGE_RULES,
    choose_positive_language,
    cross_lingual_itc,
    cross_modal_itc,
    itm_loss,
    mask_tokens,
    mlm_loss,
    one_to_k_itc,
    positive_text_index,
    sample_hard_negatives,
)

__all__ = [
    "ITC_LOSSES",
    "TERMS",
    "Objective",
    "ObjectiveConfig",
    "ObjectiveConfigError",
    "ObjectiveOutput",
    "build_objective",
]

#: The loss terms, in the order they are computed and reported.
TERMS: tuple[str, ...] = ("itc", "itm", "mlm")

#: Contrastive loss of each objective, looked up at call time (so tests and
#: experiments can substitute one).
ITC_LOSSES: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {
    "one_to_k": one_to_k_itc,
    "cross_lingual": cross_lingual_itc,
    "cross_modal": cross_modal_itc,
}


class ObjectiveConfigError(ConfigError):
    """An ``objective:`` config value that cannot be used; the message names the key."""


def _number(key: str, value: Any) -> float:
    # bool is an int subclass: a YAML ``true`` must not pass as weight 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ObjectiveConfigError(f"objective.{key} must be a finite number, got {value!r}")
    return float(value)


@dataclass
class ObjectiveConfig:
    """What the ``objective:`` section of a config says.

    ``weights`` multiply the terms of the total loss (the paper: 1:1:1); a
    weight of 0 skips that term altogether - it is not computed, so its
    parameters get no gradient (a DDP wrapper then needs
    ``find_unused_parameters=True``). Weights left out of a mapping default
    to 1. ``positive_language`` picks, per image, which of its K captions is
    the positive for matching and the caption masked for MLM: ``hard`` (the
    paper's code: the language the image is least similar to is the most
    likely), ``random``, or ``english`` (slot 0). With one caption per image
    (``cross_modal``) every rule picks that caption.

    ``itm_hardness`` scales the similarity logits before the softmax that
    matching negatives are drawn from: 1 is the paper's (hard negatives
    preferred), 0 draws them uniformly. Towers trained from scratch see
    near-duplicate negatives from the first steps at 1, before the matching
    head can tell anything apart, and the head stays at its 1:2 prior
    (loss 0.636) for the whole run; a softer draw lets it learn.
    """

    name: str = "one_to_k"
    weights: dict[str, float] = field(default_factory=lambda: {term: 1.0 for term in TERMS})
    positive_language: str = "hard"
    mlm_prob: float = 0.4
    max_masks: int = 12
    itm_hardness: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise ObjectiveConfigError(f"objective.name must be one of {list(OBJECTIVES)}, got {self.name!r}")
        if not isinstance(self.weights, Mapping):
            raise ObjectiveConfigError(
                f"objective.weights must be a mapping of {list(TERMS)} to numbers, got {self.weights!r}"
            )
        check_keys(self.weights, TERMS, "objective.weights", ObjectiveConfigError)
        weights = {term: _number(f"weights.{term}", self.weights.get(term, 1.0)) for term in TERMS}
        negative = [term for term, w in weights.items() if w < 0]
        if negative:
            raise ObjectiveConfigError(f"objective.weights.{negative[0]} must be >= 0, got {weights[negative[0]]}")
        if not any(weights.values()):
            raise ObjectiveConfigError("objective.weights are all 0: nothing would be trained")
        self.weights = weights
        if self.positive_language not in POSITIVE_LANGUAGE_RULES:
            raise ObjectiveConfigError(
                f"objective.positive_language must be one of {list(POSITIVE_LANGUAGE_RULES)}, "
                f"got {self.positive_language!r}"
            )
        prob = _number("mlm_prob", self.mlm_prob)
        if not 0.0 < prob <= 1.0:
            raise ObjectiveConfigError(f"objective.mlm_prob must be in (0, 1], got {self.mlm_prob!r}")
        self.mlm_prob = prob
        hardness = _number("itm_hardness", self.itm_hardness)
        if not 0.0 <= hardness <= 1.0:
            raise ObjectiveConfigError(f"objective.itm_hardness must be in [0, 1], got {self.itm_hardness!r}")
        self.itm_hardness = hardness
        if isinstance(self.max_masks, bool) or not isinstance(self.max_masks, int) or self.max_masks < 1:
            raise ObjectiveConfigError(f"objective.max_masks must be a positive integer, got {self.max_masks!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObjectiveConfig:
        """Build from a YAML/JSON mapping; an unknown key is an error naming it (``objective.wieghts``)."""
        if not isinstance(data, Mapping):
            raise ObjectiveConfigError(f"objective config must be a mapping, got {type(data).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        return cls(**copy.deepcopy(check_keys(data, known, "objective", ObjectiveConfigError)))

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(dataclasses.asdict(self))

    def enabled(self, term: str) -> bool:
        return self.weights[term] > 0


@dataclass
class ObjectiveOutput:
    """``loss``: the weighted total to back-propagate; ``terms``: each computed term, detached, unweighted."""

    loss: Tensor
    terms: dict[str, Tensor]
    n_images: int


class Objective(nn.Module):
    """The model plus its training loss; ``forward(batch, generator)`` is one whole training step's forward.

    ``special_ids`` are the token ids MLM never masks (padding, ``<s>``,
    ``</s>``, ...), ``mask_token_id`` the id masked tokens become; both come
    from the tokenizer (:func:`build_objective`). Random replacement ids are
    drawn from the model's whole vocabulary.
    """

    def __init__(
        self,
        config: ObjectiveConfig,
        model: nn.Module,
        *,
        mask_token_id: int | None,
        special_ids: Iterable[int] = (),
    ) -> None:
        super().__init__()
        self.config = config
        self.model = model
        self.vocab_size = int(model.vocab_size)
        specials = sorted({int(i) for i in special_ids})
        if config.enabled("mlm"):
            if mask_token_id is None:
                raise ObjectiveConfigError(
                    "objective.weights.mlm > 0 needs a tokenizer with a mask token; "
                    "set objective.weights.mlm: 0 or use a tokenizer that has one"
                )
            if not 0 <= int(mask_token_id) < self.vocab_size:
                raise ValueError(f"mask_token_id {mask_token_id} is outside the model's vocabulary "
                                 f"of {self.vocab_size} ids")
        self.mask_token_id = None if mask_token_id is None else int(mask_token_id)
        self.special_ids = specials
        # A buffer so it follows .to(device) with the model and mask_tokens needs no host->device copy per step.
        device = next(model.parameters()).device
        self.register_buffer("_special_ids", torch.tensor(specials, dtype=torch.long, device=device),
                             persistent=False)

    # -- checks ----------------------------------------------------------------------------------

    def _check_batch(self, batch: Batch) -> tuple[int, int]:
        """What this objective needs of a batch; its sizes agree already (checked when it was built)."""
        name, b, k = self.config.name, len(batch), batch.k
        if batch.input_ids is None:
            raise ValueError("batch has no input_ids/attention_mask: build the Collator with the tokenizer")
        if name == "cross_modal" and k != 1:
            raise ValueError(f"objective 'cross_modal' pairs each image with one caption, but batch.k={k}; "
                             f"collate with Collator('cross_modal', ...)")
        if name == "cross_lingual" and k < 2:
            raise ValueError(f"objective 'cross_lingual' needs English plus at least one other language per "
                             f"image, but batch.k={k}")
        if b < 2 and self.config.enabled("itm"):
            raise ValueError(f"a batch of {b} image has no other image to draw matching negatives from; need B >= 2")
        langs = batch.text_langs
        slot0_english = not langs or all(lang == "en" for lang in langs[::k])
        if name == "cross_lingual" and not slot0_english:
            raise ValueError(f"objective 'cross_lingual' pivots through English, but the first caption of some "
                             f"image is not English (languages of image 0: {langs[:k]})")
        if (k > 1 and self.config.positive_language == "english" and not slot0_english
                and (self.config.enabled("itm") or self.config.enabled("mlm"))):
            raise ValueError(f"objective.positive_language 'english' takes each image's first caption, which "
                             f"is not English here (languages of image 0: {langs[:k]})")
        return b, k

    @staticmethod
    def _check_generator(generator: torch.Generator, device: torch.device) -> None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if generator.device.type != device.type:
            raise ValueError(f"generator is on {generator.device} but the batch is on {device}: "
                             f"create it with torch.Generator(device=...) on the batch's device")

    # -- the step ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _seeded_dropout(self, generator: torch.Generator, device: torch.device) -> Iterator[None]:
        """Run the model's own randomness (dropout, drop-path) on a fork of the global RNG seeded from ``generator``.

        On an accelerator, reading the seed back costs one host sync per step.
        """
        if not self.training:
            yield
            return
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
        if device.type == "cpu":
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(seed)
                yield
            return
        backend = getattr(torch, device.type)
        index = device.index if device.index is not None else backend.current_device()
        with torch.random.fork_rng(devices=[index], device_type=device.type):
            with backend.device(index):
                backend.manual_seed(seed)
            yield

    def forward(self, batch: Batch, generator: torch.Generator) -> ObjectiveOutput:
        """Weighted sum of the enabled terms of ``batch`` (``k`` captions per image, English first)."""
        b, k = self._check_batch(batch)
        device = batch.images.device
        self._check_generator(generator, device)
        with self._seeded_dropout(generator, device):
            return self._step(batch, b, k, generator)

    def _step(self, batch: Batch, b: int, k: int, generator: torch.Generator) -> ObjectiveOutput:
        cfg, model = self.config, self.model
        ids, attention = batch.input_ids, batch.attention_mask
        assert ids is not None and attention is not None  # checked in _check_batch
        image_tokens, image_feat = model.encode_image(batch.images)
        text_tokens, text_feat = model.encode_text(ids, attention)
        temp = model.temperature
        terms: dict[str, Tensor] = {}

        if cfg.enabled("itc"):
            terms["itc"] = ITC_LOSSES[cfg.name](image_feat, text_feat, temp)

        if cfg.enabled("itm") or cfg.enabled("mlm"):
            # Local similarities (the paper's code samples within a rank); no gradient flows through sampling.
            with torch.no_grad():
                sim_i2t = (image_feat / temp) @ text_feat.T  # [B, B*K]
            pos_lang = choose_positive_language(sim_i2t, k, cfg.positive_language, generator)
            pos_text = positive_text_index(pos_lang, k)

            if cfg.enabled("itm"):
                neg = sample_hard_negatives(sim_i2t * cfg.itm_hardness, k, pos_lang, generator=generator)
                own = torch.arange(b, device=pos_text.device)
                # Pair order of itm_loss: positives, (image, negative caption), (negative image, caption).
                rows = torch.cat([pos_text, neg.text, pos_text])
                images = torch.cat([own, own, neg.image])
                pair_tokens, pair_attention = _trim(text_tokens.index_select(0, rows), attention.index_select(0, rows))
                logits = model.itm_logits(pair_tokens, pair_attention, image_tokens, images)
                terms["itm"] = itm_loss(logits, b)

            if cfg.enabled("mlm"):
                pos_ids, pos_attention = _trim(ids.index_select(0, pos_text), attention.index_select(0, pos_text))
                masked, labels = mask_tokens(pos_ids, pos_attention, self._special_ids, self.mask_token_id,
                                             self.vocab_size, cfg.mlm_prob, cfg.max_masks, generator)
                masked_tokens, _ = model.encode_text(masked, pos_attention)
                chosen = labels != IGNORE_INDEX
                # Logits only at the masked positions: a [B, L, V] tensor would dominate memory at 250k ids.
                logits = model.mlm_logits(masked_tokens, pos_attention, image_tokens, positions=chosen)
                terms["mlm"] = mlm_loss(logits.unsqueeze(0), labels[chosen].unsqueeze(0))

        loss = sum((cfg.weights[name] * value for name, value in terms.items()), start=image_feat.new_zeros(()))
        return ObjectiveOutput(loss=loss, terms={name: v.detach() for name, v in terms.items()}, n_images=b)


def _trim(rows: Tensor, attention: Tensor) -> tuple[Tensor, Tensor]:
    """Cut selected text rows (``[N, L, ...]`` with their ``[N, L]`` mask) to the longest of them.

    The rows were padded to the longest caption of the whole batch; the
    fusion layers would otherwise attend over padding of captions not chosen.
    """
    cut = max(1, int(attention.sum(dim=1).max()))
    if bool(attention[:, cut:].any()):  # not right-padded: keep every position
        return rows, attention
    return rows[:, :cut], attention[:, :cut]


def build_objective(config: ObjectiveConfig | Mapping[str, Any], model: nn.Module, tokenizer: Any) -> Objective:
    """The :class:`Objective` of ``config`` around ``model``, with the special token ids of ``tokenizer``.

    ``tokenizer`` is any Hugging Face tokenizer (``mask_token_id``,
    ``all_special_ids``); its length must not exceed the model's vocabulary.
    """
    if not isinstance(config, ObjectiveConfig):
        config = ObjectiveConfig.from_dict(config)
    size = len(tokenizer)
    if size > int(model.vocab_size):
        raise ValueError(f"the tokenizer has {size} ids but the model's vocabulary only {model.vocab_size}: "
                         f"they were not built together")
    return Objective(
        config,
        model,
        mask_token_id=getattr(tokenizer, "mask_token_id", None),
        special_ids=list(getattr(tokenizer, "all_special_ids", [])),
    )
