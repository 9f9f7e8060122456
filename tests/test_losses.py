"""Contrastive losses against plain-Python loop references written from the equations."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from dro_theory.divergences import get_divergence
from dro_theory.errors import InputError
from estimators.losses import (
    adnce,
    adnce_weights,
    dcl,
    hcl,
    infonce_population,
    nt_xent,
    nt_xent_from_sim,
    pair_similarity,
    phi_cl_dro,
)

TAU = 0.5


# ------------------------------------------------------------------------------------------
# loop references (floats, math.exp / math.log, one anchor and one negative at a time)
# ------------------------------------------------------------------------------------------
def _roles(n_rows: int, n_cols: int, layout: str) -> list[tuple[int, list[int]]]:
    """(positive column, negative columns) of every row, written out by hand."""
    out = []
    for i in range(n_rows):
        if layout == "population":
            pos, excluded = i, {i}
        else:
            half = n_rows // 2
            pos = (i + half) % n_rows
            excluded = {i, pos}
        out.append((pos, [j for j in range(n_cols) if j not in excluded]))
    return out


def ref_population(s: list[list[float]], tau: float, layout: str = "population") -> list[float]:
    losses = []
    for i, (p, negs) in enumerate(_roles(len(s), len(s[0]), layout)):
        mean_exp = sum(math.exp(s[i][j] / tau) for j in negs) / len(negs)
        losses.append(-s[i][p] / tau + math.log(mean_exp))
    return losses


def ref_nt_xent(s: list[list[float]], tau: float, layout: str = "nt_xent") -> list[float]:
    losses = []
    for i, (p, negs) in enumerate(_roles(len(s), len(s[0]), layout)):
        pos = math.exp(s[i][p] / tau)
        den = pos + sum(math.exp(s[i][j] / tau) for j in negs)
        losses.append(-math.log(pos / den))
    return losses


def _gauss(x: float, mu: float, sigma: float) -> float:
    # the 1/(σ√(2π)) constant is kept on purpose: it must cancel in the normalisation
    return math.exp(-((x - mu) ** 2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))


def ref_adnce(
    s: list[list[float]], tau: float, mu: float, sigma: float, positive: str, layout: str
) -> tuple[list[float], list[list[float]]]:
    """Loss per anchor and dℓ_i/ds_ij with the weights held fixed (stop-gradient)."""
    losses, grads = [], []
    for i, (p, negs) in enumerate(_roles(len(s), len(s[0]), layout)):
        norm_set = [*negs, p] if positive == "weighted" else list(negs)
        z = sum(_gauss(s[i][k], mu, sigma) for k in norm_set) / len(norm_set)
        w = {k: _gauss(s[i][k], mu, sigma) / z for k in norm_set}
        g = [0.0] * len(s[0])
        e_pos = math.exp(s[i][p] / tau)
        if positive == "none":
            total = sum(w[j] * math.exp(s[i][j] / tau) for j in negs)
            losses.append(-s[i][p] / tau + math.log(total / len(negs)))
            g[p] = -1 / tau
            for j in negs:
                g[j] = w[j] * math.exp(s[i][j] / tau) / (tau * total)
        else:
            pos_term = e_pos * (w[p] if positive == "weighted" else 1.0)
            den = pos_term + sum(w[j] * math.exp(s[i][j] / tau) for j in negs)
            losses.append(-math.log(e_pos / den))
            g[p] = -1 / tau + pos_term / (tau * den)
            for j in negs:
                g[j] = w[j] * math.exp(s[i][j] / tau) / (tau * den)
        grads.append(g)
    return losses, grads


def ref_hcl(
    s: list[list[float]], tau: float, tau_plus: float, beta: float, layout: str = "nt_xent"
) -> list[float]:
    losses = []
    for i, (p, negs) in enumerate(_roles(len(s), len(s[0]), layout)):
        n = len(negs)
        pos = math.exp(s[i][p] / tau)
        imp = [math.exp(beta * s[i][j] / tau) for j in negs]
        neg = [math.exp(s[i][j] / tau) for j in negs]
        reweight = sum(v * e for v, e in zip(imp, neg, strict=True)) / (sum(imp) / n)
        ng = (-tau_plus * n * pos + reweight) / (1 - tau_plus)
        ng = max(ng, n * math.exp(-1 / tau))
        losses.append(-math.log(pos / (pos + ng)))
    return losses


def ref_phi_cl_dro(s: list[list[float]], tau: float, name: str) -> list[float]:
    """−s⁺ + min_c {c + τ mean φ*((s − c)/τ)}, the minimum by scipy's bounded Brent."""
    div = get_divergence(name)
    losses = []
    for i, (p, negs) in enumerate(_roles(len(s), len(s[0]), "population")):
        vals = np.array([s[i][j] for j in negs])

        def objective(c: float, vals: np.ndarray = vals) -> float:
            return float(c + tau * np.mean(div.conjugate((vals - c) / tau)))

        lo, hi = float(vals.min()) - 10 * tau, float(vals.max()) + 10 * tau
        dom_hi = div.conjugate_domain[1]
        if math.isfinite(dom_hi):  # (max s − c)/τ must stay inside dom φ*
            lo = max(lo, float(vals.max()) - tau * dom_hi + 1e-12)
        res = minimize_scalar(
            objective, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}
        )
        losses.append(-s[i][p] + float(res.fun))
    return losses


