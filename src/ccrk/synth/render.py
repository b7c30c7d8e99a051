"""Draw a :class:`~ccrk.synth.scene.Scene` with Pillow.

Shapes are drawn at 4x the output size and box-downsampled, so small images keep
clean edges; jitter (offset, rotation, colour tint) and a noisy background
come from a per-image generator, so an image depends only on its own seed and
not on what was drawn before it.
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw

from ccrk.synth.scene import Obj, Scene

SUPERSAMPLE = 4

COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 160, 60),
    "blue": (35, 75, 215),
    "yellow": (240, 215, 30),
    "purple": (130, 50, 180),
    "orange": (245, 135, 20),
    "pink": (245, 135, 195),
    "brown": (120, 70, 30),
}

#: Object centres as fractions of the image side.
POSITION_XY: dict[str, tuple[float, float]] = {
    "left": (0.2, 0.5),
    "right": (0.8, 0.5),
    "top": (0.5, 0.2),
    "bottom": (0.5, 0.8),
    "center": (0.5, 0.5),
}

#: Circumradius as a fraction of the image side.
SIZE_RADIUS: dict[str, float] = {"small": 0.09, "large": 0.16}

MAX_ROTATION_DEG = 15.0  # small enough that a square never looks like a diamond
MAX_OFFSET = 0.04


def _unit_polygon(shape: str) -> list[tuple[float, float]]:
    """Vertices on (roughly) the unit circle, y pointing down, apex at the top."""
    if shape == "square":
        return [(-0.72, -0.72), (0.72, -0.72), (0.72, 0.72), (-0.72, 0.72)]
    if shape == "diamond":
        return [(0.0, -1.0), (0.6, 0.0), (0.0, 1.0), (-0.6, 0.0)]
    if shape == "triangle":
        return [(math.cos(a), math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    if shape == "star":
        pts = []
        for k in range(10):
            r = 1.0 if k % 2 == 0 else 0.42
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((r * math.cos(a), r * math.sin(a)))
        return pts
    if shape == "cross":
        w = 0.32
        return [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)]
    if shape == "heart":
        pts = []
        for k in range(48):
            t = 2 * math.pi * k / 48
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((x / 17.0, -y / 17.0 + 0.1))
        return pts
    raise ValueError(f"no polygon for shape {shape!r}")


def _draw_object(draw: ImageDraw.ImageDraw, obj: Obj, side: int, rng: np.random.Generator) -> None:
    cx, cy = POSITION_XY[obj.position]  # type: ignore[index]
    dx, dy = rng.uniform(-MAX_OFFSET, MAX_OFFSET, size=2)
    cx, cy = (cx + dx) * side, (cy + dy) * side
    radius = SIZE_RADIUS[obj.size] * side * rng.uniform(0.92, 1.08)  # type: ignore[index]
    tint = rng.integers(-12, 13, size=3)
    fill = tuple(int(np.clip(c + t, 0, 255)) for c, t in zip(COLOUR_RGB[obj.colour], tint))  # type: ignore[index]
    if obj.shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
        return
    angle = math.radians(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    c, s = math.cos(angle), math.sin(angle)
    pts = [(cx + radius * (x * c - y * s), cy + radius * (x * s + y * c)) for x, y in _unit_polygon(obj.shape)]
    draw.polygon(pts, fill=fill)


def render_scene(scene: Scene, size: int, rng: np.random.Generator, noise_std: float = 10.0) -> Image.Image:
    """An RGB image of ``scene``; large objects first so small ones stay visible."""
    if size < 16:
        raise ValueError(f"image size {size} is too small to draw shapes (minimum 16)")
    big = size * SUPERSAMPLE
    base = rng.integers(150, 200, size=3)
    canvas = Image.new("RGB", (big, big), tuple(int(v) for v in base))
    draw = ImageDraw.Draw(canvas)
    order = sorted(range(len(scene.objects)), key=lambda i: scene.objects[i].size != "large")
    for i in order:
        _draw_object(draw, scene.objects[i], big, rng)
    small = canvas.reduce(SUPERSAMPLE)  # box-filter downsampling: anti-aliased and fast
    pixels = np.asarray(small, dtype=np.float32)
    pixels = pixels + rng.normal(0.0, noise_std, size=pixels.shape)
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), "RGB")


def png_bytes(image: Image.Image) -> bytes:
    """Encode losslessly with fixed settings, so equal pixels give equal bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()
