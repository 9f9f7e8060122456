r"""KL dual: the Gibbs tilt q ∝ q0 e^{βg}, β = 1/α (Wu et al. 2023, Theorem 3.2).

Penalised: P(α) = α log E_{q0} e^{f/α} with q = softmax(f/α + log q0), exact. Constrained: α*
solves KL(q_{1/α}‖q0) = η, a monotone scalar equation in t = log β, solved by safeguarded
Newton (dη/dt = β² Var_{q_β} g) started from the skewness-corrected small-radius law
α ≈ (σ/√(2η))(1 + γ√(2η)/3) (:mod:`dro_theory.lagrange`; derived in ``docs/dro_theory.md``).

Verification is done here, from the final pass: L = e^{−βd}/S_0 makes g − α φ'(L) =
max g + α log S_0 − α exactly up to the rounding of d, so only the normalisation E_{q0} L = 1
is checked (no second solve or second stationarity pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dro_theory._roots import Index, find_increasing_root
from dro_theory.divergences import Divergence
from dro_theory.duals.batch import FloatArray, Rows, Solved

__all__ = ["Tilt", "constrained", "penalized", "tilt"]

#: Taylor coefficients 1/k! of e^x − 1 − x up to x^11: below |x| = 0.05 the truncation is
#: 0.05^12/12! ≈ 5e-25, far under float64 rounding of the leading term x²/2
_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(2, 12))
#: rows with β·max|g| below this use the cancellation-free small-tilt evaluation
_SMALL_TILT = 0.05
#: Newton's finishing step is taken from |r| ≤ this (it lands at ~r², the rounding floor)
_FINISH = 1e-7
#: rows whose final residual exceeds this (the finishing step overshot) are iterated again
_REDO = 1e-13


def _expm1_minus_x(x: FloatArray) -> FloatArray:
    """e^x − 1 − x to full relative precision for |x| ≤ 0.05 (Taylor to x^11, Horner)."""
    acc = np.full_like(x, _TAYLOR[-1])
    for c in _TAYLOR[-2::-1]:
        acc *= x
        acc += c
    acc *= x * x
    return acc


@dataclass(frozen=True)
class Tilt:
    r"""Statistics of the Gibbs tilt q_β ∝ q0 e^{β g}, per row.

    ``log_s0`` = log E_{q0} e^{−β d} (d = max g − g), ``mean_d`` = E_{q_β} d,
    ``var`` = Var_{q_β} g and ``radius`` = KL(q_β‖q0) = β E_{q_β} g − log E_{q0} e^{β g}.
    """

    log_s0: FloatArray
    mean_d: FloatArray
    var: FloatArray
    radius: FloatArray


def tilt(rows: Rows, beta: FloatArray) -> Tilt:
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
    return Tilt(log_s0, mean_d, var, radius)


def _kl_ratio(rows: Rows, beta: FloatArray, log_s0: FloatArray) -> FloatArray:
    """L = q/q0 = e^{−βd}/S_0 (≤ 1/p_max, no overflow)."""
    ratio = np.multiply(rows.d, -beta[:, None])
    ratio -= log_s0[:, None]
    return np.exp(ratio, out=ratio)


def constrained(div: Divergence, rows: Rows, eta: FloatArray) -> Solved:
    """Solve KL(q_β‖q0) = η in t = log β by safeguarded Newton (dη/dt = β² Var_{q_β} g).

    The last Newton step (from |r| ≤ 1e-7, landing at ~r²) is not re-evaluated inside the loop:
    the final pass that builds q re-computes η from the same exponentials and reports the true
    residual.
    """
    log_eta = np.log(eta)

    def fun(t: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
        beta = np.exp(t)
        stats = tilt(rows.sub(idx), beta)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log(stats.radius) - log_eta[idx]
            dr = beta * beta * stats.var / stats.radius
        return r, dr

    # start from α ≈ (σ/√(2η))(1 + γ√(2η)/3) (Corollary 3.4 and its next term), γ: skewness of g
    g = rows.g
    gg = g * g
    if not rows.uniform:
        gg *= rows.q0
    skew = np.einsum("ij,ij->i", gg, g) / (g.shape[1] if rows.uniform else 1.0)
    root2eta = np.sqrt(2.0 * eta)
    start = np.log(root2eta / np.clip(1.0 + skew * root2eta / 3.0, 0.5, 4.0))
    del g, gg
    root = find_increasing_root(fun, start, finish=_FINISH)
    t = root.x
    ratio, s0, residual = _kl_final(rows, np.exp(t), log_eta)
    # where the finishing Newton step overshot the rounding floor (strong curvature, e.g. near
    # the point-mass radius), iterate those rows to convergence and rebuild them
    redo = np.flatnonzero(~(np.abs(residual) <= _REDO))
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
    return Solved(
        ratio, alpha, normalizer, residual, root.iterations, settled, _mass_error(rows, ratio)
    )


def _kl_final(
    rows: Rows, beta: FloatArray, log_eta: FloatArray
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
        radius[part] = tilt(rows.sub(part), beta[part]).radius
    with np.errstate(divide="ignore"):
        residual = np.log(radius) - log_eta
    ratio /= s0[:, None]
    return ratio, s0, residual


def penalized(div: Divergence, rows: Rows, alpha: FloatArray) -> Solved:
    """q ∝ q0 e^{g/α}: value α log E_{q0} e^{g/α} = max g + α log S_0, c* = value − α."""
    beta = 1.0 / alpha
    tilt_ = tilt(rows, beta)
    ratio = _kl_ratio(rows, beta, tilt_.log_s0)
    value = rows.g_max + alpha * tilt_.log_s0
    zero = np.zeros_like(alpha)
    return Solved(ratio, alpha, value - alpha, zero, 0, None, _mass_error(rows, ratio), value)


def _mass_error(rows: Rows, ratio: FloatArray) -> FloatArray:
    """|E_{q0} L − 1|, the one check the Gibbs form needs (see the module docstring)."""
    mass = np.einsum("ij,ij->i", rows.q0, ratio)
    return np.asarray(np.abs(mass - 1.0))
