r"""The dual worst cases over a batch of rows: the public entry points of :mod:`dro_theory.duals`.

Constrained (the inner maximisation of CL-DRO, Wu et al., NeurIPS 2023, Eq. 3–4):

.. math:: V(η) = \max_q \sum_i q_i f_i \;\text{s.t.}\; q ∈ Δ_n,\; D_φ(q\|q_0) ≤ η
          = \min_{α ≥ 0,\, c} \; c + αη + α\, E_{q_0} φ^*\!\big((f − c)/α\big)

(Ben-Tal et al. 2013), with q* = q0 · (φ*)'((f − c*)/α*). Penalised (Theorem 3.2's identity
for KL, expanded by Theorem 3.5):

.. math:: P(α) = \max_q \{E_q f − α D_φ(q\|q_0)\} = \min_c \; c + α E_{q_0} φ^*((f − c)/α).

Scores are standardised per row (:func:`dro_theory.duals.batch.prepare_batch`), solved by the
divergence's family (:mod:`dro_theory.duals.registry`) in cache-sized blocks of rows, verified
(:mod:`dro_theory.duals.verify`) and mapped back: V = μ + σ V_g, α* = σ α*_g, c* = μ + σ c*_g.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dro_theory._result import WorstCase
from dro_theory.checks import check_positive, check_radius
from dro_theory.divergences import Divergence, resolve_divergence
from dro_theory.duals.batch import Batch, FloatArray, prepare_batch
from dro_theory.duals.registry import solve_constrained, solve_penalized
from dro_theory.duals.verify import check_root

__all__ = [
    "POINT_MASS_GAP",
    "ConstrainedBatch",
    "PenalizedBatch",
    "PenalizedWorstCase",
    "penalized_worst_case",
    "point_mass_limit",
    "solve_batch",
    "solve_penalized_batch",
    "worst_case_dual",
]


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


@dataclass(frozen=True)
class ConstrainedBatch:
    """Constrained worst cases of every row of a batch (raw units; leading axis B).

    Attributes
    ----------
    q : ndarray, shape (B, n)
        The worst-case distributions.
    value : ndarray, shape (B,)
        V(η) per row.
    multiplier : ndarray, shape (B,)
        α* (0 at a point mass or constant row, inf at η = 0).
    normalizer : ndarray, shape (B,)
        c* (nan at η = 0, where the infimum is not attained).
    status : ndarray of str, shape (B,)
        ``"optimal"``, ``"point_mass"`` or ``"closed_form"`` per row.
    diagnostics : dict
        ``point_mass_radius`` per row; ``iterations`` and ``max_abs_residual`` of the solver.
    """

    q: FloatArray
    value: FloatArray
    multiplier: FloatArray
    normalizer: FloatArray
    status: NDArray[np.str_]
    diagnostics: dict[str, object]


@dataclass(frozen=True)
class PenalizedBatch:
    """Penalised worst cases of every row of a batch: value P(α), q and c* (leading axis B)."""

    value: FloatArray
    q: FloatArray
    normalizer: FloatArray


#: rows are solved in blocks of about this many entries (2 MiB of float64), so that the arrays of
#: one block stay in cache across the iterations of the root finder
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


#: the worst case counts as the point mass once its value is within this many units of σ of
#: max f (float64's ε: below the rounding of any value on the scale of the scores)
POINT_MASS_GAP = float(np.finfo(np.float64).eps)


def point_mass_limit(div: Divergence, p_max: ArrayLike, spread: ArrayLike) -> FloatArray:
    r"""Radius from which the worst case is the point mass on the maximisers, to float64.

    min(D_φ(δ‖q0), D_φ(q_m‖q0)) where q_m keeps mass 1 − m on the maximisers (q0 mass p) and
    spreads m ∝ q0 over the rest, m = ε/s (s = ``spread`` = (max f − min f)/σ, ε =
    :data:`POINT_MASS_GAP`). q_m is feasible at that radius and its value is within ε σ of
    max f, so the optimum is too. Finite for every divergence — also where D_φ(δ‖q0) = ∞
    (reverse KL: about log(s/ε)) — so huge radii return the point mass instead of a root
    search that would overflow.
    """
    p = np.asarray(p_max, dtype=np.float64)
    s = np.asarray(spread, dtype=np.float64)
    exact = np.asarray(div.point_mass_radius(p), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.minimum(POINT_MASS_GAP / np.maximum(s, POINT_MASS_GAP), 1.0 - p)
        near = p * div.phi((1.0 - m) / p) + (1.0 - p) * div.phi(m / (1.0 - p))
    near = np.where(p < 1.0, near, 0.0)
    return np.asarray(np.fmin(exact, near))


def _closed_rows(
    batch: Batch, div: Divergence, eta: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.str_], FloatArray, NDArray[np.bool_]]:
    """Value, α*, c*, status of the rows with a closed form; the point-mass radii and mask.

    Point mass on the maximisers (∝ q0) at η ≥ :func:`point_mass_limit`: value max f,
    α* = 0, c* = max f. Constant rows: the same numbers. η = 0: q = q0, α* = inf, c* = nan.
    """
    size = batch.d.shape[0]
    value = batch.mu.copy()
    alpha = np.full(size, np.inf)
    normalizer = np.full(size, np.nan)
    status = np.full(size, "closed_form", dtype=object)
    pm_radius = np.asarray(div.point_mass_radius(batch.p_max), dtype=np.float64)
    spread = np.max(batch.d, axis=1)
    point = (eta >= point_mass_limit(div, batch.p_max, spread)) & ~batch.constant
    status[point] = "point_mass"
    done = point | batch.constant
    value[done] = batch.f_max[done]
    alpha[done] = 0.0
    normalizer[done] = batch.f_max[done]
    return value, alpha, normalizer, status, pm_radius, point


def solve_batch(batch: Batch, divergence: str | Divergence, eta: ArrayLike) -> ConstrainedBatch:
    """Constrained worst case of every row of ``batch`` at per-row radii ``eta`` (raw units).

    The batch form of :func:`worst_case_dual` (one row per anchor, or per (anchor, radius)
    via :meth:`Batch.take`); ``eta`` has shape (B,), entries ≥ 0 (not checked here).

    Raises
    ------
    DROSolveError
        A row's scalar equation or first-order conditions fail (see :mod:`.verify`).
    """
    div = resolve_divergence(divergence)
    eta = np.asarray(eta, dtype=np.float64)
    size, n = batch.d.shape
    value, alpha, normalizer, status, pm_radius, point = _closed_rows(batch, div, eta)
    regular = np.flatnonzero(~point & ~batch.constant & (eta > 0))
    # every row solved in one block: q is the solver's ratio, without an extra copy
    one_block = regular.size == size and size * n <= _BLOCK
    q = np.empty((size, n)) if regular.size == size else batch.q0.copy()
    if np.any(point):
        q[point] = np.where(batch.top[point], batch.q0[point] / batch.p_max[point, None], 0.0)
    diagnostics: dict[str, object] = {"point_mass_radius": _squeeze(pm_radius, batch.single)}
    iterations, worst = 0, 0.0
    for block in _blocks(regular, n):
        rows = batch.rows(block)
        solved = solve_constrained(div, rows, eta[block])
        check_root(solved, "radius")
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
    return ConstrainedBatch(q, value, alpha, normalizer, status, diagnostics)


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
        2-D scores). ``status``: ``"point_mass"`` when η ≥ D_φ(δ_argmax‖q0), or beyond the
        radius where the worst case is the point mass to float64 (:func:`point_mass_limit`;
        reverse KL's D_φ(δ‖q0) is infinite) — value max f, α* = 0, c* = max f, q spread over
        all maximisers ∝ q0; ``"closed_form"`` for η = 0 (q = q0,
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
    batch = prepare_batch(scores, weights)
    ans = solve_batch(batch, div, np.full(batch.d.shape[0], eta))
    status, diagnostics = ans.status, ans.diagnostics
    q, value, alpha, normalizer = ans.q, ans.value, ans.multiplier, ans.normalizer
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
    batch = prepare_batch(scores, weights)
    ans = solve_penalized_batch(batch, div, np.full(batch.d.shape[0], tau))
    return PenalizedWorstCase(
        value=_squeeze(ans.value, batch.single),
        q=ans.q[0] if batch.single else ans.q,
        normalizer=_squeeze(ans.normalizer, batch.single),
        temperature=tau,
        divergence=str(div),
    )


def solve_penalized_batch(
    batch: Batch, divergence: str | Divergence, tau: ArrayLike
) -> PenalizedBatch:
    """Penalised worst case of every row of ``batch`` at per-row temperatures ``tau`` > 0.

    The batch form of :func:`penalized_worst_case`. Constant rows: q = q0, value f and
    c = f − τ φ'(1) (the root of (φ*)'((f − c)/τ) = 1).

    Raises
    ------
    DROSolveError
        A row's scalar equation or first-order conditions fail (see :mod:`.verify`).
    """
    div = resolve_divergence(divergence)
    tau = np.asarray(tau, dtype=np.float64)
    q = batch.q0.copy()
    normalizer = batch.f_max - tau * float(np.asarray(div.phi_prime(1.0)))
    value = np.where(batch.constant, batch.f_max, batch.mu)
    regular = np.flatnonzero(~batch.constant)
    for block in _blocks(regular, batch.d.shape[1]):
        rows = batch.rows(block)
        sig = batch.sigma[block]
        alpha = tau[block] / sig
        solved = solve_penalized(div, rows, alpha)
        check_root(solved, "temperature")
        qr = rows.q0 * solved.ratio
        qr /= qr.sum(axis=1, keepdims=True)
        if solved.value is None:
            pen = np.einsum("ij,ij->i", rows.q0, div.phi(solved.ratio))
            val_g = np.einsum("ij,ij->i", qr, rows.g) - alpha * pen
        else:
            val_g = solved.value
        q[block] = qr
        value[block] = batch.mu[block] + sig * val_g
        normalizer[block] = batch.mu[block] + sig * solved.normalizer
    return PenalizedBatch(value, q, normalizer)
