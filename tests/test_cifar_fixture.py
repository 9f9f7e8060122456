"""The CIFAR-10 loader on a tiny npz made in the test (same format as cifar10-jpeg.npz).

The shared data file is absent in CI; this fixture packs a few JPEG images exactly as the
real file does (concatenated JPEG bytes, offsets, uint8 labels), so the loader's decoding,
stratified subsets, channel statistics and cache run everywhere.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from validation.training.data import load_cifar10

PER_CLASS = {"train": 3, "test": 2}
#: JPEG is lossy: a decoded pixel of a flat-colour image differs by a few grey levels at most
JPEG_TOL = 8


def _colour(label: int, k: int) -> tuple[int, int, int]:
    return (20 * label + 5, 255 - 20 * label, 40 + 10 * k)


def _pack(split: str) -> dict[str, np.ndarray]:
    blobs, labels = [], []
    for label in range(10):
        for k in range(PER_CLASS[split]):
            buf = io.BytesIO()
            Image.new("RGB", (32, 32), _colour(label, k)).save(buf, format="JPEG", quality=75)
            blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
            labels.append(label)
    offsets = np.r_[0, np.cumsum([len(b) for b in blobs])].astype(np.int64)
    return {
        f"jpeg_{split}": np.concatenate(blobs),
        f"offsets_{split}": offsets,
        f"y_{split}": np.asarray(labels, dtype=np.uint8),
    }


@pytest.fixture
def tiny_cifar(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-cifar10-jpeg.npz"
    np.savez(path, **_pack("train"), **_pack("test"))
    return path


def test_loader_decodes_the_fixture(tiny_cifar: Path, tmp_path: Path) -> None:
    d = load_cifar10(tiny_cifar, cache_dir=tmp_path / "cache")
    assert d.x_train.shape == (30, 3, 32, 32) and d.x_test.shape == (20, 3, 32, 32)
    assert d.x_train.dtype == torch.uint8 and d.num_classes == 10
    assert np.all(np.bincount(d.y_train.numpy(), minlength=10) == 3)
    # every image decodes to its own flat colour (within JPEG rounding), matched by label
    for x, y in zip(d.x_train, d.y_train, strict=True):
        pix = x.reshape(3, -1).float().mean(dim=1).numpy()
        candidates = [np.asarray(_colour(int(y), k)) for k in range(PER_CLASS["train"])]
        assert min(float(np.abs(pix - c).max()) for c in candidates) <= JPEG_TOL
    assert len(d.mean) == 3 and all(0 < s for s in d.std)


def test_loader_subset_and_cache(tiny_cifar: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    d = load_cifar10(tiny_cifar, subset=20, test_subset=10, seed=1, cache_dir=cache)
    assert np.all(np.bincount(d.y_train.numpy(), minlength=10) == 2)
    assert np.all(np.bincount(d.y_test.numpy(), minlength=10) == 1)
    assert len(list(cache.glob("cifar10-decoded-*.npz"))) == 1
    again = load_cifar10(tiny_cifar, subset=20, test_subset=10, seed=1, cache_dir=cache)
    assert torch.equal(again.x_train, d.x_train) and torch.equal(again.y_test, d.y_test)