def _cosines(rows: int, cols: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(rows, cols, generator=g, dtype=torch.float64) * 2 - 1


def _pair_sim(b: int, seed: int, dim: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(b, dim, generator=g, dtype=torch.float64)
    z2 = z1 + 0.5 * torch.randn(b, dim, generator=g, dtype=torch.float64)
    return pair_similarity(z1, z2)


def _rows(x: torch.Tensor) -> list[list[float]]:
    return [[float(v) for v in row] for row in x]


# ------------------------------------------------------------------------------------------
# values against the loop references
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["population", "nt_xent"])
def test_infonce_population_matches_loop(layout: Any) -> None:
    sim = _cosines(6, 7, 0) if layout == "population" else _pair_sim(4, 1)
    got = infonce_population(sim, TAU, layout=layout, reduction="none")  # type: ignore[arg-type]
    want = ref_population(_rows(sim), TAU, layout)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)
    assert float(infonce_population(sim, TAU, layout=layout)) == pytest.approx(  # type: ignore[arg-type]
        np.mean(want), abs=1e-12
    )


@pytest.mark.parametrize("layout", ["population", "nt_xent"])
def test_nt_xent_matches_loop(layout: Any) -> None:
    sim = _cosines(5, 8, 2) if layout == "population" else _pair_sim(4, 3)
    got = nt_xent_from_sim(sim, TAU, layout=layout, reduction="none")  # type: ignore[arg-type]
    np.testing.assert_allclose(got.numpy(), ref_nt_xent(_rows(sim), TAU, layout), atol=1e-12)


def test_nt_xent_from_embeddings_is_cosine_layout() -> None:
    g = torch.Generator().manual_seed(4)
    z1 = torch.randn(3, 4, generator=g, dtype=torch.float64)
    z2 = torch.randn(3, 4, generator=g, dtype=torch.float64)
    z = torch.cat([z1, z2])
    s = [[float(a @ b / (a.norm() * b.norm())) for b in z] for a in z]
    got = nt_xent(z1, z2, TAU, reduction="none")
    np.testing.assert_allclose(got.numpy(), ref_nt_xent(s, TAU), atol=1e-12)
    assert float(nt_xent(z1, z2, TAU, reduction="sum")) == pytest.approx(
        sum(ref_nt_xent(s, TAU)), abs=1e-12
    )


@pytest.mark.parametrize(
    ("positive", "layout"),
    [
        ("unweighted", "nt_xent"),
        ("none", "population"),
        ("weighted", "population"),
        ("none", "nt_xent"),
        ("unweighted", "population"),
        ("weighted", "nt_xent"),
    ],
)
def test_adnce_values_and_detached_gradient_match_loop(positive: Any, layout: Any) -> None:
    sim = _cosines(5, 6, 5) if layout == "population" else _pair_sim(3, 6)
    sim.requires_grad_(True)
    mu, sigma = 0.3, 0.4
    loss = adnce(
        sim,
        TAU,
        mu=mu,
        sigma=sigma,
        positive=positive,
        layout=layout,  # type: ignore[arg-type]
        reduction="sum",
    )
    loss.backward()
    want, want_grad = ref_adnce(_rows(sim.detach()), TAU, mu, sigma, positive, layout)
    assert float(loss.detach()) == pytest.approx(sum(want), abs=1e-11)
    # the gradient is the formula with w held fixed: the weights are detached
    assert sim.grad is not None
    np.testing.assert_allclose(sim.grad.numpy(), want_grad, rtol=0, atol=1e-11)


