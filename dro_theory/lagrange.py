r"""Temperature ↔ radius: the InfoNCE temperature is the Lagrange multiplier of the KL ball.

For scores f and reference q0, the KL worst case at radius η is the Gibbs tilt
q_τ ∝ q0 e^{f/τ} with τ = α* (Wu et al., NeurIPS 2023, Theorem 3.2). The two directions are

.. math:: η(τ) = \mathrm{KL}(q_τ \| q_0) = E_{q_τ} f/τ − \log E_{q_0} e^{f/τ}
          \quad(\text{decreasing in } τ), \qquad τ(η) = η^{-1},

and Corollary 3.4's small-radius law τ ≈ √(Var_{q0} f/(2η)) (value E f + √(2η Var f)), whose
relative error is (γ/3)√(2η) + O(η) with γ the skewness of f under q0.

Both directions use the KL machinery of :mod:`dro_theory.duals` (one tilt evaluation and one
root finder for the package).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dro_theory.checks import as_finite_array
from dro_theory.divergences import KL
from dro_theory.duals import Batch, kl_radius, prepare_batch, solve_batch
from dro_theory.errors import InputError

__all__ = [
    "LagrangeCurve",
    "lagrange_curve",
    "radius_for_temperature",
    "temperature_for_radius",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class LagrangeCurve:
    r"""The exact τ(η) curve next to Corollary 3.4's law, for R radii (and B anchors).

    Arrays have shape (R,) for 1-D scores and (B, R) for (B, n) scores; ``variance`` and
    ``mean`` have shape () or (B,).

    Attributes
    ----------
    radii : ndarray
        η values.
    temperature : ndarray
        Exact τ(η) = α*, the KL multiplier (0 at and beyond the point-mass radius −log p_max).
    temperature_law : ndarray
        √(Var_{q0} f / (2η)).
    relative_error : ndarray
        temperature_law / temperature − 1 (inf where the exact τ is 0).
    value : ndarray
        Exact worst-case value max_{KL(q‖q0) ≤ η} E_q f.
    value_law : ndarray
        E f + √(2η Var f).
    mean, variance : float or ndarray
        E_{q0} f and Var_{q0} f.
    """

    radii: FloatArray
    temperature: FloatArray
    temperature_law: FloatArray
    relative_error: FloatArray
    value: FloatArray
    value_law: FloatArray
    mean: float | FloatArray
    variance: float | FloatArray


def _positive_array(x: ArrayLike, name: str, *, allow_zero: bool) -> FloatArray:
    arr = np.asarray(as_finite_array(np.atleast_1d(x), name), dtype=np.float64).reshape(np.shape(x))
    bad = arr < 0 if allow_zero else arr <= 0
    if np.any(bad):
        want = "non-negative" if allow_zero else "> 0"
        raise InputError(f"{name}: expected values {want}, found {float(arr[bad].flat[0])!r}")
    return arr


def _grid(batch: Batch, param: FloatArray) -> tuple[tuple[int, ...], NDArray[np.intp], FloatArray]:
    """Broadcast the anchors (shape () or (B,)) against ``param``; flatten both."""
    lead: tuple[int, ...] = () if batch.single else (batch.d.shape[0],)
    try:
        shape = np.broadcast_shapes(lead, param.shape)
    except ValueError as exc:
        raise InputError(
            f"scores/parameter: expected shapes that broadcast, found anchors {lead} and "
            f"{param.shape}"
        ) from exc
    rows = np.arange(batch.d.shape[0]).reshape(lead) if lead else np.array(0, dtype=np.intp)
    idx = np.broadcast_to(rows, shape).ravel().astype(np.intp)
    return shape, idx, np.broadcast_to(param, shape).ravel()


def _shaped(x: FloatArray, shape: tuple[int, ...]) -> float | FloatArray:
    return float(x[0]) if shape == () else x.reshape(shape)


def radius_for_temperature(
    scores: ArrayLike, temperature: ArrayLike, weights: ArrayLike | None = None
) -> float | FloatArray:
    r"""η(τ) = KL(q_τ‖q0), q_τ ∝ q0 e^{f/τ}: the radius at which InfoNCE's τ is the multiplier.

    Computed exactly (shifted log-sum-exp, and a cancellation-free series for very large τ);
    finite for τ = 1e-3 and scores of ±50.

    Parameters
    ----------
    scores : array_like, shape (n,) or (B, n)
        Scores f.
    temperature : float or array_like
        τ > 0; its shape broadcasts against the anchors (shape () or (B,)), e.g. an (R, 1)
        array with (B, n) scores gives an (R, B) result.
    weights : array_like, optional
        q0, shape (n,) or (B, n) (default uniform).

    Returns
    -------
    float or ndarray
        η, shape broadcast(anchors, temperature).
    """
    tau = _positive_array(temperature, "temperature", allow_zero=False)
    batch = prepare_batch(scores, weights)
    shape, idx, taus = _grid(batch, tau)
    sub = batch.take(idx)
    beta = sub.sigma / taus
    eta = kl_radius(sub, beta)
    eta = np.where(sub.constant, 0.0, eta)
    return _shaped(eta, shape)


def _solve(
    batch: Batch, radius: FloatArray
) -> tuple[tuple[int, ...], FloatArray, FloatArray, Batch]:
    shape, idx, radii = _grid(batch, radius)
    sub = batch.take(idx)
    ans = solve_batch(sub, KL(), radii)
    return shape, ans.multiplier, ans.value, sub


def temperature_for_radius(
    scores: ArrayLike, radius: ArrayLike, weights: ArrayLike | None = None
) -> float | FloatArray:
    r"""τ(η): the inverse of :func:`radius_for_temperature`, = the KL multiplier α*.

    Equal to ``worst_case_dual(scores, "kl", radius).multiplier`` (same root finder). 0 at and
    beyond the point-mass radius −log p_max; inf at η = 0.

    Parameters
    ----------
    scores : array_like, shape (n,) or (B, n)
    radius : float or array_like
        η ≥ 0, broadcast against the anchors like ``temperature`` above.
    weights : array_like, optional

    Returns
    -------
    float or ndarray
    """
    eta = _positive_array(radius, "radius", allow_zero=True)
    batch = prepare_batch(scores, weights)
    shape, alpha, _, _ = _solve(batch, eta)
    return _shaped(alpha, shape)


def lagrange_curve(
    scores: ArrayLike, radii: ArrayLike, weights: ArrayLike | None = None
) -> LagrangeCurve:
    r"""Exact τ(η) and worst-case value along ``radii``, beside Corollary 3.4's law.

    Parameters
    ----------
    scores : array_like, shape (n,) or (B, n)
    radii : array_like, shape (R,)
        η > 0.
    weights : array_like, optional

    Returns
    -------
    LagrangeCurve
        Arrays of shape (R,) or (B, R).
    """
    eta = _positive_array(radii, "radii", allow_zero=False)
    if eta.ndim != 1:
        raise InputError(f"radii: expected a 1-D array, found shape {eta.shape}")
    batch = prepare_batch(scores, weights)
    size = batch.d.shape[0]
    shape = eta.shape if batch.single else (size, eta.size)
    sub = batch.take(np.repeat(np.arange(size), eta.size))
    flat = np.tile(eta, size)
    ans = solve_batch(sub, KL(), flat)
    value, alpha = ans.value, ans.multiplier
    variance = batch.sigma**2
    law = np.sqrt(sub.sigma**2 / (2.0 * flat))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(alpha > 0, law / alpha - 1.0, np.inf)
    value_law = sub.mu + np.sqrt(2.0 * flat * sub.sigma**2)
    return LagrangeCurve(
        radii=np.array(eta),
        temperature=alpha.reshape(shape),
        temperature_law=law.reshape(shape),
        relative_error=rel.reshape(shape),
        value=value.reshape(shape),
        value_law=value_law.reshape(shape),
        mean=float(batch.mu[0]) if batch.single else batch.mu,
        variance=float(variance[0]) if batch.single else variance,
    )
