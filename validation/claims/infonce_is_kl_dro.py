r"""Claim ``infonce-is-kl-dro``: Theorem 3.2 (Eq. 4) of Wu et al. (NeurIPS 2023).

Checked, each against a route written in this module:

1. **Penalised identity, per anchor** (Gibbs variational principle). For scores f of the
   negatives under a nominal Q0 and a positive score f⁺,

   .. math:: -f^+ + \max_Q \{E_Q f - τ\,KL(Q\|Q_0)\}
             = τ\Big[-\frac{f^+}{τ} + \log E_{Q_0} e^{f/τ}\Big].

   The right side is a log-sum-exp written here. The left side is
   :func:`dro_theory.duals.penalized_worst_case`'s value, and separately the DRO objective
   E_q f − τ KL(q‖q0) evaluated here (xlogy) at the q it returns, together with the
   first-order optimality test (f − τ log(q/q0) constant on supp q) and q = softmax(f/τ)·q0.
   :func:`estimators.losses.infonce_population` and :func:`estimators.losses.phi_cl_dro`
   (uniform Q0) are compared with the same log-sum-exp. Tolerance: float64 rounding, 2e-13 ×
   max|f| (a few ulps with a 1e3 margin; any error of the mathematics is O(τ) or O(|f|)).
2. **Constrained form at the implied radius.** η(τ) = KL(q_τ‖q0) is computed here and
   compared with :func:`dro_theory.lagrange.radius_for_temperature`; the cvxpy primal
   (:func:`dro_theory.worst_case.worst_case`) at that η returns q* = the tilt (L1 ≤ 1e-6) and
   the multiplier α* = τ (relative 1e-5): Clarabel's default gap/feasibility tolerances
   (~1e-8) propagated to q and α (q* is the gradient of the value in f and α* its derivative
   in η, each losing about two orders of magnitude).
3. **Gradients (envelope theorem).** With q* held fixed at the worst case,
   ∇θ [−f⁺ + E_{q*} f − τ KL(q*‖q0)] = τ ∇θ InfoNCE_pop(τ) for a small linear encoder,
   through autograd in float64; tolerance 1e-10 relative to the gradient's size (rounding of a
   few hundred float64 operations is ~1e-14).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.special import logsumexp, softmax, xlogy

from dro_theory.duals import penalized_worst_case
from dro_theory.lagrange import radius_for_temperature
from dro_theory.worst_case import worst_case
from estimators.losses import infonce_population, phi_cl_dro
from validation.claims._recorder import Recorder, merge_config
from validation.records import Record, max_or_nan

__all__ = ["NAME", "REFERENCE", "run"]

NAME = "infonce-is-kl-dro"
REFERENCE = "Theorem 3.2, Eq. 4"
#: a few ulps (2.2e-16) with a 1e3 margin: the rounding of a log-sum-exp relative to max|f|/τ·τ
ROUNDING = 2e-13
#: the largest |score| of the identity part (``score_scales``)
MAX_SCORE = 50.0
#: q entries below this are subnormal-adjacent: their logarithm carries no precision
TINY_Q = 1e-290
#: relative rounding of KL(q_τ‖q0), a sum of n ≤ 400 terms of size ≤ max|f|/τ ≤ 4
RADIUS_RTOL = 1e-10
Q_L1_TOL = 1e-6
MULTIPLIER_RTOL = 1e-5
GRAD_RTOL = 1e-10


def _config(quick: bool) -> dict[str, Any]:
    return {
        "quick": quick,
        "anchors": 6 if quick else 32,
        "negatives": 40 if quick else 256,
        "temperatures": [1e-3, 0.05, 0.5, 2.0],
        "score_scales": [1.0, 50.0],
        "cvxpy_temperatures": [0.25, 0.5, 1.0],
        "cvxpy_anchors": 2 if quick else 6,
        "cvxpy_negatives": 64 if quick else 400,
        "grad_batch": 8 if quick else 32,
        "grad_dims": [5, 3],
        "grad_temperatures": [1e-3, 0.1, 0.5],
    }


def _kl(q: np.ndarray, q0: np.ndarray) -> float:
    """KL(q‖q0) written here (xlogy, so q_i = 0 contributes 0)."""
    return float(np.sum(xlogy(q, q)) - np.sum(xlogy(q, q0)))


def _stationarity(f: np.ndarray, q: np.ndarray, q0: np.ndarray, tau: float) -> float:
    """Spread of f − τ log(q/q0) over the entries q carries: 0 at the penalised optimum.

    The first-order condition of max_q {E_q f − τ KL(q‖q0)} on the simplex is
    f_i − τ(log(q_i/q0_i) + 1) = const wherever q_i > 0. Entries below TINY_Q are left out
    (subnormal q_i have lost their relative precision).
    """
    keep = q > TINY_Q
    if not keep.any():
        return math.nan
    g = f[keep] - tau * (np.log(q[keep]) - np.log(q0[keep]))
    return float(g.max() - g.min())


def _anchor_errors(
    f_pos: float, f: np.ndarray, q0: np.ndarray, tau: float
) -> tuple[float, float, float, float]:
    """(value vs τ·InfoNCE, value vs E_q f − τKL at the returned q, stationarity, q vs tilt)."""
    res = penalized_worst_case(f, "kl", tau, weights=q0)
    q = np.asarray(res.q, dtype=np.float64)
    rhs = -f_pos + tau * logsumexp(f / tau, b=q0)  # τ·InfoNCE_pop, written here
    direct = float(q @ f) - tau * _kl(q, q0)  # the DRO objective at the returned q
    tilt = softmax(f / tau + np.log(q0))
    return (
        abs(-f_pos + float(res.value) - rhs),
        abs(float(res.value) - direct),
        _stationarity(f, q, q0, tau),
        float(np.abs(q - tilt).sum()) + abs(float(q.sum()) - 1.0),
    )


def _identity_part(rec: Recorder, cfg: dict[str, Any], rng: np.random.Generator) -> None:
    b, n = cfg["anchors"], cfg["negatives"]
    worst = np.zeros(5)
    rows: list[tuple[float, float, float]] = []
    for scale in cfg["score_scales"]:
        for tau in cfg["temperatures"]:
            f_pos = rng.uniform(-scale, scale, size=b)
            f_neg = rng.uniform(-scale, scale, size=(b, n))
            q0 = rng.dirichlet(np.ones(n), size=b)
            errs = np.array([_anchor_errors(f_pos[i], f_neg[i], q0[i], tau) for i in range(b)])
            # uniform Q0: the torch losses against τ·InfoNCE_pop written here
            sim = torch.from_numpy(np.column_stack([f_pos, f_neg]))
            pos = torch.zeros(b, dtype=torch.long)
            info = infonce_population(sim, tau, pos_index=pos, reduction="none").numpy()
            dro = phi_cl_dro(sim, tau, "kl", pos_index=pos, reduction="none").numpy()
            here = -f_pos + tau * logsumexp(f_neg / tau, axis=1, b=1.0 / n)
            loss_err = max_or_nan(*np.abs(tau * info - here), *np.abs(dro - here))
            # np.max / np.maximum propagate NaN (builtin max(0.0, nan) would drop it)
            worst = np.maximum(worst, np.r_[np.max(errs, axis=0), loss_err])
            rows.append((tau, scale, max_or_nan(*np.max(errs, axis=0)[:1], loss_err)))
    tol = ROUNDING * MAX_SCORE  # a few ulps of max|f|, with a 1e3 margin
    note = f"float64 rounding of a log-sum-exp: {ROUNDING:g} × max|f| ({MAX_SCORE:g})"
    for k, label in enumerate(
        (
            "penalized_worst_case value − τ·InfoNCE_pop (log-sum-exp written here), "
            "non-uniform Q0 (max |error|)",
            "penalized_worst_case value vs E_q f − τKL(q‖q0) at its q (max |error|)",
            "first-order optimality: spread of f − τ log(q/q0) over supp q (max)",
            "penalised worst case q vs softmax(f/τ)·q0, incl. |Σq − 1| (max L1)",
            "τ·infonce_population and phi_cl_dro vs τ·InfoNCE_pop written here, uniform Q0 "
            "(max |error|)",
        )
    ):
        rec.close(label, float(worst[k]), 0.0, tol if k != 3 else ROUNDING, note=note)
    arr = np.array(rows)
    rec.add_series("identity_errors", temperature=arr[:, 0], scale=arr[:, 1], error=arr[:, 2])


def _constrained_part(rec: Recorder, cfg: dict[str, Any], rng: np.random.Generator) -> None:
    n = cfg["cvxpy_negatives"]
    worst = np.zeros(4)
    shown = False
    solver = "none"
    for a in range(cfg["cvxpy_anchors"]):
        f = np.tanh(rng.normal(0.1, 0.5, size=n))
        q0 = np.full(n, 1.0 / n) if a % 2 == 0 else rng.dirichlet(5.0 * np.ones(n))
        for tau in cfg["cvxpy_temperatures"]:
            tilt = softmax(f / tau + np.log(q0))
            eta = _kl(tilt, q0)  # η(τ) written here
            eta_lib = float(radius_for_temperature(f, tau, weights=q0))
            wc = worst_case(f, "kl", eta, weights=q0)
            solver = wc.solver
            errs = (
                abs(eta_lib - eta) / max(eta, ROUNDING),
                float(np.abs(np.asarray(wc.q) - tilt).sum()),
                abs(float(wc.multiplier) - tau) / tau,
                abs(float(wc.value) - float(tilt @ f)),
            )
            worst = np.array([max_or_nan(worst[k], e) for k, e in enumerate(errs)])
            if not shown and tau == 0.5 and a % 2 == 0:
                order = np.argsort(f)
                rec.add_series(
                    "worst_case_vs_softmax",
                    score=f[order],
                    q_cvxpy=np.asarray(wc.q)[order],
                    q_softmax=tilt[order],
                    q0=q0[order],
                )
                rec.metric("example_temperature", tau)
                rec.metric("example_radius", eta)
                shown = True
    rec.solver = solver
    rec.close(
        "radius_for_temperature vs KL(q_τ‖q0) written here (max relative error)",
        float(worst[0]),
        0.0,
        RADIUS_RTOL,
        note="the same quantity, two codes; float64 rounding of a sum of n terms",
    )
    rec.close(
        "cvxpy worst case at η(τ) vs softmax tilt (max L1)",
        float(worst[1]),
        0.0,
        Q_L1_TOL,
        note="interior-point tolerance ~1e-8 propagated to q*",
    )
    rec.close(
        "cvxpy multiplier α* vs τ (max relative error)",
        float(worst[2]),
        0.0,
        MULTIPLIER_RTOL,
        note="interior-point tolerance ~1e-8 propagated to the multiplier",
    )
    rec.close(
        "cvxpy value vs E_{q_τ} f (max |error|)",
        float(worst[3]),
        0.0,
        Q_L1_TOL,
        note="|Δvalue| ≤ max|f|·‖Δq‖₁ with |f| ≤ 1",
    )


def _gradient_part(rec: Recorder, cfg: dict[str, Any], seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    b = cfg["grad_batch"]
    d_in, d_out = cfg["grad_dims"]
    x = torch.randn(b, d_in, generator=gen, dtype=torch.float64)
    x2 = x + 0.3 * torch.randn(b, d_in, generator=gen, dtype=torch.float64)
    w0 = torch.randn(d_out, d_in, generator=gen, dtype=torch.float64)
    worst = 0.0
    for tau in cfg["grad_temperatures"]:
        w = w0.clone().requires_grad_(True)

        def sim_of(weight: torch.Tensor) -> torch.Tensor:
            z1 = torch.nn.functional.normalize(x @ weight.T, dim=1)
            z2 = torch.nn.functional.normalize(x2 @ weight.T, dim=1)
            return z1 @ z2.T

        sim = sim_of(w)
        info = infonce_population(sim, tau)
        (g_info,) = torch.autograd.grad(info, w)
        # CL-DRO with the worst case q* computed by dro_theory and held fixed (envelope)
        off = ~torch.eye(b, dtype=torch.bool)
        s_neg = sim.detach()[off].reshape(b, b - 1).numpy()
        q_star = np.stack(
            [np.asarray(penalized_worst_case(s_neg[i], "kl", tau).q) for i in range(b)]
        )
        w2 = w0.clone().requires_grad_(True)
        sim2 = sim_of(w2)
        neg = sim2[off].reshape(b, b - 1)
        dro = (-torch.diagonal(sim2) + (torch.from_numpy(q_star) * neg).sum(dim=1)).mean()
        (g_dro,) = torch.autograd.grad(dro, w2)
        scale = max(1.0, float(g_dro.abs().max()))
        worst = max_or_nan(worst, float((g_dro - tau * g_info).abs().max()) / scale)
    rec.close(
        "∇θ CL-DRO (q* fixed) − τ ∇θ InfoNCE_pop, linear encoder (max relative error)",
        worst,
        0.0,
        GRAD_RTOL,
        note="envelope theorem, exact; float64 autograd rounding ~1e-14",
    )


def run(*, quick: bool = False, seed: int = 0, overrides: dict[str, Any] | None = None) -> Record:
    """Run the checks of Theorem 3.2; see the module docstring."""
    cfg = merge_config(_config(quick), overrides)
    rec = Recorder(NAME, REFERENCE, cfg, seed)
    rng = np.random.default_rng(seed)
    _identity_part(rec, cfg, rng)
    _constrained_part(rec, cfg, rng)
    _gradient_part(rec, cfg, seed)
    return rec.finish()