def test_adnce_weights_average_to_one_and_carry_no_gradient() -> None:
    sim = _pair_sim(4, 7).requires_grad_(True)
    w = adnce_weights(sim, mu=0.5, sigma=0.3)
    assert not w.requires_grad
    n = sim.shape[0]
    np.testing.assert_allclose(w.sum(dim=1).numpy(), n - 2, atol=1e-12)  # mean 1 over 2B−2
    rows = torch.arange(n)
    assert torch.all(w[rows, rows] == 0) and torch.all(w[rows, (rows + n // 2) % n] == 0)
    ww = adnce_weights(sim, positive="weighted")
    np.testing.assert_allclose(ww.sum(dim=1).numpy(), n - 1, atol=1e-12)


@pytest.mark.parametrize(("tau_plus", "beta"), [(0.1, 1.0), (0.0, 0.5), (0.1, 0.0), (0.3, 2.0)])
def test_hcl_matches_loop(tau_plus: float, beta: float) -> None:
    sim = _pair_sim(4, 8)
    got = hcl(sim, TAU, tau_plus=tau_plus, beta=beta, reduction="none")
    want = ref_hcl(_rows(sim), TAU, tau_plus, beta)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


def test_hcl_floor_is_active_like_the_loop() -> None:
    # a huge class prior pushes (−τ⁺N pos + R) below the floor N e^{−1/τ} on some rows
    sim = _pair_sim(4, 9)
    want = ref_hcl(_rows(sim), TAU, 0.9, 1.0)
    rows = _rows(sim)
    floors = []
    for i, (_p, negs) in enumerate(_roles(8, 8, "nt_xent")):
        floors.append(math.log(1 + len(negs) * math.exp(-1 / TAU) / math.exp(rows[i][_p] / TAU)))
    assert any(abs(a - b) < 1e-12 for a, b in zip(want, floors, strict=True))  # floor active
    got = hcl(sim, TAU, tau_plus=0.9, beta=1.0, reduction="none")
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


def test_dcl_matches_loop_population_layout() -> None:
    sim = _cosines(5, 6, 10)
    got = dcl(sim, TAU, tau_plus=0.2, layout="population", reduction="none")
    np.testing.assert_allclose(
        got.numpy(), ref_hcl(_rows(sim), TAU, 0.2, 0.0, "population"), atol=1e-12
    )


def test_phi_cl_dro_chi2_is_the_mean_variance_closed_form() -> None:
    # χ² (φ''(1) = 2): min_c {c + τ E φ*((s−c)/τ)} = E s + Var s/(4τ) when no ratio is clipped,
    # i.e. (s − E s)/τ ≥ −2, true for cosines with τ = 1.
    sim = _cosines(4, 9, 11)
    got = phi_cl_dro(sim, 1.0, "chi2", reduction="none")
    want = []
    for i, (p, negs) in enumerate(_roles(4, 9, "population")):
        vals = [float(sim[i, j]) for j in negs]
        m = sum(vals) / len(vals)
        var = sum((v - m) ** 2 for v in vals) / len(vals)
        want.append(-float(sim[i, p]) + m + var / 4.0)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["chi2", "hellinger", "js", "reverse_kl"])
def test_phi_cl_dro_matches_scalar_minimisation(name: str) -> None:
    sim = _cosines(3, 7, 12)
    got = phi_cl_dro(sim, 0.3, name, reduction="none")
    np.testing.assert_allclose(got.numpy(), ref_phi_cl_dro(_rows(sim), 0.3, name), atol=1e-9)


# ------------------------------------------------------------------------------------------
# identities between the losses
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [0.05, 0.5, 2.0])
def test_phi_cl_dro_kl_equals_tau_times_population_infonce(tau: float) -> None:
    # φ*(u) = e^{u−1}: λ* = log mean e^{s/τ} − 1, value τ log mean e^{s/τ}; no constant.
    sim = _cosines(6, 8, 13)
    got = phi_cl_dro(sim, tau, "kl", reduction="none")
    want = tau * infonce_population(sim, tau, reduction="none")
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=0, atol=1e-10)


