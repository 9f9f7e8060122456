r"""The temperature advisor: τ per anchor for a KL radius, or the radius a τ implies.

Wu et al. (NeurIPS 2023, Theorem 3.2, Corollary 3.4): InfoNCE's temperature is the Lagrange
multiplier of a KL ball around the negatives' distribution q0 (uniform over an anchor's N
negatives). For an anchor with negative scores f,

.. math:: η(τ) = \mathrm{KL}(q_τ \| q_0),\quad q_τ ∝ q_0 e^{f/τ}
          \qquad\text{and}\qquad τ(η) = η^{-1},

with the small-radius law τ ≈ √(Var_{q0} f / (2η)). η is decreasing in τ, from the point-mass
radius −log(m/N) (m = number of negatives tied at the maximum score) at τ → 0 to 0 at τ → ∞.
A radius at or beyond the point-mass radius has no positive multiplier: τ = 0.

This module summarises the per-anchor answers over a batch of anchors (quantiles) and gives
the single τ whose mean radius over the anchors equals η (the τ to put into a loss shared by
all anchors). The exact per-anchor maps are :func:`dro_theory.lagrange.radius_for_temperature`
and :func:`dro_theory.lagrange.temperature_for_radius`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

from dro_theory.checks import as_finite_array, check_positive
from dro_theory.divergences import KL
from dro_theory.errors import InputError
from dro_theory.lagrange import radius_for_temperature, temperature_for_radius

__all__ = [
    "QUANTILE_LEVELS",
    "TemperatureAdvice",
    "advise",
    "advise_radius",
    "advise_temperature",
    "check_one_of",
    "point_mass_radius",
]

FloatArray = NDArray[np.float64]

#: quantile levels over anchors reported by the advisor (min, deciles, quartiles, median, max)
QUANTILE_LEVELS: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
#: relative tolerance of the mean-radius root in log τ (float64 rounding of log τ)
_LOG_TAU_XTOL = 1e-14
#: factor by which the bracket of the mean-radius root is widened per step
_BRACKET_STEP = 4.0
#: widening steps allowed (4^60 ≈ 1e36: far past any τ at which η is representable)
_BRACKET_STEPS = 60


@dataclass(frozen=True)
class TemperatureAdvice:
    r"""Per-anchor temperatures and radii for B anchors, and their summary.

    Attributes
    ----------
    mode : str
        ``"radius"`` (η given, τ per anchor solved) or ``"temperature"`` (τ given, η computed).
    radius : ndarray, shape (B,)
        η per anchor (the given η repeated in ``"radius"`` mode).
    temperature : ndarray, shape (B,)
        τ per anchor (the given τ repeated in ``"temperature"`` mode); 0 where η is at or beyond
        the anchor's point-mass radius.
    law : ndarray, shape (B,)
        Corollary 3.4's law beside the exact column: √(Var f/(2η)) in ``"radius"`` mode,
        Var f/(2τ²) in ``"temperature"`` mode.
    variance : ndarray, shape (B,)
        Var_{q0} f per anchor.
    point_mass : ndarray, shape (B,)
        The point-mass radius −log(m/N) per anchor (the largest η with a positive τ).
    quantile_levels : tuple of float
        Levels of the quantiles below.
    quantiles : ndarray, shape (len(quantile_levels),)
        Quantiles over anchors of the exact answer (τ in ``"radius"`` mode, η otherwise).
    law_quantiles : ndarray
        The same quantiles of ``law``.
    matched_temperature : float
        The single τ whose mean radius over the anchors equals η (``"radius"`` mode; 0 when η
        is at or beyond the mean point-mass radius), or the given τ.
    mean_radius : float
        Mean η over the anchors (the given η in ``"radius"`` mode).
    notes : tuple of str
        Remarks (anchors at τ = 0, a matched τ of 0).
    """

    mode: str
    radius: FloatArray
    temperature: FloatArray
    law: FloatArray
    variance: FloatArray
    point_mass: FloatArray
    quantile_levels: tuple[float, ...]
    quantiles: FloatArray
    law_quantiles: FloatArray
    matched_temperature: float
    mean_radius: float
    notes: tuple[str, ...]

    @property
    def anchors(self) -> int:
        """Number of anchors B."""
        return int(self.radius.shape[0])


def _scores(scores: ArrayLike) -> FloatArray:
    """(B, N) float64 scores, N ≥ 2; a 1-D vector is one anchor."""
    arr = as_finite_array(scores, "scores", ndim=(1, 2))
    arr = np.atleast_2d(arr)
    if arr.shape[0] < 1 or arr.shape[1] < 2:
        raise InputError(
            f"scores: expected at least one anchor with at least 2 negatives, found shape "
            f"{arr.shape}"
        )
    return arr


def point_mass_radius(scores: ArrayLike) -> FloatArray:
    r"""−log(m/N) per anchor: the KL radius of the uniform q0's mass on its m top scores.

    The limit of η(τ) as τ → 0; for η at or beyond it the multiplier is τ = 0.

    Parameters
    ----------
    scores : array_like, shape (N,) or (B, N)

    Returns
    -------
    ndarray, shape (B,)
    """
    f = _scores(scores)
    ties = np.sum(f == f.max(axis=1, keepdims=True), axis=1)
    return np.asarray(KL().point_mass_radius(ties / f.shape[1]), dtype=np.float64)


def _quantiles(x: FloatArray) -> FloatArray:
    return np.asarray(np.quantile(x, QUANTILE_LEVELS), dtype=np.float64)


def _mean_radius(f: FloatArray, tau: float) -> float:
    return float(np.mean(radius_for_temperature(f, tau)))


def _matched_temperature(f: FloatArray, radius: float, taus: FloatArray) -> float:
    """Solve mean_i η_i(τ) = η on log τ (brentq), bracketed from the per-anchor roots."""
    positive = taus[taus > 0]
    lo = float(positive.min()) if positive.size else 1.0
    hi = float(taus.max()) if positive.size else 1.0
    for _ in range(_BRACKET_STEPS):
        if _mean_radius(f, lo) >= radius:
            break
        lo /= _BRACKET_STEP
    for _ in range(_BRACKET_STEPS):
        if _mean_radius(f, hi) <= radius:
            break
        hi *= _BRACKET_STEP
    if _mean_radius(f, lo) < radius or _mean_radius(f, hi) > radius:
        raise InputError(f"radius: could not bracket the mean-radius temperature for η={radius}")
    if lo == hi:
        return lo
    log_tau = brentq(
        lambda t: _mean_radius(f, math.exp(t)) - radius,
        math.log(lo),
        math.log(hi),
        xtol=_LOG_TAU_XTOL,
    )
    return math.exp(float(log_tau))


def advise_radius(scores: ArrayLike, radius: float) -> TemperatureAdvice:
    r"""τ per anchor making the KL ball radius η, and the τ matching η on average.

    Per anchor τ_i solves KL(q_τ‖q0) = η (q0 uniform over the anchor's negatives, Theorem 3.2);
    τ_i = 0 when η ≥ the point-mass radius −log(m/N). The matched τ solves
    mean_i η_i(τ) = η; it is 0 when η ≥ the mean point-mass radius.

    Parameters
    ----------
    scores : array_like, shape (N,) or (B, N)
        Similarities of each anchor to its N ≥ 2 negatives (finite).
    radius : float
        η > 0.

    Returns
    -------
    TemperatureAdvice
        ``mode="radius"``.

    Raises
    ------
    InputError
        Non-finite scores or radius, a radius ≤ 0, fewer than 2 negatives.
    """
    eta = check_positive(radius, "radius")
    f = _scores(scores)
    taus = np.atleast_1d(np.asarray(temperature_for_radius(f, eta), dtype=np.float64))
    variance = f.var(axis=1)
    law = np.sqrt(variance / (2.0 * eta))
    pm = point_mass_radius(f)
    notes: list[str] = []
    beyond = int(np.sum(taus == 0))
    if beyond:
        notes.append(
            f"{beyond} of {f.shape[0]} anchors: radius {eta:g} is at or beyond their point-mass "
            f"radius -log(m/N) (largest of theirs {pm[taus == 0].max():.4g}), so their "
            "temperature is 0"
        )
    if eta >= float(pm.mean()):
        matched = 0.0
        notes.append(
            f"radius {eta:g} is at or beyond the mean point-mass radius {pm.mean():.4g}: "
            "the matched temperature is 0"
        )
    else:
        matched = _matched_temperature(f, eta, taus)
    return TemperatureAdvice(
        mode="radius",
        radius=np.full(f.shape[0], eta),
        temperature=taus,
        law=law,
        variance=variance,
        point_mass=pm,
        quantile_levels=QUANTILE_LEVELS,
        quantiles=_quantiles(taus),
        law_quantiles=_quantiles(law),
        matched_temperature=matched,
        mean_radius=eta,
        notes=tuple(notes),
    )


def advise_temperature(scores: ArrayLike, temperature: float) -> TemperatureAdvice:
    r"""The KL radius η_i(τ) = KL(q_τ‖q0) that a temperature τ implies for each anchor.

    Parameters
    ----------
    scores : array_like, shape (N,) or (B, N)
        Similarities of each anchor to its N ≥ 2 negatives (finite).
    temperature : float
        τ > 0.

    Returns
    -------
    TemperatureAdvice
        ``mode="temperature"``; ``law`` is Var f/(2τ²) (Corollary 3.4).

    Raises
    ------
    InputError
        Non-finite scores or temperature, τ ≤ 0, fewer than 2 negatives.
    """
    tau = check_positive(temperature, "temperature")
    f = _scores(scores)
    eta = np.atleast_1d(np.asarray(radius_for_temperature(f, tau), dtype=np.float64))
    variance = f.var(axis=1)
    law = variance / (2.0 * tau**2)
    return TemperatureAdvice(
        mode="temperature",
        radius=eta,
        temperature=np.full(f.shape[0], tau),
        law=law,
        variance=variance,
        point_mass=point_mass_radius(f),
        quantile_levels=QUANTILE_LEVELS,
        quantiles=_quantiles(eta),
        law_quantiles=_quantiles(law),
        matched_temperature=tau,
        mean_radius=float(eta.mean()),
        notes=(),
    )


def advise(
    scores: ArrayLike, *, radius: float | None = None, temperature: float | None = None
) -> TemperatureAdvice:
    """:func:`advise_radius` or :func:`advise_temperature`: exactly one of the two is given.

    Parameters
    ----------
    scores : array_like, shape (N,) or (B, N)
    radius, temperature : float, optional

    Returns
    -------
    TemperatureAdvice

    Raises
    ------
    InputError
        Both or neither of ``radius`` and ``temperature``, or what the chosen advisor raises.
    """
    check_one_of(radius, temperature)
    if radius is not None:
        return advise_radius(scores, radius)
    assert temperature is not None
    return advise_temperature(scores, temperature)


def check_one_of(radius: float | None, temperature: float | None) -> None:
    """Raise InputError unless exactly one of ``radius`` and ``temperature`` is given."""
    if (radius is None) == (temperature is None):
        raise InputError(
            "radius/temperature: expected exactly one of --radius and --temperature, found "
            + ("both" if radius is not None else "neither")
        )
