"""Theorem 3.5's mean–variance form and its next-order terms (dro_theory.expansions).

Orders of the remainders (module docstring of dro_theory.expansions):
penalised P(τ) = μ + σ²/(2τa) − bκ3/(6a³τ²) + O(τ⁻³); constrained
V(η) = μ + √(2ησ²/a) − (b/(3a²))σγη + O(η^{3/2}), with a = φ''(1), b = φ'''(1).
"""

from __future__ import annotations

import numpy as np
import pytest

from dro_theory import mean_variance
from dro_theory.divergences import divergence_from_spec
from dro_theory.errors import InputError
from dro_theory.expansions import cumulants

SMOOTH = ["kl", "reverse_kl", "hellinger", "js", "cressie_read:0.5", "cressie_read:3"]


@pytest.fixture(scope="module")
def skewed() -> np.ndarray:
    return np.random.default_rng(0).gamma(2.0, size=3000) / 2.0


def test_cumulants_of_a_two_point_law() -> None:
    p = 0.3
    k = cumulants([0.0, 1.0], [1 - p, p], order=6)
    v = p * (1 - p)
    expected = [
        p,
        v,
        v * (1 - 2 * p),
        v * (1 - 6 * v),
        v * (1 - 2 * p) * (1 - 12 * v),
        v * (1 - 30 * v + 120 * v * v),
    ]
    np.testing.assert_allclose(k, expected, rtol=1e-12, atol=1e-15)


def test_cumulants_batch_and_shift() -> None:
    f = np.random.default_rng(1).normal(size=(3, 100))
    k = cumulants(f)
    assert k.shape == (3, 4)
    shifted = cumulants(f + 7.0)
    np.testing.assert_allclose(shifted[:, 0], k[:, 0] + 7.0)
    np.testing.assert_allclose(shifted[:, 1:], k[:, 1:], atol=1e-12)


def test_kl_penalized_error_times_tau_squared_tends_to_k3_over_6(skewed: np.ndarray) -> None:
    k1, k2, k3, k4 = cumulants(skewed)
    for tau in (20.0, 40.0, 80.0):
        mv = mean_variance(skewed, "kl", temperature=tau)
        assert mv.expansion == pytest.approx(k1 + k2 / (2 * tau), rel=1e-15)
        assert mv.next_term == pytest.approx(k3 / (6 * tau**2), rel=1e-14)
        # remainder after κ3/(6τ²) is κ4/(24τ³) + O(τ⁻⁴): allow twice that
        assert abs(mv.difference * tau**2 - k3 / 6) <= 2 * abs(k4) / (24 * tau)


@pytest.mark.parametrize("spec", SMOOTH)
def test_penalized_third_order_coefficient(skewed: np.ndarray, spec: str) -> None:
    """−φ'''(1)κ3/(6φ''(1)³τ²): (difference − next_term)·τ² shrinks like 1/τ."""
    dev = []
    taus = (25.0, 100.0)
    for tau in taus:
        mv = mean_variance(skewed, spec, temperature=tau)
        dev.append((mv.difference - mv.next_term) * tau**2)
    # O(1/τ): a 4× larger τ divides the deviation by 4 (±35 % for the O(τ⁻²) part)
    assert abs(dev[1]) <= abs(dev[0]) / 4 * 1.35


@pytest.mark.parametrize(
    "spec", ["kl", "reverse_kl", "hellinger", "cressie_read:0.5", "cressie_read:3"]
)
def test_constrained_error_over_eta_tends_to_the_third_derivative_term(
    skewed: np.ndarray, spec: str
) -> None:
    """(V − μ − √(2ησ²/a))/η → −(b/(3a²))σγ, with an O(√η) remainder: the deviation at
    η/100 is a tenth of the one at η (±35 %)."""
    div = divergence_from_spec(spec)
    a, b = div.curvature, div.third_derivative
    k = cumulants(skewed)
    coef = -(b / (3 * a * a)) * k[2] / k[1]
    devs = []
    for eta in (1e-4, 1e-6):
        mv = mean_variance(skewed, spec, radius=eta)
        assert mv.next_term == pytest.approx(coef * eta, rel=1e-12)
        devs.append(mv.difference / eta - coef)
    assert abs(devs[1]) <= abs(devs[0]) / 10 * 1.35
    assert abs(devs[0]) <= 0.1 * abs(coef)


@pytest.mark.parametrize("eta", [1e-4, 1e-2])
def test_chi2_expansion_is_exact_while_q_nonnegative(eta: float) -> None:
    f = np.random.default_rng(2).normal(size=400)
    mv = mean_variance(f, "chi2", radius=eta)
    assert abs(mv.difference) <= 1e-12 and mv.next_term == 0.0
    pen = mean_variance(f, "chi2", temperature=10.0)  # 2τ = 20 > μ − min f
    assert abs(pen.difference) <= 1e-12


@pytest.mark.parametrize("spec", ["kl", "chi2", "hellinger", "js", "cressie_read:3"])
def test_leading_term_scales_with_one_over_curvature(skewed: np.ndarray, spec: str) -> None:
    """(P(τ) − μ)·2τφ''(1)/σ² = 1 + O(1/τ); the O(1/τ) part is the φ''' term, bounded here."""
    div = divergence_from_spec(spec)
    tau = 200.0
    mv = mean_variance(skewed, div, temperature=tau)
    ratio = (mv.exact - mv.mean) * 2 * tau * div.curvature / mv.variance
    bound = 2 * abs(mv.next_term) * 2 * tau * div.curvature / mv.variance + 1e-9
    assert abs(ratio - 1.0) <= bound


def test_batch_matches_singles() -> None:
    f = np.random.default_rng(3).gamma(2.0, size=(3, 200))
    batch = mean_variance(f, "hellinger", radius=0.01)
    for i in range(3):
        one = mean_variance(f[i], "hellinger", radius=0.01)
        assert batch.exact[i] == pytest.approx(one.exact, abs=1e-13)
        assert batch.second_order[i] == pytest.approx(one.second_order, abs=1e-13)


def test_errors() -> None:
    f = np.array([0.1, 0.3, 0.9])
    with pytest.raises(InputError, match=r"divergence: expected a divergence twice .* found 'tv'"):
        mean_variance(f, "tv", radius=0.1)
    with pytest.raises(InputError, match=r"radius/temperature: expected exactly one"):
        mean_variance(f, "kl")
    with pytest.raises(InputError, match=r"radius/temperature: expected exactly one"):
        mean_variance(f, "kl", radius=0.1, temperature=1.0)
    with pytest.raises(InputError, match=r"temperature: expected a finite number > 0"):
        mean_variance(f, "kl", temperature=-1.0)
    with pytest.raises(InputError, match=r"order: expected an integer in 1..6"):
        cumulants(f, order=7)
    with pytest.raises(InputError, match=r"scores: expected finite values"):
        cumulants([np.nan, 1.0])