@given(st.integers(0, 10_000), st.sampled_from([0.1, 0.5, 1.0]), st.sampled_from([2, 3, 5]))
def test_nt_xent_minus_population_is_the_exact_gap(seed: int, tau: float, b: int) -> None:
    # ℓ_NT = −s⁺/τ + log(e^{s⁺/τ} + Σ e^{s/τ}) = ℓ_pop + log N + log(1 + e^{s⁺/τ}/Σ e^{s/τ})
    sim = _pair_sim(b, seed)
    ntx = nt_xent_from_sim(sim, tau, reduction="none")
    pop = infonce_population(sim, tau, layout="nt_xent", reduction="none")
    n = 2 * b - 2
    gap = []
    for i, (p, negs) in enumerate(_roles(2 * b, 2 * b, "nt_xent")):
        total = sum(math.exp(float(sim[i, j]) / tau) for j in negs)
        gap.append(math.log1p(math.exp(float(sim[i, p]) / tau) / total))
    np.testing.assert_allclose((ntx - pop - math.log(n)).numpy(), gap, rtol=0, atol=1e-11)
    assert torch.all(ntx >= pop + math.log(n))


@pytest.mark.parametrize(
    ("positive", "layout", "plain"),
    [
        ("unweighted", "nt_xent", "nt_xent"),
        ("none", "population", "population"),
        ("weighted", "population", "nt_xent"),
    ],
)
def test_adnce_with_huge_sigma_is_infonce(positive: Any, layout: Any, plain: str) -> None:
    # log w̃ = a − log mean e^{a} with a = −(s−μ)²/(2σ²) ∈ [−A, 0], so |log w̃| ≤ A and the
    # log-sum-exp moves by at most A = max (s−μ)²/(2σ²) (≈ 1.4e-8 for cosines at σ = 1e4).
    sigma, mu = 1e4, 0.7
    sim = _cosines(6, 6, 14) if layout == "population" else _pair_sim(3, 14)
    a_max = float(((sim - mu) ** 2).max()) / (2 * sigma**2)
    assert a_max <= 1e-6
    got = adnce(
        sim,
        TAU,
        mu=mu,
        sigma=sigma,
        positive=positive,
        layout=layout,  # type: ignore[arg-type]
        reduction="none",
    )
    if plain == "population":
        want = infonce_population(sim, TAU, layout=layout, reduction="none")  # type: ignore[arg-type]
    else:
        want = nt_xent_from_sim(sim, TAU, layout=layout, reduction="none")  # type: ignore[arg-type]
    assert float((got - want).abs().max()) <= a_max + 1e-13


def test_dcl_with_zero_prior_is_nt_xent() -> None:
    sim = _pair_sim(5, 15)  # cosines > −1, so the floor N e^{−1/τ} is never active
    np.testing.assert_allclose(
        dcl(sim, TAU, tau_plus=0.0, reduction="none").numpy(),
        nt_xent_from_sim(sim, TAU, reduction="none").numpy(),
        rtol=0,
        atol=1e-12,
    )


def test_hcl_is_continuous_in_beta_at_dcl() -> None:
    # with τ⁺ = 0, |d log R/dβ| ≤ 2 max|s|/τ and softplus is 1-Lipschitz: |Δℓ| ≤ 2β max|s|/τ
    sim = _pair_sim(4, 16)
    beta = 1e-6
    bound = 2 * beta * float(sim.abs().max()) / TAU
    diff = hcl(sim, TAU, tau_plus=0.0, beta=beta, reduction="none") - dcl(
        sim, TAU, tau_plus=0.0, reduction="none"
    )
    assert float(diff.abs().max()) <= bound


