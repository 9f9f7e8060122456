r"""Mean–variance expansions of φ-DRO (Wu et al., NeurIPS 2023, Theorem 3.5), with error terms.

Write μ, σ², κ3 = γσ³ for the mean, variance and third cumulant of f under q0, a = φ''(1) and
b = φ'''(1). Expanding φ* around φ'(1) (where (φ*)'' = 1/a and (φ*)''' = −b/a³) in the dual
min_c c + α E φ*((f − c)/α) gives the **penalised** form

.. math:: P(α) = \max_q \{E_q f − α D_φ(q\|q_0)\}
          = μ + \frac{σ^2}{2αa} − \frac{b\,κ_3}{6a^3α^2} + O(α^{-3})

(KL: a = 1, b = −1, so P = μ + σ²/(2α) + κ3/(6α²), the cumulant expansion of α log E e^{f/α};
the shift of the optimal c enters only at O(α^{-3})). Minimising αη + P(α) over α gives the
**constrained** form

.. math:: V(η) = \max_{D_φ(q\|q_0) ≤ η} E_q f
          = μ + \sqrt{2ησ^2/a} − \frac{b}{3a^2}\,σγ\,η + O(η^{3/2}).

Pearson χ² (a = 2, b = 0, φ* quadratic) makes both exact while q ≥ 0 does not bind:
P = μ + σ²/(4α) and V = μ + σ√η. TV is not differentiable at 1 and has no such expansion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dro_theory.checks import as_finite_array, check_positive, check_radius, check_weights
from dro_theory.divergences import Divergence, resolve_divergence
from dro_theory.duals import penalized_worst_case, prepare_batch, solve_batch
from dro_theory.errors import InputError

__all__ = ["MeanVariance", "cumulants", "mean_variance"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class MeanVariance:
    r"""Exact φ-DRO value next to its mean–variance expansion (Theorem 3.5).

    Fields are floats for 1-D scores and arrays of shape (B,) for (B, n) scores.

    Attributes
    ----------
    exact : float or ndarray
        The constrained V(η) (:func:`~dro_theory.duals.worst_case_dual`) or the penalised P(τ)
        (:func:`~dro_theory.duals.penalized_worst_case`).
    expansion : float or ndarray
        μ + √(2ησ²/φ''(1)) (constrained) or μ + σ²/(2τφ''(1)) (penalised).
    difference : float or ndarray
        exact − expansion.
    next_term : float or ndarray
        −φ'''(1)σγη/(3φ''(1)²) (constrained) or −φ'''(1)κ3/(6φ''(1)³τ²) (penalised).
    second_order : float or ndarray
        expansion + next_term.
    mean, variance : float or ndarray
        μ and σ² under q0.
    cumulants : ndarray, shape (4,) or (B, 4)
        κ1..κ4 under q0.
    divergence : str
    form : str
        ``"constrained"`` or ``"penalized"``.
    radius, temperature : float or None
        The parameter given (the other is None).
    """

    exact: float | FloatArray
    expansion: float | FloatArray
    difference: float | FloatArray
    next_term: float | FloatArray
    second_order: float | FloatArray
    mean: float | FloatArray
    variance: float | FloatArray
    cumulants: FloatArray
    divergence: str
    form: str
    radius: float | None
    temperature: float | None


def cumulants(scores: ArrayLike, weights: ArrayLike | None = None, order: int = 4) -> FloatArray:
    r"""Cumulants κ1..κ_order of f under q0 (from the central moments m_k).

    κ1 = μ, κ2 = m2, κ3 = m3, κ4 = m4 − 3m2², κ5 = m5 − 10 m3 m2,
    κ6 = m6 − 15 m4 m2 − 10 m3² + 30 m2³.

    Parameters
    ----------
    scores : array_like, shape (n,) or (B, n)
    weights : array_like, shape (n,), optional
        q0 (default uniform).
    order : int
        1 ≤ order ≤ 6.

    Returns
    -------
    ndarray, shape (order,) or (B, order)
    """
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or not 1 <= order <= 6:
        raise InputError(f"order: expected an integer in 1..6, found {order!r}")
    f = as_finite_array(scores, "scores", ndim=(1, 2))
    q0 = check_weights(weights, f.shape[-1])
    mu = f @ q0
    c = f - np.asarray(mu)[..., None]
    m = {k: (c**k) @ q0 for k in range(2, order + 1)}
    out = [mu]
    if order >= 2:
        out.append(m[2])
    if order >= 3:
        out.append(m[3])
    if order >= 4:
        out.append(m[4] - 3.0 * m[2] ** 2)
    if order >= 5:
        out.append(m[5] - 10.0 * m[3] * m[2])
    if order >= 6:
        out.append(m[6] - 15.0 * m[4] * m[2] - 10.0 * m[3] ** 2 + 30.0 * m[2] ** 3)
    return np.stack([np.asarray(v, dtype=np.float64) for v in out], axis=-1)


def _smooth(div: Divergence) -> Divergence:
    if not div.smooth:
        raise InputError(
            f"divergence: expected a divergence twice differentiable at 1 for the mean–variance "
            f"expansion, found {str(div)!r} (not smooth at t = 1)"
        )
    return div


def mean_variance(
    scores: ArrayLike,
    divergence: str | Divergence,
    radius: float | None = None,
    temperature: float | None = None,
    weights: ArrayLike | None = None,
) -> MeanVariance:
    r"""Exact φ-DRO value vs Theorem 3.5's mean–variance form and its next-order term.

    Parameters
    ----------
    scores : array_like, shape (n,) or (B, n)
    divergence : str or Divergence
        A smooth catalogue divergence (not ``tv``).
    radius : float, optional
        η > 0 for the constrained form.
    temperature : float, optional
        τ > 0 for the penalised form. Give exactly one of ``radius`` and ``temperature``.
    weights : array_like, shape (n,), optional

    Returns
    -------
    MeanVariance
    """
    if (radius is None) == (temperature is None):
        raise InputError(
            "radius/temperature: expected exactly one of them, found "
            f"radius={radius!r}, temperature={temperature!r}"
        )
    div = _smooth(resolve_divergence(divergence))
    kappa = cumulants(scores, weights, order=4)
    mu, var, k3 = kappa[..., 0], kappa[..., 1], kappa[..., 2]
    a, b = div.curvature, div.third_derivative
    single = kappa.ndim == 1
    if radius is not None:
        eta = check_radius(radius)
        batch = prepare_batch(scores, weights)
        value = solve_batch(batch, div, np.full(batch.d.shape[0], eta)).value
        exact = value[0] if single else value
        expansion = mu + np.sqrt(2.0 * eta * var / a)
        with np.errstate(divide="ignore", invalid="ignore"):
            skew_sigma = np.where(var > 0, k3 / np.where(var > 0, var, 1.0), 0.0)  # σγ = κ3/σ²
        next_term = -(b / (3.0 * a * a)) * skew_sigma * eta
        form, tau = "constrained", None
    else:
        tau = check_positive(temperature, "temperature")
        exact = np.asarray(penalized_worst_case(scores, div, tau, weights).value)
        expansion = mu + var / (2.0 * tau * a)
        next_term = -b * k3 / (6.0 * a**3 * tau * tau)
        form, eta = "penalized", None

    def out(x: ArrayLike) -> float | FloatArray:
        arr = np.asarray(x, dtype=np.float64)
        return float(arr) if single else arr

    return MeanVariance(
        exact=out(exact),
        expansion=out(expansion),
        difference=out(np.asarray(exact) - expansion),
        next_term=out(next_term),
        second_order=out(expansion + next_term),
        mean=out(mu),
        variance=out(var),
        cumulants=kappa,
        divergence=str(div),
        form=form,
        radius=eta,
        temperature=tau,
    )
