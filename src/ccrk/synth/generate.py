"""Build the synthetic benchmark: scenes, images, captions, manifests, statistics.

Layout written under the output directory (swapped into place only when
complete, so an interrupted run leaves the previous benchmark or nothing)::

    images/<split>/<image_id>.png
    <split>.jsonl                       manifests (docs/design.md format), image paths relative to the output directory
    fewshot/<lang>/train_<n>.jsonl      nested few-shot subsets of ``train`` (IGLUE naming)
    scenes/<split>.jsonl                ground truth: objects, template and noise events of every caption
    stats.json                          sizes and the noise rates actually applied

Every image and every caption draws from its own generator seeded by
(seed, split, index), so the output is byte-identical for a seed and a change
in one split's size leaves the other splits' items unchanged.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ccrk.atomic import atomic_directory, atomic_write_text
from ccrk.data.manifest import Record, write_manifest
from ccrk.synth.config import SPLITS, SynthConfig
from ccrk.synth.languages import get_language
from ccrk.synth.noise import ERROR_KINDS, NoiseEvents, corrupt
from ccrk.synth.render import png_bytes, render_scene
from ccrk.synth.scene import COLOURS, POSITIONS, SHAPES, SIZES, VALUES, Obj, Scene

_SPLIT_ID = {name: i for i, name in enumerate(SPLITS)}
_SCENE_STREAM, _RENDER_STREAM, _CAPTION_STREAM, _FEWSHOT_STREAM = 0, 1, 2, 3


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def scene_key(scene: Scene) -> frozenset[Obj]:
    """Two scenes that list the same objects in another order show the same image."""
    return frozenset(scene.objects)


def sample_scene(rng: np.random.Generator, weights: tuple[float, float, float]) -> Scene:
    p = np.asarray(weights, dtype=float) / sum(weights)
    n = int(rng.choice(3, p=p)) + 1
    positions = rng.permutation(len(POSITIONS))[:n]
    objects = tuple(
        Obj(
            shape=SHAPES[rng.integers(len(SHAPES))],
            colour=COLOURS[rng.integers(len(COLOURS))],
            size=SIZES[rng.integers(len(SIZES))],
            position=POSITIONS[pos],
        )
        for pos in positions
    )
    return Scene(objects)


def near_duplicate(scene: Scene, rng: np.random.Generator) -> tuple[Scene, tuple[int, str]]:
    """The scene with exactly one attribute of one object changed."""
    i = int(rng.integers(len(scene.objects)))
    attr = ("shape", "colour", "size", "position")[int(rng.integers(4))]
    old = getattr(scene.objects[i], attr)
    taken = {o.position for o in scene.objects}
    choices = [v for v in VALUES[attr] if v != old and (attr != "position" or v not in taken)]
    new = choices[int(rng.integers(len(choices)))]
    objects = list(scene.objects)
    objects[i] = replace(objects[i], **{attr: new})
    return Scene(tuple(objects)), (i, attr)


@dataclass
class _Item:
    image_id: str
    scene: Scene
    pair: str | None = None
    changed: tuple[int, str] | None = None


class SceneSpaceExhausted(RuntimeError):
    pass


def _draw_unique(rng: np.random.Generator, cfg: SynthConfig, seen: set[frozenset[Obj]], what: str) -> Scene:
    for _ in range(1000):
        scene = sample_scene(rng, cfg.object_count_weights)
        if scene_key(scene) not in seen:
            return scene
    raise SceneSpaceExhausted(f"could not draw a new distinct scene for {what}: lower synth.images")


def plan_scenes(cfg: SynthConfig) -> dict[str, list[_Item]]:
    """Distinct scenes for every split (no scene appears twice anywhere).

    ``test`` and ``val`` are drawn first, as near-duplicate pairs, so the
    training splits can never contain an evaluation image's scene.
    """
    seen: set[frozenset[Obj]] = set()
    plan: dict[str, list[_Item]] = {}
    for split in ("test", "val", "train", "pretrain"):
        rng = _rng(cfg.seed, _SPLIT_ID[split], _SCENE_STREAM)
        items: list[_Item] = []
        n = cfg.images[split]
        paired = split in ("test", "val")
        while len(items) < n:
            index = len(items)
            image_id = f"{split}-{index:06d}"
            scene = _draw_unique(rng, cfg, seen, image_id)
            if not paired:
                seen.add(scene_key(scene))
                items.append(_Item(image_id, scene))
                continue
            for _ in range(100):
                sibling, changed = near_duplicate(scene, rng)
                if scene_key(sibling) not in seen and scene_key(sibling) != scene_key(scene):
                    break
            else:
                continue  # this scene has no free near-duplicate left; draw another
            sibling_id = f"{split}-{index + 1:06d}"
            seen.update({scene_key(scene), scene_key(sibling)})
            items.append(_Item(image_id, scene, pair=sibling_id, changed=changed))
            items.append(_Item(sibling_id, sibling, pair=image_id, changed=changed))
        plan[split] = items
    return plan


def caption_item(
    item: _Item, split: str, index: int, cfg: SynthConfig
) -> tuple[dict[str, list[str]], dict[str, list[dict[str, Any]]]]:
    """Captions of one image in every language, and how each was produced."""
    rng = _rng(cfg.seed, _SPLIT_ID[split], _CAPTION_STREAM, index)
    per_lang = cfg.train_captions if split in ("train", "val") else 1
    captions: dict[str, list[str]] = {}
    provenance: dict[str, list[dict[str, Any]]] = {}
    gold = item.scene.description()
    for lang in cfg.languages:
        grammar = get_language(lang)
        n = min(per_lang, grammar.N_TEMPLATES)
        templates = rng.permutation(grammar.N_TEMPLATES)[:n]
        texts, notes = [], []
        for template in templates:
            desc, events = gold, NoiseEvents()
            if split == "pretrain" and lang != "en":
                desc, events = corrupt(gold, cfg.rates(lang), rng)
            texts.append(grammar.describe(desc, int(template)))
            notes.append({"template": int(template), "noise": events.to_dict() if events.any else None})
        captions[lang] = texts
        provenance[lang] = notes
    return captions, provenance


def _scene_json(scene: Scene) -> list[list[str]]:
    return [[o.shape, o.colour, o.size, o.position] for o in scene.objects]  # type: ignore[list-item]


def generate(cfg: SynthConfig, out_dir: str | Path) -> dict[str, Any]:
    """Write the whole benchmark under ``out_dir``; returns its statistics."""
    plan = plan_scenes(cfg)
    applied = {lang: Counter() for lang in cfg.languages if lang != "en"}
    eligible = Counter()
    n_captions = {split: Counter() for split in SPLITS}
    with atomic_directory(out_dir) as tmp:
        for split in SPLITS:
            records: list[Record] = []
            scene_lines: list[str] = []
            image_dir = tmp / "images" / split
            image_dir.mkdir(parents=True)
            for index, item in enumerate(plan[split]):
                image = render_scene(
                    item.scene, cfg.image_size, _rng(cfg.seed, _SPLIT_ID[split], _RENDER_STREAM, index), cfg.background_noise
                )
                (image_dir / f"{item.image_id}.png").write_bytes(png_bytes(image))
                captions, provenance = caption_item(item, split, index, cfg)
                records.append(Record(item.image_id, f"images/{split}/{item.image_id}.png", captions))
                for lang, texts in captions.items():
                    n_captions[split][lang] += len(texts)
                if split == "pretrain":
                    for lang, notes in provenance.items():
                        if lang == "en":
                            continue
                        eligible[lang] += len(item.scene.objects) >= 2
                        for note in notes:
                            ev = note["noise"] or {}
                            applied[lang]["substitute"] += ev.get("substituted") is not None
                            applied[lang]["drop_attribute"] += ev.get("dropped_attribute") is not None
                            applied[lang]["drop_object"] += ev.get("dropped_object") is not None
                scene_lines.append(
                    json.dumps(
                        {
                            "image_id": item.image_id,
                            "objects": _scene_json(item.scene),
                            "near_duplicate_of": item.pair,
                            "changed": list(item.changed) if item.changed else None,
                            "captions": provenance,
                        },
                        ensure_ascii=False,
                    )
                )
            write_manifest(tmp / f"{split}.jsonl", records)
            atomic_write_text(tmp / "scenes" / f"{split}.jsonl", "\n".join(scene_lines) + "\n")
            if split == "train":
                _write_few_shot(cfg, records, tmp)
        n_pre = cfg.images["pretrain"]
        stats = {
            "synthetic": True,
            "seed": cfg.seed,
            "images": {split: cfg.images[split] for split in SPLITS},
            "captions": {split: dict(n_captions[split]) for split in SPLITS},
            "few_shot": {lang: list(cfg.few_shot) for lang in cfg.languages if lang != "en"},
            "noise_applied": {
                lang: {
                    "substitute": counts["substitute"] / n_pre,
                    "drop_attribute": counts["drop_attribute"] / n_pre,
                    "drop_object": counts["drop_object"] / max(eligible[lang], 1),
                }
                for lang, counts in applied.items()
            },
            "noise_configured": {lang: cfg.to_dict()["noise"].get(lang) for lang in cfg.languages if lang != "en"},
            "config": cfg.to_dict(),
        }
        atomic_write_text(tmp / "stats.json", json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    return stats


def _write_few_shot(cfg: SynthConfig, records: list[Record], root: Path) -> None:
    """Nested subsets (the 1-shot set lies inside the 5-shot set...) per target language."""
    for lang_index, lang in enumerate(cfg.languages):
        if lang == "en":
            continue  # few-shot adapts the English model to the *other* languages
        order = _rng(cfg.seed, _SPLIT_ID["train"], _FEWSHOT_STREAM, lang_index).permutation(len(records))
        for n in sorted(cfg.few_shot):
            subset = [Record(records[i].image_id, records[i].image, {lang: records[i].captions[lang]}) for i in order[:n]]
            write_manifest(root / "fewshot" / lang / f"train_{n}.jsonl", subset)


def format_stats(stats: dict[str, Any]) -> str:
    """The summary ``ccrk synth`` prints at the end."""
    lines = ["Synthetic benchmark (procedurally generated; not real images or human captions)", ""]
    lines.append("images a split: " + ", ".join(f"{s} {n}" for s, n in stats["images"].items()))
    langs = list(stats["captions"]["pretrain"])
    lines.append("")
    lines.append("captions a language:")
    lines.append("  split     " + " ".join(f"{lang:>6}" for lang in langs))
    for split, counts in stats["captions"].items():
        lines.append(f"  {split:<9} " + " ".join(f"{counts.get(lang, 0):>6}" for lang in langs))
    lines.append("")
    lines.append("pre-training noise applied (configured) - drop_object over captions of 2+ objects:")
    lines.append("  lang " + " ".join(f"{k:>22}" for k in ERROR_KINDS))
    for lang, rates in stats["noise_applied"].items():
        conf = stats["noise_configured"][lang]
        cells = " ".join(f"{rates[k]:>13.4f} ({conf[k]:.3f})" for k in ERROR_KINDS)
        lines.append(f"  {lang:<4} {cells}")
    return "\n".join(lines)
