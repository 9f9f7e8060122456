"""Tests of estimators.bounds: values at the optimal critic, identities, the λ solve, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import minimize_scalar

from dro_theory import InputError, divergence_from_spec
from estimators.bounds import (
    constrain_to_domain,
    dv,
    infonce,
    nwj,
    optimal_shift,
    phi_plain,
    phi_tight,
)
from estimators.synthetic import gaussian_phi_mi

ALL = ["kl", "reverse_kl", "chi2", "hellinger", "tv", "js", "cr:0.5", "cr:1.5", "cr:3"]
SMOOTH = [d for d in ALL if d != "tv"]

RHO = 0.3  # canonical correlation of the test pair: H_α finite up to α = 1 + 1/ρ ≈ 4.3


def _log_ratio(x: np.ndarray, y: np.ndarray, rho: float) -> np.ndarray:
    """log p(x, y)/(p(x) p(y)) of the standard bivariate normal, from its density."""
    q = (rho**2 * x**2 - 2 * rho * x * y + rho**2 * y**2) / (2 * (1 - rho**2))
    return -0.5 * math.log(1 - rho**2) - q


def _optimal_scores(n_batches: int, k: int, seed: int) -> np.ndarray:
    """(B, K, K) log-ratio matrices log r(x_i, y_j) for B independent batches of K pairs."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_batches, k))
    y = RHO * x + math.sqrt(1 - RHO**2) * rng.standard_normal((n_batches, k))
    return _log_ratio(x[:, :, None], y[:, None, :], RHO)


def _critic(log_r: np.ndarray, spec: str) -> torch.Tensor:
    """T* = φ'(r) (the optimal critic), float64."""
    div = divergence_from_spec(spec)
    return torch.from_numpy(np.asarray(div.phi_prime(np.exp(log_r)), dtype=np.float64))


# ------------------------------------------------------------------------------------------
# statistical: the bounds at T* estimate I_φ without bias
def _batched_bounds(scores: torch.Tensor, spec: str) -> tuple[np.ndarray, np.ndarray]:
    """Plain and tight bounds of each (K, K) matrix in a (B, K, K) stack (vectorised)."""
    div = divergence_from_spec(spec)
    k = scores.shape[-1]
    off = scores[:, ~torch.eye(k, dtype=torch.bool)]
    diag = torch.diagonal(scores, dim1=1, dim2=2).mean(dim=1)
    plain = diag - div.conjugate(off).mean(dim=1)
    lam = optimal_shift(off, spec, dim=1)
    tight = diag - (lam + div.conjugate(off - lam[:, None]).mean(dim=1))
    # the vectorised form is the library's phi_plain / phi_tight, batch by batch
    for b in (0, len(scores) - 1):
        assert float(plain[b]) == pytest.approx(float(phi_plain(scores[b], spec)), abs=1e-12)
        assert float(tight[b]) == pytest.approx(float(phi_tight(scores[b], spec)), abs=1e-12)
    return plain.numpy(), tight.numpy()


def _check_optimal_critic(spec: str, n_batches: int, seed: int) -> None:
    scores = _critic(_optimal_scores(n_batches, 64, seed=seed), spec)
    truth = gaussian_phi_mi([RHO], spec).value
    for vals in _batched_bounds(scores, spec):
        se = vals.std(ddof=1) / math.sqrt(len(vals))
        assert abs(vals.mean() - truth) <= 4 * se, (spec, vals.mean(), truth, se)


