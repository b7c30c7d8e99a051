"""Paired train transform, eval transform, and the deterministic CaptionDataset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ccrk.data.dataset import CaptionDataset, sample_generator
from ccrk.data.manifest import ManifestError, Record
from ccrk.data.transforms import (
    CLIP_MEAN,
    CLIP_STD,
    build_eval_transform,
    build_train_transform,
    random_resized_crop_params,
)

W, H = 48, 32


def _dot_image(x: int = 8, y: int = 16) -> Image.Image:
    """Grey canvas with a red square centred at (x, y)."""
    array = np.full((H, W, 3), 128, dtype=np.uint8)
    array[y - 4 : y + 4, x - 4 : x + 4] = (255, 0, 0)
    return Image.fromarray(array)


def _red_centroid_x(tensor: torch.Tensor) -> float:
    """Horizontal centre of mass of red pixels, as a fraction of the width."""
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    rgb = tensor * std + mean
    red = (rgb[0] > 0.8) & (rgb[1] < 0.3)
    assert red.any(), "the red dot was cropped away"
    xs = red.nonzero()[:, 1].float()
    return float(xs.mean() / tensor.shape[-1])


def test_eval_transform_matches_reference() -> None:
    image = _dot_image()
    tensor, captions = build_eval_transform(16)(image, {"en": "a red dot on the left"}, None)
    assert tensor.shape == (3, 16, 16) and tensor.dtype == torch.float32
    assert captions == {"en": "a red dot on the left"}
    ref = np.asarray(image.resize((16, 16), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
    ref = (ref - np.array(CLIP_MEAN, dtype=np.float32)) / np.array(CLIP_STD, dtype=np.float32)
    np.testing.assert_allclose(tensor.permute(1, 2, 0).numpy(), ref, rtol=0, atol=1e-5)
    # rectangular sizes are (height, width); grey-scale inputs become RGB
    tensor, _ = build_eval_transform((8, 12))(image.convert("L"), {}, None)
    assert tensor.shape == (3, 8, 12)


def test_crop_params_follow_generator_not_global_rng() -> None:
    torch.manual_seed(0)
    a = [random_resized_crop_params(H, W, (0.5, 1.0), (3 / 4, 4 / 3), sample_generator(1, 0, i)) for i in range(50)]
    torch.manual_seed(123)
    b = [random_resized_crop_params(H, W, (0.5, 1.0), (3 / 4, 4 / 3), sample_generator(1, 0, i)) for i in range(50)]
    assert a == b
    assert len(set(a)) > 40
    for top, left, h, w in a:
        assert 0 <= top and top + h <= H and 0 <= left and left + w <= W
        assert 0.5 * H * W * 0.9 <= h * w <= H * W  # within the scale range, up to rounding
        assert 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1


def test_flip_moves_dot_and_swaps_caption() -> None:
    transform = build_train_transform(24, scale=(0.9, 1.0))
    flips = 0
    for i in range(60):
        tensor, caps = transform(_dot_image(), {"en": "a red dot on the left", "de": "links ein roter Punkt"},
                                 sample_generator(0, 0, i))
        x = _red_centroid_x(tensor)
        if caps["en"] == "a red dot on the right":
            assert caps["de"] == "rechts ein roter Punkt"
            assert x > 0.5, (i, x)
            flips += 1
        else:
            assert caps == {"en": "a red dot on the left", "de": "links ein roter Punkt"}
            assert x < 0.5, (i, x)
    assert 15 <= flips <= 45  # p = 0.5


def test_language_without_lexicon_is_never_flipped() -> None:
    transform = build_train_transform(24, scale=(0.9, 1.0))
    for i in range(100):
        tensor, caps = transform(_dot_image(), {"en": "a red dot on the left", "vi": "chấm đỏ bên trái"},
                                 sample_generator(0, 0, i))
        assert caps["en"] == "a red dot on the left"
        assert _red_centroid_x(tensor) < 0.5


def test_hflip_off_and_same_generator_same_output() -> None:
    no_flip = build_train_transform(24, hflip=False)
    for i in range(30):
        _, caps = no_flip(_dot_image(), {"en": "on the left"}, sample_generator(0, 0, i))
        assert caps == {"en": "on the left"}
    transform = build_train_transform((16, 20))
    a, ca = transform(_dot_image(), {"en": "left"}, sample_generator(5, 2, 7))
    b, cb = transform(_dot_image(), {"en": "left"}, sample_generator(5, 2, 7))
    assert a.shape == (3, 16, 20)
    assert torch.equal(a, b) and ca == cb
    with pytest.raises(ValueError, match="scale"):
        build_train_transform(16, scale=(0.0, 1.0))


def test_sample_generator_mixes_inputs() -> None:
    draw = lambda *key: torch.rand(4, generator=sample_generator(*key))  # noqa: E731
    assert torch.equal(draw(1, 2, 3), draw(1, 2, 3))
    keys = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 2, 3), (3, 2, 1), (0, 0, 0)]
    assert len({tuple(draw(*k).tolist()) for k in keys}) == len(keys)
    with pytest.raises(ValueError, match="non-negative"):
        sample_generator(-1, 0, 0)


@pytest.fixture()
def records(tmp_path: Path) -> list[Record]:
    out = []
    for i in range(6):
        _dot_image(x=8 + 4 * i).save(tmp_path / f"{i}.png")
        out.append(Record(str(i), f"{i}.png", {
            "en": [f"dot {i} on the left", f"red dot {i} left", f"left dot {i}"],
            "de": [f"Punkt {i} links"],
            "ja": [f"左の点{i}", f"赤い点{i}は左"],
        }))
    return out


def test_dataset_sample_depends_only_on_seed_epoch_index(records: list[Record], tmp_path: Path) -> None:
    transform = build_train_transform(16)
    ds = CaptionDataset(records, tmp_path, ["en", "de", "ja"], transform, seed=3)
    forward = [ds[i] for i in range(len(ds))]
    backward = [ds[i] for i in reversed(range(len(ds)))][::-1]
    again = CaptionDataset(records, tmp_path, ["en", "de", "ja"], transform, seed=3)
    for a, b, c in zip(forward, backward, [again[i] for i in range(len(again))]):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["image"], c["image"])
        assert a["captions"] == b["captions"] == c["captions"]
        assert a["modal_lang"] == b["modal_lang"] == c["modal_lang"]
    sample = forward[2]
    assert sample["image_id"] == "2" and sample["image"].shape == (3, 16, 16)
    assert list(sample["captions"]) == ["en", "de", "ja"]
    assert sample["modal_lang"] in {"en", "de", "ja"}

    ds.set_epoch(1)
    epoch1 = [ds[i] for i in range(len(ds))]
    assert all(not torch.equal(a["image"], b["image"]) for a, b in zip(forward, epoch1))
    other_seed = CaptionDataset(records, tmp_path, ["en", "de", "ja"], transform, seed=4)
    assert any(not torch.equal(a["image"], other_seed[i]["image"]) for i, a in enumerate(forward))


def test_image_cache_decodes_each_image_once_and_changes_no_sample(
    records: list[Record], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    transform = build_train_transform(16)
    plain = CaptionDataset(records, tmp_path, ["en", "ja"], transform, seed=5)
    cached = CaptionDataset(records, tmp_path, ["en", "ja"], transform, seed=5, image_cache=4)
    opened: list[str] = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda path, *a, **k: (opened.append(Path(path).name), real_open(path, *a, **k))[1])
    for epoch in range(3):  # the flip and crop of a cached image must not leak into the next epoch
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(len(records)):
            a, b = plain[i], cached[i]
            assert torch.equal(a["image"], b["image"]) and a["captions"] == b["captions"]
    # plain: 6 images x 3 epochs; cached: its 4 slots filled in epoch 0, the other 2 read every epoch
    assert len(opened) == 18 + 4 + 2 * 3
    with pytest.raises(ValueError, match="image_cache"):
        CaptionDataset(records, tmp_path, ["en"], transform, image_cache=-1)


def test_dataset_same_under_dataloader_workers(records: list[Record], tmp_path: Path) -> None:
    ds = CaptionDataset(records, tmp_path, ["en", "ja"], build_train_transform(16), seed=0)
    ds.set_epoch(2)
    direct = [ds[i] for i in range(len(ds))]
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2, shuffle=False)
    for a, b in zip(direct, loader):
        assert torch.equal(a["image"], b["image"]) and a["captions"] == b["captions"]


def test_dataset_caption_choice_covers_all_captions(records: list[Record], tmp_path: Path) -> None:
    ds = CaptionDataset(records[:1], tmp_path, ["en", "ja"], build_eval_transform(8), seed=0)
    seen = {"en": set(), "ja": set()}
    for epoch in range(40):
        ds.set_epoch(epoch)
        caps = ds[0]["captions"]
        for lang in seen:
            seen[lang].add(caps[lang])
    assert seen["en"] == set(records[0].captions["en"])
    assert seen["ja"] == set(records[0].captions["ja"])


def test_dataset_rejects_missing_language_at_construction(records: list[Record], tmp_path: Path) -> None:
    bad = records[:3] + [Record("xyz", "3.png", {"en": ["a"], "de": []})]
    with pytest.raises(ManifestError, match=r"image_id 'xyz'.*'de'"):
        CaptionDataset(bad, tmp_path, ["en", "de"], build_eval_transform(8))
    with pytest.raises(ValueError, match="'EN'"):
        CaptionDataset(records, tmp_path, ["EN"], build_eval_transform(8))
    with pytest.raises(ValueError, match="empty"):
        CaptionDataset(records, tmp_path, [], build_eval_transform(8))
