"""The cvxpy primal worst case: agreement with the dual, the KL/InfoNCE identity, properties.

Reference values: the KL Gibbs tilt q_τ = q0 e^{f/τ}/E_{q0} e^{f/τ} is written here from the
closed form (Wu et al. 2023, Theorem 3.2); its radius η(τ) = KL(q_τ‖q0) is known by
construction, so the primal at η(τ) must return multiplier τ and q_τ. The other divergences are
compared with :func:`dro_theory.duals.worst_case_dual` and with the dual objective
c + αη + α E φ*((f − c)/α) evaluated from the catalogue's φ* at the primal's (α*, c*).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from dro_theory.divergences import divergence_from_spec
from dro_theory.duals import worst_case_dual
from dro_theory.errors import DROSolveError, InputError
from dro_theory.worst_case import WorstCase, worst_case, worst_case_sweep

wc = importlib.import_module("dro_theory.worst_case")

ALL = (
    "kl",
    "reverse_kl",
    "chi2",
    "hellinger",
    "tv",
    "js",
    "cressie_read:1.5",
    "cressie_read:3",
    "cressie_read:0.5",
)
#: strictly convex φ: q* is unique, so q can be compared (TV is an LP with possible ties)
STRICT = tuple(d for d in ALL if d != "tv")


def _instance(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    f = rng.gamma(2.0, size=n) * 1.7 - 3.0  # skewed, off-centre scores
    q0 = rng.dirichlet(np.full(n, 2.0))  # non-uniform reference weights
    return f, q0


def _kl_tilt(f: np.ndarray, q0: np.ndarray, tau: float) -> tuple[np.ndarray, float, float]:
    """Gibbs tilt q_τ, its radius η(τ) = KL(q_τ‖q0) and c = τ(log E e^{f/τ} − 1)."""
    log_z = float(logsumexp(f / tau, b=q0))
    q = q0 * np.exp(f / tau - log_z)
    eta = float(q @ f / tau - log_z)
    return q, eta, tau * (log_z - 1.0)


def _dual_objective(spec: str, f: np.ndarray, q0: np.ndarray, radius: float, res: WorstCase):
    """c + αη + α E_{q0} φ*((f − c)/α) at the primal's (α*, c*)."""
    div = divergence_from_spec(spec)
    a, c = float(res.multiplier), float(res.normalizer)
    return c + a * radius + a * float(q0 @ div.conjugate((f - c) / a))


def test_import_does_not_load_cvxpy() -> None:
    code = "import sys, dro_theory.worst_case; print('cvxpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [0.5, 1.0, 3.0])
def test_kl_at_implied_radius_returns_the_temperature_and_the_gibbs_tilt(tau: float) -> None:
    rng = np.random.default_rng(1)
    f, q0 = rng.normal(size=200) * 1.5 + 2.0, rng.dirichlet(np.full(200, 2.0))
    q_tau, eta, c_tau = _kl_tilt(f, q0, tau)
    # well inside the ball that would contain the point mass (η < −log q0(argmax))
    assert eta < 0.7 * -np.log(q0[f.argmax()])
    res = worst_case(f, "kl", eta, weights=q0)
    assert res.status in ("optimal", "optimal_inaccurate")
    assert abs(res.multiplier / tau - 1.0) <= 1e-5
    assert np.abs(res.q - q_tau).sum() <= 1e-6
    mu = float(q0 @ f)
    assert abs(res.value - q_tau @ f) <= 1e-6 * abs(q_tau @ f - mu)
    assert abs(res.normalizer - c_tau) <= 1e-5 * max(abs(c_tau), tau)


