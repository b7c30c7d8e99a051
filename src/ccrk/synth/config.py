"""Settings of the synthetic benchmark, validated with errors that name the key."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ccrk.config import check_keys
from ccrk.synth.languages import LANGUAGE_CODES
from ccrk.synth.noise import DEFAULT_RATES, NoiseRates

SPLITS: tuple[str, ...] = ("pretrain", "train", "val", "test")


@dataclass(frozen=True)
class SynthConfig:
    """Sizes default to what lets the whole embedded DAG run in minutes on 2 cores."""

    seed: int = 0
    image_size: int = 64
    languages: tuple[str, ...] = LANGUAGE_CODES
    #: Images a split. ``val`` and ``test`` must be even: they are built as
    #: near-duplicate pairs that differ in one attribute.
    images: dict[str, int] = field(
        default_factory=lambda: {"pretrain": 6000, "train": 1500, "val": 300, "test": 600}
    )
    #: Gold captions a language an image in ``train`` and ``val`` (distinct
    #: paraphrase templates); ``pretrain`` and ``test`` always have one.
    train_captions: int = 2
    few_shot: tuple[int, ...] = (1, 5, 10, 25)
    #: Relative frequency of scenes with 1, 2 and 3 objects.
    object_count_weights: tuple[float, float, float] = (0.2, 0.4, 0.4)
    background_noise: float = 10.0
    noise: dict[str, NoiseRates] = field(default_factory=lambda: dict(DEFAULT_RATES))

    def __post_init__(self) -> None:
        if not self.languages or self.languages[0] != "en":
            raise ValueError(f"synth.languages must start with 'en' (English is the gold pivot), got {list(self.languages)}")
        unknown = [code for code in self.languages if code not in LANGUAGE_CODES]
        if unknown:
            raise ValueError(f"synth.languages: no grammar for {unknown}; available {list(LANGUAGE_CODES)}")
        if len(set(self.languages)) != len(self.languages):
            raise ValueError(f"synth.languages has duplicates: {list(self.languages)}")
        if set(self.images) != set(SPLITS):
            raise ValueError(f"synth.images must give exactly the splits {list(SPLITS)}, got {sorted(self.images)}")
        for split, n in self.images.items():
            if n < 2:
                raise ValueError(f"synth.images.{split} must be at least 2, got {n}")
        for split in ("val", "test"):
            if self.images[split] % 2:
                raise ValueError(f"synth.images.{split} must be even (near-duplicate pairs), got {self.images[split]}")
        if self.image_size < 16:
            raise ValueError(f"synth.image_size must be at least 16, got {self.image_size}")
        if self.train_captions < 1:
            raise ValueError(f"synth.train_captions must be at least 1, got {self.train_captions}")
        if any(n < 1 or n > self.images["train"] for n in self.few_shot):
            raise ValueError(f"synth.few_shot sizes must lie in [1, images.train], got {list(self.few_shot)}")
        if len(self.object_count_weights) != 3 or min(self.object_count_weights) < 0 or sum(self.object_count_weights) <= 0:
            raise ValueError(f"synth.object_count_weights must be 3 non-negative weights, got {self.object_count_weights}")
        extra = sorted(set(self.noise) - set(LANGUAGE_CODES))
        if extra:
            raise ValueError(f"synth.noise: unknown language(s) {extra}")
        if "en" in self.noise and self.noise["en"] != NoiseRates():
            raise ValueError("synth.noise.en: English pre-training captions are gold; give no noise for 'en'")

    def rates(self, lang: str) -> NoiseRates:
        return self.noise.get(lang, NoiseRates())

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "synth") -> "SynthConfig":
        data = check_keys(data, (f.name for f in fields(cls)), where)
        def whole(key: str, value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{where}.{key} must be a whole number, got {value!r}")
            if value < 0:
                raise ValueError(f"{where}.{key} must not be negative, got {value}")
            return value

        for key in ("seed", "image_size", "train_captions"):
            if key in data:
                whole(key, data[key])
        if "background_noise" in data and (isinstance(data["background_noise"], bool)
                                           or not isinstance(data["background_noise"], (int, float))):
            raise ValueError(f"{where}.background_noise must be a number, got {data['background_noise']!r}")
        if "few_shot" in data:
            data["few_shot"] = [whole(f"few_shot[{i}]", v) for i, v in enumerate(data["few_shot"] or [])]
        if "images" in data:
            if not isinstance(data["images"], dict):
                raise ValueError(f"{where}.images must map splits to image counts, got {data['images']!r}")
            check_keys(data["images"], SPLITS, f"{where}.images")
            data["images"] = {**cls().images, **{k: whole(f"images.{k}", v) for k, v in data["images"].items()}}
        if "noise" in data:
            noise = dict(DEFAULT_RATES)
            for lang, rates in (data["noise"] or {}).items():
                noise[lang] = NoiseRates.from_dict(rates, where=f"{where}.noise.{lang}")
            data["noise"] = noise
        for key in ("languages", "few_shot", "object_count_weights"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["languages"] = list(self.languages)
        out["few_shot"] = list(self.few_shot)
        out["object_count_weights"] = list(self.object_count_weights)
        out["noise"] = {lang: asdict(r) for lang, r in self.noise.items() if lang in self.languages}
        return out
