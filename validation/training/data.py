"""Real image data sets for contrastive training, decoded once and cached as uint8 arrays.

Three sources, all offline:

* **CIFAR-10** from the project's ``cifar10-jpeg.npz`` (JPEG bytes + offsets, see
  ``shared/data/README.md``). The images are decoded with Pillow once; the decoded subset is
  cached as an uncompressed ``.npz`` in ``cache_dir``, keyed by the file's SHA-256, the subset
  sizes and the seed, and written atomically.
* **digits** (1,797 8×8 grey images) from scikit-learn, rescaled from 0..16 to 0..255.
* **Fashion-MNIST** from the Debian package ``dataset-fashion-mnist`` (IDX, gzip).

Every loader returns an :class:`ImageData`: uint8 tensors of shape (N, C, H, W) and int64 labels,
plus the per-channel mean and standard deviation (of the training split, in [0, 1] units) used
to normalise the network input.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from dro_theory.errors import InputError
from validation.atomic import atomic_path

__all__ = [
    "DATASETS",
    "DEFAULT_CIFAR_NPZ",
    "FASHION_MNIST_DIR",
    "LOCAL_CIFAR_NPZ",
    "ImageData",
    "default_cifar_npz",
    "load_cifar10",
    "load_dataset",
    "load_digits_data",
    "load_fashion_mnist",
    "stratified_subset",
]

#: the names :func:`load_dataset` accepts
DATASETS = ("cifar10", "digits", "fashion-mnist")
#: the checkout's root folder
_REPO_ROOT = Path(__file__).resolve().parents[2]
#: the git-ignored copy inside the checkout (travels with the repository to a GPU machine)
LOCAL_CIFAR_NPZ = _REPO_ROOT / "data-local" / "cifar10-jpeg.npz"
#: the CIFAR-10 npz beside the checkout: ``<repo root>/../shared/data/cifar10-jpeg.npz``
DEFAULT_CIFAR_NPZ = _REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg.npz"


def default_cifar_npz(candidates: tuple[Path, ...] = (LOCAL_CIFAR_NPZ, DEFAULT_CIFAR_NPZ)) -> Path:
    """The first existing CIFAR-10 npz of ``candidates`` (the in-repo copy, then the shared one).

    Raises
    ------
    InputError
        None of them exists (the message names every path tried).
    """
    for path in candidates:
        if path.is_file():
            return path
    raise InputError(
        "data: expected the CIFAR-10 npz (cifar10-jpeg.npz) at one of "
        f"{', '.join(str(p) for p in candidates)}, found none; pass --data PATH"
    )


#: where the Debian package ``dataset-fashion-mnist`` installs its files
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_CIFAR_KEYS = ("jpeg_train", "offsets_train", "y_train", "jpeg_test", "offsets_test", "y_test")


@dataclass(frozen=True)
class ImageData:
    """A labelled image data set, train and test splits, as uint8 tensors.

    Attributes
    ----------
    name : str
        Data set name.
    x_train, x_test : torch.Tensor
        uint8, shape (N, C, H, W).
    y_train, y_test : torch.Tensor
        int64 class labels, shape (N,).
    mean, std : tuple of float
        Per-channel mean and standard deviation of ``x_train / 255``.
    num_classes : int
        Number of classes.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int

    @property
    def channels(self) -> int:
        """Number of image channels C."""
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        """Side H (= W) of the images."""
        return int(self.x_train.shape[2])


def stratified_subset(
    labels: NDArray[np.integer], size: int | None, seed: int, name: str = "subset"
) -> NDArray[np.int64]:
    """Indices of a shuffled, class-stratified subset of ``size`` items (all items if None).

    Each class contributes ``size · n_c / n`` items (largest remainders get the leftover), drawn
    without replacement with ``numpy.random.default_rng(seed)``; the result is shuffled.
    """
    n = len(labels)
    rng = np.random.default_rng(seed)
    if size is None:
        return rng.permutation(n).astype(np.int64)
    if not isinstance(size, int | np.integer) or size < 1 or size > n:
        raise InputError(f"{name}: expected an integer in [1, {n}], found {size!r}")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (size / n)
    take = np.floor(exact).astype(np.int64)
    leftover = size - int(take.sum())
    order = np.argsort(-(exact - take), kind="stable")
    take[order[:leftover]] += 1
    picked = [
        rng.choice(np.flatnonzero(labels == c), size=int(k), replace=False)
        for c, k in zip(classes, take, strict=True)
    ]
    out = np.concatenate(picked).astype(np.int64)
    return out[rng.permutation(len(out))]


