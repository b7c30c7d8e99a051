"""Image transforms that take the captions along.

Both transforms share one call signature, ``(image, captions, generator) ->
(tensor, captions)``, because the training one must edit captions: a
horizontal flip turns "on the left" into a lie unless the caption is mirrored
too (:func:`ccrk.data.languages.swap_left_right`). Random parameters come
from the per-sample ``generator`` rather than the global RNG, so a sample is
a function of (seed, epoch, index) alone, whatever the number of DataLoader
workers or the order they run in.

Defaults follow the paper's code (a CLIP-style pipeline): random resized crop
with scale (0.5, 1.0) and bicubic resampling, horizontal flip, CLIP's
normalisation constants; evaluation resizes straight to a square.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from PIL import Image
from torch import Tensor

from ccrk.data.languages import can_swap, swap_left_right

CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

Size = int | tuple[int, int]


def _size_hw(image_size: Size) -> tuple[int, int]:
    if isinstance(image_size, int):
        h = w = image_size
    else:
        h, w = image_size
    if h <= 0 or w <= 0:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return int(h), int(w)


class _Normalise:
    """PIL RGB -> float tensor [3,H,W] in CLIP's normalised space."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"mean and std need 3 channels, got {len(mean)} and {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, image: Image.Image) -> Tensor:
        array = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
        pixels = array.view(image.height, image.width, 3).permute(2, 0, 1).float().div_(255.0)
        return pixels.sub_(self.mean).div_(self.std)


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def random_resized_crop_params(
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a crop as torchvision's RandomResizedCrop picks it, drawn from ``generator``.

    torchvision's own ``get_params`` reads the global RNG, which would make a
    sample depend on what else ran before it in the same worker.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
        target_area = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[1])
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = min(int(u[2] * (height - h + 1)), height - h)
            left = min(int(u[3] * (width - w + 1)), width - w)
            return top, left, h, w
    # Fallback (rare, extreme aspect ratios): the largest centred crop within ``ratio``.
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


class TrainTransform:
    """Random resized crop, then a paired flip of image and captions with p=0.5."""

    def __init__(
        self,
        image_size: Size,
        scale: tuple[float, float] = (0.5, 1.0),
        hflip: bool = True,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
    ) -> None:
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale!r}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio!r}")
        self.size = _size_hw(image_size)
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.hflip = hflip
        self.normalise = _Normalise(mean, std)

    def __call__(
        self, image: Image.Image, captions: Mapping[str, str], generator: torch.Generator
    ) -> tuple[Tensor, dict[str, str]]:
        if generator is None:
            raise ValueError("the train transform needs a torch.Generator (see ccrk.data.dataset.sample_generator)")
        image = _rgb(image)
        top, left, h, w = random_resized_crop_params(image.height, image.width, self.scale, self.ratio, generator)
        out_h, out_w = self.size
        image = image.resize((out_w, out_h), Image.Resampling.BICUBIC, box=(left, top, left + w, top + h))
        captions = dict(captions)
        # Draw the coin even when flipping is off or impossible, so that turning
        # it off does not shift every later random number of the sample.
        coin = bool(torch.rand((), generator=generator) < 0.5)
        if self.hflip and coin and all(can_swap(lang) for lang in captions):
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            captions = {lang: swap_left_right(text, lang) for lang, text in captions.items()}
        return self.normalise(image), captions


class EvalTransform:
    """Bicubic resize to a square (no crop), as the paper's evaluation does; captions untouched."""

    def __init__(
        self, image_size: Size, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD
    ) -> None:
        self.size = _size_hw(image_size)
        self.normalise = _Normalise(mean, std)

    def __call__(
        self, image: Image.Image, captions: Mapping[str, str], generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, str]]:
        out_h, out_w = self.size
        image = _rgb(image).resize((out_w, out_h), Image.Resampling.BICUBIC)
        return self.normalise(image), dict(captions)


def build_train_transform(
    image_size: Size,
    scale: tuple[float, float] = (0.5, 1.0),
    hflip: bool = True,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> TrainTransform:
    return TrainTransform(image_size, scale=scale, hflip=hflip, mean=mean, std=std)


def build_eval_transform(
    image_size: Size, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD
) -> EvalTransform:
    return EvalTransform(image_size, mean=mean, std=std)
