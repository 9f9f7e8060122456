r"""Verification of a dual solver's answer: the scalar equation and the first-order conditions.

Every family's answer on standardised rows (:class:`~dro_theory.duals.batch.Solved`) passes
here before it is returned: the root's residual must be at :data:`ACCEPT` (or :data:`FLOOR`
where the root is pinned to float resolution), and the relative first-order residual at
:data:`STATIONARY`; otherwise :class:`~dro_theory.errors.DROSolveError` is raised, so a wrong
ratio is never returned. Families whose log-gap parametrisation may lose digits (χ²,
Cressie–Read α > 1) are retried in the threshold form and the better answer is kept.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from dro_theory.divergences import Divergence
from dro_theory.duals.batch import FloatArray, Rows, Solved, SolveFn
from dro_theory.errors import DROSolveError

__all__ = [
    "ACCEPT",
    "FLOOR",
    "RETRY",
    "STATIONARY",
    "check_root",
    "no_normaliser",
    "root_ok",
    "stationarity",
    "verify",
]

#: a solved row is accepted when its scalar equation's residual is below this (log scale): a
#: few hundred ulps of the O(1) quantities the equation compares
ACCEPT = 1e-9
#: ... or below this when the root is already pinned to float resolution: for tiny radii
#: (η ≲ 1e-9) D_φ(q‖q0) = Σ q0 φ(L) itself carries rounding of ~ε/η relative
FLOOR = 1e-5


def root_ok(solved: Solved) -> NDArray[np.bool_]:
    """Rows whose scalar equation is solved (|r| ≤ ACCEPT, or ≤ FLOOR when pinned)."""
    residual = np.abs(solved.residual)
    ok = residual <= ACCEPT
    if solved.settled is not None:
        ok |= solved.settled & (residual <= FLOOR)
    return np.asarray(ok)


def _worst(x: FloatArray) -> float:
    """max |x|, nan when any entry is nan (no All-NaN warning)."""
    a = np.abs(x)
    return float("nan") if np.any(np.isnan(a)) else float(np.max(a))


def check_root(solved: Solved, name: str) -> None:
    """Raise DROSolveError unless every row's equation and first-order conditions hold."""
    bad = ~root_ok(solved)
    if np.any(bad):
        raise DROSolveError(
            f"{name}: the scalar dual equation did not converge for {int(bad.sum())} row(s) "
            f"(largest |residual| {_worst(solved.residual[bad]):.3g})"
        )
    if solved.stationarity is not None:
        off = ~(solved.stationarity <= STATIONARY)
        if np.any(off):
            raise DROSolveError(
                f"{name}: the worst case fails its first-order conditions for {int(off.sum())} "
                f"row(s) (relative residual {np.max(solved.stationarity):.3g} > "
                f"{STATIONARY:g}): the scores' range is beyond what float64 resolves here"
            )


def stationarity(
    div: Divergence, rows: Rows, ratio: FloatArray, alpha: FloatArray
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


def no_normaliser(alpha: FloatArray) -> FloatArray:
    """Placeholder normaliser, replaced by c from :func:`stationarity` after the solve."""
    return np.full_like(alpha, np.nan)


#: a solution is accepted when its relative first-order residual (:func:`stationarity`) is
#: below this; rounding gives ~1e-15, a wrong ratio O(1)
STATIONARY = 1e-9
#: rows of the "plus" families whose residual or first-order residual exceeds this are also
#: tried in the threshold form (the better answer is kept)
RETRY = 1e-12


def verify(
    div: Divergence, rows: Rows, solved: Solved, target: FloatArray, retry: SolveFn | None
) -> Solved:
    r"""Set c* and the first-order residual; re-solve rows that fail with ``retry`` if given.

    c* = E_q[g − α φ'(L)] and the relative stationarity residual are computed from the exact
    scores (:func:`stationarity`). With ``retry`` (the threshold form of χ² and Cressie–Read
    α > 1), rows whose scalar equation did not converge or whose residuals exceed
    :data:`RETRY` are re-solved (in b itself instead of log(max g − b)) and the better answer
    is kept per row; :func:`check_root` then raises for any row above :data:`STATIONARY`.
    """
    c, rel = stationarity(div, rows, solved.ratio, solved.alpha)
    solved = replace(solved, normalizer=c, stationarity=rel)
    if retry is None:
        return solved
    # re-solve rows that fail, and rows not at the rounding floor (the log-gap form loses
    # digits to max g − d before it fails outright); keep the better answer per row
    score = np.maximum(np.abs(solved.residual), rel)
    idx = np.flatnonzero(~root_ok(solved) | ~(score <= RETRY))
    if idx.size == 0:
        return solved
    again = retry(div, rows.sub(idx), target[idx])
    c_b, rel_b = stationarity(div, rows.sub(idx), again.ratio, again.alpha)
    better = ~(np.maximum(np.abs(again.residual), rel_b) >= score[idx])
    if not np.any(better):
        return solved
    again = replace(again.take(better), normalizer=c_b[better], stationarity=rel_b[better])
    return _merge(solved, again, idx[better])


def _merge(solved: Solved, again: Solved, rows: NDArray[np.intp]) -> Solved:
    """``solved`` with rows ``rows`` replaced by ``again`` (whose normalizer is c*)."""
    assert solved.stationarity is not None and again.stationarity is not None
    ratio, alpha = solved.ratio.copy(), solved.alpha.copy()
    normalizer, stat = solved.normalizer.copy(), solved.stationarity.copy()
    residual = solved.residual.copy()
    settled = np.ones(alpha.shape, dtype=bool) if solved.settled is None else solved.settled.copy()
    ratio[rows], alpha[rows], residual[rows] = again.ratio, again.alpha, again.residual
    normalizer[rows], stat[rows] = again.normalizer, again.stationarity
    settled[rows] = True if again.settled is None else again.settled
    return Solved(
        ratio,
        alpha,
        normalizer,
        residual,
        max(solved.iterations, again.iterations),
        settled,
        stat,
    )
