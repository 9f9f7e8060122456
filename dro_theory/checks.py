"""Input validation shared by every layer (numpy only).

Each helper raises :class:`~dro_theory.errors.InputError` with a message of the form
``"<name>: expected <what>, found <what>"`` so that errors always name the parameter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dro_theory.errors import InputError

__all__ = [
    "SEED_LIMIT",
    "as_finite_array",
    "check_nonnegative",
    "check_positive",
    "check_radius",
    "check_seed",
    "check_weights",
]

#: seeds must fit torch's and numpy's generator seeds (a signed 64-bit integer) and be >= 0
SEED_LIMIT = 2**63


def check_seed(value: Any, name: str = "seed") -> int:
    """``value`` as an int in [0, 2^63); InputError naming ``name`` otherwise."""
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if not ok or not 0 <= int(value) < SEED_LIMIT:
        raise InputError(f"{name}: expected an integer >= 0 and < 2^63, found {value!r}")
    return int(value)


def as_finite_array(
    x: ArrayLike,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    min_size: int = 1,
) -> NDArray[np.float64]:
    """Convert ``x`` to a float64 array and check dimension, size and finiteness.

    Parameters
    ----------
    x : array_like
        The input.
    name : str
        Parameter name used in error messages.
    ndim : int or tuple of int, optional
        Allowed number(s) of dimensions.
    min_size : int
        Minimum length of the last axis.

    Returns
    -------
    numpy.ndarray
        A float64 copy-or-view of ``x``.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected an array of numbers, found {type(x).__name__}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise InputError(f"{name}: expected a {want} array, found shape {arr.shape}")
    if arr.ndim == 0 or arr.shape[-1] < min_size:
        found = arr.shape if arr.ndim else "a scalar"
        raise InputError(f"{name}: expected at least {min_size} entries, found {found}")
    if not np.all(np.isfinite(arr)):
        bad = np.size(arr) - int(np.isfinite(arr).sum())
        raise InputError(f"{name}: expected finite values, found {bad} NaN/inf entries")
    return arr


def check_weights(
    weights: ArrayLike | None, n: int, name: str = "weights", *, atol: float = 1e-6
) -> NDArray[np.float64]:
    """Return a probability vector of length ``n`` (uniform when ``weights`` is None).

    Parameters
    ----------
    weights : array_like or None
        Reference probabilities q0; must be non-negative, of length ``n`` and sum to 1 within
        ``atol`` (they are then renormalised exactly).
    n : int
        Expected length.
    """
    if weights is None:
        return np.full(n, 1.0 / n)
    w = as_finite_array(weights, name, ndim=1)
    if w.shape != (n,):
        raise InputError(f"{name}: expected shape ({n},) to match the scores, found {w.shape}")
    if np.any(w < 0):
        raise InputError(f"{name}: expected non-negative weights, found min {w.min():.3g}")
    total = float(w.sum())
    if abs(total - 1.0) > atol:
        raise InputError(f"{name}: expected weights summing to 1, found sum {total:.12g}")
    return w / total


def check_nonnegative(value: Any, name: str) -> float:
    """Check that ``value`` is a finite number ≥ 0 (a radius, a weight decay …)."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected a non-negative number, found {value!r}") from exc
    if not np.isfinite(v) or v < 0:
        raise InputError(f"{name}: expected a finite non-negative number, found {v!r}")
    return v


def check_radius(radius: Any, name: str = "radius") -> float:
    """Check that a ball radius is a finite non-negative number."""
    return check_nonnegative(radius, name)


def check_positive(value: Any, name: str) -> float:
    """Check that ``value`` is a finite number > 0 (e.g. a temperature)."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected a positive number, found {value!r}") from exc
    if not np.isfinite(v) or v <= 0:
        raise InputError(f"{name}: expected a finite number > 0, found {v!r}")
    return v