# ------------------------------------------------------------------------------------------
# gradients (float64 finite differences)
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "loss",
    [
        lambda s: infonce_population(s, TAU),
        lambda s: infonce_population(s, TAU, layout="nt_xent"),
        lambda s: nt_xent_from_sim(s, TAU),
        lambda s: hcl(s, TAU, tau_plus=0.1, beta=1.0),
        lambda s: dcl(s, TAU, tau_plus=0.1),
        lambda s: phi_cl_dro(s, TAU, "kl"),
        lambda s: phi_cl_dro(s, TAU, "chi2"),
        lambda s: phi_cl_dro(s, TAU, "hellinger"),
    ],
    ids=["pop", "pop-ntxent", "ntxent", "hcl", "dcl", "dro-kl", "dro-chi2", "dro-hellinger"],
)
def test_gradcheck(loss: object) -> None:
    sim = _pair_sim(3, 17).requires_grad_(True)
    assert torch.autograd.gradcheck(loss, (sim,), eps=1e-6, atol=1e-7)  # type: ignore[arg-type]


def test_explicit_indices_reproduce_the_default_layouts() -> None:
    sim = _pair_sim(3, 18)
    n = sim.shape[0]
    ar = torch.arange(n)
    for fn in (infonce_population, nt_xent_from_sim, adnce, hcl):
        a = fn(sim, TAU, layout="nt_xent", reduction="none")  # type: ignore[operator]
        b = fn(
            sim,
            TAU,
            layout="nt_xent",
            pos_index=(ar + n // 2) % n,
            self_index=ar,  # type: ignore[operator]
            reduction="none",
        )
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=0)
    # a permuted positive column in the population layout
    pop = _cosines(4, 5, 19)
    perm = torch.tensor([3, 0, 4, 1])
    got = infonce_population(pop, TAU, pos_index=perm, reduction="none")
    for i in range(4):
        negs = [j for j in range(5) if j != int(perm[i])]
        want = -float(pop[i, perm[i]]) / TAU + math.log(
            sum(math.exp(float(pop[i, j]) / TAU) for j in negs) / 4
        )
        assert float(got[i]) == pytest.approx(want, abs=1e-12)


# ------------------------------------------------------------------------------------------
# neg_mask: per-row negatives
# ------------------------------------------------------------------------------------------
_MASKED = [
    ("pop", lambda s, **k: infonce_population(s, TAU, **k)),
    ("ntx", lambda s, **k: nt_xent_from_sim(s, TAU, **k)),
    ("adnce", lambda s, **k: adnce(s, TAU, mu=0.3, sigma=0.4, **k)),
    ("adnce-none", lambda s, **k: adnce(s, TAU, positive="none", **k)),
    ("adnce-w", lambda s, **k: adnce(s, TAU, positive="weighted", **k)),
    ("hcl", lambda s, **k: hcl(s, TAU, tau_plus=0.1, beta=1.0, **k)),
    ("dcl", lambda s, **k: dcl(s, TAU, tau_plus=0.2, **k)),
    ("dro-kl", lambda s, **k: phi_cl_dro(s, TAU, "kl", **k)),
    ("dro-chi2", lambda s, **k: phi_cl_dro(s, TAU, "chi2", **k)),
]


