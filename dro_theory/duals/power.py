r"""Power-family duals: Cressie–Read (α ≠ 1), squared Hellinger, reverse KL (and χ²'s binding case).

The worst case has the shape L = q/q0 ∝ (g − b)_+^e ("plus": χ², Cressie–Read α > 1, with
e = 1/(α − 1)) or ∝ (b − g)^{−e} ("inv": Cressie–Read α < 1 with e = 1/(1 − α), Hellinger
e = 2, reverse KL e = 1). Each problem is one monotone scalar equation in x = log|b − max g|
(Newton with the analytic derivative, :func:`dro_theory._roots.find_increasing_root`):
D_φ(q_x‖q0) = η (constrained) or E_{q0} L = 1 at fixed α (penalised). The "plus" shapes also
have a threshold form in b itself (:func:`threshold_constrained`, :func:`threshold_penalized`),
used by :func:`dro_theory.duals.verify.verify` where the log-gap form loses digits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dro_theory._roots import Index, RootResult, find_increasing_root
from dro_theory.divergences import ChiSquare, CressieRead, Divergence, Hellinger, ReverseKL
from dro_theory.duals.batch import FloatArray, Rows, Solved, subsample
from dro_theory.duals.verify import no_normaliser
from dro_theory.errors import InputError

__all__ = [
    "PowerShape",
    "constrained",
    "has_threshold_form",
    "penalized",
    "power_shape",
    "threshold_constrained",
    "threshold_penalized",
]


@dataclass(frozen=True)
class PowerShape:
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


def _cressie_read_shape(div: Divergence) -> PowerShape:
    a = float(getattr(div, "alpha"))  # noqa: B009 - registered for CressieRead only
    if a > 1:
        return PowerShape(True, 1 / (a - 1), 1 / (a - 1))
    return PowerShape(False, 1 / (1 - a), 1 / (1 - a))


#: the worst-case shape of each power-family divergence (keyed by class, like the registry)
_SHAPES: dict[type[Divergence], Callable[[Divergence], PowerShape]] = {
    ChiSquare: lambda div: PowerShape(True, 1.0, 2.0),
    CressieRead: _cressie_read_shape,
    Hellinger: lambda div: PowerShape(False, 2.0, 1.0),
    ReverseKL: lambda div: PowerShape(False, 1.0, 1.0),
}


def power_shape(div: Divergence) -> PowerShape:
    """The shape (plus/inv, exponent e, constant κ) of ``div``'s worst case; InputError if none."""
    for cls in type(div).__mro__:
        shape = _SHAPES.get(cls)
        if shape is not None:
            return shape(div)
    raise InputError(f"divergence: {div} has no power-family dual")


def has_threshold_form(div: Divergence) -> bool:
    """True for the "plus" shapes (χ², Cressie–Read α > 1), which have the threshold form."""
    return power_shape(div).plus


def constrained(div: Divergence, rows: Rows, eta: FloatArray) -> Solved:
    """Constrained worst case: D_φ(q_x‖q0) = η in the log-gap x (see the module docstring)."""
    return _constrained_gap(div, power_shape(div), rows, eta)


def penalized(div: Divergence, rows: Rows, alpha: FloatArray) -> Solved:
    """Penalised worst case: E_{q0} L = 1 at fixed α in the log-gap x."""
    return _penalized_gap(div, power_shape(div), rows, alpha)


def _warm_start(
    solve: Callable[[Rows, FloatArray], RootResult], rows: Rows, x0: FloatArray
) -> FloatArray:
    """x0, or the root of the same equations on a strided subsample of long rows (where finite)."""
    small = subsample(rows)
    if small is None:
        return x0
    guess = solve(small, x0).x
    return np.where(np.isfinite(guess), guess, x0)


def _constrained_root(
    div: Divergence, fam: PowerShape, rows: Rows, eta: FloatArray, x0: FloatArray
) -> RootResult:
    """The log-gap x with D_φ(q_x‖q0) = η, by Newton from x0."""
    log_eta = np.log(eta)

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

    return find_increasing_root(fun, x0)


def _constrained_gap(div: Divergence, fam: PowerShape, rows: Rows, eta: FloatArray) -> Solved:
    x0 = math.log(fam.e) - 0.5 * np.log(2.0 * eta / div.curvature)
    x0 = _warm_start(lambda sub, x: _constrained_root(div, fam, sub, eta, x), rows, x0)
    root = _constrained_root(div, fam, rows, eta, x0)
    h = fam.shape(rows.d, root.x)
    s = np.einsum("ij,ij->i", rows.q0, h)
    h /= s[:, None]
    alpha = fam.alpha(root.x, s)
    return Solved(h, alpha, no_normaliser(alpha), root.residual, root.iterations, root.converged)