@pytest.mark.parametrize("spec", ALL)
def test_primal_equals_dual_for_every_divergence(spec: str) -> None:
    f, q0 = _instance(120, seed=2)
    mu = float(q0 @ f)
    for radius in (0.01, 0.05, 0.2):
        res = worst_case(f, spec, radius, weights=q0)
        dual = worst_case_dual(f, spec, radius, weights=q0)
        assert res.solver != "none"
        assert res.divergence == str(divergence_from_spec(spec))
        gap = abs(res.value - float(dual.value))
        assert gap <= 1e-6 * abs(float(dual.value) - mu), (spec, radius, gap)
        scale = float(np.sqrt(q0 @ (f - mu) ** 2))
        assert abs(res.multiplier / float(dual.multiplier) - 1.0) <= 1e-4, (spec, radius)
        tol_c = 1e-4 * (scale + float(dual.multiplier))  # c* carries the error of α*
        assert abs(res.normalizer - float(dual.normalizer)) <= tol_c, (spec, radius)
        if spec in STRICT:
            assert np.abs(res.q - np.asarray(dual.q)).sum() <= 1e-6
            # (α*, c*) read from the solver's duals attain the dual objective (for TV they sit
            # on the boundary c + α/2 = max f of dom φ*, where rounding gives +inf)
            obj = _dual_objective(spec, f, q0, radius, res)
            assert abs(obj - res.value) <= 1e-5 * abs(res.value - mu), (spec, radius, obj)


def test_result_records_diagnostics() -> None:
    f, q0 = _instance(60, seed=3)
    res = worst_case(f, "chi2", 0.1, weights=q0)
    d = res.diagnostics
    assert d["solvers_tried"][-1] == res.solver
    assert d["attempts"][-1]["verified"] is True
    assert d["slack"] >= -1e-9 * 0.1
    assert abs(d["gap"]) <= 1e-6 * abs(d["dual_value"] - float(q0 @ f))
    assert res.seconds > 0


# ------------------------------------------------------------------------------------------
@settings(max_examples=10)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(5, 30),
    spec=st.sampled_from(ALL),
    radius=st.floats(1e-3, 0.3),
    shift=st.floats(-20.0, 20.0),
    gain=st.floats(0.05, 20.0),
)
def test_properties(seed: int, n: int, spec: str, radius: float, shift: float, gain: float) -> None:
    rng = np.random.default_rng(seed)
    f = rng.normal(size=n)
    q0 = rng.dirichlet(np.ones(n))
    div = divergence_from_spec(spec)
    mu, scale = float(q0 @ f), float(np.sqrt(q0 @ (f - q0 @ f) ** 2))
    radii = [0.0, radius / 2, radius]
    sweep = worst_case_sweep(f, spec, radii, weights=q0)
    values = [r.value for r in sweep]
    # radius 0: the reference mean, exactly
    assert sweep[0].value == pytest.approx(mu, abs=1e-12) and np.allclose(sweep[0].q, q0)
    for r in sweep:
        # feasible, and the value lies between the mean and the max
        assert r.q.min() >= 0.0 and abs(r.q.sum() - 1.0) <= 1e-12
        assert float(div.divergence(r.q, q0)) <= r.radius * (1 + 1e-6) + 1e-9
        assert mu - 1e-9 * scale <= r.value <= f.max() + 1e-9 * scale
    # monotone in the radius
    assert values[0] <= values[1] + 1e-9 * scale and values[1] <= values[2] + 1e-9 * scale
    # translation / scale equivariance: f → gain·f + shift
    moved = worst_case(gain * f + shift, spec, radius, weights=q0)
    base = sweep[-1]
    assert moved.value == pytest.approx(gain * base.value + shift, abs=1e-6 * gain * scale)
    if spec in STRICT and base.status != "point_mass":
        assert np.abs(moved.q - base.q).sum() <= 2e-6
        assert moved.multiplier == pytest.approx(gain * base.multiplier, rel=1e-4)
        # c* ≈ μ − α* + O(1/α*) is dominated by α* at small radii: its error scales with α*
        assert moved.normalizer == pytest.approx(
            gain * base.normalizer + shift, abs=1e-4 * gain * (scale + base.multiplier)
        )


# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "pm_radius"),
    [
        ("kl", lambda p: -np.log(p)),
        ("chi2", lambda p: 1.0 / p - 1.0),
        ("hellinger", lambda p: 2.0 - 2.0 * np.sqrt(p)),
        ("tv", lambda p: 1.0 - p),
    ],
)
def test_point_mass_shortcut(spec: str, pm_radius) -> None:
    f = np.array([1.0, 3.0, 3.0, 0.0, 2.0, -1.0])
    q0 = np.array([0.1, 0.15, 0.05, 0.3, 0.2, 0.2])
    p_top = 0.2
    eta = float(pm_radius(p_top))
    res = worst_case(f, spec, eta, weights=q0)
    assert res.status == "point_mass" and res.solver == "none"
    assert res.value == 3.0 and res.multiplier == 0.0 and res.normalizer == 3.0
    np.testing.assert_allclose(res.q, [0, 0.75, 0.25, 0, 0, 0], atol=1e-15)
    # just inside the point-mass radius a solver runs and the value stays below the max
    inside = worst_case(f, spec, 0.9 * eta, weights=q0)
    assert inside.solver != "none"
    assert inside.value < 3.0


def test_reverse_kl_never_collapses_to_a_point_mass() -> None:
    f, q0 = _instance(30, seed=4)
    res = worst_case(f, "reverse_kl", 3.0, weights=q0)
    assert res.status != "point_mass" and res.q.min() > 0
    assert res.value < f.max()


def test_radius_zero_returns_the_reference() -> None:
    f, q0 = _instance(25, seed=5)
    res = worst_case(f, "kl", 0.0, weights=q0)
    assert res.solver == "none" and res.status == "optimal"
    np.testing.assert_allclose(res.q, q0, rtol=1e-14, atol=0)
    assert res.value == pytest.approx(float(q0 @ f), abs=1e-14)


def test_zero_weights_are_dropped() -> None:
    f, q0 = _instance(40, seed=6)
    q0z = q0.copy()
    q0z[::4] = 0.0
    q0z /= q0z.sum()
    keep = q0z > 0
    res = worst_case(f, "chi2", 0.1, weights=q0z)
    ref = worst_case(f[keep], "chi2", 0.1, weights=q0z[keep])
    assert np.all(res.q[~keep] == 0.0)
    assert np.abs(res.q[keep] - ref.q).sum() <= 1e-8
    assert res.value == pytest.approx(ref.value, abs=1e-10)


def test_sweep_equals_individual_solves() -> None:
    f, q0 = _instance(80, seed=7)
    radii = [0.0, 0.02, 0.1, 0.4, 10.0]
    sweep = worst_case_sweep(f, "kl", radii, weights=q0)
    assert [r.radius for r in sweep] == radii
    assert sweep[-1].status == "point_mass"
    for eta, r in zip(radii, sweep, strict=True):
        one = worst_case(f, "kl", eta, weights=q0)
        # both are verified answers: equal within the verification tolerances (V − μ to 1e-6
        # relative, q to 1e-6 in L1)
        assert r.value == pytest.approx(one.value, abs=2e-6 * abs(one.value - q0 @ f) + 1e-15)
        assert np.abs(r.q - one.q).sum() <= 2e-6


# ------------------------------------------------------------------------------------------
def test_fallback_to_scs_is_verified_and_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    # a Clarabel that stops after one iteration cannot verify; SCS (ε = 1e-8) must take over
    failing = ("clarabel(max_iter=1)", "CLARABEL", {"max_iter": 1})
    scs = next(entry for entry in wc._CHAIN if entry[0] == "scs(eps=1e-8)")
    monkeypatch.setattr(wc, "_CHAIN", (failing, scs))
    f, q0 = _instance(50, seed=8)
    res = worst_case(f, "kl", 0.1, weights=q0)
    assert res.solver == "scs(eps=1e-8)"
    tried = res.diagnostics["attempts"]
    assert [a["solver"] for a in tried] == ["clarabel(max_iter=1)", "scs(eps=1e-8)"]
    assert tried[0]["verified"] is False and tried[1]["verified"] is True
    dual = worst_case_dual(f, "kl", 0.1, weights=q0)
    assert abs(res.value - float(dual.value)) <= 1e-6 * abs(float(dual.value) - q0 @ f)


