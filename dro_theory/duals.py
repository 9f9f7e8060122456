r"""Worst cases in φ-divergence balls through their one- or two-variable duals.

The constrained problem (the inner maximisation of CL-DRO, Wu et al., NeurIPS 2023, Eq. 3–4)

.. math:: V(η) = \max_q \sum_i q_i f_i \quad\text{s.t.}\quad q ∈ Δ_n,\;
          D_φ(q\|q_0) ≤ η

has the dual (Ben-Tal et al. 2013; the step from line 1 to line 2 of Theorem 3.2's proof)

.. math:: V(η) = \min_{α ≥ 0,\, c ∈ ℝ} \; c + αη + α\, E_{q_0} φ^*\!\big((f − c)/α\big),

and the worst case is q* = q0 · (φ*)'((f − c*)/α*) with the catalogue's φ*
(:mod:`dro_theory.divergences`). The penalised problem (the Lagrangian with α fixed, the form in
which Theorem 3.2 is an exact identity and Theorem 3.5 expands)

.. math:: P(α) = \max_q \{E_q f − α D_φ(q\|q_0)\} = \min_c \; c + α E_{q_0} φ^*((f − c)/α)

needs only c. Every case is reduced, per anchor, to one monotone scalar equation solved by the
vectorised safeguarded root finder of :mod:`dro_theory._roots` (a batch of B anchors is one loop
over iterations, never a loop over anchors), or to a sort:

* ``kl``: q ∝ q0 e^{f/α}; α* from η(α) = KL(q_α‖q0) = η, Newton in log(1/α) started from
  the skewness-corrected small-radius law.
* ``chi2``: q = q0(1 + √η (f − μ)/σ) while that is ≥ 0 (value μ + σ√η, exact); otherwise
  q ∝ q0 (f − b)_+, b exact in closed form once the support {f > b} is known (support by a
  fixed-point iteration, or a sort over all support sizes as fallback).
* ``cressie_read`` (α > 1): q ∝ q0 (f − b)_+^{1/(α−1)}; (α < 1), ``hellinger``, ``reverse_kl``:
  q ∝ q0 (b − f)^{−e} with e = 1/(1 − α), 2, 1. One equation D_φ(q_b‖q0) = η in log|b − max f|
  (Newton with the analytic derivative).
* ``js``: q ∝ q0 w/(1 − w + ε), w = e^{2(f − max f)/α}: ε from Σ q = 1 (inner), α from D = η
  (outer).
* ``tv``: move mass η from the lowest scores to the maximisers (sort).

Internally the scores are standardised, g = (f − μ)/σ with μ, σ² the q0-mean and variance, so
every equation is O(1) whatever the offset and scale of f; then V = μ + σ V_g, α* = σ α*_g and
c* = μ + σ c*_g. Atoms with q0 = 0 keep q = 0 (the ball is over q ≪ q0, as in the dual).

The solvers work with d = max g − g (exact near the maximum), but d carries an absolute
rounding of |max g|·ε, which is everything when max g ≫ 1 while the bulk of q0 sits at
g = O(1) (e.g. a Gauss–Hermite grid: weights down to 1e-124, scores up to 1e20). So g itself is
recomputed from f for values (V = μ + σ E_q g) and for χ²'s closed forms, and every answer is
verified before it is returned: c* = E_q[g − α φ'(L)] and the relative first-order residual
E_q|g − α φ'(L) − c*| / (E_q|g| + |c*| + α) together with |E_{q0} L − 1| must be ≤ 1e-9
(KL: the normalisation only; TV: exact by sort). The "plus" families (χ², Cressie–Read α > 1),
whose log-gap parametrisation x = log(max g − b) cannot resolve b there, are re-solved in b
itself where they fail or are not at the rounding floor; anything still failing raises
:class:`DROSolveError` instead of returning a wrong number.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dro_theory._result import WorstCase
from dro_theory._roots import Index, find_increasing_root
from dro_theory.checks import as_finite_array, check_positive, check_radius, check_weights
from dro_theory.divergences import (
    KL,
    ChiSquare,
    CressieRead,
    Divergence,
    Hellinger,
    JensenShannon,
    ReverseKL,
    TotalVariation,
    divergence_from_spec,
    get_divergence,
)
from dro_theory.errors import DROSolveError, InputError

__all__ = ["PenalizedWorstCase", "penalized_worst_case", "resolve_divergence", "worst_case_dual"]

FloatArray = NDArray[np.float64]

#: a solved row is accepted when its scalar equation's residual is below this (log scale), or
#: below _FLOOR when the root is already pinned to float resolution: for tiny radii (η ≲ 1e-9)
#: D_φ(q‖q0) = Σ q0 φ(L) itself carries rounding of ~eps/η relative, so |r| cannot go lower
_ACCEPT = 1e-9
_FLOOR = 1e-5


@dataclass(frozen=True)
class PenalizedWorstCase:
    r"""Answer to  max_q { Σ q_i f_i − α D_φ(q‖q0) }  (α = ``temperature``).

    For a batch of B anchors every numeric field has a leading axis of size B.

    Attributes
    ----------
    value : float or ndarray, shape (B,)
        P(α) = E_{q*} f − α D_φ(q*‖q0) = min_c c + α E_{q0} φ*((f − c)/α); for KL exactly
        α log E_{q0} e^{f/α} (Theorem 3.2's identity).
    q : ndarray, shape (n,) or (B, n)
        The maximiser q* = q0 · (φ*)'((f − c*)/α).
    normalizer : float or ndarray
        c*, the minimising c (for KL c* = α(log E e^{f/α} − 1)).
    temperature : float
        α.
    divergence : str
        The divergence's spec.
    """

    value: float | FloatArray
    q: FloatArray
    normalizer: float | FloatArray
    temperature: float
    divergence: str


# ----------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------
def resolve_divergence(divergence: str | Divergence) -> Divergence:
    """A :class:`Divergence` from a name, a ``"name:alpha"`` spec or an instance."""
    if isinstance(divergence, Divergence):
        return divergence
    if isinstance(divergence, str) and ":" in divergence:
        return divergence_from_spec(divergence)
    return get_divergence(divergence)


@dataclass(frozen=True)
class _Batch:
    """Standardised scores of B anchors (rows).

    g = (f − μ)/σ on the support of q0 (0 off it and on constant rows); d = max g − g ≥ 0 is
    what the solvers use (g is recovered as max g − d).
    """

    q0: FloatArray  # (B, n)
    uniform: bool  # q0 = 1/n everywhere (enables cheaper sums)
    mu: FloatArray  # (B,)
    sigma: FloatArray  # (B,)
    d: FloatArray  # (B, n)
    top: NDArray[np.bool_]  # (B, n) maximisers (on the support)
    p_max: FloatArray  # (B,) q0-mass of the maximisers
    f_max: FloatArray  # (B,)
    g_max: FloatArray  # (B,)
    constant: NDArray[np.bool_]  # (B,)
    single: bool
    f: FloatArray  # (B, n) the raw scores (g = (f − μ)·scale exactly, without going through d)
    scale: FloatArray  # (B,) 1/σ (1 on constant rows)

    def rows(self, idx: NDArray[np.intp] | slice) -> _Rows:
        """The solver rows ``idx`` (the indexing itself lives in :meth:`_Rows.sub`)."""
        if isinstance(idx, np.ndarray) and _is_all(idx, self.d.shape[0]):
            idx = slice(None)
        whole = _Rows(
            self.d, self.q0, self.g_max, self.top, self.uniform, self.f, self.mu, self.scale
        )
        return whole.sub(idx)

    def take(self, idx: NDArray[np.intp], *, single: bool = False) -> _Batch:
        """The batch of rows ``idx`` (repeats allowed), e.g. one row per (anchor, radius)."""
        if _is_all(idx, self.d.shape[0]) and single == self.single:
            return self
        return _Batch(
            np.broadcast_to(self.q0[0], (idx.size, self.q0.shape[1]))
            if self.uniform
            else self.q0[idx],
            self.uniform,
            self.mu[idx],
            self.sigma[idx],
            self.d[idx],
            self.top[idx],
            self.p_max[idx],
            self.f_max[idx],
            self.g_max[idx],
            self.constant[idx],
            single,
            self.f[idx],
            self.scale[idx],
        )


def _is_all(idx: NDArray[np.intp], size: int) -> bool:
    return idx.size == size and bool(np.all(idx == np.arange(size)))


@dataclass(frozen=True)
class _Rows:
    """The standardised rows handed to a solver.

    ``d`` = max g − g resolves the scores near the maximum; ``g`` = (f − μ)/σ is recomputed from
    the raw scores, so it keeps full relative precision on the bulk even when max g is huge
    (there max g − d would lose |max g|·ε absolutely).
    """

    d: FloatArray
    q0: FloatArray
    g_max: FloatArray
    top: NDArray[np.bool_]
    uniform: bool
    f: FloatArray
    mu: FloatArray
    scale: FloatArray

    @cached_property
    def g(self) -> FloatArray:
        """g = (f − μ)/σ on the support (0 off it), computed from f (once; read-only)."""
        g = self.f - self.mu[:, None]
        g *= self.scale[:, None]
        if not self.uniform:
            g[self.q0 <= 0] = 0.0
        return g

    def sub(self, idx: Index) -> _Rows:
        """Rows ``idx``: an index array, or a slice (a contiguous block, indexed as views)."""
        if isinstance(idx, slice) and idx == slice(None):
            return self
        return _Rows(
            self.d[idx],
            self.q0[idx],
            self.g_max[idx],
            self.top[idx],
            self.uniform,
            self.f[idx],
            self.mu[idx],
            self.scale[idx],
        )


@dataclass(frozen=True)
class _Solved:
    """A solver's answer on standardised rows: likelihood ratio L = q/q0, α_g, c_g."""

    ratio: FloatArray
    alpha: FloatArray
    normalizer: FloatArray
    residual: FloatArray
    iterations: int
    #: rows whose root is pinned to float resolution (bracket collapsed); None: all
    settled: NDArray[np.bool_] | None = None
    #: relative first-order residual per row (:func:`_stationarity`); None: not checked (TV)
    stationarity: FloatArray | None = None


def _prepare(scores: ArrayLike, weights: ArrayLike | None) -> _Batch:
    f = as_finite_array(scores, "scores", ndim=(1, 2))
    single = f.ndim == 1
    f2 = f[None, :] if single else f
    b, n = f2.shape
    if b == 0:
        raise InputError("scores: expected at least one row, found shape (0, n)")
    uniform = weights is None
    q0 = _weights(weights, b, n, single)
    if uniform:
        f_max = f2.max(axis=1)
        f_min = f2.min(axis=1)
        mu = f2.mean(axis=1)
        centred = f2 - mu[:, None]
        var = np.einsum("ij,ij->i", centred, centred) / n
        top = f2 == f_max[:, None]
        p_max = np.count_nonzero(top, axis=1) / n
    else:
        support = q0 > 0
        f_max = np.where(support, f2, -np.inf).max(axis=1)
        f_min = np.where(support, f2, np.inf).min(axis=1)
        mu = np.einsum("ij,ij->i", q0, f2)
        centred = np.where(support, f2 - mu[:, None], 0.0)
        var = np.einsum("ij,ij->i", q0 * centred, centred)
        top = support & (f2 == f_max[:, None])
        p_max = np.einsum("ij,ij->i", q0, top.astype(np.float64))
    constant = f_max == f_min
    sigma = np.where(constant, 0.0, np.sqrt(var))
    scale = 1.0 / np.where(sigma > 0, sigma, 1.0)
    g_max = np.where(constant, 0.0, (f_max - mu) * scale)
    # d = max g − g ≥ 0, exactly 0 on the maximisers; off the support g is taken as 0
    d = centred
    d *= -scale[:, None]
    d += g_max[:, None]
    np.maximum(d, 0.0, out=d)  # exactly 0 on the maximisers: same operations as g_max
    if not uniform:
        d[~support] = np.broadcast_to(np.maximum(g_max, 0.0)[:, None], d.shape)[~support]
    d[constant] = 0.0
    return _Batch(q0, uniform, mu, sigma, d, top, p_max, f_max, g_max, constant, single, f2, scale)


def _weights(weights: ArrayLike | None, b: int, n: int, single: bool) -> FloatArray:
    if weights is None:
        return np.broadcast_to(1.0 / n, (b, n))
    w = as_finite_array(weights, "weights", ndim=(1, 2))
    if w.ndim == 1:
        return np.broadcast_to(check_weights(w, n), (b, n))
    if single or w.shape != (b, n):
        want = f"({n},)" if single else f"({n},) or ({b}, {n})"
        raise InputError(f"weights: expected shape {want} to match the scores, found {w.shape}")
    if np.any(w < 0):
        raise InputError(f"weights: expected non-negative weights, found min {w.min():.3g}")
    total = w.sum(axis=1)
    worst = int(np.argmax(np.abs(total - 1.0)))
    if abs(total[worst] - 1.0) > 1e-6:
        raise InputError(
            f"weights: expected every row to sum to 1, found row {worst} summing to "
            f"{total[worst]:.12g}"
        )
    return w / total[:, None]


def _root_ok(solved: _Solved) -> NDArray[np.bool_]:
    """Rows whose scalar equation is solved (|r| ≤ _ACCEPT, or ≤ _FLOOR when pinned)."""
    residual = np.abs(solved.residual)
    ok = residual <= _ACCEPT
    if solved.settled is not None:
        ok |= solved.settled & (residual <= _FLOOR)
    return np.asarray(ok)


def _worst(x: FloatArray) -> float:
    """max |x|, nan when any entry is nan (no All-NaN warning)."""
    a = np.abs(x)
    return float("nan") if np.any(np.isnan(a)) else float(np.max(a))


def _check_root(solved: _Solved, name: str) -> None:
    """Raise DROSolveError unless every row's equation and first-order conditions hold."""
    bad = ~_root_ok(solved)
    if np.any(bad):
        raise DROSolveError(
            f"{name}: the scalar dual equation did not converge for {int(bad.sum())} row(s) "
            f"(largest |residual| {_worst(solved.residual[bad]):.3g})"
        )
    if solved.stationarity is not None:
        off = ~(solved.stationarity <= _STATIONARY)
        if np.any(off):
            raise DROSolveError(
                f"{name}: the worst case fails its first-order conditions for {int(off.sum())} "
                f"row(s) (relative residual {np.max(solved.stationarity):.3g} > "
                f"{_STATIONARY:g}): the scores' range is beyond what float64 resolves here"
            )


# ----------------------------------------------------------------------------------------------
# KL: the Gibbs tilt q ∝ q0 e^{β g}
# ----------------------------------------------------------------------------------------------
_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(2, 12))
#: rows with β·max|g| below this use the cancellation-free small-tilt evaluation
_SMALL_TILT = 0.05


