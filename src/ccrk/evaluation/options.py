"""Evaluation settings: the ``evaluate:`` config section, overridden by command-line flags.

One validated record so that a run's ``metrics.json`` can store exactly what it
was computed with, and a misspelt key or a nonsensical value (``k_test: 0``)
fails before a model is loaded rather than after an hour of ITM scoring.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ccrk.config import ConfigError, check_keys
from ccrk.data.languages import is_iso639_1

#: The paper's MRV4 languages (xFlickr&CO): en, de, ja, zh.
DEFAULT_MRV_LANGUAGES: tuple[str, ...] = ("en", "de", "ja", "zh")
#: ``evaluate.k_test`` value meaning "the k_test in the model's retrieval.json" (``ccrk.evaluation.ktest``).
K_TEST_AUTO = "auto"


def parse_languages(value: Any, key: str, allow_none_word: bool = False) -> tuple[str, ...] | None:
    """A language list from YAML (list) or a flag (``"en,de"``); ``None`` stays ``None``.

    With ``allow_none_word`` the string ``"none"`` (and an empty list) mean
    "no languages", which is how MRV is switched off.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if allow_none_word and value.strip().lower() == "none":
            return ()
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, Sequence):
        items = list(value)
    else:
        raise ConfigError(f"{key} must be a list of language codes or a comma-separated string, got {value!r}")
    bad = [v for v in items if not is_iso639_1(v)]
    if bad:
        raise ConfigError(f"{key}: not ISO 639-1 code(s): {', '.join(map(repr, bad))}")
    if len(set(items)) != len(items):
        raise ConfigError(f"{key} lists a language twice: {items}")
    if not items and not allow_none_word:
        raise ConfigError(f"{key} is empty; omit it to evaluate every language of the manifest")
    return tuple(items)


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    return value


def _k_test(key: str, value: Any) -> int | str:
    """A positive integer, or ``"auto"``: the k chosen on validation, read from the model directory at run time."""
    if value == K_TEST_AUTO:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{key} must be a positive integer or {K_TEST_AUTO!r} (the k_test ccrk finetune chose on validation), "
            f"got {value!r}"
        )
    return value


@dataclass(frozen=True)
class EvalOptions:
    """How ``ccrk evaluate`` runs; every field is an ``evaluate.<name>`` config key.

    ``languages=None`` evaluates every language of the manifest;
    ``mrv_languages`` of ``[]``, ``null`` or ``"none"`` switches MRV off. ``k_test`` candidates per query are
    re-ranked by the matching head (the paper's k_test=128); ``"auto"`` takes the k that ``ccrk finetune``
    chose on validation and recorded in the model directory. ``bootstrap``
    resamples of test images give the ``1 - alpha`` intervals. ``folds`` splits the test images into that many
    equal, contiguous galleries (manifest order) and ranks every query within its own
    (:func:`ccrk.evaluation.retrieval.rank_language_folds`): more queries behind each number, the same
    difficulty as one gallery of that size.
    """

    languages: tuple[str, ...] | None = None
    mrv_languages: tuple[str, ...] = DEFAULT_MRV_LANGUAGES
    k_test: int | str = 128
    batch_size: int = 64
    itm_batch_size: int = 256
    bootstrap: int = 1000
    alpha: float = 0.05
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    folds: int = 1

    def __post_init__(self) -> None:
        w = "evaluate"
        object.__setattr__(self, "languages", parse_languages(self.languages, f"{w}.languages"))
        mrv = parse_languages(self.mrv_languages, f"{w}.mrv_languages", allow_none_word=True)
        if mrv is None:
            mrv = ()
        if len(mrv) == 1:
            raise ConfigError(f"{w}.mrv_languages: MRV compares languages, give at least 2 (or none), got {list(mrv)}")
        object.__setattr__(self, "mrv_languages", mrv)
        _k_test(f"{w}.k_test", self.k_test)
        for key in ("batch_size", "itm_batch_size", "bootstrap", "folds"):
            _positive_int(f"{w}.{key}", getattr(self, key))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"{w}.seed must be a non-negative integer, got {self.seed!r}")
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ConfigError(f"{w}.num_workers must be a non-negative integer, got {self.num_workers!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 1:
            raise ConfigError(f"{w}.alpha must lie in (0, 1), got {self.alpha!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError(
                f"{w}.device must be 'auto' or a torch device such as 'cpu' or 'cuda:0', got {self.device!r}"
            )
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError as err:
                raise ConfigError(f"{w}.device: {err}") from err
        if self.languages is not None and self.mrv_languages:
            missing = [lang for lang in self.mrv_languages if lang not in self.languages]
            if missing:
                raise ConfigError(
                    f"{w}.mrv_languages {list(self.mrv_languages)} includes {missing}, which {w}.languages "
                    f"{list(self.languages)} does not evaluate; add them or pass --mrv-languages none"
                )

    @classmethod
    def from_config(cls, section: Mapping[str, Any], **overrides: Any) -> EvalOptions:
        """The ``evaluate:`` section with unknown keys refused, then non-``None`` overrides (flags) on top."""
        values = check_keys(section, (f.name for f in dataclasses.fields(cls)), "evaluate")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["languages"] = None if self.languages is None else list(self.languages)
        out["mrv_languages"] = list(self.mrv_languages)
        return out

    def check_folds(self, n_images: int, where: str) -> None:
        """Refuse ``folds`` that do not split the ``n_images`` test images of ``where`` into equal galleries."""
        if n_images % self.folds:
            raise ConfigError(f"evaluate.folds {self.folds} does not split the {n_images} test images of {where} "
                              f"into equal galleries")

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)
