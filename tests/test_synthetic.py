"""Tests of estimators.synthetic: closed forms against quadrature and Monte Carlo, samplers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from dro_theory import InputError, divergence_from_spec
from estimators.synthetic import (
    TRANSFORMS,
    correlated_gaussians,
    gaussian_phi_mi,
    renyi_mi,
    transform,
)

CLOSED = ["kl", "reverse_kl", "chi2", "hellinger", "cr:0.5", "cr:1.5", "cr:3"]


def _grid_phi_mi(rho: float, spec: str, half_width: float = 16.0, n: int = 801) -> float:
    """∫∫ q φ(p/q) dx dy on a trapezoid grid in the ORIGINAL (x, y) coordinates.

    p is the bivariate normal density with correlation ρ, q = N(0,1)⊗N(0,1). The integrand is
    analytic and decays like a Gaussian, so the trapezoid rule converges geometrically; the
    heaviest tail used here (χ² at ρ = 0.5, p²/q ∝ e^{−(1−ρ)/(1+ρ)·x²/2} on the diagonal) is
    < 1e-15 beyond |x| = 16.
    """
    div = divergence_from_spec(spec)
    t = np.linspace(-half_width, half_width, n)
    h = t[1] - t[0]
    x, y = np.meshgrid(t, t, indexing="ij")
    log_q = -0.5 * (x**2 + y**2) - math.log(2 * math.pi)
    log_r = -0.5 * math.log(1 - rho**2) - (rho**2 * x**2 - 2 * rho * x * y + rho**2 * y**2) / (
        2 * (1 - rho**2)
    )
    with np.errstate(over="ignore", invalid="ignore"):
        vals = np.exp(log_q) * div.phi(np.exp(log_r))
    vals = np.where(np.exp(log_q) > 0, vals, 0.0)
    return float(vals.sum() * h * h)


def _tv_conditional(rho: float) -> float:
    """TV for one pair from the conditional law of y given x (original coordinates).

    log r(x, y) > 0 ⟺ y ∈ (y₋, y₊), y± = [x ± √((1 − ρ²)(x² + 2C))]/ρ with C = −½ log(1 − ρ²)
    (a quadratic in y). Under P, y | x ~ N(ρx, 1 − ρ²); under Q, y ~ N(0, 1).
    TV = ∫ φ(x)[P(y₋ < y < y₊ | x) − Q(y₋ < y < y₊)] dx.
    """
    c = -0.5 * math.log(1 - rho**2)
    sd = math.sqrt(1 - rho**2)

    def integrand(x: float) -> float:
        root = math.sqrt((1 - rho**2) * (x * x + 2 * c))
        lo, hi = (x - root) / rho, (x + root) / rho
        p_in = special.ndtr((hi - rho * x) / sd) - special.ndtr((lo - rho * x) / sd)
        q_in = special.ndtr(hi) - special.ndtr(lo)
        return float(stats.norm.pdf(x) * (p_in - q_in))

    return float(integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12)[0])


# ------------------------------------------------------------------------------------------
# d = 1: closed forms and quadrature against an independent 2-D quadrature
@pytest.mark.parametrize(
    ("spec", "rho"),
    [*((s, 0.5) for s in CLOSED if s != "cr:3"), ("cr:3", 0.3), ("js", 0.5), ("js", 0.9)],
)
def test_one_pair_against_2d_quadrature(spec: str, rho: float) -> None:
    """Closed form (and JS quadrature in rotated coordinates) = grid in original coordinates.

    Tolerance 1e-11·max(1, value): the grid's geometric convergence and float rounding over
    6.4e5 terms leave ~1e-14 (801 and 1601 points agree to that); a formula slip is ≫ 1e-11.
    (CR-3 is taken at ρ = 0.3: at ρ = 0.5 = 1/(α − 1) it is infinite.)
    """
    value = gaussian_phi_mi([rho], spec).value
    assert math.isfinite(value)
    assert value == pytest.approx(_grid_phi_mi(rho, spec), abs=1e-11 * max(1.0, value))


def test_one_pair_tv_against_conditional_integral() -> None:
    """TV by the rotated-coordinate integral = TV from the y | x quadratic (to 1e-10)."""
    for rho in (0.1, 0.5, 0.9):
        res = gaussian_phi_mi([rho], "tv")
        assert res.method == "quadrature"
        assert res.abs_error < 1e-10
        assert res.value == pytest.approx(_tv_conditional(rho), abs=1e-10)


def test_reference_numbers_of_the_notes() -> None:
    """The independent cross-check table (phi-mi notes §3.4, ρ = 0.5, 8 digits)."""
    ref = {
        "kl": 0.14384104,
        "reverse_kl": 0.18949230,
        "chi2": 0.33333333,
        "hellinger": 0.07775087,
        "tv": 0.18460846,
        "js": 0.03692082,
        "cr:0.5": 0.15550174,
        "cr:1.5": 0.14641474,
    }
    for spec, val in ref.items():
        assert gaussian_phi_mi([0.5], spec).value == pytest.approx(val, abs=6e-9)
    for alpha, val in ((0.5, 0.0793025151), (1.5, 0.2083795574), (2.0, 0.2876820725)):
        assert renyi_mi([0.5], alpha) == pytest.approx(val, abs=1e-10)


# ------------------------------------------------------------------------------------------
# identities between the closed forms
@pytest.mark.parametrize("rhos", [[0.5], [0.5, 0.3], [0.9, 0.2, 0.05]])
def test_closed_form_identities(rhos: list[float]) -> None:
    kl = gaussian_phi_mi(rhos, "kl").value
    assert gaussian_phi_mi(rhos, "chi2").value == pytest.approx(math.expm1(2 * kl), rel=1e-13)
    assert renyi_mi(rhos, 2.0) == pytest.approx(2 * kl, rel=1e-13)
    assert renyi_mi(rhos, 1.0) == pytest.approx(kl, rel=1e-15)
    # Cressie–Read: α = 2 is χ²/2, α = ½ is 2 × squared Hellinger; α → 1 is KL, α → 0 reverse KL
    cr2 = gaussian_phi_mi(rhos, divergence_from_spec("cr:2")).value
    assert cr2 == pytest.approx(0.5 * gaussian_phi_mi(rhos, "chi2").value, rel=1e-13)
    half = gaussian_phi_mi(rhos, "cr:0.5").value
    assert half == pytest.approx(2 * gaussian_phi_mi(rhos, "hellinger").value, rel=1e-12)
    assert gaussian_phi_mi(rhos, "cr:1.000001").value == pytest.approx(kl, rel=1e-5)
    rkl = gaussian_phi_mi(rhos, "reverse_kl").value
    assert gaussian_phi_mi(rhos, "cr:0.000001").value == pytest.approx(rkl, rel=1e-4)
    # additivity over pairs (KL, reverse KL, Rényi) and multiplicativity of H_α (Hellinger)
    for spec in ("kl", "reverse_kl"):
        parts = sum(gaussian_phi_mi([r], spec).value for r in rhos)
        assert gaussian_phi_mi(rhos, spec).value == pytest.approx(parts, rel=1e-13)
    assert renyi_mi(rhos, 0.5) == pytest.approx(sum(renyi_mi([r], 0.5) for r in rhos), rel=1e-13)
    bc = np.prod([1 - 0.5 * gaussian_phi_mi([r], "hellinger").value for r in rhos])
    assert gaussian_phi_mi(rhos, "hellinger").value == pytest.approx(2 * (1 - bc), rel=1e-12)


def test_independence_and_sign() -> None:
    for spec in [*CLOSED, "tv", "js"]:
        res = gaussian_phi_mi([0.0, 0.0], spec)
        assert res.value == 0.0
        assert gaussian_phi_mi([-0.4], spec).value == gaussian_phi_mi([0.4], spec).value


def test_cressie_read_infinite_beyond_the_hellinger_condition() -> None:
    """H_α diverges when (α − 1)ρ ≥ 1: CR-3 is finite at ρ = 0.49 and infinite at 0.5."""
    assert math.isfinite(gaussian_phi_mi([0.49], "cr:3").value)
    res = gaussian_phi_mi([0.2, 0.5], "cr:3")
    assert res.value == math.inf
    assert "diverges" in res.note
    assert renyi_mi([0.5], 3.0) == math.inf


# ------------------------------------------------------------------------------------------
# d = 2: a dense covariance, Monte Carlo from its own densities
def _dense_case() -> tuple[np.ndarray, np.ndarray]:
    """A 4-D joint covariance (d_x = d_y = 2) and its canonical correlations (SVD of R)."""
    a = np.array([[1.0, 0.3], [-0.2, 0.8]])
    b = np.array([[0.7, 0.0], [0.4, 1.2]])
    cx, cy = a @ a.T, b @ b.T
    rx = np.linalg.cholesky(cx)
    ry = np.linalg.cholesky(cy)
    rho = np.array([0.5, 0.3])
    u, _ = np.linalg.qr(np.array([[1.0, 2.0], [0.5, -1.0]]))
    v, _ = np.linalg.qr(np.array([[0.3, 1.0], [1.0, 0.2]]))
    cxy = rx @ u @ np.diag(rho) @ v.T @ ry.T
    cov = np.block([[cx, cxy], [cxy.T, cy]])
    whitened = np.linalg.solve(rx, cxy) @ np.linalg.inv(ry).T
    return cov, np.linalg.svd(whitened, compute_uv=False)


def test_dense_gaussian_canonical_correlations_recovered() -> None:
    _, rhos = _dense_case()
    assert np.allclose(np.sort(rhos), [0.3, 0.5], atol=1e-14)


@pytest.fixture(scope="module")
def dense_log_ratio() -> np.ndarray:
    """log r at 2e5 draws from Q = N(0, Σ_xx) ⊗ N(0, Σ_yy) (seed 11), from the 4-D densities."""
    cov, _ = _dense_case()
    rng = np.random.default_rng(11)
    n = 200_000
    x = rng.multivariate_normal(np.zeros(2), cov[:2, :2], size=n)
    y = rng.multivariate_normal(np.zeros(2), cov[2:, 2:], size=n)
    return np.asarray(
        stats.multivariate_normal(np.zeros(4), cov).logpdf(np.hstack([x, y]))
        - stats.multivariate_normal(np.zeros(2), cov[:2, :2]).logpdf(x)
        - stats.multivariate_normal(np.zeros(2), cov[2:, 2:]).logpdf(y)
    )


@pytest.mark.parametrize("spec", ["kl", "reverse_kl", "chi2", "hellinger", "cr:1.5", "tv", "js"])
def test_two_pairs_against_monte_carlo(spec: str, dense_log_ratio: np.ndarray) -> None:
    """Closed form (or RQMC for TV/JS) = E_Q φ(r) with r from the dense 4-D densities.

    Seed 11, 2e5 samples from Q; tolerance 4·√(SE_MC² + SE_RQMC²). This checks the canonical
    reduction (§3.1) and not just algebra: r is computed from the full covariance with scipy's
    multivariate normal log-densities.
    """
    _, rhos = _dense_case()
    vals = divergence_from_spec(spec).phi(np.exp(dense_log_ratio))
    n = vals.size
    mc, se = vals.mean(), vals.std(ddof=1) / math.sqrt(n)
    res = gaussian_phi_mi(rhos, spec)
    assert abs(res.value - mc) <= 4 * math.hypot(se, res.abs_error), (res, mc, se)


@pytest.mark.parametrize("spec", ["tv", "js"])
def test_rqmc_matches_quadrature_when_one_pair_is_negligible(spec: str) -> None:
    """k = 2 with ρ₂ = 1e-9 goes through RQMC; its value is the one-pair quadrature + O(ρ₂²).

    Tolerance: 4 reported standard errors (the RQMC SE is the spread of 16 scrambles).
    """
    one = gaussian_phi_mi([0.5], spec)
    two = gaussian_phi_mi([0.5, 1e-9], spec)
    assert two.method == "rqmc"
    assert 0 < two.abs_error < 1e-3
    assert abs(two.value - one.value) <= 4 * two.abs_error + one.abs_error


def test_rqmc_is_seeded() -> None:
    a = gaussian_phi_mi([0.5, 0.3], "js", seed=3, n_points=2**12)
    b = gaussian_phi_mi([0.5, 0.3], "js", seed=3, n_points=2**12)
    c = gaussian_phi_mi([0.5, 0.3], "js", seed=4, n_points=2**12)
    assert a == b
    assert a.value != c.value
    assert abs(a.value - c.value) <= 4 * math.hypot(a.abs_error, c.abs_error)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("i_kl", "tv", "js"),
    [(2.0, 0.694680, 0.3506), (4.0, 0.866472, 0.5277), (6.0, 0.942133, 0.6171)],
)
def test_staircase_tv_js_against_the_notes(i_kl: float, tv: float, js: float) -> None:
    """d = 20 equal ρ (Poole staircase): RQMC vs the notes' Imhof TV and bounded-MC JS (§3.5).

    Tolerance 4·√(SE² + ref²): the notes give TV to 1e-6 (Imhof) and JS with SE ≤ 2e-4.
    """
    rho = math.sqrt(-math.expm1(-2 * i_kl / 20))
    got_tv = gaussian_phi_mi([rho] * 20, "tv", n_points=2**16)
    got_js = gaussian_phi_mi([rho] * 20, "js", n_points=2**16)
    assert abs(got_tv.value - tv) <= 4 * math.hypot(got_tv.abs_error, 1e-6)
    assert abs(got_js.value - js) <= 4 * math.hypot(got_js.abs_error, 2e-4)


# ------------------------------------------------------------------------------------------
# samplers
def test_correlated_gaussians_shapes_seed_and_correlations() -> None:
    """Per-pair sample correlations are within 4 SE, SE = (1 − ρ²)/√n (seed 12, n = 20000)."""
    rhos = [0.8, 0.5, 0.0]
    n = 20_000
    s = correlated_gaussians(n, rhos, seed=12, dim_x=5, dim_y=4)
    x, y = s
    assert x.shape == (n, 5) and y.shape == (n, 4)
    assert x.dtype == np.float64 and y.dtype == np.float64
    for k, rho in enumerate(rhos):
        r = np.corrcoef(x[:, k], y[:, k])[0, 1]
        assert abs(r - rho) <= 4 * (1 - rho**2) / math.sqrt(n)
    same = correlated_gaussians(n, rhos, seed=12, dim_x=5, dim_y=4)
    assert np.array_equal(same.x, x) and np.array_equal(same.y, y)
    gen_a = correlated_gaussians(10, rhos, seed=np.random.default_rng(1))
    gen_b = correlated_gaussians(10, rhos, seed=np.random.default_rng(1))
    assert np.array_equal(gen_a.y, gen_b.y)


def test_rotation_keeps_the_canonical_correlations() -> None:
    """Sample CCA of the rotated data recovers ρ (within 4·(1 − ρ²)/√n; seed 13, n = 20000)."""
    rhos = np.array([0.7, 0.4])
    n = 20_000
    x, y = correlated_gaussians(n, rhos, seed=13, dim_x=3, dim_y=3, rotate=True)
    assert abs(np.corrcoef(x[:, 0], y[:, 0])[0, 1]) < 0.69  # mixed: no coordinate pair is ρ₁
    cov = np.cov(np.hstack([x, y]).T)
    lx, ly = np.linalg.cholesky(cov[:3, :3]), np.linalg.cholesky(cov[3:, 3:])
    whitened = np.linalg.solve(lx, cov[:3, 3:]) @ np.linalg.inv(ly).T
    canon = np.linalg.svd(whitened, compute_uv=False)
    assert np.all(np.abs(canon[:2] - rhos) <= 4 * (1 - rhos**2) / math.sqrt(n))
    assert canon[2] <= 4 / math.sqrt(n)


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_transforms_are_monotone_and_keep_rank_correlations(kind: str) -> None:
    """Strictly increasing per-coordinate maps leave every rank (Spearman) correlation unchanged.

    Ranks are identical, so the Spearman matrix is identical (exactly): the dependence
    structure, and hence every I_φ, is unchanged.
    """
    x, y = correlated_gaussians(2000, [0.6, 0.3], seed=14)
    t = transform(x, y, kind)
    assert t.transform == kind
    xy, txy = np.hstack([x, y]), np.hstack([t.x, t.y])
    assert np.array_equal(np.argsort(xy, axis=0), np.argsort(txy, axis=0))
    assert np.array_equal(stats.spearmanr(xy).statistic, stats.spearmanr(txy).statistic)
    only_y = transform(x, y, kind, which="y")
    assert np.array_equal(only_y.x, x)


def test_transform_values() -> None:
    x = np.array([[-2.0], [0.0], [4.0]])
    assert np.allclose(transform(x, x, "cubic").x.ravel(), [-8, 0, 64])
    assert np.allclose(transform(x, x, "half_cube").x.ravel(), [-2 * math.sqrt(2), 0, 8])
    assert np.allclose(transform(x, x, "normal_cdf").x.ravel(), special.ndtr([-2, 0, 4]))


# ------------------------------------------------------------------------------------------
# errors
def test_errors() -> None:
    with pytest.raises(InputError, match="canonical_correlations"):
        gaussian_phi_mi([1.0], "kl")
    with pytest.raises(InputError, match="canonical_correlations"):
        gaussian_phi_mi([math.nan], "kl")
    with pytest.raises(InputError, match="canonical_correlations"):
        correlated_gaussians(10, [[0.1]])
    with pytest.raises(InputError, match="divergence"):
        gaussian_phi_mi([0.5], "kll")
    with pytest.raises(InputError, match="divergence"):
        gaussian_phi_mi([0.5], 3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="n_points"):
        gaussian_phi_mi([0.5, 0.2], "tv", n_points=1000)
    with pytest.raises(InputError, match="n_replicates"):
        gaussian_phi_mi([0.5, 0.2], "tv", n_replicates=1)
    with pytest.raises(InputError, match="alpha"):
        renyi_mi([0.5], -1.0)
    with pytest.raises(InputError, match="n:"):
        correlated_gaussians(0, [0.5])
    with pytest.raises(InputError, match="dim_x"):
        correlated_gaussians(10, [0.5, 0.2], dim_x=1)
    with pytest.raises(InputError, match="seed"):
        correlated_gaussians(10, [0.5], seed="a")  # type: ignore[arg-type]
    x = np.zeros((5, 2))
    with pytest.raises(InputError, match="kind"):
        transform(x, x, "square")
    with pytest.raises(InputError, match="which"):
        transform(x, x, "cubic", which="z")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="rows"):
        transform(x, np.zeros((4, 2)), "cubic")
