r"""Vectorised, safeguarded root finding for many monotone scalar equations at once.

Every dual in :mod:`dro_theory.duals` reduces, per anchor, to one increasing scalar equation
r(x) = 0 (x a log-multiplier or log-distance). :func:`find_increasing_root` solves B of them in
one loop over iterations (never over anchors): a Newton step when the caller supplies r'(x),
an Illinois false-position step otherwise, and a bisection / bracket-expansion step whenever the
candidate leaves the current bracket or the residual stops halving.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["RootResult", "find_increasing_root"]

FloatArray = NDArray[np.float64]
Index = slice | NDArray[np.intp]
#: fun(x, rows) -> (r, dr): residuals (and derivatives, or None) for the rows ``rows``
RootFunction = Callable[[FloatArray, Index], tuple[FloatArray, FloatArray | None]]


@dataclass(frozen=True)
class RootResult:
    """Roots of B increasing scalar equations.

    Attributes
    ----------
    x : ndarray, shape (B,)
        The last evaluated point of every equation (its residual is ``residual``).
    residual : ndarray, shape (B,)
        r(x) at the returned points.
    iterations : int
        Iterations of the shared loop (the slowest equation's count).
    converged : ndarray of bool, shape (B,)
        Whether |r| ≤ ftol or the bracket shrank below xtol.
    """

    x: FloatArray
    residual: FloatArray
    iterations: int
    converged: NDArray[np.bool_]


def find_increasing_root(
    fun: RootFunction,
    x0: FloatArray,
    *,
    ftol: float = 1e-14,
    xtol: float = 4e-16,
    stol: float = 1e-14,
    finish: float = 0.0,
    maxiter: int = 200,
    max_step: float = 4.0,
) -> RootResult:
    r"""Solve r_b(x_b) = 0 for B increasing functions r_b simultaneously.

    Parameters
    ----------
    fun : callable
        ``fun(x, rows)`` returns ``(r, dr)`` for the active rows (``rows`` is ``slice(None)``
        while all rows are active, else an index array); ``dr`` may be None (no derivative).
        ``r`` may be ±inf (it is then used only for its sign).
    x0 : ndarray, shape (B,)
        Starting points (e.g. the small-radius asymptotics).
    ftol, xtol, stol : float
        Stop a row when |r| ≤ ftol, when its bracket is narrower than xtol·max(1, |x|), or when
        |r| ≤ 1e-9 and the next Newton / secant correction is below stol·max(1, |x|) (the
        residual has reached its rounding floor).
    finish : float
        With derivatives: once |r| ≤ finish, take that last Newton step and stop without
        evaluating r there (for quadratically convergent equations with finish ~ 1e-7 the
        result is at the rounding floor; ``residual`` then holds the pre-step value and the
        caller should re-check it).
    maxiter : int
        Cap on the shared iterations.
    max_step : float
        Largest step taken while a row's root is not yet bracketed (the bracket is expanded
        geometrically from there).

    Returns
    -------
    RootResult
    """
    x = np.array(x0, dtype=np.float64, copy=True)
    size = x.shape[0]
    state = _Brackets(size, max_step)
    residual = np.full(size, np.nan)
    converged = np.zeros(size, dtype=bool)
    active = np.arange(size)
    iterations = 0
    while active.size and iterations < maxiter:
        iterations += 1
        rows: Index = slice(None) if active.size == size else active
        xa = x[active]
        r, dr = fun(xa, rows)
        r = np.asarray(r, dtype=np.float64)
        residual[active] = r
        la, ha, rla, rha = state.update(active, xa, r)
        done = (np.abs(r) <= ftol) | (ha - la <= xtol * np.maximum(1.0, np.abs(xa))) | (r == 0)
        done |= ~np.isfinite(xa)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if dr is not None:
                cand = xa - r / np.asarray(dr, dtype=np.float64)
            else:
                cand = la - rla * (ha - la) / (rha - rla)
        # a converged step: the next correction is below stol (and the residual is small)
        tiny = np.abs(cand - xa) <= stol * np.maximum(1.0, np.abs(xa))
        done |= tiny & (np.abs(r) <= _SMALL_RESIDUAL) & np.isfinite(cand)
        ok = np.isfinite(cand) & (cand > la) & (cand < ha)
        # quadratic convergence: a Newton step from |r| ≤ finish lands at ~r² — take it and stop
        # (the caller re-evaluates the residual at the returned point)
        last = ~done & ok & (np.abs(r) <= finish) if dr is not None else np.zeros_like(done)
        new_x = state.safeguard(active, xa, r, cand, ok)
        converged[active] = done | last
        x[active] = np.where(done, xa, new_x)
        active = active[~(done | last)]
    return RootResult(x=x, residual=residual, iterations=iterations, converged=converged)


#: a step below ``stol`` ends a row only when its residual is at least this small
_SMALL_RESIDUAL = 1e-9


class _Brackets:
    """Per-row brackets [lo, hi] with their residuals, Illinois sides and expansion steps."""

    def __init__(self, size: int, max_step: float) -> None:
        self.lo = np.full(size, -np.inf)
        self.hi = np.full(size, np.inf)
        self.r_lo = np.full(size, -np.inf)
        self.r_hi = np.full(size, np.inf)
        self.side = np.zeros(size, dtype=np.int8)  # endpoint replaced last: -1 lo, +1 hi
        self.prev_abs = np.full(size, np.inf)
        self.expand = np.full(size, max_step)

    def update(
        self, active: NDArray[np.intp], xa: FloatArray, r: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Replace the endpoint on r's side by xa; returns the active rows' lo, hi, r_lo, r_hi."""
        below, above = r < 0, r > 0
        la, ha, sa = self.lo[active], self.hi[active], self.side[active]
        rla, rha = self.r_lo[active], self.r_hi[active]
        # Illinois: when the same endpoint is kept twice, halve the other's residual
        rha = np.where(below & (sa == -1), 0.5 * rha, rha)
        rla = np.where(above & (sa == 1), 0.5 * rla, rla)
        la, rla = np.where(below, xa, la), np.where(below, r, rla)
        ha, rha = np.where(above, xa, ha), np.where(above, r, rha)
        sa = np.where(below, -1, np.where(above, 1, sa)).astype(np.int8)
        self.lo[active], self.hi[active], self.side[active] = la, ha, sa
        self.r_lo[active], self.r_hi[active] = rla, rha
        return la, ha, rla, rha

    def safeguard(
        self,
        active: NDArray[np.intp],
        xa: FloatArray,
        r: FloatArray,
        cand: FloatArray,
        ok: NDArray[np.bool_],
    ) -> FloatArray:
        """The next point: ``cand`` where ``ok``, else bisection (bracketed) or expansion."""
        la, ha = self.lo[active], self.hi[active]
        bracketed = np.isfinite(la) & np.isfinite(ha)
        # a row whose |r| did not halve since the last step bisects instead
        ok = ok & ~(bracketed & (np.abs(r) > 0.5 * self.prev_abs[active]))
        ex = self.expand[active]
        ok &= np.abs(cand - xa) <= np.where(bracketed, np.inf, ex)
        grow = np.where(np.isfinite(la), xa + ex, xa - ex)
        with np.errstate(invalid="ignore", over="ignore"):
            mid = 0.5 * (la + ha)
        self.expand[active] = np.where(bracketed, ex, 2.0 * ex)
        self.prev_abs[active] = np.where(np.isfinite(r), np.abs(r), np.inf)
        return np.asarray(np.where(ok, cand, np.where(bracketed, mid, grow)))
