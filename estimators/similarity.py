r"""Embeddings → per-anchor cosine similarities to the negatives (the scores of the DRO view).

One view Z (N × d): each row is an anchor and its N − 1 negatives are the other rows.
Two views Z1, Z2 (N × d each, row i of both is a positive pair): the SimCLR / NT-Xent layout
of the 2N embeddings ``cat(Z1, Z2)``; anchor k's positive is its partner and its 2N − 2
negatives are all other embeddings (Wu et al., NeurIPS 2023, eq. (1): InfoNCE's denominator).
Similarities are cosines in float64: s = ⟨z_a, z_b⟩ / (‖z_a‖ ‖z_b‖).

These scores feed :func:`dro_theory.advisor.advise_radius` and
:func:`dro_theory.advisor.advise_temperature`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dro_theory.advisor import TemperatureAdvice, advise
from dro_theory.checks import as_finite_array
from dro_theory.errors import InputError
from estimators.losses.layout import AnchorIndex, negative_mask

__all__ = ["NegativeScores", "advise_from_embeddings", "negative_scores"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class NegativeScores:
    """Cosine similarities of each anchor to its negatives (and to its positive).

    Attributes
    ----------
    negatives : ndarray, shape (A, M)
        Row a: cosines of anchor a to its M negatives (M = N − 1 for one view, 2N − 2 for
        two views), in the order of the embeddings with the excluded columns removed.
    positives : ndarray of shape (A,), or None
        Cosine of each anchor to its positive (two views only).
    """

    negatives: FloatArray
    positives: FloatArray | None


def _unit_rows(z: ArrayLike, name: str) -> FloatArray:
    arr = as_finite_array(z, name, ndim=2)
    norms = np.linalg.norm(arr, axis=1)
    if np.any(norms == 0):
        row = int(np.flatnonzero(norms == 0)[0])
        raise InputError(f"{name}: expected non-zero embeddings, found a zero row at index {row}")
    return np.asarray(arr / norms[:, None], dtype=np.float64)


def negative_scores(z1: ArrayLike, z2: ArrayLike | None = None) -> NegativeScores:
    r"""Per-anchor cosine similarities to the negatives, from one or two views.

    Parameters
    ----------
    z1 : array_like, shape (N, d)
        Embeddings (view 1); N ≥ 3 for one view, N ≥ 2 for two views.
    z2 : array_like, shape (N, d), optional
        The second view; row i of ``z1`` and ``z2`` is a positive pair.

    Returns
    -------
    NegativeScores
        One view: (N, N − 1) negatives, no positives. Two views: (2N, 2N − 2) negatives of
        the anchors ``cat(z1, z2)`` and their (2N,) positive cosines.

    Raises
    ------
    InputError
        Non-2-D, non-finite or zero embeddings, too few rows, or views of different shapes.
    """
    u1 = _unit_rows(z1, "embeddings")
    if z2 is None:
        n = u1.shape[0]
        if n < 3:
            raise InputError(f"embeddings: expected at least 3 rows, found {n}")
        sim = u1 @ u1.T
        keep = ~np.eye(n, dtype=bool)
        return NegativeScores(negatives=sim[keep].reshape(n, n - 1), positives=None)
    u2 = _unit_rows(z2, "embeddings (view 2)")
    if u2.shape != u1.shape:
        raise InputError(
            f"embeddings: expected two views of the same shape, found {u1.shape} and {u2.shape}"
        )
    n = u1.shape[0]
    if n < 2:
        raise InputError(f"embeddings: expected at least 2 pairs, found {n}")
    u = np.concatenate([u1, u2])
    sim = u @ u.T
    layout = AnchorIndex.nt_xent(2 * n)  # the training layout: positive (i + n) mod 2n, no self
    keep = negative_mask(layout, 2 * n).numpy()
    partner = layout.pos_index.numpy()
    return NegativeScores(
        negatives=sim[keep].reshape(2 * n, 2 * n - 2), positives=sim[np.arange(2 * n), partner]
    )


def advise_from_embeddings(
    z1: ArrayLike,
    z2: ArrayLike | None = None,
    *,
    radius: float | None = None,
    temperature: float | None = None,
) -> TemperatureAdvice:
    """The temperature advisor on embeddings: exactly one of ``radius`` / ``temperature``.

    Parameters
    ----------
    z1, z2 : array_like
        As in :func:`negative_scores`.
    radius : float, optional
        η > 0: solve τ per anchor (:func:`dro_theory.advisor.advise_radius`).
    temperature : float, optional
        τ > 0: the implied η per anchor (:func:`dro_theory.advisor.advise_temperature`).

    Returns
    -------
    TemperatureAdvice

    Raises
    ------
    InputError
        Both or neither of ``radius`` and ``temperature``; bad embeddings.
    """
    scores = negative_scores(z1, z2).negatives
    return advise(scores, radius=radius, temperature=temperature)
