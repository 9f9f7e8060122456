"""Data loaders: subsets, caching, IDX parsing and the error paths."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CIFAR_NPZ

from dro_theory.errors import InputError
from validation.training.data import (
    load_cifar10,
    load_dataset,
    load_digits_data,
    load_fashion_mnist,
    stratified_subset,
)


def test_stratified_subset_is_balanced_seeded_and_without_repeats() -> None:
    labels = np.repeat(np.arange(10), 100)
    idx = stratified_subset(labels, 250, seed=3)
    assert len(idx) == 250 and len(np.unique(idx)) == 250
    # 25 per class exactly (250 · 100/1000)
    assert np.all(np.bincount(labels[idx], minlength=10) == 25)
    assert np.array_equal(idx, stratified_subset(labels, 250, seed=3))
    assert not np.array_equal(idx, stratified_subset(labels, 250, seed=4))


def test_stratified_subset_rejects_bad_sizes() -> None:
    with pytest.raises(InputError, match=r"subset: expected an integer in \[1, 10\]"):
        stratified_subset(np.arange(10), 11, seed=0)
    with pytest.raises(InputError, match="subset: expected an integer"):
        stratified_subset(np.arange(10), 0, seed=0)


def test_digits_shapes_dtypes_and_split() -> None:
    d = load_digits_data(seed=0)
    assert d.x_train.dtype == torch.uint8 and d.x_train.shape[1:] == (1, 8, 8)
    assert d.x_train.shape[0] + d.x_test.shape[0] == 1797
    assert d.x_test.shape[0] == round(1797 * 0.2)
    assert int(d.x_train.max()) == 255  # 16 → 255
    assert d.y_train.dtype == torch.int64 and d.num_classes == 10
    assert d.channels == 1 and d.image_size == 8


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_idx_gzip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    xtr = rng.integers(0, 256, (30, 28, 28))
    ytr = np.arange(30) % 10
    xte = rng.integers(0, 256, (10, 28, 28))
    yte = np.arange(10)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", xtr)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", ytr)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", xte)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", yte)
    d = load_fashion_mnist(tmp_path, seed=0)
    assert d.x_train.shape == (30, 1, 28, 28) and d.x_test.shape == (10, 1, 28, 28)
    # the permutation keeps image/label pairs together
    order = d.x_test[:, 0].reshape(10, -1).numpy()
    for row, label in zip(order, d.y_test.numpy(), strict=True):
        assert np.array_equal(row, xte[label].reshape(-1))


def test_fashion_mnist_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "absent")
    with pytest.raises(InputError, match="train-images-idx3-ubyte"):
        load_fashion_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(InputError, match="expected an IDX file"):
        load_fashion_mnist(tmp_path)


def test_cifar_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="data: expected the CIFAR-10 npz"):
        load_cifar10(tmp_path / "nope.npz")


def test_cifar_wrong_files(tmp_path: Path) -> None:
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(InputError, match="data: expected an npz file"):
        load_cifar10(text)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(InputError, match="data: expected an npz file, found a single array"):
        load_cifar10(single)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(InputError, match="data: expected keys jpeg_train"):
        load_cifar10(other)


def test_unknown_dataset() -> None:
    with pytest.raises(InputError, match="dataset: expected one of cifar10, digits"):
        load_dataset("mnist")


@pytest.mark.skipif(not CIFAR_NPZ.is_file(), reason=f"CIFAR-10 npz absent at {CIFAR_NPZ}")
def test_cifar_subset_and_cache(tmp_path: Path) -> None:
    d = load_cifar10(CIFAR_NPZ, subset=50, test_subset=20, seed=1, cache_dir=tmp_path)
    assert d.x_train.shape == (50, 3, 32, 32) and d.x_test.shape == (20, 3, 32, 32)
    assert d.x_train.dtype == torch.uint8
    assert np.all(np.bincount(d.y_train.numpy(), minlength=10) == 5)
    cached = list(tmp_path.glob("cifar10-decoded-*.npz"))
    assert len(cached) == 1 and not list(tmp_path.glob(".*.tmp"))
    again = load_cifar10(CIFAR_NPZ, subset=50, test_subset=20, seed=1, cache_dir=tmp_path)
    assert torch.equal(again.x_train, d.x_train) and torch.equal(again.y_test, d.y_test)
    # a different seed is a different cache entry and a different subset
    other = load_cifar10(CIFAR_NPZ, subset=50, test_subset=20, seed=2, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("cifar10-decoded-*.npz"))) == 2
    assert not torch.equal(other.x_train, d.x_train)
    # decoded pixels are real images: not constant, mean in a plausible range
    assert 0.2 < float(d.x_train.float().mean()) / 255 < 0.8
