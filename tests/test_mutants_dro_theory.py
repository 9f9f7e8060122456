"""Tests that kill the non-equivalent mutants mutmut left alive in dro_theory (docs/mutation.md).

Every expected value is derived from the definitions (D_φ on supports that differ, the Bernoulli
cumulant recursion, Pearson χ²'s exact mean–variance form, the advisor's documented fields), never
read off the library. Exact identities are checked to float64 rounding (1e-12 relative on O(1)
numbers); the χ² duals are solved to the package's root tolerance, hence 1e-9.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from dro_theory.advisor import (
    QUANTILE_LEVELS,
    advise,
    advise_radius,
    advise_temperature,
    check_one_of,
    point_mass_radius,
)
from dro_theory.divergences import (
    CressieRead,
    get_divergence,
    resolve_divergence,
)
from dro_theory.errors import InputError
from dro_theory.expansions import cumulants, mean_variance
from dro_theory.lagrange import lagrange_curve, radius_for_temperature, temperature_for_radius

#: float64 rounding on O(1) sums of a few terms
EXACT = 1e-12
#: the dual solvers' root tolerance (relative), far above rounding
SOLVED = 1e-9


# --- divergences.Divergence.divergence: supports that differ ----------------------------------
def test_divergence_adds_the_slope_at_infinity_for_mass_off_the_reference_support() -> None:
    """D_φ(q‖p) = Σ_{p>0} p φ(q/p) + Σ_{p=0<q} q · lim φ(t)/t (JS: slope ½ log 2, φ(½) known)."""
    js = get_divergence("js")
    q, p = np.array([0.5, 0.5]), np.array([1.0, 0.0])
    half = 0.5 * (0.5 * math.log(0.5) - 1.5 * math.log(0.75))
    expected = 1.0 * half + 0.5 * (0.5 * math.log(2.0))
    assert float(js.divergence(q, p)) == pytest.approx(expected, rel=EXACT)
    hell = get_divergence("hellinger")  # φ(½) = (√½ − 1)², slope 1
    assert float(hell.divergence(q, p)) == pytest.approx((math.sqrt(0.5) - 1) ** 2 + 0.5, rel=EXACT)


@pytest.mark.parametrize("name", ["kl", "chi2", "js", "hellinger", "tv", "reverse_kl"])
def test_atoms_empty_under_both_measures_contribute_nothing(name: str) -> None:
    """An atom with q_i = p_i = 0 adds 0 (also for KL and χ², whose slope at ∞ is +inf)."""
    div = get_divergence(name)
    q, p = np.array([0.25, 0.75, 0.0]), np.array([0.5, 0.5, 0.0])
    expected = 0.5 * float(div.phi(0.5)) + 0.5 * float(div.phi(1.5))
    assert float(div.divergence(q, p)) == pytest.approx(expected, rel=EXACT)
    assert float(div.divergence(p, p)) == 0.0


def test_divergence_names_the_bad_argument() -> None:
    kl = get_divergence("kl")
    good = np.array([0.5, 0.5])
    with pytest.raises(InputError, match=r"^q:"):
        kl.divergence(np.array([np.nan, 1.0]), good)
    with pytest.raises(InputError, match=r"^p:"):
        kl.divergence(good, np.array([np.inf, 0.0]))
    with pytest.raises(InputError, match=r"same length as q \(3\), found 2"):
        kl.divergence(np.full(3, 1 / 3), good)
    for q, p in ((np.array([-0.5, 1.5]), good), (good, np.array([1.5, -0.5]))):
        with pytest.raises(InputError, match=r"^q, p: expected non-negative"):
            kl.divergence(q, p)


@pytest.mark.parametrize(
    ("spec", "limit"),
    [
        ("kl", -math.inf),
        ("reverse_kl", -math.inf),
        ("hellinger", -math.inf),
        ("js", -math.inf),
        ("cressie_read:0.5", -math.inf),
        ("cressie_read:3", -0.5),
    ],
)
def test_phi_prime_at_zero_is_its_limit_without_warnings(spec: str, limit: float) -> None:
    """φ'(0⁺): −inf for the divergences whose φ' blows up, −1/(α − 1) for Cressie–Read α > 1."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(resolve_divergence(spec).phi_prime(np.array([0.0]))[0]) == limit


