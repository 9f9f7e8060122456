r"""Jensen–Shannon dual: L = w/(1 − w + ε), w = e^{−2(max g − g)/α}.

Penalised: ε > 0 from E_{q0} L = 1 (inner Newton in log ε). Constrained: α from
D_JS(q_α‖q0) = η (outer Newton in t = log(1/α), each step an inner solve warm-started from the
previous ε). The outer derivative follows from implicit differentiation of E_{q0} L = 1: with
z = −2d e^t (so dw/dt = w z) and den = 1 − w + ε,

.. math:: ε' = (1 + ε)\,\frac{E_{q0}[w z/den^2]}{E_{q0}[w/den^2]}, \qquad
          \frac{dL}{dt} = \frac{w}{den^2}\big((1 + ε) z − ε'\big), \qquad
          \frac{dD}{dt} = E_{q0}\Big[φ'(L) \frac{dL}{dt}\Big].

Long rows start the outer root from a strided subsample's root
(:func:`dro_theory.duals.batch.subsample`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dro_theory._roots import Index, RootResult, find_increasing_root
from dro_theory.divergences import Divergence
from dro_theory.duals.batch import FloatArray, Rows, Solved, subsample
from dro_theory.duals.verify import ACCEPT, no_normaliser

__all__ = ["constrained", "penalized"]

#: the outer Newton's finishing step is taken from |r| ≤ this (it lands at ~r², the rounding
#: floor, for this quadratically convergent equation)
_FINISH = 1e-7
#: rows whose final residual exceeds this (the finishing step overshot) are iterated again
_REDO = 1e-13


@dataclass(frozen=True)
class _Inner:
    """The inner solve at fixed α: root y = log ε, z = −2d/α, w = e^z, 1 − w."""

    root: RootResult
    z: FloatArray
    w: FloatArray
    one_minus: FloatArray


def _inner(rows: Rows, alpha: FloatArray, start: FloatArray | None) -> _Inner:
    """ε > 0 with E_{q0} L = 1 (Newton in log ε; E L decreases in ε), from ``start`` or 0."""
    z = -2.0 * rows.d / alpha[:, None]
    w = np.exp(z)
    one_minus = -np.expm1(z)

    def fun(y: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
        eps = np.exp(y)
        den = one_minus[idx] + eps[:, None]
        a = w[idx] / den
        m = np.einsum("ij,ij->i", rows.q0[idx], a)
        a /= den
        m2 = np.einsum("ij,ij->i", rows.q0[idx], a)
        return -np.log(m), eps * m2 / m

    y0 = np.zeros(alpha.shape[0]) if start is None else start
    return _Inner(find_increasing_root(fun, y0), z, w, one_minus)


def penalized(
    div: Divergence, rows: Rows, alpha: FloatArray, *, start: FloatArray | None = None
) -> Solved:
    """Inner solve: ε > 0 with E_{q0} L = 1 (Newton in log ε from ``start``, default 0)."""
    inner = _inner(rows, alpha, start)
    root = inner.root
    ratio = inner.w / (inner.one_minus + np.exp(root.x)[:, None])
    ratio /= np.einsum("ij,ij->i", rows.q0, ratio)[:, None]
    return Solved(
        ratio, alpha, no_normaliser(alpha), root.residual, root.iterations, root.converged
    )


def _radius_and_slope(
    rows: Rows, inner: _Inner
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """D_JS(q‖q0) at the inner root, dD/dt, dε/dt (t = log 1/α) and L (module docstring).

    With c = log((1 + ε)/2): 1 + L = (1 + ε)/den and log L = z − log den, so
    φ(L) = ½(L z + log den − (1 + L) c) and φ'(L) = ½(z − c) — one log pass instead of φ's
    two xlogy passes, and dD/dt = ½ E_{q0}[z dL/dt] as E_{q0} dL/dt = 0.
    """
    eps = np.exp(inner.root.x)
    den = inner.one_minus + eps[:, None]
    ratio = inner.w / den
    a2 = ratio / den  # w/den²
    zq = inner.z * rows.q0 if not rows.uniform else inner.z / rows.d.shape[1]
    m_z = np.einsum("ij,ij->i", zq, a2)
    m_1 = np.einsum("ij,ij->i", rows.q0, a2)
    log_c = np.log1p(eps) - np.log(2.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        eps_dot = (1.0 + eps) * m_z / m_1
        mean_l = np.einsum("ij,ij->i", rows.q0, ratio)
        mean_lz = np.einsum("ij,ij->i", zq, ratio)
        np.log(den, out=den)
        radius = 0.5 * (mean_lz + np.einsum("ij,ij->i", rows.q0, den) - (1.0 + mean_l) * log_c)
        # dL/dt = a2 ((1 + ε) z − ε')
        a2 *= inner.z * (1.0 + eps)[:, None] - eps_dot[:, None]
        slope = 0.5 * np.einsum("ij,ij->i", zq, a2)
    return radius, slope, eps_dot, ratio


def _outer(
    rows: Rows, eta: FloatArray, t0: FloatArray, y0: FloatArray, finish: float = 0.0
) -> tuple[RootResult, FloatArray]:
    """Newton in t = log(1/α) on log D_JS(q_α‖q0) − log η; returns the root and its log ε.

    Each inner solve starts from the first-order prediction y + (ε'/ε)Δt of the previous one.
    ``finish``: as in :func:`dro_theory._roots.find_increasing_root` (the caller re-checks).
    """
    log_eta = np.log(eta)
    last_y, last_t, dy_dt = y0.copy(), np.full(eta.shape[0], np.nan), np.zeros(eta.shape[0])

    def fun(t: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
        sub = rows.sub(idx)
        step = np.where(np.isfinite(last_t[idx]), t - last_t[idx], 0.0)
        start = last_y[idx] + np.nan_to_num(dy_dt[idx] * step)
        inner = _inner(sub, np.exp(-t), start)
        y = inner.root.x
        radius, slope, eps_dot, _ = _radius_and_slope(sub, inner)
        good = np.isfinite(y)
        last_y[idx] = np.where(good, y, 0.0)
        last_t[idx] = np.where(good, t, np.nan)
        dy_dt[idx] = np.where(good, eps_dot * np.exp(-np.where(good, y, 0.0)), 0.0)
        # D below its rounding (≤ 0, e.g. q ≈ q0 far out in α) is below any η > 0: −inf
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(radius > 0, np.log(radius), -np.inf) - log_eta[idx]
            return r, slope / radius

    return find_increasing_root(fun, t0, finish=finish), last_y


def constrained(div: Divergence, rows: Rows, eta: FloatArray) -> Solved:
    """Outer solve: D_JS(q_α‖q0) = η, increasing in t = log(1/α).

    The last Newton step (from |r| ≤ :data:`_FINISH`) is not evaluated inside the loop: the
    final pass that builds q re-computes D there, and rows whose residual is then above
    :data:`_REDO` are iterated to convergence.
    """
    t0 = 0.5 * np.log(2.0 * div.curvature * eta)
    y0 = np.zeros(eta.shape[0])
    small = subsample(rows)
    if small is not None:
        guess, y_small = _outer(small, eta, t0, y0)
        good = np.isfinite(guess.x)
        t0, y0 = np.where(good, guess.x, t0), np.where(good, y_small, y0)
    root, y = _outer(rows, eta, t0, y0, _FINISH)
    inner, residual = _final(rows, eta, root.x, y)
    settled = root.converged.copy()
    redo = np.flatnonzero(~(np.abs(residual) <= _REDO))
    if redo.size:
        sub = rows.sub(redo)
        again, y_again = _outer(sub, eta[redo], root.x[redo], y[redo])
        root.x[redo], settled[redo] = again.x, again.converged
        y[redo] = y_again
        inner, residual = _final(rows, eta, root.x, y)
    alpha = np.exp(-root.x)
    eps = np.exp(inner.root.x)
    ratio = inner.w / (inner.one_minus + eps[:, None])
    ratio /= np.einsum("ij,ij->i", rows.q0, ratio)[:, None]
    inner_residual = np.abs(inner.root.residual)
    settled &= inner_residual <= ACCEPT
    residual = np.maximum(np.abs(residual), inner_residual)
    return Solved(ratio, alpha, no_normaliser(alpha), residual, root.iterations, settled)


def _final(rows: Rows, eta: FloatArray, t: FloatArray, y: FloatArray) -> tuple[_Inner, FloatArray]:
    """The inner solve at t (from log ε = y) and the outer residual log D − log η there."""
    inner = _inner(rows, np.exp(-t), y)
    radius = _radius_and_slope(rows, inner)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return inner, np.where(radius > 0, np.log(radius), -np.inf) - np.log(eta)
