"""What a synthetic image shows and what a caption says about it.

A :class:`Scene` is the ground truth that gets rendered to pixels. A
:class:`Description` is what one caption asserts; it starts as a copy of the
scene and may be degraded by the simulated machine-translation channel
(:mod:`ccrk.synth.noise`). Keeping the two apart is what lets the noise rates
be measured instead of assumed, and lets every language render exactly the
same semantic content.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "heart", "diamond")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange", "pink", "brown")
SIZES: tuple[str, ...] = ("small", "large")
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom", "center")

#: Attributes a caption may omit or get wrong. ``shape`` is never omitted:
#: an object is always named, possibly with the wrong noun.
DROPPABLE: tuple[str, ...] = ("colour", "size", "position")
SUBSTITUTABLE: tuple[str, ...] = ("shape", "colour", "size", "position")

VALUES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": COLOURS,
    "size": SIZES,
    "position": POSITIONS,
}


@dataclass(frozen=True)
class Obj:
    """One object as a caption states it; ``None`` means the caption omits it."""

    shape: str
    colour: str | None = None
    size: str | None = None
    position: str | None = None

    def __post_init__(self) -> None:
        for attr, allowed in VALUES.items():
            value = getattr(self, attr)
            if attr == "shape" and value is None:
                raise ValueError("an object always has a shape")
            if value is not None and value not in allowed:
                raise ValueError(f"unknown {attr} {value!r}; expected one of {allowed}")


@dataclass(frozen=True)
class Description:
    """The semantic content of one caption: 1-3 objects in a fixed order."""

    objects: tuple[Obj, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.objects) <= 3:
            raise ValueError(f"a description holds 1-3 objects, got {len(self.objects)}")


@dataclass(frozen=True)
class Scene:
    """Ground truth of one image: every attribute set, positions distinct."""

    objects: tuple[Obj, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.objects) <= 3:
            raise ValueError(f"a scene holds 1-3 objects, got {len(self.objects)}")
        for o in self.objects:
            if o.colour is None or o.size is None or o.position is None:
                raise ValueError(f"a scene object must have every attribute set: {o}")
        positions = [o.position for o in self.objects]
        if len(set(positions)) != len(positions):
            raise ValueError(f"scene positions must be distinct: {positions}")

    def description(self) -> Description:
        return Description(self.objects)

    def mirrored(self) -> "Scene":
        """The scene flipped left to right (what a horizontal flip shows)."""
        swap = {"left": "right", "right": "left"}
        return Scene(tuple(replace(o, position=swap.get(o.position, o.position)) for o in self.objects))