def _penalized_root(
    div: Divergence, fam: PowerShape, rows: Rows, alpha: FloatArray, x0: FloatArray
) -> RootResult:
    """The log-gap x with E_{q0} L = 1 at fixed α, by Newton from x0."""
    sign = 1.0 if fam.plus else -1.0

    def fun(x: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
        # r = ±log E L = ±[±e(x − log κα) + log S]: dr/dx = e ± S'/S
        q0 = rows.q0[idx]
        h, slope = fam.shape_and_slope(rows.d[idx], x)
        s = np.einsum("ij,ij->i", q0, h)
        ds = np.einsum("ij,ij->i", q0, slope)
        with np.errstate(divide="ignore", invalid="ignore"):
            return sign * fam.log_mean(x, s, alpha[idx]), fam.e + sign * ds / s

    return find_increasing_root(fun, x0)


def _penalized_gap(div: Divergence, fam: PowerShape, rows: Rows, alpha: FloatArray) -> Solved:
    x0 = np.log(fam.e * alpha * div.curvature)
    x0 = _warm_start(lambda sub, x: _penalized_root(div, fam, sub, alpha, x), rows, x0)
    root = _penalized_root(div, fam, rows, alpha, x0)
    h = fam.shape(rows.d, root.x)
    ratio = h / np.einsum("ij,ij->i", rows.q0, h)[:, None]
    return Solved(
        ratio, alpha, no_normaliser(alpha), root.residual, root.iterations, root.converged
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


def _bulk_scale(rows: Rows, g: FloatArray) -> FloatArray:
    """s = E_{q0}|g| (> 0 on non-constant rows; ≤ 1 as σ_g = 1)."""
    return np.einsum("ij,ij->i", rows.q0, np.abs(g))


def threshold_penalized(div: Divergence, rows: Rows, alpha: FloatArray) -> Solved:
    r"""Penalised χ² / Cressie–Read (α > 1) solved in the threshold b (not log(max g − b)).

    L = ((g − b)_+/(κα))^e with E_{q0} L = 1, i.e. r(t) = log E_{q0}(g + t)_+^e − e log κα = 0
    in t = −b (increasing; dr/dt = e E_q[1/(g − b)]). The log-gap parametrisation of
    :func:`penalized` resolves b only to |max g − b|·ε, which is useless when
    max g ≫ 1 and the bulk of q0 carries the answer (heavy-tailed scores on a quadrature grid);
    here the precision is |b|·ε. The variable is t = −b/s with s = E_{q0}|g| (the bulk's
    scale, ≪ 1 when σ is dominated by a far tail), so that the root finder's absolute
    tolerances act on the bulk's scale. Started from the small-deviation law
    L ≈ 1 + g/(αφ''(1)), i.e. b₀ = −e α φ''(1).
    """
    fam = power_shape(div)
    g = rows.g
    log_ka = fam.e * np.log(fam.kappa * alpha)
    unit = _bulk_scale(rows, g)

    def fun(t: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
        st = _threshold_state(g[idx], rows.q0[idx], -t * unit[idx], fam.e)
        return st.log_s - log_ka[idx], fam.e * st.inv_mean * unit[idx]

    root = find_increasing_root(fun, fam.e * alpha * div.curvature / unit)
    ratio = _threshold_state(g, rows.q0, -root.x * unit, fam.e).ratio
    return Solved(
        ratio, alpha, no_normaliser(alpha), root.residual, root.iterations, root.converged
    )


def threshold_constrained(div: Divergence, rows: Rows, eta: FloatArray) -> Solved:
    r"""Constrained χ² / Cressie–Read (α > 1) in the threshold b: D_φ(q_b‖q0) = η.

    L = (g − b)_+^e / E_{q0}(g − b)_+^e; D(b) = E_{q0} φ(L) increases from 0 (b → −∞) to the
    point-mass radius (b → max g), so r(b) = log D(b) − log η is increasing, with
    dL_i/db = e L_i (E_q[1/(g − b)] − 1/(g_i − b)). Used where the log-gap form cannot resolve
    b (see :func:`threshold_penalized`; variable b/s, s = E_{q0}|g|); started from
    L ≈ 1 + √(2η/φ''(1)) g. The multiplier follows from L = ((g − b)/(κα))^e:
    κα = (E_{q0}(g − b)_+^e)^{1/e}.
    """
    fam = power_shape(div)
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
    return Solved(
        st.ratio, alpha, no_normaliser(alpha), root.residual, root.iterations, root.converged
    )