def _expm1_minus_x(x: FloatArray) -> FloatArray:
    """e^x − 1 − x to full relative precision for |x| ≤ 0.05 (Taylor to x^11, Horner)."""
    acc = np.full_like(x, _TAYLOR[-1])
    for c in _TAYLOR[-2::-1]:
        acc *= x
        acc += c
    acc *= x * x
    return acc


@dataclass(frozen=True)
class _Tilt:
    r"""Statistics of the Gibbs tilt q_β ∝ q0 e^{β g}, per row.

    ``log_s0`` = log E_{q0} e^{−β d} (d = max g − g), ``mean_d`` = E_{q_β} d,
    ``var`` = Var_{q_β} g and ``radius`` = KL(q_β‖q0) = β E_{q_β} g − log E_{q0} e^{β g}.
    """

    log_s0: FloatArray
    mean_d: FloatArray
    var: FloatArray
    radius: FloatArray


def _kl_tilt(rows: _Rows, beta: FloatArray) -> _Tilt:
    r"""KL tilt statistics at inverse temperatures β (standardised scores, E_{q0} g = 0).

    Two evaluations, chosen per row, both overflow-free and accurate to a few ulps in η:

    * shifted by the maximum (the default): S_0 = E e^{−βd}, η = −β E_{q_β} d − log S_0;
    * small tilt (β max|g| ≤ 0.05, where the shifted form would lose digits to cancellation):
      with ψ(x) = e^x − 1 − x (Taylor), Z − 1 = β E g + E ψ(βg) and
      E[g e^{βg}] = E g + E[g (e^{βg} − 1)] carry no cancellation, so
      η = β E[g e^{βg}]/Z − log1p(Z − 1) stays accurate down to η ~ 1e-14.
    """
    size = beta.shape[0]
    log_s0 = np.empty(size)
    mean_d = np.empty(size)
    var = np.empty(size)
    radius = np.empty(size)
    spread = np.maximum(rows.g_max, np.max(rows.d, axis=1) - rows.g_max)
    small = beta * spread <= _SMALL_TILT
    for part, is_small in ((np.flatnonzero(~small), False), (np.flatnonzero(small), True)):
        if part.size == 0:
            continue
        sub = rows.sub(slice(None) if part.size == size else part)
        b = beta[part]
        n = sub.d.shape[1]
        if is_small:
            gp = sub.g
            q = np.broadcast_to(1.0 / n, gp.shape) if sub.uniform else sub.q0
            x = b[:, None] * gp
            psi = _expm1_minus_x(x)
            e1 = psi + x  # e^{βg} − 1
            qg = q * gp
            mean_g = qg.sum(axis=1)
            zm1 = b * mean_g + np.einsum("ij,ij->i", q, psi)
            z = 1.0 + zm1
            m1 = (mean_g + np.einsum("ij,ij->i", qg, e1)) / z
            m2 = (np.einsum("ij,ij->i", qg, gp) + np.einsum("ij,ij->i", qg * gp, e1)) / z
            log_z = np.log1p(zm1)
            log_s0[part] = log_z - b * sub.g_max
            mean_d[part] = sub.g_max - m1
            var[part] = np.maximum(m2 - m1 * m1, 0.0)
            radius[part] = np.maximum(b * m1 - log_z, 0.0)
        else:
            w = np.multiply(sub.d, -b[:, None])
            np.exp(w, out=w)
            if not sub.uniform:
                w *= sub.q0
            s0 = w.sum(axis=1)
            wd = w
            wd *= sub.d
            e_d = wd.sum(axis=1) / s0
            e_d2 = np.einsum("ij,ij->i", wd, sub.d) / s0
            if sub.uniform:
                s0 = s0 / n
            log_s0[part] = np.log(s0)
            mean_d[part] = e_d
            var[part] = np.maximum(e_d2 - e_d * e_d, 0.0)
            radius[part] = np.maximum(-b * e_d - log_s0[part], 0.0)
    return _Tilt(log_s0, mean_d, var, radius)