@pytest.mark.parametrize("spec", ALL)
def test_bounds_at_optimal_critic_estimate_the_closed_form(spec: str) -> None:
    """Plain and tight bounds at T* = φ'(r) average to I_φ (seed 0, 200 batches of K = 64).

    The plain bound is unbiased at T* (diagonal mean ~ E_P, off-diagonal mean ~ E_Q). The
    tight bound exceeds it per batch by min over λ of an average of K(K−1) terms, a bias of
    order Var_Q/(K(K−1)) ≈ 2e-4·I_φ here, far below the standard error (≈ 6 % of I_φ).
    Tolerance: 4 standard errors of the batch mean (the 200 batches are independent).
    """
    _check_optimal_critic(spec, 200, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("spec", ALL)
def test_bounds_at_optimal_critic_many_batches(spec: str) -> None:
    """As above with 4000 batches (seed 20): SE ≈ 1.3 % of I_φ, tight bias still ≪ SE."""
    _check_optimal_critic(spec, 4000, seed=20)


def test_kl_bounds_at_optimal_critic() -> None:
    """NWJ at T* = 1 + log r and DV at log r (+ any constant) average to I_KL (4 SE, seed 1).

    DV is a log of a mean, biased upward by ≈ Var_Q(r)/(2K(K−1)) ≈ 2e-6 here (negligible).
    """
    log_r = torch.from_numpy(_optimal_scores(40, 128, seed=1))
    truth = gaussian_phi_mi([RHO], "kl").value
    for fn, shift in ((nwj, 1.0), (dv, 0.0), (dv, 3.0)):
        vals = np.array([float(fn(s + shift)) for s in log_r])
        se = vals.std(ddof=1) / math.sqrt(len(vals))
        assert abs(vals.mean() - truth) <= 4 * se


# ------------------------------------------------------------------------------------------
# exact identities
@pytest.mark.parametrize("spec", ALL)
def test_tight_bound_is_shift_invariant_and_plain_drops(spec: str) -> None:
    """tight(T* + c) = tight(T*) to 1e-10 on the same sample; plain(T* + c) < plain(T*)."""
    scores = _critic(_optimal_scores(1, 200, seed=2)[0], spec)
    c = 0.7
    base = phi_tight(scores, spec)
    shifted = phi_tight(scores + c, spec)
    assert abs(float(shifted - base)) <= 1e-10
    plain_shifted = float(phi_plain(scores + c, spec))
    assert plain_shifted < float(phi_plain(scores, spec))
    # −inf exactly when an off-diagonal T* + c leaves dom φ* (always somewhere for reverse KL,
    # where T* = −1/r and r > 1/0.7 is common)
    off = (scores + c)[~torch.eye(200, dtype=torch.bool)]
    outside = not bool(divergence_from_spec(spec).in_conjugate_domain(off).all())
    assert (plain_shifted == -math.inf) == outside
    if spec == "reverse_kl":
        assert outside


@pytest.mark.parametrize("spec", ALL)
def test_tight_equals_plain_at_optimal_shift(spec: str) -> None:
    """phi_tight(S) = phi_plain(S − λ*) with λ* the off-diagonal optimal shift (exact)."""
    gen = torch.Generator().manual_seed(3)
    scores = torch.randn(7, 7, generator=gen, dtype=torch.float64) * 2
    off = scores[~torch.eye(7, dtype=torch.bool)]
    lam = optimal_shift(off, spec)
    assert float(phi_tight(scores, spec)) == pytest.approx(
        float(phi_plain(scores - lam, spec)), abs=1e-12
    )


def test_kl_identities() -> None:
    """phi_tight(kl) = DV and phi_plain(kl) = NWJ exactly."""
    gen = torch.Generator().manual_seed(4)
    s = torch.randn(9, 9, generator=gen, dtype=torch.float64) * 3
    assert float(phi_tight(s, "kl")) == pytest.approx(float(dv(s)), abs=1e-12)
    assert float(phi_plain(s, "kl")) == pytest.approx(float(nwj(s)), abs=1e-12)


def test_infonce_matches_loop_reference() -> None:
    """Vectorised InfoNCE equals the plain loop of its definition."""
    gen = torch.Generator().manual_seed(5)
    s = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    ref = sum(
        float(s[i, i]) - math.log(sum(math.exp(float(s[i, j])) for j in range(6))) for i in range(6)
    ) / 6 + math.log(6)
    assert float(infonce(s)) == pytest.approx(ref, abs=1e-12)


def test_infonce_reaches_log_k_for_a_perfect_critic() -> None:
    s = torch.full((5, 5), -60.0, dtype=torch.float64)
    s.fill_diagonal_(60.0)
    assert float(infonce(s)) == pytest.approx(math.log(5), abs=1e-12)


_matrices = st.integers(2, 7).flatmap(
    lambda k: arrays(np.float64, (k, k), elements=st.floats(-8, 8, allow_nan=False))
)


@given(_matrices, st.sampled_from(ALL))
def test_tight_never_below_plain(mat: np.ndarray, spec: str) -> None:
    """min_λ ≤ value at λ = 0, so tight ≥ plain for every S (plain may be −inf)."""
    s = torch.from_numpy(mat)
    assert float(phi_tight(s, spec)) >= float(phi_plain(s, spec)) - 1e-10
    assert math.isfinite(float(phi_tight(s, spec)))


@given(_matrices)
def test_infonce_at_most_log_k_and_dv_at_least_nwj(mat: np.ndarray) -> None:
    s = torch.from_numpy(mat)
    k = mat.shape[0]
    assert float(infonce(s)) <= math.log(k) + 1e-12
    assert float(dv(s)) >= float(nwj(s)) - 1e-12


# ------------------------------------------------------------------------------------------
# the λ solve
def _objective(values: np.ndarray, spec: str, lam: float) -> float:
    div = divergence_from_spec(spec)
    return lam + float(np.mean(div.conjugate(values - lam)))


@pytest.mark.parametrize("scale", [0.3, 3.0, 15.0])
@pytest.mark.parametrize("spec", ALL)
def test_optimal_shift_matches_scipy_and_first_order_condition(spec: str, scale: float) -> None:
    """λ* attains the scipy (bounded Brent) minimum; E[(φ*)'(v − λ*)] = 1 to 1e-9 (smooth φ)."""
    rng = np.random.default_rng(6)
    v = rng.standard_normal(60) * scale
    div = divergence_from_spec(spec)
    lam = float(optimal_shift(torch.from_numpy(v), spec))
    _, hi, _ = div.conjugate_domain
    lo = v.max() - hi if math.isfinite(hi) else v.min() - 60
    ref = minimize_scalar(
        lambda t: _objective(v, spec, t),
        bounds=(lo, v.max() + 60),
        method="bounded",
        options={"xatol": 1e-12},
    )
    assert _objective(v, spec, lam) <= ref.fun + 1e-12
    if spec != "tv":
        foc = float(np.mean(div.conjugate_derivative(v - lam)))
        assert foc == pytest.approx(1.0, abs=1e-9)
        assert lam == pytest.approx(ref.x, abs=1e-5)  # Brent's x is good to ~√eps


def test_optimal_shift_closed_forms() -> None:
    """KL: λ* = log mean e^v − 1. χ² without clipping: λ* = mean v. TV: max v − ½."""
    rng = np.random.default_rng(7)
    v = rng.standard_normal(50)
    t = torch.from_numpy(v)
    assert float(optimal_shift(t, "kl")) == pytest.approx(
        math.log(np.mean(np.exp(v))) - 1, abs=1e-13
    )
    assert float(optimal_shift(t * 0.3, "chi2")) == pytest.approx(0.3 * v.mean(), abs=1e-13)
    assert float(optimal_shift(t, "tv")) == pytest.approx(v.max() - 0.5, abs=1e-15)


def test_optimal_shift_chi2_clipped_branch() -> None:
    """With an outlier far below the mean some ratios clip at 0: the mean is no longer λ*."""
    v = np.array([0.0, 0.1, 0.2, 0.3, -20.0])
    lam = float(optimal_shift(torch.from_numpy(v), "chi2"))
    div = divergence_from_spec("chi2")
    assert float(np.mean(div.conjugate_derivative(v - lam))) == pytest.approx(1.0, abs=1e-12)
    assert lam > v.mean() + 1.0
    # the active set is the four large entries: λ = mean + 2(W − 1)/W with W = 4/5
    assert lam == pytest.approx(np.mean(v[:4]) + 2 * (0.8 - 1) / 0.8, abs=1e-12)


@pytest.mark.parametrize("spec", ALL)
def test_optimal_shift_per_row_and_weights(spec: str) -> None:
    """dim=1 equals a loop over rows; zero weights drop entries; integer weights repeat them."""
    gen = torch.Generator().manual_seed(8)
    v = torch.randn(4, 9, generator=gen, dtype=torch.float64) * 2
    rows = optimal_shift(v, spec, dim=1)
    assert rows.shape == (4,)
    loop = torch.stack([optimal_shift(r, spec) for r in v])
    assert torch.allclose(rows, loop, atol=1e-12, rtol=0)
    cols = optimal_shift(v.T, spec, dim=0)
    assert torch.allclose(cols, loop, atol=1e-12, rtol=0)
    mask = torch.ones_like(v)
    mask[:, 0] = 0.0
    dropped = optimal_shift(v, spec, dim=1, weights=mask)
    assert torch.allclose(dropped, optimal_shift(v[:, 1:], spec, dim=1), atol=1e-12, rtol=0)
    w = torch.tensor([3.0, 1.0, 1.0])
    rep = optimal_shift(torch.cat([v[0, :1].repeat(3), v[0, 1:3]]), spec)
    assert float(optimal_shift(v[0, :3], spec, weights=w)) == pytest.approx(float(rep), abs=1e-12)


def test_optimal_shift_dtype_and_no_gradient() -> None:
    v = torch.randn(10, dtype=torch.float32, requires_grad=True)
    lam = optimal_shift(v, "hellinger")
    assert lam.dtype == torch.float32
    assert lam.ndim == 0
    assert not lam.requires_grad


def test_optimal_shift_under_inference_mode() -> None:
    """The Newton derivative uses autograd internally; it must also work in inference mode."""
    gen = torch.Generator().manual_seed(31)
    v = torch.randn(3, 20, generator=gen, dtype=torch.float64)
    ref = optimal_shift(v, "js", dim=1)
    with torch.inference_mode():
        inf_v = v.clone()
        got = optimal_shift(inf_v, "js", dim=1)
        tight = phi_tight(torch.randn(5, 5, generator=gen, dtype=torch.float64), "hellinger")
    assert torch.equal(got, ref)
    assert torch.isfinite(tight)


# ------------------------------------------------------------------------------------------
# gradients and numerical robustness
@pytest.mark.parametrize("spec", SMOOTH)
def test_tight_gradient_is_the_envelope_gradient(spec: str) -> None:
    """gradcheck: finite differences (λ re-solved) equal autograd with λ* held fixed."""
    gen = torch.Generator().manual_seed(9)
    s = torch.randn(4, 4, generator=gen, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m: phi_tight(m, spec), (s,))


@pytest.mark.parametrize("spec", ALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_nan_with_scores_of_50(spec: str, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(10)
    raw = torch.where(torch.rand(8, 8, generator=gen) > 0.5, 50.0, -50.0).to(dtype)
    for fn in (lambda m: phi_tight(m, spec), lambda m: phi_plain(m, spec), infonce, dv):
        s = raw.clone().requires_grad_(True)
        val = fn(s)
        val.backward()
        assert val.dtype == dtype
        assert not torch.isnan(val)
        assert s.grad is not None and not torch.isnan(s.grad).any()
    s = raw.clone().requires_grad_(True)
    tight = phi_tight(s, spec)
    tight.backward()
    assert torch.isfinite(tight) and s.grad is not None and torch.isfinite(s.grad).all()


@pytest.mark.parametrize("spec", ALL)
def test_constrain_to_domain_maps_into_the_domain(spec: str) -> None:
    div = divergence_from_spec(spec)
    raw = torch.linspace(-50, 50, 1001, dtype=torch.float64)
    out = constrain_to_domain(raw, spec)
    assert bool(div.in_conjugate_domain(out).all())
    assert bool((out.diff() >= 0).all())  # monotone
    assert torch.isfinite(out).all()


def test_js_activation_at_log_r_is_the_optimal_critic() -> None:
    r = np.array([0.1, 0.5, 1.0, 2.0, 7.0])
    out = constrain_to_domain(torch.from_numpy(np.log(r)), "js").numpy()
    assert np.allclose(out, divergence_from_spec("js").phi_prime(r), atol=1e-14, rtol=0)


# ------------------------------------------------------------------------------------------
# errors
@pytest.mark.parametrize(
    ("scores", "match"),
    [
        (torch.zeros(3, 4), "square"),
        (torch.zeros(1, 1), "K >= 2"),
        (torch.zeros(3), "square"),
        (torch.tensor([[0.0, math.nan], [0.0, 0.0]]), "finite"),
        (torch.tensor([[0.0, math.inf], [0.0, 0.0]]), "finite"),
        (torch.zeros(3, 3, dtype=torch.int64), "floating"),
        (np.zeros((3, 3)), "torch.Tensor"),
    ],
)
def test_bad_scores(scores: object, match: str) -> None:
    for fn in (infonce, nwj, dv, lambda s: phi_plain(s, "kl"), lambda s: phi_tight(s, "js")):
        with pytest.raises(InputError, match=match):
            fn(scores)  # type: ignore[arg-type]


def test_bad_divergence_and_shift_inputs() -> None:
    s = torch.zeros(3, 3)
    with pytest.raises(InputError, match="divergence"):
        phi_tight(s, "kll")
    with pytest.raises(InputError, match="alpha"):
        phi_plain(s, "cr:1")
    with pytest.raises(InputError, match="values"):
        optimal_shift(torch.tensor([0.0, math.nan]), "kl")
    with pytest.raises(InputError, match="values"):
        optimal_shift(torch.zeros(0), "kl")
    with pytest.raises(InputError, match="dim"):
        optimal_shift(torch.zeros(3, 3), "kl", dim=2)
    with pytest.raises(InputError, match="weights"):
        optimal_shift(torch.zeros(3), "kl", weights=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(InputError, match="weights"):
        optimal_shift(torch.zeros(3), "kl", weights=torch.zeros(3))
    with pytest.raises(InputError, match="weights"):
        optimal_shift(torch.zeros(3), "kl", weights=torch.ones(4))
    with pytest.raises(InputError, match="raw"):
        constrain_to_domain(np.zeros(3), "js")  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", ["reverse_kl", "hellinger", "js", "cr:0.5"])
def test_constrain_to_domain_float32_stays_inside(spec: str) -> None:
    """In float32 hi − e^{−v} would round to hi for v ≳ 17; the clamp keeps φ* finite."""
    raw = torch.tensor([-1e3, -50.0, 0.0, 20.0, 50.0, 1e3], dtype=torch.float32)
    out = constrain_to_domain(raw, spec)
    assert bool(divergence_from_spec(spec).in_conjugate_domain(out).all())
    assert torch.isfinite(divergence_from_spec(spec).conjugate(out)).all()


@pytest.mark.gpu
@pytest.mark.parametrize("spec", ALL)
def test_cuda_matches_cpu(spec: str) -> None:
    """Bounds and the per-row λ solve give the same float64 values on CUDA as on the CPU."""
    gen = torch.Generator().manual_seed(30)
    s = torch.randn(64, 64, generator=gen, dtype=torch.float64) * 2
    cuda = s.to("cuda")
    for fn in (phi_tight, phi_plain):
        assert float(fn(cuda, spec)) == pytest.approx(float(fn(s, spec)), abs=1e-10)
    lam_cpu = optimal_shift(s, spec, dim=1)
    lam_gpu = optimal_shift(cuda, spec, dim=1)
    assert lam_gpu.device.type == "cuda"
    assert torch.allclose(lam_gpu.cpu(), lam_cpu, atol=1e-10, rtol=0)
