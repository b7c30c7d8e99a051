"""The simulated MT channel applies the configured error rates, measured by diffing descriptions."""
from __future__ import annotations

import numpy as np
import pytest

from ccrk.synth.config import SynthConfig
from ccrk.synth.generate import sample_scene
from ccrk.synth.noise import DEFAULT_RATES, NoiseRates, corrupt
from ccrk.synth.scene import Description

N = 10_000


def _diff(gold: Description, noisy: Description) -> tuple[bool, int, int]:
    """(object dropped, attributes substituted, attributes dropped), found without the channel's own log."""
    g = list(gold.objects)
    dropped = len(noisy.objects) == len(g) - 1
    if dropped:
        # The removed object is the one whose removal leaves the fewest mismatches.
        def cost(skip: int) -> int:
            rest = g[:skip] + g[skip + 1 :]
            return sum(
                getattr(a, f) != getattr(b, f) for a, b in zip(rest, noisy.objects) for f in ("shape", "colour", "size", "position")
            )

        skip = min(range(len(g)), key=cost)
        g = g[:skip] + g[skip + 1 :]
    assert len(g) == len(noisy.objects)
    subs = drops = 0
    for a, b in zip(g, noisy.objects):
        for field in ("shape", "colour", "size", "position"):
            va, vb = getattr(a, field), getattr(b, field)
            if vb is None and va is not None:
                drops += 1
            elif va != vb:
                subs += 1
    return dropped, subs, drops


@pytest.mark.parametrize("lang", ["de", "ja", "tr"])
def test_measured_rates_match_configured(lang: str) -> None:
    rates = DEFAULT_RATES[lang]
    rng = np.random.default_rng(123)
    n_sub = n_drop_attr = n_drop_obj = n_multi = 0
    for _ in range(N):
        gold = sample_scene(rng, (0.2, 0.4, 0.4)).description()
        noisy, events = corrupt(gold, rates, rng)
        dropped, subs, drops = _diff(gold, noisy)
        assert subs <= 1 and drops <= 1, "each error kind fires at most once a caption"
        assert (subs == 1) == (events.substituted is not None)
        assert (drops == 1) == (events.dropped_attribute is not None)
        assert dropped == (events.dropped_object is not None)
        n_sub += subs
        n_drop_attr += drops
        n_multi += len(gold.objects) >= 2
        n_drop_obj += dropped
    # 4 binomial standard deviations at these rates is below 0.02.
    assert abs(n_sub / N - rates.substitute) < 0.02
    assert abs(n_drop_attr / N - rates.drop_attribute) < 0.02
    assert abs(n_drop_obj / n_multi - rates.drop_object) < 0.02


def test_zero_rates_leave_gold_untouched() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        gold = sample_scene(rng, (0.2, 0.4, 0.4)).description()
        noisy, events = corrupt(gold, NoiseRates(), rng)
        assert noisy == gold and not events.any


def test_single_object_never_loses_its_object() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        gold = sample_scene(rng, (1.0, 0.0, 0.0)).description()
        noisy, events = corrupt(gold, NoiseRates(drop_object=1.0), rng)
        assert len(noisy.objects) == 1 and events.dropped_object is None


def test_defaults_are_unequal_across_languages() -> None:
    totals = {lang: r.substitute + r.drop_attribute + r.drop_object for lang, r in DEFAULT_RATES.items()}
    assert max(totals.values()) > 2 * min(totals.values())
    assert "en" not in DEFAULT_RATES


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"noise": {"de": {"substitue": 0.1}}}, "unknown key(s) synth.noise.de.substitue"),
        ({"noise": {"de": {"substitute": 1.5}}}, "synth.noise.de.substitute must lie in [0, 1], got 1.5"),
        ({"noise": {"tr": {"drop_object": "often"}}}, "synth.noise.tr.drop_object must be a number in [0, 1]"),
        ({"image_size": "big"}, "synth.image_size must be a whole number, got 'big'"),
        ({"images": {"pretrain": "lots"}}, "synth.images.pretrain must be a whole number, got 'lots'"),
        ({"few_shot": [1, 2.5]}, "synth.few_shot[1] must be a whole number, got 2.5"),
        ({"noise": {"en": {"substitute": 0.1}}}, "English pre-training captions are gold"),
        ({"imagez": {}}, "synth.imagez"),
        ({"images": {"tset": 4}}, "unknown key(s) synth.images.tset"),
        ({"images": {"test": 5}}, "must be even"),
        ({"languages": ["de", "en"]}, "must start with 'en'"),
        ({"languages": ["en", "xx"]}, "no grammar for ['xx']"),
    ],
)
def test_config_errors_name_the_key(bad: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        SynthConfig.from_dict(bad)
    assert message in str(info.value)
