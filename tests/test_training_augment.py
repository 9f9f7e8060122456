"""Batched augmentations: shapes, dtypes, ranges, exact special cases, reproducibility."""

from __future__ import annotations

import pytest
import torch

from dro_theory.errors import InputError
from validation.training.augment import DigitsAugment, SimCLRAugment, normalize

MEAN = (0.5, 0.4, 0.3)
STD = (0.25, 0.2, 0.3)


def _images(n: int = 6, c: int = 3, s: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, s, s), generator=g, dtype=torch.uint8)


def _unnormalize(v: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return v * s + m


def test_simclr_shapes_dtype_range() -> None:
    x = _images()
    v = SimCLRAugment(MEAN, STD)(x, torch.Generator().manual_seed(1))
    assert v.shape == x.shape and v.dtype == torch.float32
    raw = _unnormalize(v, MEAN, STD)
    # every step clamps to [0, 1]; float32 round-off of normalise/unnormalise ~1e-6
    assert float(raw.min()) >= -1e-5 and float(raw.max()) <= 1 + 1e-5


def test_simclr_reproducible_from_generator() -> None:
    x = _images()
    aug = SimCLRAugment(MEAN, STD)
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    c = aug(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_parameters_of_a_slice_give_the_slice_of_the_batch() -> None:
    x = _images(8)
    aug = SimCLRAugment(MEAN, STD)
    params = aug.sample(8, torch.Generator().manual_seed(3))
    full = aug.apply(x, params)
    part = aug.apply(x[2:5], params.select(slice(2, 5)))
    torch.testing.assert_close(part, full[2:5], rtol=0, atol=1e-6)


def test_identity_settings_return_the_normalised_image() -> None:
    """Full-image crop, no flip, no jitter, no grey: grid_sample at the identity grid."""
    x = _images()
    aug = SimCLRAugment(
        MEAN, STD, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, gray_p=0.0
    )
    v = aug(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(v, normalize(x, MEAN, STD), rtol=0, atol=1e-4)


def test_flip_and_grayscale_are_exact() -> None:
    x = _images()
    flip = SimCLRAugment(
        MEAN, STD, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=1.0, jitter_p=0.0, gray_p=0.0
    )
    v = flip(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(v, normalize(x.flip(-1), MEAN, STD), rtol=0, atol=1e-4)
    grey = SimCLRAugment(MEAN, STD, jitter_p=0.0, gray_p=1.0)
    raw = _unnormalize(grey(x, torch.Generator().manual_seed(0)), MEAN, STD)
    torch.testing.assert_close(raw[:, 0], raw[:, 1], rtol=0, atol=1e-5)
    torch.testing.assert_close(raw[:, 1], raw[:, 2], rtol=0, atol=1e-5)


def test_brightness_only_jitter_scales_pixels() -> None:
    """With contrast = saturation = hue = 0, jitter multiplies the image by one factor."""
    x = torch.full((4, 3, 8, 8), 100, dtype=torch.uint8)
    aug = SimCLRAugment(
        MEAN,
        STD,
        scale=(1.0, 1.0),
        ratio=(1.0, 1.0),
        flip_p=0.0,
        jitter_p=1.0,
        gray_p=0.0,
        brightness=0.4,
        contrast=0.0,
        saturation=0.0,
        hue=0.0,
    )
    params = aug.sample(4, torch.Generator().manual_seed(5))
    raw = _unnormalize(aug.apply(x, params), MEAN, STD)
    assert params.jitter is not None
    expected = (100 / 255 * params.jitter[:, 0]).clamp(0, 1)
    torch.testing.assert_close(raw.mean(dim=(1, 2, 3)), expected, rtol=0, atol=1e-5)


def test_digits_augment_shapes_and_reproducibility() -> None:
    x = _images(5, c=1, s=8)
    aug = DigitsAugment((0.3,), (0.4,))
    a = aug(x, torch.Generator().manual_seed(0))
    b = aug(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.dtype == torch.float32 and torch.equal(a, b)
    raw = _unnormalize(a, (0.3,), (0.4,))
    assert float(raw.min()) >= -1e-5 and float(raw.max()) <= 1 + 1e-5
    params = aug.sample(5, torch.Generator().manual_seed(1))
    torch.testing.assert_close(
        aug.apply(x[1:3], params.select(slice(1, 3))), aug.apply(x, params)[1:3], rtol=0, atol=0
    )


def test_bad_inputs() -> None:
    aug = SimCLRAugment(MEAN, STD)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(InputError, match=r"x: expected uint8 images, found torch\.float32"):
        aug(torch.zeros(2, 3, 8, 8), g)
    with pytest.raises(InputError, match=r"x: expected a \(B, C, H, W\) batch"):
        aug(torch.zeros(3, 8, 8, dtype=torch.uint8), g)
    with pytest.raises(InputError, match="x: expected 3 channels, found 1"):
        aug(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), g)
    with pytest.raises(InputError, match="params: expected 2 samples, found 3"):
        aug.apply(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), aug.sample(3, g))