@pytest.mark.parametrize(("name", "loss"), _MASKED, ids=[n for n, _ in _MASKED])
def test_neg_mask_equals_deleting_the_columns(name: str, loss: Any) -> None:
    # the masked loss of row i = the (already loop-checked) loss of the 1-row matrix that keeps
    # only the positive and the row's remaining negatives, in values and in gradients
    sim = _pair_sim(3, 23).requires_grad_(True)
    n = sim.shape[0]
    g = torch.Generator().manual_seed(24)
    keep = torch.rand(n, n, generator=g) > 0.4
    keep[:, 0] = True  # at least one negative in every row (column 0 for rows ≠ 0, 3)
    keep[0, 1] = True
    keep[3, 1] = True
    got = loss(sim, layout="nt_xent", neg_mask=keep, reduction="none")
    got.sum().backward()
    assert sim.grad is not None
    masked_grad = sim.grad.clone()
    sim.grad = None
    total = torch.zeros((), dtype=sim.dtype)
    for i in range(n):
        p = (i + n // 2) % n
        cols = [j for j in range(n) if j == p or (j != i and bool(keep[i, j]))]
        sub = sim[i : i + 1, cols]
        want = loss(
            sub, layout="population", pos_index=torch.tensor([cols.index(p)]), reduction="none"
        )
        assert float(got[i].detach()) == pytest.approx(float(want[0].detach()), abs=1e-10), (
            name,
            i,
        )
        total = total + want[0]
    total.backward()
    ref_grad = sim.grad
    assert ref_grad is not None
    np.testing.assert_allclose(masked_grad.numpy(), ref_grad.numpy(), rtol=0, atol=1e-10)


def test_neg_mask_errors() -> None:
    sim = _pair_sim(2, 25)
    with pytest.raises(InputError, match="neg_mask: expected a bool"):
        adnce(sim, TAU, neg_mask=torch.ones(4, 4))
    with pytest.raises(InputError, match="neg_mask: expected the shape of sim"):
        hcl(sim, TAU, neg_mask=torch.ones(4, 3, dtype=torch.bool))
    keep = torch.ones(4, 4, dtype=torch.bool)
    keep[1] = False  # row 1 keeps no negative (its positive and self are not negatives)
    with pytest.raises(InputError, match=r"neg_mask: expected at least one negative .* 1 row"):
        nt_xent_from_sim(sim, TAU, neg_mask=keep)


# ------------------------------------------------------------------------------------------
# numerical stability
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "loss",
    [
        lambda s: infonce_population(s, 1e-3),
        lambda s: nt_xent_from_sim(s, 1e-3),
        lambda s: adnce(s, 1e-3),
        lambda s: adnce(s, 1e-3, positive="none", sigma=0.05),
        lambda s: adnce(s, 1e-3, positive="weighted", sigma=0.05),
        lambda s: hcl(s, 1e-3, tau_plus=0.1, beta=1.0),
        lambda s: hcl(s, 1e-3, tau_plus=0.5, beta=0.5),
        lambda s: dcl(s, 1e-3, tau_plus=0.1),
        lambda s: phi_cl_dro(s, 1e-3, "kl", layout="nt_xent"),
        lambda s: phi_cl_dro(s, 1e-3, "chi2", layout="nt_xent"),
    ],
    ids=["pop", "ntxent", "adnce", "adnce-none", "adnce-w", "hcl", "hcl2", "dcl", "kl", "chi2"],
)
def test_no_nan_at_tiny_temperature_and_large_scores(loss: object, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(20)
    sim = ((torch.rand(8, 8, generator=g) * 100 - 50).to(dtype)).requires_grad_(True)
    value = loss(sim)  # type: ignore[operator]
    value.backward()
    assert torch.isfinite(value)
    assert sim.grad is not None and bool(torch.isfinite(sim.grad).all())


def test_float32_matches_float64() -> None:
    sim = _pair_sim(4, 21)
    for fn in (infonce_population, nt_xent_from_sim, adnce, hcl, dcl):
        a = fn(sim, TAU)  # type: ignore[operator]
        b = fn(sim.float(), TAU)  # type: ignore[operator]
        assert b.dtype == torch.float32
        assert float(b) == pytest.approx(float(a), rel=1e-5)


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------
def test_error_paths() -> None:
    sq = _pair_sim(2, 22)
    with pytest.raises(InputError, match="sim: expected a square"):
        nt_xent_from_sim(sq[:, :3], TAU)
    with pytest.raises(InputError, match="sim: expected a square"):
        adnce(sq[:3, :3], TAU)
    with pytest.raises(InputError, match="sim: expected at least as many columns"):
        infonce_population(sq[:, :2], TAU)
    with pytest.raises(InputError, match="sim: expected a 2-D"):
        infonce_population(sq[0], TAU)
    with pytest.raises(InputError, match=r"sim: expected a torch\.Tensor"):
        infonce_population(sq.numpy(), TAU)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="sim: expected finite values, found 1 NaN"):
        bad = sq.clone()
        bad[0, 1] = math.nan
        hcl(bad, TAU)
    with pytest.raises(InputError, match="z2: expected the shape of z1"):
        nt_xent(torch.zeros(3, 2), torch.zeros(4, 2), TAU)
    with pytest.raises(InputError, match="pos_index: expected shape"):
        infonce_population(sq, TAU, pos_index=torch.tensor([0, 1]))
    with pytest.raises(InputError, match="pos_index: expected column indices"):
        infonce_population(sq, TAU, pos_index=torch.tensor([0, 1, 2, 9]))
    with pytest.raises(InputError, match="pos_index, self_index: expected both"):
        adnce(sq, TAU, pos_index=torch.tensor([2, 3, 0, 1]))
    with pytest.raises(InputError, match="pos_index: expected a column different"):
        adnce(sq, TAU, pos_index=torch.arange(4), self_index=torch.arange(4))
    with pytest.raises(InputError, match="self_index: expected None"):
        infonce_population(sq, TAU, self_index=torch.arange(4))
    for tau in (0.0, -1.0, math.nan):
        with pytest.raises(InputError, match="temperature: expected"):
            nt_xent_from_sim(sq, tau)
    for sigma in (0.0, -0.5):
        with pytest.raises(InputError, match="sigma: expected"):
            adnce(sq, TAU, sigma=sigma)
    with pytest.raises(InputError, match="mu: expected a finite number"):
        adnce(sq, TAU, mu=math.inf)
    for tp in (-0.1, 1.0, 1.5):
        with pytest.raises(InputError, match=r"tau_plus: expected a class prior in \[0, 1\)"):
            dcl(sq, TAU, tau_plus=tp)
    with pytest.raises(InputError, match="beta: expected a number >= 0"):
        hcl(sq, TAU, beta=-1.0)
    with pytest.raises(InputError, match="positive: expected one of"):
        adnce(sq, TAU, positive="both")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="layout: expected one of"):
        adnce(sq, TAU, layout="simclr")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="reduction: expected one of"):
        hcl(sq, TAU, reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="sim: expected at least 2 columns"):
        infonce_population(torch.zeros(1, 1, dtype=torch.float64), TAU)
    with pytest.raises(InputError, match="sim: expected a floating-point"):
        infonce_population(torch.zeros(2, 2, dtype=torch.int64), TAU)
    with pytest.raises(InputError, match="divergence"):
        phi_cl_dro(sq, TAU, "klx")