@pytest.mark.parametrize(
    ("name", "radius"),
    [
        ("kl", lambda p: -math.log(p)),
        ("chi2", lambda p: 1 / p - 1),
        ("hellinger", lambda p: 2 - 2 * math.sqrt(p)),
        ("reverse_kl", lambda p: math.inf),
    ],
)
def test_point_mass_radius_is_zero_for_the_whole_mass(name: str, radius: Callable) -> None:
    """D_φ(δ_k‖p) = p φ(1/p) + (1 − p) φ(0): the closed forms, and 0 when p = 1 (δ_k = p)."""
    div = get_divergence(name)
    got = div.point_mass_radius(np.array([0.25, 1.0]))
    assert got[0] == pytest.approx(radius(0.25), rel=EXACT)
    assert got[1] == 0.0


# --- divergences: names, aliases and their messages --------------------------------------------
def test_dashes_in_names_read_as_underscores() -> None:
    assert resolve_divergence("Reverse-KL").name == "reverse_kl"
    assert resolve_divergence("chi-square").name == "chi2"


def test_unknown_name_hints_the_canonical_name_of_a_close_alias() -> None:
    with pytest.raises(InputError, match=r"did you mean 'chi2'\?$"):
        resolve_divergence("pearsn")
    with pytest.raises(InputError, match=r"found 'zzzzzzzz'$"):
        resolve_divergence("zzzzzzzz")


def test_cressie_read_messages_start_with_the_parameter() -> None:
    with pytest.raises(InputError, match=r"^alpha: expected a finite number"):
        CressieRead(alpha=1.0)
    with pytest.raises(InputError, match=r"^alpha: cressie_read needs alpha"):
        resolve_divergence("cressie_read")
    with pytest.raises(InputError, match=r"found int$"):
        get_divergence(3, alpha=2.0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"\(one of kl, reverse_kl, chi2,"):
        resolve_divergence(2.0)  # type: ignore[arg-type]


# --- expansions.cumulants: every order, with weights --------------------------------------------
def _bernoulli_cumulants(p: float, order: int) -> list[float]:
    """κ1 = p and κ_{n+1} = p(1 − p) dκ_n/dp (the Bernoulli cumulant recursion)."""
    poly = np.polynomial.Polynomial([0.0, 1.0])
    pq = np.polynomial.Polynomial([0.0, 1.0, -1.0])
    out = []
    for _ in range(order):
        out.append(float(poly(p)))
        poly = pq * poly.deriv()
    return out


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 6])
def test_cumulants_of_a_weighted_bernoulli(order: int) -> None:
    p = 0.3
    got = cumulants(np.array([0.0, 1.0]), np.array([1 - p, p]), order=order)
    assert got.shape == (order,)
    np.testing.assert_allclose(got, _bernoulli_cumulants(p, order), rtol=0, atol=EXACT)


def test_cumulants_reject_bad_orders_and_shapes() -> None:
    for bad in (True, 0, 7, 2.0):
        with pytest.raises(InputError, match=r"^order:"):
            cumulants(np.arange(3.0), order=bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"^scores:"):
        cumulants(np.zeros((2, 2, 2)))


# --- expansions.mean_variance: χ² is exact, with weights -----------------------------------------
SCORES = np.array([0.0, 1.0, 3.0])
WEIGHTS = np.array([0.5, 0.3, 0.2])
W_MEAN = float(SCORES @ WEIGHTS)
W_VAR = float(((SCORES - W_MEAN) ** 2) @ WEIGHTS)


def test_chi2_constrained_value_is_mean_plus_sigma_sqrt_eta_under_weights() -> None:
    """V(η) = μ + σ√η exactly while q* = q0(1 + (f − μ)√η/σ) ≥ 0 (here min q*/q0 > 0)."""
    eta = 0.05
    assert 1 + (SCORES.min() - W_MEAN) * math.sqrt(eta / W_VAR) > 0
    mv = mean_variance(SCORES, "chi2", radius=eta, weights=WEIGHTS)
    assert isinstance(mv.exact, float)
    assert mv.exact == pytest.approx(W_MEAN + math.sqrt(W_VAR * eta), rel=SOLVED)
    assert mv.expansion == pytest.approx(W_MEAN + math.sqrt(W_VAR * eta), rel=EXACT)
    assert (mv.mean, mv.variance) == pytest.approx((W_MEAN, W_VAR), rel=EXACT)
    assert (mv.form, mv.divergence, mv.radius, mv.temperature) == ("constrained", "chi2", eta, None)
    np.testing.assert_array_equal(mv.cumulants, cumulants(SCORES, WEIGHTS))
    assert mv.second_order == pytest.approx(mv.expansion + mv.next_term, rel=EXACT)


