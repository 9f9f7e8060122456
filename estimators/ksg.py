r"""Kraskov–Stögbauer–Grassberger k-nearest-neighbour estimator of Shannon (KL) mutual information.

The non-neural baseline for :class:`estimators.phi_mi.PhiMI` with ``divergence="kl"``.
Kraskov, Stögbauer & Grassberger, *Estimating mutual information*, Phys. Rev. E 69, 066138
(2004), estimator 1 (their Eq. 8):

.. math::

    \hat I(X;Y) = \psi(k) + \psi(N) - \frac1N \sum_{i=1}^N
        \bigl[\psi(n_{x,i} + 1) + \psi(n_{y,i} + 1)\bigr],

where ψ is the digamma function, ε_i is the max-norm distance from z_i = (x_i, y_i) to its
k-th nearest neighbour in the joint space (the max-norm over the joint vector, i.e. the maximum
of the two marginal max-norms), and n_{x,i} (n_{y,i}) counts the points j ≠ i with
‖x_j − x_i‖_∞ < ε_i (strictly) in the X (Y) space.

Properties worth knowing: the estimator is exact in expectation for independent X, Y (up to
fluctuations), nearly unbiased for low-dimensional smooth densities, and strongly biased
*downwards* in high dimension or at high MI (the k-NN balls cannot resolve a thin joint
density); it is not invariant under per-variable monotone maps at finite N even though the MI
is. It estimates KL mutual information only; there is no analogue here for other φ.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree
from scipy.special import digamma

from dro_theory.checks import as_finite_array
from dro_theory.errors import InputError

__all__ = ["ksg_mi"]


def _as_2d(a: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = as_finite_array(a, name, ndim=(1, 2))
    return arr[:, None] if arr.ndim == 1 else arr


def ksg_mi(
    x: ArrayLike,
    y: ArrayLike,
    k: int = 3,
    *,
    standardize: bool = True,
    jitter: float = 0.0,
    seed: int | np.random.Generator | None = 0,
) -> float:
    r"""KSG estimator 1 of the Shannon mutual information I(X;Y) in nats.

    Parameters
    ----------
    x : array_like, shape (n,) or (n, d_x)
    y : array_like, shape (n,) or (n, d_y)
        Paired samples (row i of ``x`` goes with row i of ``y``).
    k : int
        Neighbour order (Kraskov et al. recommend 2–4; larger k lowers variance, raises bias).
    standardize : bool
        Scale every column to unit standard deviation first (the max-norm mixes coordinates,
        so the finite-sample estimate depends on their scales).
    jitter : float
        Standard deviation of Gaussian noise added after standardising, to break ties in
        discrete or rounded data (Kraskov et al. add ~1e-10). 0 disables it.
    seed : int or numpy.random.Generator, optional
        Seed of the jitter noise (unused when ``jitter == 0``).

    Returns
    -------
    float
        The estimate of I(X;Y) in nats (it can be slightly negative for independent data).

    Raises
    ------
    InputError
        Non-finite values, mismatched rows, ``k`` not in [1, n − 1], or a constant column
        when ``standardize`` is on.
    """
    xa, ya = _as_2d(x, "x"), _as_2d(y, "y")
    n = xa.shape[0]
    if ya.shape[0] != n:
        raise InputError(f"y: expected {n} rows to match x, found {ya.shape[0]}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k < n:
        raise InputError(f"k: expected an integer in [1, {n - 1}], found {k!r}")
    if jitter < 0 or not np.isfinite(jitter):
        raise InputError(f"jitter: expected a finite number >= 0, found {jitter!r}")
    if standardize:
        parts = []
        for name, a in (("x", xa), ("y", ya)):
            sd = a.std(axis=0)
            if np.any(sd == 0):
                raise InputError(
                    f"{name}: expected non-constant columns, found constant column(s) "
                    f"{np.flatnonzero(sd == 0).tolist()}"
                )
            parts.append((a - a.mean(axis=0)) / sd)
        xa, ya = parts
    if jitter > 0:
        rng = np.random.default_rng(seed)
        xa = xa + jitter * rng.standard_normal(xa.shape)
        ya = ya + jitter * rng.standard_normal(ya.shape)

    z = np.hstack([xa, ya])
    # k + 1 neighbours because the query point itself is returned at distance 0.
    dist, _ = cKDTree(z).query(z, k=k + 1, p=np.inf)
    eps = dist[:, k]
    # Strict inequality ‖·‖ < ε_i: shrink the radius to the next float below ε_i.
    radius = np.nextafter(eps, 0.0)
    nx = cKDTree(xa).query_ball_point(xa, r=radius, p=np.inf, return_length=True) - 1
    ny = cKDTree(ya).query_ball_point(ya, r=radius, p=np.inf, return_length=True) - 1
    value = digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1))
    return float(value)