def test_unverifiable_answer_raises_with_details(monkeypatch: pytest.MonkeyPatch) -> None:
    failing = ("clarabel(max_iter=1)", "CLARABEL", {"max_iter": 1})
    monkeypatch.setattr(wc, "_CHAIN", (failing,))
    f, q0 = _instance(50, seed=9)
    with pytest.raises(DROSolveError, match=r"chi2 at radius 0\.1 .*clarabel\(max_iter=1\)"):
        worst_case(f, "chi2", 0.1, weights=q0)


def test_wrong_answer_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    # a "solver" that reports optimal with q = q0 must fail the check against the dual
    def fake_solve(self, radius, solver, options):
        self.ratio.value = np.ones(self.n)
        return "optimal"

    monkeypatch.setattr(wc._Primal, "solve", fake_solve)
    f, q0 = _instance(20, seed=10)
    with pytest.raises(DROSolveError, match="value differs from the dual"):
        worst_case(f, "kl", 0.1, weights=q0)


def test_forced_solver_is_used() -> None:
    f, q0 = _instance(40, seed=11)
    res = worst_case(f, "kl", 0.1, weights=q0, solver="scs")
    assert res.solver == "scs" and res.diagnostics["solvers_tried"] == ["scs"]


# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scores": np.ones((3, 4))}, r"scores: expected a 1-D array .*worst_case_dual"),
        ({"scores": [1.0, np.nan, 2.0]}, r"scores: expected finite values"),
        ({"scores": [1.0, np.inf]}, r"scores: expected finite values"),
        ({"scores": []}, r"scores: expected at least 1 entries"),
        ({"scores": ["a", "b"]}, r"scores: expected an array of numbers"),
        ({"radius": -0.1}, r"radius: expected a finite non-negative number, found -0.1"),
        ({"radius": float("nan")}, r"radius: expected a finite non-negative number"),
        ({"radius": "big"}, r"radius: expected a non-negative number, found 'big'"),
        ({"weights": [0.5, 0.6, -0.1]}, r"weights: expected non-negative weights"),
        ({"weights": [0.2, 0.2, 0.2]}, r"weights: expected weights summing to 1"),
        ({"weights": [0.5, 0.5]}, r"weights: expected shape \(3,\)"),
        ({"weights": [0.5, np.nan, 0.5]}, r"weights: expected finite values"),
        ({"divergence": "kll"}, r"divergence: expected one of .* found 'kll'; did you mean 'kl'"),
        ({"divergence": 3}, r"divergence: expected a name"),
        ({"divergence": "cressie_read:1"}, r"alpha: expected a finite number > 0 and != 1"),
        ({"divergence": "cressie_read:-2"}, r"alpha: expected a finite number > 0"),
        ({"divergence": "cressie_read:x"}, r"divergence: expected NAME:ALPHA"),
        ({"solver": "gurobi"}, r"solver: expected one of CLARABEL, SCS.*found 'gurobi'"),
        ({"solver": 7}, r"solver: expected a solver name, found int"),
    ],
)
def test_input_errors(kwargs: dict, match: str) -> None:
    args = {"scores": [0.0, 1.0, 2.0], "divergence": "kl", "radius": 0.1, **kwargs}
    with pytest.raises(InputError, match=match):
        worst_case(**args)


@pytest.mark.parametrize(
    ("radii", "match"),
    [
        ([], r"radii: expected a non-empty 1-D sequence"),
        ([[0.1]], r"radii: expected"),
        ([0.1, -1.0], r"radius: expected a finite non-negative number, found -1.0"),
    ],
)
def test_sweep_input_errors(radii, match: str) -> None:
    with pytest.raises(InputError, match=match):
        worst_case_sweep([0.0, 1.0, 2.0], "kl", radii)