# ------------------------------------------------------------------------------------------
# the layout object, the registry, extremes (issues 8, 11, 12)
# ------------------------------------------------------------------------------------------
from estimators.losses import (  # noqa: E402
    LOSS_REGISTRY,
    AnchorIndex,
    LossParams,
    contrastive_loss,
    negative_mask,
)

_REGISTRY_DIRECT = {
    "infonce": lambda s, **k: nt_xent_from_sim(s, TAU, **k),
    "infonce_population": lambda s, **k: infonce_population(s, TAU, **k),
    "adnce": lambda s, **k: adnce(s, TAU, mu=0.3, sigma=0.4, **k),
    "dcl": lambda s, **k: dcl(s, TAU, tau_plus=0.2, **k),
    "hcl": lambda s, **k: hcl(s, TAU, tau_plus=0.2, beta=0.5, **k),
    "phi_cl_dro": lambda s, **k: phi_cl_dro(s, TAU, "chi2", **k),
}


@pytest.mark.parametrize("name", sorted(_REGISTRY_DIRECT))
def test_registry_and_layout_object_equal_the_keyword_form(name: str) -> None:
    # the same computation through the registry + one AnchorIndex and through the direct call
    # with the keyword form: equal to the last bit (the masked forms were loop-checked above)
    sim = _pair_sim(3, 31)
    n = sim.shape[0]
    keep = torch.rand(n, n, generator=torch.Generator().manual_seed(32)) > 0.3
    keep[:, 0] = keep[:, 1] = True
    params = LossParams(mu=0.3, sigma=0.4, tau_plus=0.2, beta=0.5, divergence="chi2")
    idx = AnchorIndex.nt_xent(n)
    direct = _REGISTRY_DIRECT[name]
    for layout, kw in ((idx, {}), (idx.with_negatives(keep), {"neg_mask": keep})):
        got = contrastive_loss(name, sim, TAU, layout=layout, params=params, reduction="none")
        want = direct(sim, layout="nt_xent", reduction="none", **kw)
        assert torch.equal(got, want), name
    assert set(LOSS_REGISTRY) == set(_REGISTRY_DIRECT)


def test_negative_mask_is_the_layouts_negatives() -> None:
    idx = AnchorIndex.nt_xent(6)
    mask = negative_mask(idx, 6)
    for i in range(6):
        assert [j for j in range(6) if mask[i, j]] == [
            j for j in range(6) if j not in (i, (i + 3) % 6)
        ]
    keep = torch.ones(6, 6, dtype=torch.bool)
    keep[0, 1] = False
    assert not bool(negative_mask(idx.with_negatives(keep), 6)[0, 1])
    assert int(negative_mask(idx.with_negatives(keep), 6).sum()) == 6 * 4 - 1


