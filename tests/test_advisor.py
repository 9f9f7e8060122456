"""The temperature advisor against an independent root solve of η(τ) = KL(softmax(f/τ) ‖ q0).

The reference here is written from the definition only (scipy.special.logsumexp, xlogy and
brentq on log τ), not through the library. Tolerance 1e-8 relative (issue 14): the reference
root is solved to xtol 1e-14 in log τ, and η is computed to ~N·eps relative for the radii used
(η ≥ 1e-2, N ≤ 200), so both sides are exact far below 1e-8.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.special import logsumexp, xlogy

from dro_theory.advisor import (
    QUANTILE_LEVELS,
    advise,
    advise_radius,
    advise_temperature,
    point_mass_radius,
)
from dro_theory.errors import InputError
from estimators.similarity import advise_from_embeddings, negative_scores

#: relative agreement with the independent solve required by issue 14
RTOL = 1e-8


def eta_reference(f: np.ndarray, tau: float) -> float:
    """KL(q_τ ‖ uniform) with q_τ = softmax(f/τ), from the definition."""
    logits = f / tau
    logq = logits - logsumexp(logits)
    q = np.exp(logq)
    return float(np.sum(xlogy(q, q)) + math.log(f.size))


def tau_reference(f: np.ndarray, eta: float) -> float:
    """Root of eta_reference(f, τ) = η, brentq on log τ over a wide bracket."""
    g = lambda t: eta_reference(f, math.exp(t)) - eta  # noqa: E731
    return math.exp(brentq(g, math.log(1e-4), math.log(1e4), xtol=1e-14, rtol=1e-15))


@pytest.fixture
def scores() -> np.ndarray:
    rng = np.random.default_rng(7)
    base = rng.normal(size=(6, 120)) * np.linspace(0.1, 0.6, 6)[:, None]
    skewed = rng.exponential(size=(2, 120)) * 0.3  # right-skewed negatives
    return np.concatenate([base, skewed])


@pytest.mark.parametrize("eta", [0.02, 0.3, 1.5])
def test_temperature_per_anchor_matches_independent_root(scores: np.ndarray, eta: float) -> None:
    adv = advise_radius(scores, eta)
    ref = np.array([tau_reference(f, eta) for f in scores])
    np.testing.assert_allclose(adv.temperature, ref, rtol=RTOL, atol=0)
    np.testing.assert_allclose(adv.quantiles, np.quantile(ref, QUANTILE_LEVELS), rtol=RTOL)
    np.testing.assert_allclose(adv.law, np.sqrt(scores.var(axis=1) / (2 * eta)), rtol=1e-12)
    assert adv.notes == ()


@pytest.mark.parametrize("tau", [0.05, 0.2, 1.0])
def test_radius_per_anchor_matches_definition(scores: np.ndarray, tau: float) -> None:
    adv = advise_temperature(scores, tau)
    ref = np.array([eta_reference(f, tau) for f in scores])
    np.testing.assert_allclose(adv.radius, ref, rtol=RTOL, atol=0)
    np.testing.assert_allclose(adv.law, scores.var(axis=1) / (2 * tau**2), rtol=1e-12)
    assert adv.mean_radius == pytest.approx(ref.mean(), rel=RTOL)


def test_matched_temperature_gives_the_mean_radius(scores: np.ndarray) -> None:
    eta = 0.4
    adv = advise_radius(scores, eta)
    mean = np.mean([eta_reference(f, adv.matched_temperature) for f in scores])
    assert mean == pytest.approx(eta, rel=RTOL)
    # between the smallest and the largest per-anchor root (η_i is decreasing in τ)
    assert adv.temperature.min() <= adv.matched_temperature <= adv.temperature.max()


def test_extreme_scores_stay_finite() -> None:
    f = np.array([[50.0, -50.0, 0.0, 49.0, -49.0, 10.0]])
    eta = advise_temperature(f, 1e-3).radius
    assert np.all(np.isfinite(eta))
    assert eta[0] == pytest.approx(math.log(6), rel=1e-12)  # all mass on the single maximum
    tau = advise_radius(f, 0.5).temperature[0]
    assert tau == pytest.approx(tau_reference(f[0], 0.5), rel=RTOL)


def test_point_mass_radius_gives_zero_with_a_note() -> None:
    f = np.array([[1.0, 1.0, 0.0, -0.5, 0.2, 0.3, 0.1, -1.0]])  # two tied maxima of 8
    pm = math.log(8 / 2)
    assert point_mass_radius(f)[0] == pytest.approx(pm, rel=1e-15)
    below = advise_radius(f, pm * (1 - 1e-3))
    assert below.temperature[0] > 0
    assert below.notes == ()
    for eta in (pm, pm + 0.1):
        adv = advise_radius(f, eta)
        assert adv.temperature[0] == 0.0
        assert adv.matched_temperature == 0.0
        assert any("point-mass" in n for n in adv.notes)


def test_one_dimensional_scores_are_one_anchor(scores: np.ndarray) -> None:
    adv = advise(scores[0], radius=0.3)
    assert adv.anchors == 1
    assert adv.temperature[0] == pytest.approx(tau_reference(scores[0], 0.3), rel=RTOL)
    assert adv.matched_temperature == pytest.approx(adv.temperature[0], rel=RTOL)


@pytest.mark.parametrize(
    ("scores", "kw", "message"),
    [
        (np.array([[0.1, np.nan, 0.3]]), {"radius": 0.1}, "scores: expected finite"),
        (np.array([0.1, np.inf, 0.3]), {"temperature": 0.1}, "scores: expected finite"),
        (np.zeros((2, 2, 2)), {"radius": 0.1}, "scores: expected a 1-D or 2-D"),
        (np.array([[0.3]]), {"radius": 0.1}, "at least 2 negatives"),
        (np.ones(4), {"radius": -0.1}, "radius: expected a finite number > 0"),
        (np.ones(4), {"radius": float("nan")}, "radius: expected a finite number > 0"),
        (np.ones(4), {"temperature": 0.0}, "temperature: expected a finite number > 0"),
        (np.ones(4), {"temperature": float("inf")}, "temperature: expected a finite number"),
        (np.ones(4), {"radius": 0.1, "temperature": 0.1}, "exactly one of --radius"),
        (np.ones(4), {}, "exactly one of --radius"),
    ],
)
def test_bad_input(scores: np.ndarray, kw: dict[str, float], message: str) -> None:
    with pytest.raises(InputError, match=message):
        advise(scores, **kw)


# -------------------------------------------------------------------- embeddings (estimators)
def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_one_view_negatives_are_the_other_rows() -> None:
    z = np.random.default_rng(1).normal(size=(7, 4))
    neg = negative_scores(z)
    assert neg.positives is None
    for i in range(7):
        ref = [_cos(z[i], z[j]) for j in range(7) if j != i]
        np.testing.assert_allclose(neg.negatives[i], ref, rtol=1e-12, atol=1e-15)


def test_two_views_follow_the_nt_xent_layout() -> None:
    rng = np.random.default_rng(2)
    z1, z2 = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    neg = negative_scores(z1, z2)
    allz = np.concatenate([z1, z2])
    assert neg.negatives.shape == (10, 8)
    assert neg.positives is not None
    for k in range(10):
        partner = (k + 5) % 10
        ref = [_cos(allz[k], allz[j]) for j in range(10) if j not in (k, partner)]
        np.testing.assert_allclose(neg.negatives[k], ref, rtol=1e-12, atol=1e-15)
        assert neg.positives[k] == pytest.approx(_cos(allz[k], allz[partner]), rel=1e-12)


def test_embeddings_advice_is_the_advice_on_their_scores() -> None:
    rng = np.random.default_rng(3)
    z1 = rng.normal(size=(12, 6))
    z2 = z1 + 0.3 * rng.normal(size=z1.shape)
    adv = advise_from_embeddings(z1, z2, radius=0.4)
    ref = [tau_reference(f, 0.4) for f in negative_scores(z1, z2).negatives]
    np.testing.assert_allclose(adv.temperature, ref, rtol=RTOL)


@pytest.mark.parametrize(
    ("z1", "z2", "message"),
    [
        (np.ones((4, 3)), np.ones((5, 3)), "two views of the same shape"),
        (np.ones(4), None, "embeddings: expected a 2-D"),
        (np.ones((2, 3)), None, "at least 3 rows"),
        (np.array([[1.0, 0], [0, 0], [0, 1]]), None, "zero row at index 1"),
        (np.array([[1.0, np.nan], [0, 1], [1, 1]]), None, "embeddings: expected finite"),
    ],
)
def test_bad_embeddings(z1: np.ndarray, z2: np.ndarray | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        advise_from_embeddings(z1, z2, radius=0.1)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    shift=st.floats(-5, 5),
    scale=st.floats(0.1, 10),
    eta=st.floats(0.05, 1.0),
)
def test_equivariance_and_monotonicity(shift: float, scale: float, eta: float) -> None:
    """τ(c·f + a, η) = c·τ(f, η) (η is a function of f/τ only), and τ decreases in η."""
    f = np.random.default_rng(11).normal(size=(3, 40))
    base = advise_radius(f, eta)
    moved = advise_radius(scale * f + shift, eta)
    np.testing.assert_allclose(moved.temperature, scale * base.temperature, rtol=1e-8)
    assert moved.matched_temperature == pytest.approx(scale * base.matched_temperature, rel=1e-8)
    assert np.all(advise_radius(f, 1.5 * eta).temperature < base.temperature)