def test_constant_scores_need_no_solver() -> None:
    # every atom is a maximiser: the ball's worst case is q0 itself, at any radius
    q0 = np.array([0.2, 0.3, 0.5])
    res = worst_case(np.full(3, 1.5), "chi2", 0.3, weights=q0)
    assert res.solver == "none" and res.value == 1.5
    np.testing.assert_allclose(res.q, q0, rtol=1e-15)


def test_near_miss_on_q_is_accepted_only_within_the_relaxed_tolerance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f, q0 = _instance(40, seed=12)
    monkeypatch.setattr(wc, "_CHAIN", (wc._CHAIN[0],))  # Clarabel, tight tolerances
    monkeypatch.setattr(wc, "_Q_L1_TOL", 0.0)  # no answer can pass the strict q check
    res = worst_case(f, "kl", 0.1, weights=q0)
    assert res.diagnostics["q_check"] == "relaxed to L1 <= 1e-05"
    assert res.diagnostics["attempts"][0]["verified"] is False
    assert 0.0 < res.diagnostics["dual_q_l1"] <= 1e-5
    monkeypatch.setattr(wc, "_Q_L1_RELAXED", 0.0)  # nor the relaxed one
    with pytest.raises(DROSolveError, match=r"L1\(q − q_dual\)"):
        worst_case(f, "kl", 0.1, weights=q0)


# ------------------------------------------------------------------------------------------
# an independent reference: the dual minimised by brute force in this file
# ------------------------------------------------------------------------------------------
#: bounded Brent in c and in log α: the dual objective is flat at its minimum, so an argument
#: tolerance of XTOL leaves an error of ~curvature·XTOL² in the value (≪ 1e-12 here)
XTOL = 1e-10


def _reference_value(spec: str, f: np.ndarray, q0: np.ndarray, radius: float) -> float:
    r"""V(η) = min_{α>0} min_c c + αη + α E_{q0} φ*((f − c)/α), by nested 1-D minimisation.

    Uses only the catalogue's φ* (checked against a brute-force supremum in
    test_divergences.py) and scipy's bounded Brent: no code of the dual solvers.
    """
    from scipy.optimize import minimize_scalar

    div = divergence_from_spec(spec)
    _, hi, _ = div.conjugate_domain
    scale = float(np.sqrt(q0 @ (f - q0 @ f) ** 2))

    def inner(log_a: float) -> float:
        a = float(np.exp(log_a))
        # c > max f − α·hi keeps (f − c)/α inside dom φ* (hi = ∞: any c)
        lo = f.max() - a * hi if np.isfinite(hi) else f.min() - 50.0 * (scale + a)
        lo += 1e-9 * (scale + a)
        up = f.max() + 50.0 * (scale + a)

        def obj(c: float) -> float:
            return c + a * radius + a * float(q0 @ div.conjugate((f - c) / a))

        res = minimize_scalar(obj, bounds=(lo, up), method="bounded", options={"xatol": XTOL})
        return float(res.fun)

    log_scale = np.log(scale)
    res = minimize_scalar(
        inner,
        bounds=(log_scale - 12.0, log_scale + 12.0),
        method="bounded",
        options={"xatol": XTOL},
    )
    return float(res.fun)


@pytest.mark.parametrize("spec", [s for s in ALL if s != "tv"])
def test_primal_and_dual_match_an_independent_reference(spec: str) -> None:
    """Both solvers against the brute-force dual: the primal to its verified 1e-6 of V − μ
    (plus the reference's own error), the dual to 1e-7 of V − μ (the reference's Brent
    tolerance dominates; the dual itself is at the rounding floor)."""
    f, q0 = _instance(60, seed=21)
    mu = float(q0 @ f)
    radius = 0.1
    ref = _reference_value(spec, f, q0, radius)
    dual = float(worst_case_dual(f, spec, radius, weights=q0).value)
    primal = worst_case(f, spec, radius, weights=q0).value
    assert abs(dual - ref) <= 1e-7 * abs(ref - mu), (spec, dual, ref)
    assert abs(primal - ref) <= 2e-6 * abs(ref - mu), (spec, primal, ref)