def test_layout_object_errors() -> None:
    sim = _pair_sim(2, 33)
    with pytest.raises(InputError, match="layout: expected an AnchorIndex of 4 rows"):
        nt_xent_from_sim(sim, TAU, layout=AnchorIndex.nt_xent(6))
    with pytest.raises(InputError, match="layout: expected either an AnchorIndex or"):
        nt_xent_from_sim(sim, TAU, layout=AnchorIndex.nt_xent(4), pos_index=torch.arange(4))
    with pytest.raises(InputError, match="pos_index: expected column indices"):
        AnchorIndex.explicit(torch.tensor([0, 9]), None, cols=4)
    with pytest.raises(InputError, match=r"pos_index: expected an integer torch\.Tensor, found"):
        nt_xent_from_sim(sim, TAU, pos_index=[1, 2, 3, 0], self_index=torch.arange(4))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="posindex: expected one of the keywords"):
        nt_xent_from_sim(sim, TAU, posindex=torch.arange(4))
    with pytest.raises(InputError, match="loss: expected one of"):
        contrastive_loss("ntxent", sim, TAU, layout="nt_xent")


@pytest.mark.parametrize("name", [n for n in sorted(LOSS_REGISTRY) if n != "phi_cl_dro"])
def test_losses_read_no_value_back_from_the_device(name: str) -> None:
    # meta tensors have no values: int(), bool(), .item() on them raise, so a loss that runs on
    # them with a prebuilt layout makes no device-to-host read (no host synchronisation on CUDA)
    # — φ-CL-DRO is excluded: its per-row shift is a host root-find by design
    sim = torch.empty(8, 8, device="meta")
    idx = AnchorIndex.nt_xent(8, "meta")
    keep = torch.empty(8, 8, dtype=torch.bool, device="meta")
    for layout in (idx, idx.with_negatives(keep)):
        assert contrastive_loss(name, sim, TAU, layout=layout).shape == ()
    with pytest.raises((RuntimeError, NotImplementedError)):
        bool(sim.sum() > 0)  # the premise: a value read on meta raises


_EXTREME = [
    ("pop", lambda s, t: infonce_population(s, t)),
    ("ntxent", lambda s, t: nt_xent_from_sim(s, t)),
    ("adnce", lambda s, t: adnce(s, t)),
    ("adnce-none", lambda s, t: adnce(s, t, positive="none", layout="population")),
    ("adnce-w", lambda s, t: adnce(s, t, positive="weighted")),
    ("hcl", lambda s, t: hcl(s, t, tau_plus=0.1, beta=1.0)),
    ("dcl", lambda s, t: dcl(s, t, tau_plus=0.1)),
    ("dro-kl", lambda s, t: phi_cl_dro(s, t, "kl", layout="nt_xent")),
    ("dro-chi2", lambda s, t: phi_cl_dro(s, t, "chi2", layout="nt_xent")),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("name", "loss"), _EXTREME, ids=[n for n, _ in _EXTREME])
def test_finite_at_tau_1e4_and_scores_1e3(name: str, loss: Any, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(34)
    sim = ((torch.rand(8, 8, generator=g) * 2e3 - 1e3).to(dtype)).requires_grad_(True)
    value = loss(sim, 1e-4)
    value.backward()
    assert torch.isfinite(value), name
    assert sim.grad is not None and bool(torch.isfinite(sim.grad).all()), name


def test_population_infonce_has_the_max_limit_at_tau_1e4() -> None:
    # τ·ℓ_pop = τ lse(s/τ) − τ log N − s⁺ lies in [max s − τ log N − s⁺, max s − s⁺] exactly;
    # float64 rounding of τ·lse at |s/τ| = 1e7 is ≈ 1e3 · 2^-52 ≈ 2e-13 per term
    g = torch.Generator().manual_seed(35)
    sim = torch.rand(6, 6, generator=g, dtype=torch.float64) * 2e3 - 1e3
    tau = 1e-4
    got = tau * infonce_population(sim, tau, reduction="none")
    for i in range(6):
        negs = [float(sim[i, j]) for j in range(6) if j != i]
        upper = max(negs) - float(sim[i, i])
        assert upper - tau * math.log(5) - 1e-9 <= float(got[i]) <= upper + 1e-9
