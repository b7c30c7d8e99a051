"""A simulated machine-translation channel for the pre-training captions.

The paper pre-trains on captions machine-translated from English, and
translation quality differs between languages; that unevenness is what makes
retrieval inconsistent across languages. Here English stays gold and every
other language's caption is rendered from a *degraded copy* of the scene
description. Errors are applied to the semantics, not the string, so every
language suffers the same kinds of mistakes in its own grammar, and the
applied rates can be measured exactly from the (gold, noisy) pairs.

Three error kinds, each an independent event per caption:

* ``substitute`` - one attribute (shape, colour, size or position) of one
  object replaced by a different value (a mistranslated word);
* ``drop_attribute`` - one colour, size or position omitted;
* ``drop_object`` - one object left out of a multi-object caption. Its rate
  is conditional on the caption naming two or more objects (a one-object
  caption cannot lose its only object).

Substitution and attribute dropping never hit the same attribute, so a
(gold, noisy) diff identifies every event uniquely.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ccrk.config import check_keys
from ccrk.synth.scene import DROPPABLE, SUBSTITUTABLE, VALUES, Description

ERROR_KINDS: tuple[str, ...] = ("substitute", "drop_attribute", "drop_object")


@dataclass(frozen=True)
class NoiseRates:
    """Per-caption probabilities of each error kind for one language."""

    substitute: float = 0.0
    drop_attribute: float = 0.0
    drop_object: float = 0.0

    def __post_init__(self) -> None:
        for kind in ERROR_KINDS:
            value = getattr(self, kind)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"noise rate {kind}={value} must lie in [0, 1]")

    @classmethod
    def from_dict(cls, data: dict[str, float], where: str = "noise") -> "NoiseRates":
        check_keys(data, ERROR_KINDS, where)
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{where}.{key} must be a number in [0, 1], got {value!r}")
            if not 0.0 <= value <= 1.0:  # NaN fails this too
                raise ValueError(f"{where}.{key} must lie in [0, 1], got {value}")
        return cls(**{k: float(v) for k, v in data.items()})


#: Unequal defaults: close European languages translate best, distant ones worst,
#: roughly as machine translation quality ranks them.
DEFAULT_RATES: dict[str, NoiseRates] = {
    "de": NoiseRates(0.05, 0.05, 0.03),
    "fr": NoiseRates(0.05, 0.05, 0.03),
    "es": NoiseRates(0.05, 0.04, 0.03),
    "cs": NoiseRates(0.10, 0.08, 0.05),
    "ru": NoiseRates(0.10, 0.08, 0.05),
    "id": NoiseRates(0.12, 0.10, 0.06),
    "tr": NoiseRates(0.15, 0.12, 0.08),
    "zh": NoiseRates(0.20, 0.15, 0.10),
    "ja": NoiseRates(0.25, 0.15, 0.10),
}


@dataclass(frozen=True)
class NoiseEvents:
    """What the channel did to one caption (indices refer to the gold description)."""

    dropped_object: int | None = None
    substituted: tuple[int, str, str, str] | None = None  # (object, attribute, old, new)
    dropped_attribute: tuple[int, str] | None = None  # (object, attribute)

    @property
    def any(self) -> bool:
        return self.dropped_object is not None or self.substituted is not None or self.dropped_attribute is not None

    def to_dict(self) -> dict[str, object]:
        return {
            "dropped_object": self.dropped_object,
            "substituted": list(self.substituted) if self.substituted else None,
            "dropped_attribute": list(self.dropped_attribute) if self.dropped_attribute else None,
        }


def corrupt(desc: Description, rates: NoiseRates, rng: np.random.Generator) -> tuple[Description, NoiseEvents]:
    """Pass one gold description through the channel.

    The same number of random draws is made on every call (whether or not an
    event is possible), so the random stream - and thus the whole benchmark - does
    not depend on which events happened to fire earlier.
    """
    u = rng.random(3)
    picks = rng.random(5)
    objects = list(desc.objects)
    n = len(objects)

    dropped_object: int | None = None
    if u[2] < rates.drop_object and n >= 2:
        dropped_object = int(picks[0] * n)
    kept = [i for i in range(n) if i != dropped_object]

    substituted = None
    if u[0] < rates.substitute:
        i = kept[int(picks[1] * len(kept))]
        attrs = [a for a in SUBSTITUTABLE if getattr(objects[i], a) is not None]
        attr = attrs[int(picks[2] * len(attrs))]
        old = getattr(objects[i], attr)
        choices = [v for v in VALUES[attr] if v != old]
        new = choices[int(picks[3] * len(choices))]
        objects[i] = replace(objects[i], **{attr: new})
        substituted = (i, attr, old, new)

    dropped_attribute = None
    if u[1] < rates.drop_attribute:
        candidates = [
            (i, a)
            for i in kept
            for a in DROPPABLE
            if getattr(objects[i], a) is not None and not (substituted and substituted[:2] == (i, a))
        ]
        if candidates:
            i, attr = candidates[int(picks[4] * len(candidates))]
            objects[i] = replace(objects[i], **{attr: None})
            dropped_attribute = (i, attr)

    noisy = Description(tuple(objects[i] for i in kept))
    return noisy, NoiseEvents(dropped_object, substituted, dropped_attribute)