def test_tv_matches_a_linear_program() -> None:
    """TV: max q·f s.t. Σ q = 1, ½Σ|q − q0| ≤ η, q ≥ 0 as an LP in (q, t) with t ≥ |q − q0|."""
    from scipy.optimize import linprog

    f, q0 = _instance(40, seed=22)
    n, radius = f.size, 0.15
    cost = np.concatenate([-f, np.zeros(n)])
    eye = np.eye(n)
    a_ub = np.block([[eye, -eye], [-eye, -eye], [np.zeros((1, n)), 0.5 * np.ones((1, n))]])
    b_ub = np.concatenate([q0, -q0, [radius]])
    a_eq = np.concatenate([np.ones(n), np.zeros(n)])[None, :]
    lp = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[1.0], bounds=(0, None))
    ref = -float(lp.fun)
    mu = float(q0 @ f)
    assert abs(float(worst_case_dual(f, "tv", radius, weights=q0).value) - ref) <= 1e-9 * abs(
        ref - mu
    )
    assert abs(worst_case(f, "tv", radius, weights=q0).value - ref) <= 2e-6 * abs(ref - mu)


# ------------------------------------------------------------------------------------------
# every rejection branch of the primal's verification
# ------------------------------------------------------------------------------------------
def _dual_ratio(f: np.ndarray, q0: np.ndarray, spec: str, radius: float) -> np.ndarray:
    q = np.asarray(worst_case_dual(f, spec, radius, weights=q0).q)
    return q / q0


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        (lambda L: L, "infeasible", r"status infeasible"),
        (lambda L: np.full_like(L, np.nan), "optimal", r"no finite solution"),
        (lambda L: np.where(np.arange(L.size) == 0, -1e-3, L), "optimal", r"q < 0"),
        (lambda L: 1.01 * L, "optimal", r"sum\(q\) − 1"),
        ("wider", "optimal", r"D\(q‖q0\) = .* > radius"),
        (lambda L: np.ones_like(L), "optimal", r"value differs from the dual"),
    ],
)
def test_every_rejection_branch_is_reached(
    monkeypatch: pytest.MonkeyPatch, make, status: str, reason: str
) -> None:
    f, q0 = _instance(30, seed=23)
    radius = 0.1
    wider = _dual_ratio(f, q0, "kl", 1.5 * radius)  # feasible for 1.5η, not for η

    def fake_solve(self, radius_, solver, options):
        ratio = _dual_ratio(f, q0, "kl", radius)
        # a stand-in for the cvxpy variable: cvxpy itself refuses NaN or negative values
        self.ratio = SimpleNamespace(value=wider if make == "wider" else make(ratio))
        return status

    monkeypatch.setattr(wc._Primal, "solve", fake_solve)
    monkeypatch.setattr(wc, "_CHAIN", (wc._CHAIN[0],))
    with pytest.raises(DROSolveError, match=reason):
        worst_case(f, "kl", radius, weights=q0)


def test_an_honest_fake_passes_the_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control for the test above: the dual's own L passes every check."""
    f, q0 = _instance(30, seed=23)
    verdicts = []
    real_verify = wc._verify

    def fake_solve(self, radius_, solver, options):
        self.ratio = SimpleNamespace(value=_dual_ratio(f, q0, "kl", 0.1))
        return "optimal"

    def spy(*args):
        verdicts.append(real_verify(*args)[:2])
        raise KeyboardInterrupt  # stop before the multipliers (the stand-in has none)

    monkeypatch.setattr(wc._Primal, "solve", fake_solve)
    monkeypatch.setattr(wc, "_verify", spy)
    with pytest.raises(KeyboardInterrupt):
        worst_case(f, "kl", 0.1, weights=q0)
    assert verdicts == [(True, "verified")]


def test_primal_threshold_is_named() -> None:
    assert wc.primal_affordable(wc.PRIMAL_MAX_N)
    assert not wc.primal_affordable(wc.PRIMAL_MAX_N + 1)
