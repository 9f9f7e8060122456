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


#: φ⁗(1) of each smooth divergence, differentiated by hand from φ (not from the catalogue):
#: t log t → 2/t³; −log t → 6/t⁴; (√t − 1)² → (15/8) t^{−7/2}; JS → ½(2/t³ − 2/(1 + t)³);
#: Cressie–Read(α) → (α − 2)(α − 3) t^{α−4}
FOURTH = {
    "kl": 2.0,
    "reverse_kl": 6.0,
    "hellinger": 15.0 / 8.0,
    "js": 7.0 / 8.0,
    "cressie_read:0.5": 3.75,
    "cressie_read:3": 0.0,
}
#: consecutive terms of both series shrink by ~ max|f − μ|/(aτ) resp. √η·max|f − μ|/σ (≤ 0.1
#: at the τ and η below); the remainder after the next term is held below this share of it
NEXT_TERM_SHARE = 0.25


def _series(f: np.ndarray, spec: str) -> tuple[float, float, float]:
    """(A, B, C) of P(τ) = μ + A/τ + B/τ² + C/τ³ + O(τ⁻⁴), derived in docs/dro_theory.md:
    φ*(s) = s + s²/(2a) + k3 s³ + k4 s⁴ with k3 = −b/(6a³), k4 = (3b² − ad)/(24a⁵), so
    A = σ²/(2a), B = k3 κ3, C = k4 m4 − (9/2) a k3² σ⁴ (a, b, d = φ'', φ''', φ⁗ at 1)."""
    div = divergence_from_spec(spec)
    a, b, d = div.curvature, div.third_derivative, FOURTH[spec]
    c = f - f.mean()
    var, k3, m4 = np.mean(c**2), np.mean(c**3), np.mean(c**4)
    q3 = -b / (6 * a**3)
    q4 = (3 * b * b - a * d) / (24 * a**5)
    return var / (2 * a), q3 * k3, q4 * m4 - 4.5 * a * q3 * q3 * var * var


@pytest.mark.parametrize("spec", SMOOTH)
def test_penalized_matches_the_next_analytic_term(skewed: np.ndarray, spec: str) -> None:
    """P(τ) − μ − A/τ − B/τ² = C/τ³ + O(τ⁻⁴) at τ = 50 (max f − min f)."""
    tau = 50.0 * float(np.ptp(skewed))
    _, big_b, big_c = _series(skewed, spec)
    mv = mean_variance(skewed, spec, temperature=tau)
    assert mv.next_term == pytest.approx(big_b / tau**2, rel=1e-12)
    rest = mv.difference - big_b / tau**2
    term = big_c / tau**3
    assert abs(rest - term) <= NEXT_TERM_SHARE * abs(term)


@pytest.mark.parametrize("spec", SMOOTH)
def test_constrained_matches_the_next_analytic_term(skewed: np.ndarray, spec: str) -> None:
    """V(η) − μ − √(2ησ²/a) + (b/(3a²))σγη = c3 η^{3/2} + O(η²), c3 = C/A^{3/2} − B²/A^{5/2}."""
    div = divergence_from_spec(spec)
    a, b = div.curvature, div.third_derivative
    big_a, big_b, big_c = _series(skewed, spec)
    c3 = big_c / big_a**1.5 - big_b**2 / big_a**2.5
    k = cumulants(skewed)
    coef = -(b / (3 * a * a)) * k[2] / k[1]
    for eta in (1e-4, 1e-5):
        mv = mean_variance(skewed, spec, radius=eta)
        assert mv.next_term == pytest.approx(coef * eta, rel=1e-12)
        rest = mv.difference - mv.next_term
        term = c3 * eta**1.5
        assert abs(rest - term) <= NEXT_TERM_SHARE * abs(term)


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
