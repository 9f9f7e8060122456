"""Temperature ↔ radius (Corollary 3.4): exact curve, inverse, and the √(Var/2η) law."""

from __future__ import annotations

import numpy as np
import pytest

from dro_theory import (
    lagrange_curve,
    radius_for_temperature,
    temperature_for_radius,
    worst_case_dual,
)
from dro_theory.errors import InputError


@pytest.fixture(scope="module")
def gamma_scores() -> np.ndarray:
    return np.random.default_rng(0).gamma(2.0, size=2000)


def test_radius_decreases_in_temperature(gamma_scores: np.ndarray) -> None:
    taus = np.geomspace(1e-2, 1e3, 40)
    eta = radius_for_temperature(gamma_scores, taus)
    assert isinstance(eta, np.ndarray) and eta.shape == (40,)
    assert np.all(np.diff(eta) < 0) and np.all(eta > 0)
    assert eta[0] < np.log(gamma_scores.size)  # below the point-mass radius


def test_inverse_round_trip(gamma_scores: np.ndarray) -> None:
    w = np.random.default_rng(1).dirichlet(np.ones(gamma_scores.size))
    taus = np.geomspace(0.1, 1e4, 25)
    eta = radius_for_temperature(gamma_scores, taus, w)
    back = temperature_for_radius(gamma_scores, eta, w)
    np.testing.assert_allclose(back, taus, rtol=1e-10)
    # for τ ≪ the gap between the top scores η(τ) saturates at −log p_max (dη/dτ ~ e^{−gap/τ}),
    # so τ is not recoverable to 1e-10 there; the forward residual η(τ(η)) = η still is
    cold = np.geomspace(1e-2, 0.1, 5)
    eta = radius_for_temperature(gamma_scores, cold, w)
    again = radius_for_temperature(gamma_scores, temperature_for_radius(gamma_scores, eta, w), w)
    np.testing.assert_allclose(again, eta, rtol=1e-12)


def test_temperature_is_the_kl_multiplier() -> None:
    rng = np.random.default_rng(2)
    f = rng.normal(size=(6, 300)) * rng.uniform(0.1, 5, size=(6, 1))
    for eta in (1e-3, 0.1, 2.0):
        dual = worst_case_dual(f, "kl", eta)
        tau = temperature_for_radius(f, eta)
        np.testing.assert_allclose(tau, dual.multiplier, rtol=1e-13)
        # and the radius implied by that τ is η (the multiplier the solver returns is τ)
        np.testing.assert_allclose(radius_for_temperature(f, tau), eta, rtol=1e-10)


def test_broadcasting_shapes() -> None:
    f = np.random.default_rng(3).normal(size=(4, 50))
    assert radius_for_temperature(f, 0.5).shape == (4,)
    assert radius_for_temperature(f, np.array([[0.5], [1.0], [2.0]])).shape == (3, 4)
    assert isinstance(radius_for_temperature(f[0], 0.5), float)
    assert temperature_for_radius(f, np.full(4, 0.1)).shape == (4,)
    curve = lagrange_curve(f, [1e-3, 1e-2, 0.1])
    assert curve.temperature.shape == (4, 3) and curve.variance.shape == (4,)
    with pytest.raises(InputError, match=r"scores/parameter: expected shapes that broadcast"):
        radius_for_temperature(f, np.ones(3))


#: the next term of the KL series is smaller than the one kept by a factor ~ √η·max|f − μ|/σ
#: (≤ 0.1 on this range); after it the remainder is held below this share of it
NEXT_TERM_SHARE = 0.25


