"""Per-variable strictly increasing maps fitted on the training split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

__all__ = ["ColumnMap"]


@dataclass(frozen=True)
class ColumnMap:
    """A strictly increasing map of every column, fitted on the training rows.

    ``standardize``: (a − mean)/sd. ``rank``: z = Φ⁻¹(F̂(a)) with F̂ the training split's
    empirical CDF at mid-ranks ((i − ½)/m), linearly interpolated between distinct training
    values and continued beyond the extremes as ±log(1 + distance/training range), so the map
    stays strictly increasing (injective) on new rows. Every φ-MI is invariant under such maps.
    """

    kind: str
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    knots: tuple[NDArray[np.float64], ...] = ()
    values: tuple[NDArray[np.float64], ...] = ()

    @classmethod
    def fit(cls, a: NDArray[np.float64], kind: str) -> ColumnMap:
        """Fit the map of kind ``standardize`` or ``rank`` on the rows of ``a`` (m, d)."""
        mean, scale = a.mean(axis=0), a.std(axis=0)
        scale[scale == 0] = 1.0  # constant on the training rows only: centred, unscaled
        if kind == "standardize":
            return cls(kind, mean, scale)
        m = a.shape[0]
        knots, values = [], []
        for j in range(a.shape[1]):
            col = np.sort(a[:, j])
            uniq, first, counts = np.unique(col, return_index=True, return_counts=True)
            mid_rank = first + 0.5 * (counts + 1)  # average 1-based rank of each tie group
            knots.append(uniq)
            values.append(special.ndtri((mid_rank - 0.5) / m))
        return cls(kind, mean, scale, tuple(knots), tuple(values))

    def __call__(self, a: NDArray[np.float64]) -> NDArray[np.float64]:
        """The mapped copy of ``a`` (same shape)."""
        if self.kind == "standardize":
            return (a - self.mean) / self.scale
        out = np.empty_like(a)
        for j, (k, v) in enumerate(zip(self.knots, self.values, strict=True)):
            col = a[:, j]
            width = float(k[-1] - k[0]) or 1.0
            z = np.interp(col, k, v)
            below = np.log1p(np.maximum(k[0] - col, 0.0) / width)
            above = np.log1p(np.maximum(col - k[-1], 0.0) / width)
            out[:, j] = z - below + above  # each term is 0 inside the training range
        return out
