r"""Pearson χ² dual (φ(t) = (t − 1)²), exact by closed forms and a support search.

Constrained: L = 1 + √η g while that is ≥ 0 (V = μ + σ√η, exact); otherwise q ∝ q0 (g − b)_+
with b in closed form once the support {g > b} is known. Penalised: L = 1 + g/(2α) while ≥ 0
(P = μ + σ²/(4α)); otherwise the power family's solver (:mod:`dro_theory.duals.power`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dro_theory.divergences import Divergence
from dro_theory.duals import power
from dro_theory.duals.batch import FloatArray, Rows, Solved

__all__ = ["constrained", "penalized"]

#: the support fixed point S ← {d < x(S)} only shrinks S, so it settles in at most n steps;
#: in practice in a handful: rows not settled after this many go to the exact sort
_SUPPORT_STEPS = 60


def _chi2_on_support(
    d: FloatArray, q0: FloatArray, kappa: FloatArray, mask: NDArray[np.bool_]
) -> FloatArray:
    r"""x = d̄ + √(v/(κW − 1)) for the support ``mask``: W, d̄, v its q0-mass, mean and variance of d.

    On a fixed support S, L ∝ (x − d) and E L² = κ (E L)² is (x − d̄)²(κW − 1) = v.
    """
    w = np.where(mask, q0, 0.0)
    mass = w.sum(axis=1)
    wd = w * d
    with np.errstate(divide="ignore", invalid="ignore"):
        dbar = wd.sum(axis=1) / mass
        var = np.maximum(np.einsum("ij,ij->i", wd, d) / mass - dbar * dbar, 0.0)
        return np.asarray(dbar + np.sqrt(var / (kappa * mass - 1.0)))


def _chi2_by_support_iteration(
    d: FloatArray, q0: FloatArray, kappa: FloatArray, maxiter: int = _SUPPORT_STEPS
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Fixed point S ← {d < x(S)} from S = all atoms (finite in practice, O(n) per step).

    Returns x and a flag per row: True where the support reproduced itself.
    """
    size = d.shape[0]
    x = np.full(size, np.nan)
    ok = np.zeros(size, dtype=bool)
    active = np.arange(size)
    mask = np.ones(d.shape, dtype=bool)
    for _ in range(maxiter):
        da, qa = d[active], q0[active]
        xa = _chi2_on_support(da, qa, kappa[active], mask)
        new = da < xa[:, None]
        same = np.all(new == mask, axis=1) & np.isfinite(xa)
        x[active] = xa
        ok[active[same]] = True
        keep = ~same & np.isfinite(xa)
        active, mask = active[keep], new[keep]
        if active.size == 0:
            break
    return x, ok


def _chi2_by_sort(d: FloatArray, q0: FloatArray, kappa: FloatArray) -> FloatArray:
    """Exact x by sorting d: the support is the k smallest d for the one valid k."""
    size = d.shape[0]
    order = np.argsort(d, axis=1, kind="stable")
    ds = np.take_along_axis(d, order, axis=1)
    ws = np.take_along_axis(q0, order, axis=1)
    cw = np.cumsum(ws, axis=1)
    safe = np.where(cw > 0, cw, 1.0)
    dbar = np.cumsum(ws * ds, axis=1) / safe
    var = np.maximum(np.cumsum(ws * ds * ds, axis=1) / safe - dbar * dbar, 0.0)
    denom = kappa[:, None] * cw - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        cand = dbar + np.sqrt(var / denom)
    upper = np.concatenate([ds[:, 1:], np.full((size, 1), np.inf)], axis=1)
    viol = np.maximum(np.maximum(ds - cand, cand - upper), 0.0)
    viol = np.where((denom > 0) & np.isfinite(cand), viol, np.inf)
    pick = np.argmin(viol, axis=1)
    return np.take_along_axis(cand, pick[:, None], axis=1)[:, 0]


def constrained(div: Divergence, rows: Rows, eta: FloatArray, *, sort: bool = False) -> Solved:
    r"""Pearson χ²: q ∝ q0 (g − b)_+ with E_{q0} L² = 1 + η; b = max g − x.

    While q ≥ 0 does not bind (1 + √η min g ≥ 0) L = 1 + √η g and V_g = √η exactly. Otherwise
    the support is the set {d < x} of the largest scores, and on a support S the equation is a
    quadratic with root x = d̄ + √(v/((1 + η)W − 1)) (:func:`_chi2_on_support`). The support is
    found by the fixed-point iteration S ← {d < x(S)} (a handful of O(n) passes), and by an
    exact sort over all support sizes for any row where that does not settle (or ``sort=True``).
    """
    size = eta.shape[0]
    kappa = 1.0 + eta
    x = np.empty(size)
    g = rows.g  # exact (not max g − d): decides the free case and builds its ratio
    g_min = np.where(rows.q0 > 0, g, np.inf).min(axis=1)
    free = 1.0 + np.sqrt(eta) * g_min >= 0.0
    x[free] = rows.g_max[free] + 1.0 / np.sqrt(eta[free])
    bind = np.flatnonzero(~free)
    if bind.size:
        d, q0 = rows.d[bind], np.asarray(rows.q0[bind])
        if sort:
            xb, ok = _chi2_by_sort(d, q0, kappa[bind]), np.ones(bind.size, dtype=bool)
        else:
            xb, ok = _chi2_by_support_iteration(d, q0, kappa[bind])
        if not np.all(ok):
            xb[~ok] = _chi2_by_sort(d[~ok], q0[~ok], kappa[bind][~ok])
        x[bind] = xb
    h = np.maximum(x[:, None] - rows.d, 0.0)
    m1 = np.einsum("ij,ij->i", rows.q0, h)
    ratio = h / m1[:, None]
    alpha = 0.5 * m1
    if np.any(free):  # exactly L = 1 + √η g, α = 1/(2√η), from the exact scores
        root_eta = np.sqrt(eta[free])
        ratio[free] = np.where(rows.q0[free] > 0, 1.0 + root_eta[:, None] * g[free], 0.0)
        alpha[free] = 0.5 / root_eta
    normalizer = rows.g_max - x + m1
    # residual of the defining equation E L² = 1 + η, on the log scale
    second = np.einsum("ij,ij->i", rows.q0 * ratio, ratio)
    residual = np.log(second) - np.log1p(eta)
    return Solved(ratio, alpha, normalizer, residual, 1)


def penalized(div: Divergence, rows: Rows, alpha: FloatArray) -> Solved:
    """Closed form L = 1 + g/(2α) while ≥ 0 (value μ + σ²/(4α)); else the power family."""
    g = rows.g  # exact: 1 + g/(2α) must not go through max g − d
    g_min = np.where(rows.q0 > 0, g, np.inf).min(axis=1)
    free = 1.0 + g_min / (2.0 * alpha) >= 0.0
    ratio = 1.0 + g / (2.0 * alpha[:, None])
    ratio = np.where(rows.q0 > 0, ratio, 0.0)
    normalizer = np.zeros_like(alpha)
    residual = np.zeros_like(alpha)
    iterations = 0
    bind = np.flatnonzero(~free)
    if bind.size:
        sub = rows.sub(bind)
        solved = power.penalized(div, sub, alpha[bind])
        ratio[bind] = solved.ratio
        normalizer[bind] = solved.normalizer
        residual[bind] = solved.residual
        iterations = solved.iterations
    return Solved(ratio, alpha, normalizer, residual, iterations)