def test_law_and_its_next_two_terms(gamma_scores: np.ndarray) -> None:
    r"""KL: V(η) = μ + √(2ησ²) + σγη/3 + c3 η^{3/2} + O(η²), c3 = √2 σ (k/12 − γ²/9)
    (``docs/dro_theory.md``; k the excess kurtosis), so τ = dV/dη = σ/√(2η) + σγ/3 +
    (3/2) c3 √η + O(η). Both the multiplier and the value must match these through the
    √η term, with the remainder below NEXT_TERM_SHARE of that term (η ≤ 1e-4)."""
    f = gamma_scores
    radii = np.geomspace(1e-6, 1e-4, 5)
    curve = lagrange_curve(f, radii)
    c = f - f.mean()
    var = np.mean(c**2)
    sigma = np.sqrt(var)
    gamma = np.mean(c**3) / sigma**3
    kurt = np.mean(c**4) / var**2 - 3.0
    c3 = np.sqrt(2.0) * sigma * (kurt / 12.0 - gamma**2 / 9.0)
    np.testing.assert_allclose(curve.temperature_law, np.sqrt(var / (2 * radii)), rtol=1e-14)
    assert np.all(curve.relative_error < 0)  # positive skew: the law underestimates τ
    tau_term = 1.5 * c3 * np.sqrt(radii)
    tau_rest = curve.temperature - sigma / np.sqrt(2 * radii) - sigma * gamma / 3.0
    assert np.all(np.abs(tau_rest - tau_term) <= NEXT_TERM_SHARE * np.abs(tau_term))
    value_term = c3 * radii**1.5
    value_rest = curve.value - curve.value_law - sigma * gamma * radii / 3.0
    assert np.all(np.abs(value_rest - value_term) <= NEXT_TERM_SHARE * np.abs(value_term))


def test_extreme_temperatures_and_scores_stay_finite() -> None:
    rng = np.random.default_rng(4)
    f = np.stack([rng.permutation(np.linspace(-50.0, 50.0, 64)) for _ in range(3)])
    f[2, np.argsort(f[2])[-2]] = 50.0  # two tied maximisers in the last row
    eta = radius_for_temperature(f, 1e-3)
    assert np.all(np.isfinite(eta))
    # gaps of 100/63 at τ = 1e-3: the tilt is the point mass on the maximisers, η = −log p_max
    np.testing.assert_allclose(eta, np.log([64, 64, 32]), rtol=1e-12)
    assert np.all(np.isfinite(radius_for_temperature(f, 1e6)))
    tau = temperature_for_radius(f, [0.5, 2.0, 3.5])
    assert np.all(np.isfinite(tau)) and np.all(tau >= 0)
    assert tau[2] == 0.0  # 3.5 > log 32: the ball holds the point mass
    np.testing.assert_allclose(radius_for_temperature(f[:2], tau[:2]), [0.5, 2.0], rtol=1e-9)


def test_constant_scores_give_zero_radius() -> None:
    assert radius_for_temperature(np.full(5, 2.0), 0.1) == 0.0


def test_errors() -> None:
    f = np.array([0.1, 0.4, 0.3])
    with pytest.raises(InputError, match=r"temperature: expected values > 0, found -1"):
        radius_for_temperature(f, -1.0)
    with pytest.raises(InputError, match=r"temperature: expected values > 0, found 0"):
        radius_for_temperature(f, [1.0, 0.0])
    with pytest.raises(InputError, match=r"temperature: expected finite values"):
        radius_for_temperature(f, np.nan)
    with pytest.raises(InputError, match=r"radius: expected values non-negative"):
        temperature_for_radius(f, -0.1)
    with pytest.raises(InputError, match=r"radii: expected a 1-D array"):
        lagrange_curve(f, [[0.1]])
    with pytest.raises(InputError, match=r"radii: expected values > 0"):
        lagrange_curve(f, [0.0, 0.1])
    with pytest.raises(InputError, match=r"scores: expected finite values"):
        radius_for_temperature([np.inf, 1.0], 1.0)


def test_tiny_radius_is_accurate_at_huge_temperature(gamma_scores: np.ndarray) -> None:
    """η(τ) = κ2/(2τ²) + κ3/(3τ³) + κ4/(8τ⁴) + O(τ⁻⁵) (η = βm'(β) − m(β), m the cumulant
    generating function). At τ = 1e7 the dropped terms are ~1e-21 relative; the shifted
    log-sum-exp form would lose ~eps·max|f|·τ/σ ≈ 1e-9 to cancellation here."""
    f = gamma_scores
    c = f - f.mean()
    k2, k3 = np.mean(c**2), np.mean(c**3)
    k4 = np.mean(c**4) - 3 * k2**2
    for tau in (1e5, 1e7):
        series = k2 / (2 * tau**2) + k3 / (3 * tau**3) + k4 / (8 * tau**4)
        assert radius_for_temperature(f, tau) == pytest.approx(series, rel=1e-12)