def _channel_stats(x: NDArray[np.uint8]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    xf = x.astype(np.float64) / 255.0
    mean = xf.mean(axis=(0, 2, 3))
    std = np.maximum(xf.std(axis=(0, 2, 3)), 1e-3)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _make(
    name: str,
    x_train: NDArray[np.uint8],
    y_train: NDArray[np.integer],
    x_test: NDArray[np.uint8],
    y_test: NDArray[np.integer],
    num_classes: int,
) -> ImageData:
    mean, std = _channel_stats(x_train)
    return ImageData(
        name=name,
        x_train=torch.from_numpy(np.ascontiguousarray(x_train)),
        y_train=torch.from_numpy(np.asarray(y_train, dtype=np.int64)),
        x_test=torch.from_numpy(np.ascontiguousarray(x_test)),
        y_test=torch.from_numpy(np.asarray(y_test, dtype=np.int64)),
        mean=mean,
        std=std,
        num_classes=num_classes,
    )


# ------------------------------------------------------------------------------------------
# CIFAR-10
# ------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _decode(jpeg: NDArray[np.uint8], offsets: NDArray[np.int64], idx: NDArray[np.int64]) -> NDArray:
    from PIL import Image

    out = np.empty((len(idx), 32, 32, 3), dtype=np.uint8)
    raw = jpeg.tobytes() if not isinstance(jpeg, bytes) else jpeg
    for k, i in enumerate(idx):
        blob = raw[int(offsets[i]) : int(offsets[i + 1])]
        with Image.open(io.BytesIO(blob)) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        if arr.shape != (32, 32, 3):
            raise InputError(f"data: expected 32×32 RGB images, found shape {arr.shape}")
        out[k] = arr
    return out.transpose(0, 3, 1, 2)


def load_cifar10(
    path: str | os.PathLike[str] = DEFAULT_CIFAR_NPZ,
    *,
    subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ImageData:
    """CIFAR-10 from the JPEG npz, with an optional stratified subset of each split.

    Parameters
    ----------
    path : path-like
        The ``cifar10-jpeg.npz`` file (keys ``jpeg_train``, ``offsets_train``, ``y_train`` and
        the same for ``test``).
    subset, test_subset : int, optional
        Sizes of the class-stratified, seeded subsets of the training and test splits (all
        50,000 / 10,000 images when None).
    seed : int
        Seed of the subset draw (the test subset uses ``seed + 1``).
    cache_dir : path-like, optional
        Folder for the decoded uint8 cache. Keyed by the npz's SHA-256, the sizes and the seed.

    Raises
    ------
    InputError
        If the file is missing, is not an npz, or lacks the expected keys.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"data: expected the CIFAR-10 npz (cifar10-jpeg.npz), found no file at {path}"
        )
    cache: Path | None = None
    if cache_dir is not None:
        key = f"{_sha256(path)[:16]}-{subset}-{test_subset}-{seed}"
        cache = Path(cache_dir) / f"cifar10-decoded-{key}.npz"
        if cache.is_file():
            with np.load(cache) as z:
                return _make("cifar10", z["x_train"], z["y_train"], z["x_test"], z["y_test"], 10)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"data: expected an npz file, found an unreadable file {path}") from exc
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise InputError(f"data: expected an npz file, found a single array in {path}")
    with z:
        missing = [k for k in _CIFAR_KEYS if k not in z.files]
        if missing:
            raise InputError(
                f"data: expected keys {', '.join(_CIFAR_KEYS)} in {path.name}, "
                f"found {sorted(z.files)}"
            )
        arrays = {k: z[k] for k in _CIFAR_KEYS}
    y_tr_all = arrays["y_train"].astype(np.int64)
    y_te_all = arrays["y_test"].astype(np.int64)
    i_tr = stratified_subset(y_tr_all, subset, seed, "subset")
    i_te = stratified_subset(y_te_all, test_subset, seed + 1, "test_subset")
    x_tr = _decode(arrays["jpeg_train"], arrays["offsets_train"], i_tr)
    x_te = _decode(arrays["jpeg_test"], arrays["offsets_test"], i_te)
    y_tr, y_te = y_tr_all[i_tr], y_te_all[i_te]
    if cache is not None:
        with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    return _make("cifar10", x_tr, y_tr, x_te, y_te, 10)


# ------------------------------------------------------------------------------------------
# digits (scikit-learn)
# ------------------------------------------------------------------------------------------
def load_digits_data(
    *, subset: int | None = None, test_fraction: float = 0.2, seed: int = 0
) -> ImageData:
    """scikit-learn's 8×8 digits (1,797 images), as uint8 (0..16 scaled to 0..255).

    The split is class-stratified and seeded: ``test_fraction`` of the (optionally subset)
    images form the test split.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction: expected a number in (0, 1), found {test_fraction!r}")
    idx = stratified_subset(y, subset, seed, "subset")
    n_test = max(1, round(len(idx) * test_fraction))
    test_pos = stratified_subset(y[idx], n_test, seed + 1, "test_fraction")
    is_test = np.zeros(len(idx), dtype=bool)
    is_test[test_pos] = True
    tr, te = idx[~is_test], idx[is_test]
    return _make("digits", x[tr], y[tr], x[te], y[te], 10)


# ------------------------------------------------------------------------------------------
# Fashion-MNIST (IDX, gzip)
# ------------------------------------------------------------------------------------------
def _read_idx(path: Path) -> NDArray[np.uint8]:
    """Read an IDX file (optionally gzip-compressed) of unsigned bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise InputError(f"data: expected an IDX file of unsigned bytes, found {path.name}")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise InputError(
            f"data: expected {int(np.prod(dims))} bytes in {path.name}, found {body.size}"
        )
    return body.reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (root / name).is_file():
            return root / name
    raise InputError(
        f"data: expected Fashion-MNIST file {stem}(.gz) in {root}, found none "
        "(install it with `apt-get install dataset-fashion-mnist`)"
    )


def load_fashion_mnist(
    root: str | os.PathLike[str] = FASHION_MNIST_DIR,
    *,
    subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
) -> ImageData:
    """Fashion-MNIST (60k train, 10k test, 28×28 grey) from IDX gzip files in ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(
            f"data: expected the Fashion-MNIST folder {root}, found nothing there "
            "(install it with `apt-get install dataset-fashion-mnist`)"
        )
    x_tr = _read_idx(_find(root, "train-images-idx3-ubyte"))
    y_tr = _read_idx(_find(root, "train-labels-idx1-ubyte")).astype(np.int64)
    x_te = _read_idx(_find(root, "t10k-images-idx3-ubyte"))
    y_te = _read_idx(_find(root, "t10k-labels-idx1-ubyte")).astype(np.int64)
    if x_tr.ndim != 3 or len(x_tr) != len(y_tr) or x_te.ndim != 3 or len(x_te) != len(y_te):
        raise InputError(
            f"data: expected matching image/label files, found {x_tr.shape}/{y_tr.shape} "
            f"and {x_te.shape}/{y_te.shape}"
        )
    i_tr = stratified_subset(y_tr, subset, seed, "subset")
    i_te = stratified_subset(y_te, test_subset, seed + 1, "test_subset")
    return _make(
        "fashion-mnist", x_tr[i_tr][:, None], y_tr[i_tr], x_te[i_te][:, None], y_te[i_te], 10
    )


def load_dataset(
    name: str,
    *,
    data: str | os.PathLike[str] | None = None,
    subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ImageData:
    """Load a data set by name (``cifar10``, ``digits``, ``fashion-mnist``).

    ``data`` is the npz path for CIFAR-10 and the folder for Fashion-MNIST (defaults:
    :func:`default_cifar_npz`, :data:`FASHION_MNIST_DIR`); digits ignores it. When ``subset``
    is given and ``test_subset`` is not, the test split is cut to ``subset // 5`` images
    (the 10k/2k protocol of the data README).
    """
    key = str(name).strip().lower()
    if subset is not None and test_subset is None and key != "digits":
        test_subset = max(1, subset // 5)
    if key == "cifar10":
        return load_cifar10(
            default_cifar_npz() if data is None else data,
            subset=subset,
            test_subset=test_subset,
            seed=seed,
            cache_dir=cache_dir,
        )
    if key == "digits":
        return load_digits_data(subset=subset, seed=seed)
    if key in {"fashion-mnist", "fashion_mnist", "fmnist"}:
        return load_fashion_mnist(
            FASHION_MNIST_DIR if data is None else data,
            subset=subset,
            test_subset=test_subset,
            seed=seed,
        )
    raise InputError(f"dataset: expected one of {', '.join(DATASETS)}, found {name!r}")