def test_chi2_penalized_value_is_mean_plus_variance_over_four_tau_under_weights() -> None:
    """P(τ) = μ + σ²/(4τ) exactly while q* = q0(1 + (f − μ)/(2τ)) ≥ 0."""
    tau = 2.0
    assert 1 + (SCORES.min() - W_MEAN) / (2 * tau) > 0
    mv = mean_variance(SCORES, "chi2", temperature=tau, weights=WEIGHTS)
    assert mv.exact == pytest.approx(W_MEAN + W_VAR / (4 * tau), rel=SOLVED)
    assert (mv.form, mv.radius, mv.temperature) == ("penalized", None, tau)


def test_mean_variance_needs_exactly_one_parameter() -> None:
    with pytest.raises(InputError, match=r"^radius/temperature: expected exactly one"):
        mean_variance(SCORES, "kl")


def test_kl_next_term_uses_sigma_gamma_and_vanishes_on_constant_scores() -> None:
    """Constrained next term −b σγ η/(3a²) with KL's a = 1, b = −1: +κ3 η/(3σ²); 0 if σ = 0."""
    eta = 0.01
    mv = mean_variance(SCORES, "kl", radius=eta, weights=WEIGHTS)
    k3 = float(((SCORES - W_MEAN) ** 3) @ WEIGHTS)
    assert mv.next_term == pytest.approx(k3 * eta / (3 * W_VAR), rel=EXACT)
    assert mv.second_order == pytest.approx(mv.expansion + mv.next_term, rel=EXACT)
    flat = mean_variance(np.full(4, 2.0), "kl", radius=eta)
    assert (flat.next_term, flat.expansion) == (0.0, 2.0)


# --- lagrange: shapes, fields, the η = 0 end -----------------------------------------------------
def test_temperature_is_infinite_at_zero_radius_and_a_float_for_one_anchor() -> None:
    tau = temperature_for_radius(SCORES, 0.0)
    assert isinstance(tau, float) and tau == math.inf
    assert isinstance(temperature_for_radius(SCORES, 0.1), float)
    with pytest.raises(InputError, match=r"^radius: expected values non-negative"):
        temperature_for_radius(SCORES, -0.1)


def test_constant_scores_have_zero_radius() -> None:
    assert radius_for_temperature(np.full(5, 1.5), 0.2) == 0.0


def test_lagrange_curve_fields_follow_their_definitions_under_weights() -> None:
    """law = √(σ²/(2η)), value_law = μ + √(2ησ²), rel = law/τ − 1 (inf where τ = 0)."""
    small = 0.1 * SCORES  # σ < 1 so that 0 < τ < 1 occurs
    mu, var = 0.1 * W_MEAN, 0.01 * W_VAR
    beyond = -math.log(WEIGHTS[2]) + 0.5  # past the point-mass radius −log q0(argmax f)
    radii = np.array([0.001, 0.05, beyond])
    cur = lagrange_curve(small, radii, weights=WEIGHTS)
    np.testing.assert_array_equal(cur.radii, radii)
    assert isinstance(cur.mean, float) and isinstance(cur.variance, float)
    assert (cur.mean, cur.variance) == pytest.approx((mu, var), rel=EXACT)
    np.testing.assert_allclose(cur.temperature_law, np.sqrt(var / (2 * radii)), rtol=EXACT)
    np.testing.assert_allclose(cur.value_law, mu + np.sqrt(2 * radii * var), rtol=EXACT)
    assert cur.temperature[2] == 0.0 and cur.relative_error[2] == math.inf
    assert 0 < cur.temperature[1] < 1
    np.testing.assert_allclose(
        cur.relative_error[:2], cur.temperature_law[:2] / cur.temperature[:2] - 1, rtol=EXACT
    )
    np.testing.assert_allclose(
        cur.temperature,
        np.array([float(temperature_for_radius(small, r, WEIGHTS)) for r in radii]),
        rtol=EXACT,
    )


