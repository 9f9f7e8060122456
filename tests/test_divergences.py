"""Property tests of the φ-divergence catalogue (dro_theory.divergences).

Identities are exact up to float64 rounding (tolerances ~1e-10 relative); the brute-force
conjugate uses a grid whose discretisation error is bounded in the test (see its docstring).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dro_theory.divergences import (
    DIVERGENCE_NAMES,
    CressieRead,
    Divergence,
    divergence_from_spec,
    get_divergence,
)
from dro_theory.errors import InputError

CATALOGUE: list[Divergence] = [
    get_divergence(name) for name in DIVERGENCE_NAMES if name != "cressie_read"
] + [get_divergence("cressie_read", alpha=a) for a in (0.3, 0.5, 1.5, 2.0, 3.0)]
IDS = [str(d) for d in CATALOGUE]


def test_catalogue_covers_every_divergence() -> None:
    """Every property below is parametrised over CATALOGUE: it must hold every name."""
    assert {d.name for d in CATALOGUE} == set(DIVERGENCE_NAMES)
    assert {0.5, 3.0} <= {d.alpha for d in CATALOGUE if isinstance(d, CressieRead)}


ratios = st.floats(min_value=0.0, max_value=50.0, allow_nan=False)


def _inside(div: Divergence, s: float, margin: float = 0.0) -> bool:
    _, hi, _ = div.conjugate_domain
    return s < hi - margin


@pytest.mark.parametrize("div", CATALOGUE, ids=IDS)
def test_phi_vanishes_at_one(div: Divergence) -> None:
    assert abs(float(div.phi(1.0))) <= 1e-15


@pytest.mark.parametrize("div", CATALOGUE, ids=IDS)
@given(t1=ratios, t2=ratios)
def test_phi_midpoint_convex(div: Divergence, t1: float, t2: float) -> None:
    mid = float(div.phi(0.5 * (t1 + t2)))
    avg = 0.5 * (float(div.phi(t1)) + float(div.phi(t2)))
    assert mid <= avg + 1e-12 * (1.0 + abs(avg))


@pytest.mark.parametrize("div", CATALOGUE, ids=IDS)
@given(t=ratios, s=st.floats(min_value=-20.0, max_value=5.0))
def test_fenchel_young_inequality(div: Divergence, t: float, s: float) -> None:
    conj = float(div.conjugate(s))  # +inf outside dom φ*, where the inequality is trivial
    lhs = float(div.phi(t)) + conj
    assert lhs >= s * t - 1e-10 * (1.0 + abs(s * t))


@pytest.mark.parametrize("div", CATALOGUE, ids=IDS)
@given(t=st.floats(min_value=1e-3, max_value=50.0).filter(lambda v: abs(v - 1.0) > 1e-6))
def test_fenchel_young_equality_at_the_derivative(div: Divergence, t: float) -> None:
    s = float(div.phi_prime(t))
    gap = float(div.phi(t)) + float(div.conjugate(s)) - s * t
    assert abs(gap) <= 1e-9 * (1.0 + abs(s * t))
    # the maximiser of s·t − φ(t) is t itself: (φ*)'(φ'(t)) = t (TV: any t on one side of 1)
    if div.smooth:
        assert float(div.conjugate_derivative(s)) == pytest.approx(t, rel=1e-8)


@pytest.mark.parametrize("div", CATALOGUE, ids=IDS)
@given(u=st.floats(min_value=0.02, max_value=0.98))
def test_conjugate_matches_brute_force_supremum(div: Divergence, u: float) -> None:
    """sup_t {s t − φ(t)} over a grid vs φ*(s).

    s = φ'(t0) with t0 = 40u ∈ (0.8, 39.2), so the maximiser is t0 (TV: s ∈ (−½, ½), maximisers
    in {0, 1, ∞} edges of [0, 1]). The grid is {0, 1} ∪ geomspace(1e-9, 400, 20001) (to catch a
    maximiser anywhere) ∪ geomspace(t0/4, 4t0, 20001), whose relative spacing h ≈ 1.4e-4 near t0
    bounds the loss of the concave objective by ½ t0² h² φ''(t0) ≤ 1e-6·(1 + |φ*(s)|) for
    every catalogue φ (largest for χ², φ'' = 2: 3e-5 against |φ*(s)| ≈ 1600).
    """
    if div.smooth:
        t0 = 40.0 * u
        s = float(div.phi_prime(t0))
    else:
        t0 = 1.0
        s = u - 0.5
    grid = np.concatenate(
        [[0.0, 1.0], np.geomspace(1e-9, 400.0, 20001), np.geomspace(t0 / 4, 4 * t0, 20001)]
    )
    brute = float(np.max(s * grid - div.phi(grid)))
    exact = float(div.conjugate(s))
    assert brute <= exact + 1e-9 * (1.0 + abs(exact))
    assert brute >= exact - 1e-6 * (1.0 + abs(exact))


@pytest.mark.parametrize("div", CATALOGUE, ids=IDS)
@given(s=st.floats(min_value=-6.0, max_value=3.0))
def test_conjugate_derivative_matches_finite_differences(div: Divergence, s: float) -> None:
    h = 1e-5
    assume(_inside(div, s, margin=10 * h))
    # stay away from the kinks of φ* (χ²: s = −2 where t ≥ 0 binds; TV: s = −1/2)
    kinks = {"chi2": [-2.0], "tv": [-0.5]}.get(div.name, [])
    assume(all(abs(s - k) >= 10 * h for k in kinks))
    if isinstance(div, CressieRead) and div.alpha > 1:
        assume(abs(1.0 + (div.alpha - 1.0) * s) >= 10 * h)  # the (·)_+ kink
    fd = (float(div.conjugate(s + h)) - float(div.conjugate(s - h))) / (2 * h)
    deriv = float(div.conjugate_derivative(s))
    assert deriv >= 0.0
    assert fd == pytest.approx(deriv, rel=1e-5, abs=1e-6)


probability = arrays(np.float64, st.integers(2, 12), elements=st.floats(0.01, 1.0)).map(
    lambda a: a / a.sum()
)


@pytest.mark.parametrize("div", CATALOGUE, ids=IDS)
@given(p=probability, data=st.data())
def test_divergence_is_zero_on_the_diagonal_and_nonnegative(
    div: Divergence, p: np.ndarray, data: st.DataObject
) -> None:
    assert abs(float(div.divergence(p, p))) <= 1e-14
    raw = data.draw(arrays(np.float64, p.shape, elements=st.floats(0.0, 1.0)))
    assume(raw.sum() > 0)
    q = raw / raw.sum()
    assert float(div.divergence(q, p)) >= -1e-14


@pytest.mark.parametrize("div", CATALOGUE, ids=IDS)
@given(p=probability)
def test_point_mass_radius_is_the_divergence_of_the_point_mass(
    div: Divergence, p: np.ndarray
) -> None:
    k = int(np.argmax(p))
    delta = np.zeros_like(p)
    delta[k] = 1.0
    expected = float(div.divergence(delta, p))
    got = float(div.point_mass_radius(p[k]))
    if math.isinf(expected):
        assert math.isinf(got)
    else:
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-14)


# --------------------------------------------------------------------------------------------
# numpy vs torch: one formula serves both backends
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("div", CATALOGUE, ids=IDS)
def test_numpy_and_torch_agree_with_finite_gradients(div: Divergence) -> None:
    torch = pytest.importorskip("torch")
    _, hi, _ = div.conjugate_domain
    edge = hi if math.isfinite(hi) else 30.0
    # t > 0: at t = 0 the slope of t log t (KL, JS) is −∞ and torch's xlogy gives NaN there
    t_np = np.array([1e-12, 0.3, 1.0, 2.5, 40.0])
    s_np = np.array([-30.0, -2.0, -0.5, 0.0, 0.1, edge - 1e-9, edge, edge + 1.0])
    t = torch.tensor(t_np, dtype=torch.float64, requires_grad=True)
    s = torch.tensor(s_np, dtype=torch.float64, requires_grad=True)
    phi_t = div.phi(t)
    conj_s = div.conjugate(s)
    ratio_s = div.conjugate_derivative(s)
    np.testing.assert_allclose(phi_t.detach().numpy(), div.phi(t_np), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(conj_s.detach().numpy(), div.conjugate(s_np), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        ratio_s.detach().numpy(), div.conjugate_derivative(s_np), rtol=1e-12, atol=1e-15
    )
    # gradients: never NaN (outside the domain the value is inf/nan but the gradient is 0)
    finite_phi = torch.isfinite(phi_t)
    (phi_t[finite_phi].sum()).backward()
    assert t.grad is not None and not torch.isnan(t.grad).any()
    finite_conj = torch.isfinite(conj_s)
    (conj_s[finite_conj].sum()).backward()
    assert s.grad is not None and not torch.isnan(s.grad).any()
    # on the open interior the gradient of φ* is (φ*)'
    interior = [i for i, v in enumerate(s_np) if _inside(div, v, 1e-6)]
    kinks = {"chi2": -2.0, "tv": -0.5}
    interior = [i for i in interior if abs(s_np[i] - kinks.get(div.name, 1e9)) > 1e-9]
    np.testing.assert_allclose(
        s.grad.numpy()[interior], div.conjugate_derivative(s_np[interior]), rtol=1e-9, atol=1e-12
    )


# --------------------------------------------------------------------------------------------
# get_divergence / divergence_from_spec errors
# --------------------------------------------------------------------------------------------
def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(InputError, match=r"divergence: expected one of .*did you mean 'kl'"):
        get_divergence("kll")
    with pytest.raises(InputError, match=r"did you mean 'hellinger'"):
        get_divergence("helinger")
    with pytest.raises(InputError, match=r"found 'wasserstein'"):
        get_divergence("wasserstein")


@pytest.mark.parametrize("alpha", [1.0, 0.0, -0.5, math.inf, math.nan])
def test_cressie_read_alpha_out_of_range(alpha: float) -> None:
    with pytest.raises(InputError, match=r"alpha: expected a finite number > 0 and != 1"):
        get_divergence("cressie_read", alpha=alpha)


def test_parameters_on_divergences_that_take_none() -> None:
    with pytest.raises(InputError, match=r"params: kl takes no parameters"):
        get_divergence("kl", alpha=2.0)
    with pytest.raises(InputError, match=r"params: cressie_read takes only 'alpha'"):
        get_divergence("cressie_read", alpha=2.0, beta=1.0)
    with pytest.raises(InputError, match=r"alpha: cressie_read needs alpha"):
        get_divergence("cressie_read")
    with pytest.raises(InputError, match=r"params: a Divergence instance takes no parameters"):
        get_divergence(get_divergence("kl"), alpha=1.0)


def test_specs_parse_and_reject_bad_alpha() -> None:
    assert str(divergence_from_spec("cr:1.5")) == "cressie_read:1.5"
    assert divergence_from_spec("Pearson").name == "chi2"
    with pytest.raises(InputError, match=r"NAME:ALPHA with a number ALPHA"):
        divergence_from_spec("cressie_read:abc")
    with pytest.raises(InputError, match=r"alpha: expected a finite number > 0"):
        divergence_from_spec("cr:-1")


def test_one_resolver_behind_every_name() -> None:
    """resolve_divergence is the one resolver; the older names are the same function."""
    from dro_theory import resolve_divergence
    from dro_theory.duals import resolve_divergence as duals_resolver
    from estimators.bounds import as_divergence

    assert divergence_from_spec is resolve_divergence
    assert as_divergence is resolve_divergence and duals_resolver is resolve_divergence
    kl = resolve_divergence("KL")
    assert resolve_divergence(kl) is kl and get_divergence("rkl").name == "reverse_kl"
    assert str(resolve_divergence("cr:0.5")) == "cressie_read:0.5"
    with pytest.raises(InputError, match=r"divergence: expected a name .*found int"):
        resolve_divergence(3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"expected one of kl, reverse_kl, chi2"):
        resolve_divergence("nope")