def _kl_ratio(rows: _Rows, beta: FloatArray, log_s0: FloatArray) -> FloatArray:
    """L = q/q0 = e^{−βd}/S_0 (≤ 1/p_max, no overflow)."""
    ratio = np.multiply(rows.d, -beta[:, None])
    ratio -= log_s0[:, None]
    return np.exp(ratio, out=ratio)


def _kl_constrained(rows: _Rows, eta: FloatArray) -> _Solved:
    """Solve KL(q_β‖q0) = η in t = log β by safeguarded Newton (dη/dt = β² Var_{q_β} g).

    The last Newton step (from |r| ≤ 1e-7, landing at ~r²) is not re-evaluated inside the loop:
    the final pass that builds q re-computes η from the same exponentials and reports the true
    residual.
    """
    log_eta = np.log(eta)

    def fun(t: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
        beta = np.exp(t)
        tilt = _kl_tilt(rows.sub(idx), beta)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log(tilt.radius) - log_eta[idx]
            dr = beta * beta * tilt.var / tilt.radius
        return r, dr

    # start from α ≈ (σ/√(2η))(1 + γ√(2η)/3) (dro-duals.md §1d), γ the q0-skewness of g
    g = rows.g
    gg = g * g
    if not rows.uniform:
        gg *= rows.q0
    skew = np.einsum("ij,ij->i", gg, g) / (g.shape[1] if rows.uniform else 1.0)
    root2eta = np.sqrt(2.0 * eta)
    start = np.log(root2eta / np.clip(1.0 + skew * root2eta / 3.0, 0.5, 4.0))
    del g, gg
    root = find_increasing_root(fun, start, finish=1e-7)
    t = root.x
    ratio, s0, residual = _kl_final(rows, np.exp(t), log_eta)
    # where the finishing Newton step overshot the rounding floor (strong curvature, e.g. near
    # the point-mass radius), iterate those rows to convergence and rebuild them
    redo = np.flatnonzero(~(np.abs(residual) <= 1e-13))
    settled = root.converged.copy()
    if redo.size:
        sub = rows.sub(redo)

        def fun_redo(t_: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
            return fun(t_, redo[idx])

        again = find_increasing_root(fun_redo, t[redo])
        t[redo] = again.x
        ratio[redo], s0[redo], residual[redo] = _kl_final(sub, np.exp(again.x), log_eta[redo])
        settled[redo] = again.converged
    beta = np.exp(t)
    alpha = 1.0 / beta
    normalizer = rows.g_max + alpha * np.log(s0) - alpha
    return _Solved(ratio, alpha, normalizer, residual, root.iterations, settled)


def _kl_final(
    rows: _Rows, beta: FloatArray, log_eta: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """L = e^{−βd}/S_0, S_0 and the residual log KL(q_β‖q0) − log η from one exponential pass."""
    n = rows.d.shape[1]
    ratio = np.multiply(rows.d, -beta[:, None])
    np.exp(ratio, out=ratio)
    if rows.uniform:
        s0 = ratio.sum(axis=1) / n
        e_d = np.einsum("ij,ij->i", ratio, rows.d) / (n * s0)
    else:
        qw = ratio * rows.q0
        s0 = qw.sum(axis=1)
        e_d = np.einsum("ij,ij->i", qw, rows.d) / s0
    radius = -beta * e_d - np.log(s0)
    small = beta * np.maximum(rows.g_max, np.max(rows.d, axis=1) - rows.g_max) <= _SMALL_TILT
    if np.any(small):
        part = np.flatnonzero(small)
        radius[part] = _kl_tilt(rows.sub(part), beta[part]).radius
    with np.errstate(divide="ignore"):
        residual = np.log(radius) - log_eta
    ratio /= s0[:, None]
    return ratio, s0, residual


def _kl_penalized(rows: _Rows, alpha: FloatArray) -> tuple[_Solved, FloatArray]:
    beta = 1.0 / alpha
    tilt = _kl_tilt(rows, beta)
    ratio = _kl_ratio(rows, beta, tilt.log_s0)
    value = rows.g_max + alpha * tilt.log_s0  # α log E e^{g/α}
    zero = np.zeros_like(alpha)
    return _Solved(ratio, alpha, value - alpha, zero, 0), value


# ----------------------------------------------------------------------------------------------
# Pearson χ²: exact by sort
# ----------------------------------------------------------------------------------------------
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
    d: FloatArray, q0: FloatArray, kappa: FloatArray, maxiter: int = 60
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


def _chi2_constrained(rows: _Rows, eta: FloatArray, *, sort: bool = False) -> _Solved:
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
    return _Solved(ratio, alpha, normalizer, residual, 1)


# ----------------------------------------------------------------------------------------------
# power families: L ∝ (1 − d e^{−x})_+^e  ("plus") or (1 + d e^{−x})^{−e}  ("inv")
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Power:
    r"""Worst-case shape L = (|g − b|/(κα))^{±e}: b = max g ∓ e^x.

    ``plus`` (χ², Cressie–Read α > 1): (φ*)'(s) ∝ (g − b)_+^e. ``inv`` (α < 1, Hellinger,
    reverse KL): (φ*)'(s) ∝ (b − g)^{−e}.
    """

    plus: bool
    e: float
    kappa: float

    def shape(self, d: FloatArray, x: FloatArray) -> FloatArray:
        """h = (1 − u)_+^e or (1 + u)^{−e} with u = d e^{−x} (1 at the maximisers)."""
        return self._shape(d * np.exp(-x)[:, None])[0]

    def _shape(self, u: FloatArray) -> tuple[FloatArray, FloatArray]:
        base = np.maximum(1.0 - u, 0.0) if self.plus else 1.0 + u
        power = self.e if self.plus else -self.e
        if power == 1.0:
            return base.copy(), base
        if power == -1.0:
            return 1.0 / base, base
        if power == -2.0:
            h = base * base
            np.divide(1.0, h, out=h)
            return h, base
        return np.asarray(base**power), base

    def shape_and_slope(self, d: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """h and dh/dx = e·u·h/base (u = d e^{−x}; 0 off the support of the ``plus`` shape)."""
        u = d * np.exp(-x)[:, None]
        h, base = self._shape(u)
        u *= self.e
        u *= h
        with np.errstate(divide="ignore", invalid="ignore"):
            u /= base
        if self.plus:
            u[base <= 0] = 0.0
        return h, u

    def alpha(self, x: FloatArray, s: FloatArray) -> FloatArray:
        """α from E L = 1: (e^x/(κα))^{±e} S = 1."""
        sign = 1.0 if self.plus else -1.0
        with np.errstate(over="ignore", invalid="ignore"):  # inf/nan: caught by _verify
            return np.asarray(np.exp(x) * s ** (1.0 / (sign * self.e)) / self.kappa)

    def log_mean(self, x: FloatArray, s: FloatArray, alpha: FloatArray) -> FloatArray:
        """log E L at fixed α: ±e (x − log κα) + log S."""
        sign = 1.0 if self.plus else -1.0
        return sign * self.e * (x - np.log(self.kappa * alpha)) + np.log(s)


def _power_family(div: Divergence) -> _Power | None:
    if isinstance(div, ChiSquare):
        return _Power(True, 1.0, 2.0)
    if isinstance(div, CressieRead):
        a = div.alpha
        return (
            _Power(True, 1 / (a - 1), 1 / (a - 1))
            if a > 1
            else _Power(False, 1 / (1 - a), 1 / (1 - a))
        )
    if isinstance(div, Hellinger):
        return _Power(False, 2.0, 1.0)
    if isinstance(div, ReverseKL):
        return _Power(False, 1.0, 1.0)
    return None


def _stationarity(
    div: Divergence, rows: _Rows, ratio: FloatArray, alpha: FloatArray
) -> tuple[FloatArray, FloatArray]:
    r"""c* and the relative first-order residual of a candidate likelihood ratio L.

    At the optimum g_i − α φ'(L_i) = c* on every atom with q_i = q0_i L_i > 0 (the dual's
    stationarity, equivalently L = (φ*)'((g − c*)/α)). With the exact scores g (not max g − d)
    this returns

    .. math:: c = E_q[g − α φ'(L)], \qquad
              R = \max\Big(\frac{E_q |g − α φ'(L) − c|}{E_q |g| + |c| + α},\;
              |E_{q0} L − 1|\Big),

    both free of cancellation against max g; R is at the rounding level (~1e-15) for a correct
    L, and O(1) for a wrong one (e.g. a ratio computed through max g − d when max g ≫ 1).
    """
    q = rows.q0 * ratio
    mass = q.sum(axis=1)
    q /= mass[:, None]
    g = rows.g
    pos = q > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t = g - alpha[:, None] * np.asarray(div.phi_prime(np.where(pos, ratio, 1.0)))
        t = np.where(pos, t, 0.0)
        c = np.einsum("ij,ij->i", q, t)
        dev = np.einsum("ij,ij->i", q, np.abs(np.where(pos, t - c[:, None], 0.0)))
        size = np.einsum("ij,ij->i", q, np.abs(g)) + np.abs(c) + alpha
        rel = np.maximum(dev / size, np.abs(mass - 1.0))
    return c, np.where(np.isfinite(rel), rel, np.inf)


def _no_normaliser(alpha: FloatArray) -> FloatArray:
    """Placeholder normaliser, replaced by c from :func:`_stationarity` after the solve."""
    return np.full_like(alpha, np.nan)


#: a solution is accepted when its relative first-order residual (:func:`_stationarity`) is
#: below this; rounding gives ~1e-15, a wrong ratio O(1)
_STATIONARY = 1e-9
#: rows of the "plus" families whose residual or first-order residual exceeds this are also
#: tried in the threshold form (the better answer is kept)
_RETRY = 1e-12


def _power_constrained(div: Divergence, fam: _Power, rows: _Rows, eta: FloatArray) -> _Solved:
    log_eta = np.log(eta)

    def state(x: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
        h = fam.shape(rows.d[idx], x)
        s = np.einsum("ij,ij->i", rows.q0[idx], h)
        return h / s[:, None], s

    def fun(x: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
        # r = log η − log D(x), D = E φ(L), L = h/S: dD/dx = E[φ'(L)(h' − L S')]/S
        q0 = rows.q0[idx]
        h, slope = fam.shape_and_slope(rows.d[idx], x)
        s = np.einsum("ij,ij->i", q0, h)
        ds = np.einsum("ij,ij->i", q0, slope)
        ratio = h / s[:, None]
        radius = np.einsum("ij,ij->i", q0, div.phi(ratio))
        slope -= ratio * ds[:, None]
        d_radius = np.einsum("ij,ij->i", q0 * div.phi_prime(ratio), slope) / s
        with np.errstate(divide="ignore", invalid="ignore"):
            return log_eta[idx] - np.log(radius), -d_radius / radius

    x0 = math.log(fam.e) - 0.5 * np.log(2.0 * eta / div.curvature)
    root = find_increasing_root(fun, x0)
    ratio, s = state(root.x, slice(None))
    alpha = fam.alpha(root.x, s)
    return _Solved(
        ratio, alpha, _no_normaliser(alpha), root.residual, root.iterations, root.converged
    )


def _power_penalized(div: Divergence, fam: _Power, rows: _Rows, alpha: FloatArray) -> _Solved:
    sign = 1.0 if fam.plus else -1.0

    def fun(x: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
        # r = ±log E L = ±[±e(x − log κα) + log S]: dr/dx = e ± S'/S
        q0 = rows.q0[idx]
        h, slope = fam.shape_and_slope(rows.d[idx], x)
        s = np.einsum("ij,ij->i", q0, h)
        ds = np.einsum("ij,ij->i", q0, slope)
        with np.errstate(divide="ignore", invalid="ignore"):
            return sign * fam.log_mean(x, s, alpha[idx]), fam.e + sign * ds / s

    root = find_increasing_root(fun, np.log(fam.e * alpha * div.curvature))
    h = fam.shape(rows.d, root.x)
    ratio = h / np.einsum("ij,ij->i", rows.q0, h)[:, None]
    return _Solved(
        ratio, alpha, _no_normaliser(alpha), root.residual, root.iterations, root.converged
    )


# ----------------------------------------------------------------------------------------------
# "plus" families in the threshold b itself: L ∝ (g − b)_+^e with g exact
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Threshold:
    """L = q/q0 = (g − b)_+^e / E_{q0}(g − b)_+^e in the log domain, and E_q 1/(g − b)."""

    ratio: FloatArray
    log_s: FloatArray  # log E_{q0} (g − b)_+^e
    inv_mean: FloatArray  # E_q[1/(g − b)]
    inv: FloatArray  # 1/(g − b) on the support, 0 off it


def _threshold_state(g: FloatArray, q0: FloatArray, b: FloatArray, e: float) -> _Threshold:
    base = g - b[:, None]
    pos = (base > 0) & (q0 > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        logw = np.where(pos, e * np.log(np.where(pos, base, 1.0)), -np.inf)
        top = logw.max(axis=1)
        finite = np.isfinite(top)
        shift = np.where(finite, top, 0.0)
        w = np.exp(logw - shift[:, None])
        s = np.einsum("ij,ij->i", q0, w)
        log_s = np.where(finite, shift + np.log(s), -np.inf)
        ratio = w / s[:, None]
        inv = np.where(pos, 1.0 / np.where(pos, base, 1.0), 0.0)
        inv_mean = np.einsum("ij,ij->i", q0 * ratio, inv)
    return _Threshold(ratio, log_s, inv_mean, inv)


def _bulk_scale(rows: _Rows, g: FloatArray) -> FloatArray:
    """s = E_{q0}|g| (> 0 on non-constant rows; ≤ 1 as σ_g = 1)."""
    return np.einsum("ij,ij->i", rows.q0, np.abs(g))


def _plus_penalized_threshold(
    div: Divergence, fam: _Power, rows: _Rows, alpha: FloatArray
) -> _Solved:
    r"""Penalised χ² / Cressie–Read (α > 1) solved in the threshold b (not log(max g − b)).

    L = ((g − b)_+/(κα))^e with E_{q0} L = 1, i.e. r(t) = log E_{q0}(g + t)_+^e − e log κα = 0
    in t = −b (increasing; dr/dt = e E_q[1/(g − b)]). The log-gap parametrisation of
    :func:`_power_penalized` resolves b only to |max g − b|·ε, which is useless when
    max g ≫ 1 and the bulk of q0 carries the answer (heavy-tailed scores on a quadrature grid);
    here the precision is |b|·ε. The variable is t = −b/s with s = E_{q0}|g| (the bulk's
    scale, ≪ 1 when σ is dominated by a far tail), so that the root finder's absolute
    tolerances act on the bulk's scale. Started from the small-deviation law
    L ≈ 1 + g/(αφ''(1)), i.e. b₀ = −e α φ''(1).
    """
    g = rows.g
    log_ka = fam.e * np.log(fam.kappa * alpha)
    unit = _bulk_scale(rows, g)

    def fun(t: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
        st = _threshold_state(g[idx], rows.q0[idx], -t * unit[idx], fam.e)
        return st.log_s - log_ka[idx], fam.e * st.inv_mean * unit[idx]

    root = find_increasing_root(fun, fam.e * alpha * div.curvature / unit)
    ratio = _threshold_state(g, rows.q0, -root.x * unit, fam.e).ratio
    return _Solved(
        ratio, alpha, _no_normaliser(alpha), root.residual, root.iterations, root.converged
    )


def _plus_constrained_threshold(
    div: Divergence, fam: _Power, rows: _Rows, eta: FloatArray
) -> _Solved:
    r"""Constrained χ² / Cressie–Read (α > 1) in the threshold b: D_φ(q_b‖q0) = η.

    L = (g − b)_+^e / E_{q0}(g − b)_+^e; D(b) = E_{q0} φ(L) increases from 0 (b → −∞) to the
    point-mass radius (b → max g), so r(b) = log D(b) − log η is increasing, with
    dL_i/db = e L_i (E_q[1/(g − b)] − 1/(g_i − b)). Used where the log-gap form cannot resolve
    b (see :func:`_plus_penalized_threshold`; variable b/s, s = E_{q0}|g|); started from
    L ≈ 1 + √(2η/φ''(1)) g. The multiplier follows from L = ((g − b)/(κα))^e:
    κα = (E_{q0}(g − b)_+^e)^{1/e}.
    """
    g = rows.g
    log_eta = np.log(eta)
    unit = _bulk_scale(rows, g)

    def fun(y: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
        q0 = rows.q0[idx]
        st = _threshold_state(g[idx], q0, y * unit[idx], fam.e)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            radius = np.einsum("ij,ij->i", q0, div.phi(st.ratio))
            dl = fam.e * st.ratio * (st.inv_mean[:, None] - st.inv)
            d_radius = np.einsum("ij,ij->i", q0 * div.phi_prime(st.ratio), dl)
            r = np.where(np.isfinite(st.log_s), np.log(radius) - log_eta[idx], np.inf)
            return r, d_radius / radius * unit[idx]

    root = find_increasing_root(fun, -fam.e / np.sqrt(2.0 * eta / div.curvature) / unit)
    st = _threshold_state(g, rows.q0, root.x * unit, fam.e)
    alpha = np.exp(st.log_s / fam.e) / fam.kappa
    return _Solved(
        st.ratio, alpha, _no_normaliser(alpha), root.residual, root.iterations, root.converged
    )


# ----------------------------------------------------------------------------------------------
# Jensen–Shannon: L = w/(1 − w + ε), w = e^{−2d/α}
# ----------------------------------------------------------------------------------------------
def _js_penalized(rows: _Rows, alpha: FloatArray) -> _Solved:
    """Inner solve: ε > 0 with E_{q0} L = 1 (Newton in log ε; E L decreases in ε)."""
    z = -2.0 * rows.d / alpha[:, None]
    w = np.exp(z)
    one_minus = -np.expm1(z)

    def fun(y: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
        eps = np.exp(y)
        den = one_minus[idx] + eps[:, None]
        a = w[idx] / den
        m = np.einsum("ij,ij->i", rows.q0[idx], a)
        m2 = np.einsum("ij,ij->i", rows.q0[idx], a / den)
        return -np.log(m), eps * m2 / m

    root = find_increasing_root(fun, np.zeros(alpha.shape[0]))
    ratio = w / (one_minus + np.exp(root.x)[:, None])
    ratio /= np.einsum("ij,ij->i", rows.q0, ratio)[:, None]
    return _Solved(
        ratio, alpha, _no_normaliser(alpha), root.residual, root.iterations, root.converged
    )


def _js_constrained(div: Divergence, rows: _Rows, eta: FloatArray) -> _Solved:
    """Outer solve: D_JS(q_α‖q0) = η, increasing in t = log(1/α)."""
    log_eta = np.log(eta)

    def fun(t: FloatArray, idx: Index) -> tuple[FloatArray, None]:
        inner = _js_penalized(rows.sub(idx), np.exp(-t))
        radius = np.einsum("ij,ij->i", rows.q0[idx], div.phi(inner.ratio))
        # D below its rounding (≤ 0, e.g. q ≈ q0 far out in α) is below any η > 0: −inf
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(radius > 0, np.log(radius), -np.inf) - log_eta[idx], None

    root = find_increasing_root(fun, 0.5 * np.log(2.0 * div.curvature * eta))
    solved = _js_penalized(rows, np.exp(-root.x))
    residual = np.maximum(np.abs(root.residual), np.abs(solved.residual))
    settled = root.converged & (np.abs(solved.residual) <= _ACCEPT)
    return _Solved(
        solved.ratio, solved.alpha, solved.normalizer, residual, root.iterations, settled
    )


# ----------------------------------------------------------------------------------------------
# total variation: sorts
# ----------------------------------------------------------------------------------------------
def _tv_constrained(rows: _Rows, eta: FloatArray) -> _Solved:
    """Remove mass η from the lowest scores and put it on the maximisers (∝ q0)."""
    order = np.argsort(-rows.d, axis=1, kind="stable")  # ascending g
    ws = np.take_along_axis(rows.q0, order, axis=1)
    gs = rows.g_max[:, None] - np.take_along_axis(rows.d, order, axis=1)
    tops = np.take_along_axis(rows.top, order, axis=1)
    before = np.cumsum(ws, axis=1) - ws
    removed = np.where(tops, 0.0, np.clip(eta[:, None] - before, 0.0, ws))
    q_sorted = ws - removed
    q = np.empty_like(q_sorted)
    np.put_along_axis(q, order, q_sorted, axis=1)
    p_max = np.einsum("ij,ij->i", rows.q0, rows.top.astype(np.float64))
    q = q + np.where(rows.top, rows.q0 * (eta / p_max)[:, None], 0.0)
    # the η-quantile atom from below sets α* = max g − g_(j*), c* = max g − α*/2
    crossing = np.argmax((before + ws >= eta[:, None]) & (ws > 0), axis=1)
    alpha = rows.g_max - np.take_along_axis(gs, crossing[:, None], axis=1)[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rows.q0 > 0, q / rows.q0, 0.0)
    return _Solved(ratio, alpha, rows.g_max - 0.5 * alpha, np.zeros_like(eta), 1)


def _tv_penalized(rows: _Rows, alpha: FloatArray) -> _Solved:
    """Move all mass with g < max g − α to the maximisers (each unit gains > α)."""
    low = rows.d > alpha[:, None]
    moved = np.einsum("ij,ij->i", rows.q0, low.astype(np.float64))
    p_max = np.einsum("ij,ij->i", rows.q0, rows.top.astype(np.float64))
    ratio = np.where(low, 0.0, 1.0) + np.where(rows.top, (moved / p_max)[:, None], 0.0)
    return _Solved(ratio, alpha, rows.g_max - 0.5 * alpha, np.zeros_like(alpha), 1)


# ----------------------------------------------------------------------------------------------
# dispatch
# ----------------------------------------------------------------------------------------------
def _threshold_family(div: Divergence) -> _Power | None:
    """The "plus" shapes (χ², Cressie–Read α > 1) that have a threshold-form fallback."""
    fam = _power_family(div)
    return fam if fam is not None and fam.plus else None


def _verify(
    div: Divergence,
    rows: _Rows,
    solved: _Solved,
    target: FloatArray,
    fallback: Callable[[Divergence, _Power, _Rows, FloatArray], _Solved],
) -> _Solved:
    r"""Check the first-order conditions; re-solve failing "plus" rows in the threshold form.

    Sets c* = E_q[g − α φ'(L)] and the relative stationarity residual (:func:`_stationarity`,
    computed from the exact scores). For χ² and Cressie–Read α > 1, rows whose scalar
    equation did not converge or whose residuals exceed ``_RETRY`` are re-solved by
    ``fallback`` (b itself instead of log(max g − b)) and the better answer is kept;
    :func:`_check_root` then raises for any row above ``_STATIONARY``, so a wrong ratio is
    never returned.
    """
    if isinstance(div, TotalVariation):
        return solved
    if isinstance(div, KL):
        # L = e^{−βd}/S_0 makes g − α φ'(L) = max g + α log S_0 − α exactly up to the rounding
        # of d (β·|max g|·ε in the exponent, ≤ ~700ε wherever the bulk carries mass), so only
        # the normalisation is checked (the general check would double the cost of this path)
        mass = np.einsum("ij,ij->i", rows.q0, solved.ratio)
        return replace(solved, stationarity=np.abs(mass - 1.0))
    c, rel = _stationarity(div, rows, solved.ratio, solved.alpha)
    solved = replace(solved, normalizer=c, stationarity=rel)
    fam = _threshold_family(div)
    if fam is None:
        return solved
    # re-solve rows that fail, and rows not at the rounding floor (the log-gap form loses
    # digits to max g − d before it fails outright); keep the better answer per row
    score = np.maximum(np.abs(solved.residual), rel)
    retry = np.flatnonzero(~_root_ok(solved) | ~(score <= _RETRY))
    if retry.size == 0:
        return solved
    again = fallback(div, fam, rows.sub(retry), target[retry])
    c_b, rel_b = _stationarity(div, rows.sub(retry), again.ratio, again.alpha)
    better = ~(np.maximum(np.abs(again.residual), rel_b) >= score[retry])
    if not np.any(better):
        return solved
    bad = retry[better]
    again = _Solved(
        again.ratio[better],
        again.alpha[better],
        again.normalizer[better],
        again.residual[better],
        again.iterations,
        None if again.settled is None else again.settled[better],
    )
    c_b, rel_b = c_b[better], rel_b[better]
    ratio = solved.ratio.copy()
    alpha, normalizer, stat = solved.alpha.copy(), c.copy(), rel.copy()
    residual = solved.residual.copy()
    settled = np.ones(alpha.shape, dtype=bool) if solved.settled is None else solved.settled.copy()
    ratio[bad], alpha[bad], normalizer[bad], stat[bad] = again.ratio, again.alpha, c_b, rel_b
    residual[bad] = again.residual
    settled[bad] = True if again.settled is None else again.settled
    return _Solved(
        ratio,
        alpha,
        normalizer,
        residual,
        max(solved.iterations, again.iterations),
        settled,
        stat,
    )


def _solve_constrained(div: Divergence, rows: _Rows, eta: FloatArray) -> _Solved:
    return _verify(
        div, rows, _solve_constrained_raw(div, rows, eta), eta, _plus_constrained_threshold
    )


def _solve_constrained_raw(div: Divergence, rows: _Rows, eta: FloatArray) -> _Solved:
    if isinstance(div, KL):
        return _kl_constrained(rows, eta)
    if isinstance(div, ChiSquare):
        return _chi2_constrained(rows, eta)
    if isinstance(div, TotalVariation):
        return _tv_constrained(rows, eta)
    if isinstance(div, JensenShannon):
        return _js_constrained(div, rows, eta)
    fam = _power_family(div)
    if fam is None:  # pragma: no cover - every catalogue entry is handled above
        raise InputError(f"divergence: no dual solver for {div}")
    return _power_constrained(div, fam, rows, eta)


def _chi2_penalized(div: Divergence, rows: _Rows, alpha: FloatArray) -> _Solved:
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
        fam = _power_family(div)
        assert fam is not None
        solved = _power_penalized(div, fam, sub, alpha[bind])
        ratio[bind] = solved.ratio
        normalizer[bind] = solved.normalizer
        residual[bind] = solved.residual
        iterations = solved.iterations
    return _Solved(ratio, alpha, normalizer, residual, iterations)


def _solve_penalized(
    div: Divergence, rows: _Rows, alpha: FloatArray
) -> tuple[_Solved, FloatArray | None]:
    solved, kl_value = _solve_penalized_raw(div, rows, alpha)
    return _verify(div, rows, solved, alpha, _plus_penalized_threshold), kl_value


def _solve_penalized_raw(
    div: Divergence, rows: _Rows, alpha: FloatArray
) -> tuple[_Solved, FloatArray | None]:
    if isinstance(div, KL):
        return _kl_penalized(rows, alpha)
    if isinstance(div, ChiSquare):
        return _chi2_penalized(div, rows, alpha), None
    if isinstance(div, TotalVariation):
        return _tv_penalized(rows, alpha), None
    if isinstance(div, JensenShannon):
        return _js_penalized(rows, alpha), None
    fam = _power_family(div)
    if fam is None:  # pragma: no cover
        raise InputError(f"divergence: no dual solver for {div}")
    return _power_penalized(div, fam, rows, alpha), None


#: rows are solved in blocks of about this many entries, so that the arrays of one block stay
#: in cache across the iterations of the root finder (≈2× faster than one pass over 1024×4096)
_BLOCK = 1 << 18


def _blocks(rows: NDArray[np.intp], n: int) -> list[NDArray[np.intp] | slice]:
    """Split the row indices into cache-sized blocks (contiguous runs become slices: views)."""
    if rows.size == 0:
        return []
    step = max(1, _BLOCK // max(n, 1))
    out: list[NDArray[np.intp] | slice] = []
    for start in range(0, rows.size, step):
        part = rows[start : start + step]
        if part[-1] - part[0] == part.size - 1:
            out.append(slice(int(part[0]), int(part[-1]) + 1))
        else:
            out.append(part)
    return out


def _squeeze(x: FloatArray, single: bool) -> float | FloatArray:
    return float(x[0]) if single else x


def _solve_rows(
    batch: _Batch,
    div: Divergence,
    eta: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, NDArray[np.str_], dict[str, object]]:
    """Constrained worst case of every row at per-row radii ``eta`` (raw units)."""
    size, n = batch.d.shape
    value = batch.mu.copy()
    alpha = np.full(size, np.inf)
    normalizer = np.full(size, np.nan)
    status = np.full(size, "closed_form", dtype=object)
    pm_radius = np.asarray(div.point_mass_radius(batch.p_max), dtype=np.float64)
    point = (eta >= pm_radius) & ~batch.constant
    constant = batch.constant
    regular = np.flatnonzero(~point & ~constant & (eta > 0))
    # every row solved in one block: q is the solver's ratio, without an extra copy
    one_block = regular.size == size and size * n <= _BLOCK
    q = np.empty((size, n)) if regular.size == size else batch.q0.copy()
    # point mass on the maximisers (∝ q0): value max f, α* = 0, c* = max f
    if np.any(point):
        q[point] = np.where(batch.top[point], batch.q0[point] / batch.p_max[point, None], 0.0)
        value[point] = batch.f_max[point]
        alpha[point] = 0.0
        normalizer[point] = batch.f_max[point]
        status[point] = "point_mass"
    if np.any(constant):
        value[constant] = batch.f_max[constant]
        alpha[constant] = 0.0
        normalizer[constant] = batch.f_max[constant]
    diagnostics: dict[str, object] = {"point_mass_radius": _squeeze(pm_radius, batch.single)}
    iterations, worst = 0, 0.0
    for block in _blocks(regular, n):
        rows = batch.rows(block)
        solved = _solve_constrained(div, rows, eta[block])
        _check_root(solved, "radius")
        qr = solved.ratio
        if not rows.uniform:
            qr *= rows.q0
        qr /= qr.sum(axis=1, keepdims=True)
        if one_block:
            q = qr
        else:
            q[block] = qr
        sig = batch.sigma[block]
        # E_q g from the exact scores (max g − E_q d loses |max g|·ε when max g ≫ 1)
        value[block] = batch.mu[block] + sig * np.einsum("ij,ij->i", qr, rows.g)
        alpha[block] = sig * solved.alpha
        normalizer[block] = batch.mu[block] + sig * solved.normalizer
        status[block] = "optimal"
        iterations = max(iterations, solved.iterations)
        worst = max(worst, float(np.max(np.abs(solved.residual))))
    if regular.size:
        diagnostics["iterations"] = iterations
        diagnostics["max_abs_residual"] = worst
    return q, value, alpha, normalizer, status, diagnostics


def worst_case_dual(
    scores: ArrayLike,
    divergence: str | Divergence,
    radius: float,
    weights: ArrayLike | None = None,
) -> WorstCase:
    r"""Worst case  max_q Σ q_i f_i  s.t.  q ∈ Δ_n, D_φ(q‖q0) ≤ η, through the dual.

    .. math:: V(η) = \min_{α ≥ 0, c} c + αη + α E_{q0} φ^*((f − c)/α),
              \qquad q^* = q_0 (φ^*)'((f − c^*)/α^*)

    (Wu et al. 2023, Theorem 3.2 for KL, where α* is the InfoNCE temperature; Eq. 2 in general).

    Parameters
    ----------
    scores : array_like, shape (n,) or (B, n)
        Scores f (higher = more similar); a 2-D input solves B anchors in one vectorised call.
    divergence : str or Divergence
        ``kl, reverse_kl, chi2, hellinger, tv, js`` or ``"cressie_read:ALPHA"`` (or an instance).
    radius : float
        η ≥ 0.
    weights : array_like, shape (n,) or (B, n), optional
        Reference distribution q0 (default uniform).

    Returns
    -------
    WorstCase
        ``value``, ``q``, ``multiplier`` α*, ``normalizer`` c* (fields have a leading B axis for
        2-D scores). ``status``: ``"point_mass"`` when η ≥ D_φ(δ_argmax‖q0) (value max f, α* = 0,
        c* = max f, q spread over all maximisers ∝ q0); ``"closed_form"`` for η = 0 (q = q0,
        value E f, α* = inf, c* = nan: the infimum is not attained) and for constant scores
        (α* = 0, c* = f); else ``"optimal"``. For a batch with mixed cases ``status`` is
        ``"optimal"`` and ``diagnostics["row_status"]`` holds each row's.

    Raises
    ------
    InputError
        NaN/inf scores, bad shapes, negative radius, bad weights or an unknown divergence.
    DROSolveError
        When a scalar equation does not converge (not expected for finite inputs).
    """
    start = time.perf_counter()
    div = resolve_divergence(divergence)
    eta = check_radius(radius)
    batch = _prepare(scores, weights)
    size = batch.d.shape[0]
    q, value, alpha, normalizer, status, diagnostics = _solve_rows(batch, div, np.full(size, eta))
    kinds = sorted(set(status.tolist()))
    overall = kinds[0] if len(kinds) == 1 else "optimal"
    if not batch.single:
        diagnostics["row_status"] = status.astype(str)
    return WorstCase(
        value=_squeeze(value, batch.single),
        q=q[0] if batch.single else q,
        multiplier=_squeeze(alpha, batch.single),
        normalizer=_squeeze(normalizer, batch.single),
        status=overall,
        solver="dual",
        divergence=str(div),
        radius=eta,
        seconds=time.perf_counter() - start,
        diagnostics=diagnostics,
    )


def penalized_worst_case(
    scores: ArrayLike,
    divergence: str | Divergence,
    temperature: float,
    weights: ArrayLike | None = None,
) -> PenalizedWorstCase:
    r"""Penalised worst case  max_q { E_q f − α D_φ(q‖q0) } = min_c c + α E_{q0} φ*((f − c)/α).

    For KL this is exactly α log E_{q0} e^{f/α} with q = softmax(f/α + log q0) — the identity
    behind Theorem 3.2 (InfoNCE = KL-penalised CL-DRO) — and Theorem 3.5 expands it as
    E f + Var f/(2α φ''(1)) + ….

    Parameters
    ----------
    scores : array_like, shape (n,) or (B, n)
        Scores f.
    divergence : str or Divergence
        Any catalogue divergence.
    temperature : float
        α > 0.
    weights : array_like, shape (n,) or (B, n), optional
        q0 (default uniform).

    Returns
    -------
    PenalizedWorstCase
    """
    div = resolve_divergence(divergence)
    tau = check_positive(temperature, "temperature")
    batch = _prepare(scores, weights)
    size = batch.d.shape[0]
    value, q, normalizer = _penalized_rows(batch, div, np.full(size, tau))
    return PenalizedWorstCase(
        value=_squeeze(value, batch.single),
        q=q[0] if batch.single else q,
        normalizer=_squeeze(normalizer, batch.single),
        temperature=tau,
        divergence=str(div),
    )


def _penalized_rows(
    batch: _Batch, div: Divergence, tau: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    q = batch.q0.copy()
    value = batch.mu.copy()
    # constant rows: q = q0, value = f, c solves (φ*)'((f − c)/α) = 1, i.e. c = f − α φ'(1)
    normalizer = batch.f_max - tau * float(np.asarray(div.phi_prime(1.0)))
    value = np.where(batch.constant, batch.f_max, value)
    regular = np.flatnonzero(~batch.constant)
    for block in _blocks(regular, batch.d.shape[1]):
        rows = batch.rows(block)
        sig = batch.sigma[block]
        alpha = tau[block] / sig
        solved, kl_value = _solve_penalized(div, rows, alpha)
        _check_root(solved, "temperature")
        qr = rows.q0 * solved.ratio
        qr /= qr.sum(axis=1, keepdims=True)
        if kl_value is None:
            pen = np.einsum("ij,ij->i", rows.q0, div.phi(solved.ratio))
            val_g = np.einsum("ij,ij->i", qr, rows.g) - alpha * pen
        else:
            val_g = kl_value
        q[block] = qr
        value[block] = batch.mu[block] + sig * val_g
        normalizer[block] = batch.mu[block] + sig * solved.normalizer
    return value, q, normalizer