def test_lagrange_curve_over_anchors_has_shape_b_by_r() -> None:
    f = np.array([[0.0, 1.0, 3.0], [2.0, 0.0, 1.0]])
    cur = lagrange_curve(f, np.array([0.01, 0.1, 0.2, 0.3]))
    for field in (
        cur.temperature,
        cur.temperature_law,
        cur.relative_error,
        cur.value,
        cur.value_law,
    ):
        assert field.shape == (2, 4)
    np.testing.assert_allclose(cur.mean, f.mean(axis=1), rtol=EXACT)
    np.testing.assert_allclose(cur.variance, f.var(axis=1), rtol=EXACT)


# --- advisor: the documented fields --------------------------------------------------------------
BATCH = np.array([[0.0, 1.0, 1.0, 0.5], [0.0, 0.0, 2.0, 0.3], [1.0, -1.0, 0.0, 0.2]])


def test_point_mass_radius_counts_ties_per_anchor() -> None:
    """−log(m/N) with m the ties at each row's own maximum."""
    np.testing.assert_allclose(
        point_mass_radius(BATCH), [math.log(4 / 2), math.log(4), math.log(4)], rtol=EXACT
    )


def test_advise_temperature_fields() -> None:
    tau = 0.5
    adv = advise_temperature(BATCH, tau)
    eta = np.asarray(radius_for_temperature(BATCH, tau))
    variance = BATCH.var(axis=1)
    assert (adv.mode, adv.matched_temperature, adv.notes) == ("temperature", tau, ())
    assert adv.quantile_levels == QUANTILE_LEVELS
    np.testing.assert_array_equal(adv.temperature, np.full(3, tau))
    np.testing.assert_allclose(adv.radius, eta, rtol=EXACT)
    np.testing.assert_allclose(adv.variance, variance, rtol=EXACT)
    np.testing.assert_allclose(adv.law, variance / (2 * tau**2), rtol=EXACT)
    np.testing.assert_allclose(adv.point_mass, point_mass_radius(BATCH), rtol=EXACT)
    np.testing.assert_allclose(adv.quantiles, np.quantile(eta, QUANTILE_LEVELS), rtol=EXACT)
    np.testing.assert_allclose(adv.law_quantiles, np.quantile(adv.law, QUANTILE_LEVELS), rtol=EXACT)
    assert adv.mean_radius == pytest.approx(float(eta.mean()), rel=EXACT)


def test_advise_radius_fields_and_notes() -> None:
    """η between the anchors' point-mass radii (log 2 < η < log 4): one anchor at τ = 0."""
    eta = 1.0
    adv = advise_radius(BATCH, eta)
    variance = BATCH.var(axis=1)
    assert (adv.mode, adv.mean_radius, adv.quantile_levels) == ("radius", eta, QUANTILE_LEVELS)
    np.testing.assert_array_equal(adv.radius, np.full(3, eta))
    np.testing.assert_allclose(adv.variance, variance, rtol=EXACT)
    np.testing.assert_allclose(adv.point_mass, point_mass_radius(BATCH), rtol=EXACT)
    np.testing.assert_allclose(
        adv.law_quantiles, np.quantile(np.sqrt(variance / (2 * eta)), QUANTILE_LEVELS), rtol=EXACT
    )
    assert adv.temperature[0] == 0.0 and np.all(adv.temperature[1:] > 0)
    assert len(adv.notes) == 1
    assert adv.notes[0].startswith("1 of 3 anchors:") and adv.notes[0].endswith("temperature is 0")
    mean_eta = float(np.mean(radius_for_temperature(BATCH, adv.matched_temperature)))
    assert mean_eta == pytest.approx(eta, rel=SOLVED)
    far = advise_radius(BATCH, 5.0)
    assert far.matched_temperature == 0.0
    assert far.notes[0].startswith("3 of 3 anchors:")
    assert far.notes[1].endswith("the matched temperature is 0")


def test_two_negatives_suffice_and_fewer_or_3d_scores_are_rejected() -> None:
    assert advise_temperature(np.array([0.0, 1.0]), 1.0).anchors == 1
    for bad in (np.array([1.0]), np.zeros((2, 2, 2))):
        with pytest.raises(InputError, match=r"^scores:"):
            advise_temperature(bad, 1.0)


def test_check_one_of_says_which() -> None:
    with pytest.raises(InputError, match=r"^radius/temperature: .* found both$"):
        check_one_of(0.1, 0.2)
    with pytest.raises(InputError, match=r"^radius/temperature: .* found neither$"):
        check_one_of(None, None)
    assert advise(BATCH, temperature=0.5).mode == "temperature"
