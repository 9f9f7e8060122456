r"""Claim ``dro-and-phi-mi``: Theorem 3.6 of Wu et al. (NeurIPS 2023).

For P ≪ Q the CL-DRO objective with positives from P and negatives from Q is the tight
variational form of D_φ:

.. math:: D_φ(P\|Q) = \max_T \Big\{ E_P T - \max_{Q'} \big[E_{Q'} T - D_φ(Q'\|Q)\big] \Big\}
          = \max_T \Big\{ E_P T - \min_λ \big[λ + E_Q φ^*(T - λ)\big] \Big\},

attained at T* = φ'(dP/dQ) (+ any constant). With P = P_XY and Q = P_X ⊗ P_Y this is the
generalised mutual information I_φ. Checked on jointly Gaussian (X, Y) (one canonical pair of
correlation ρ in rotated coordinates u = (x + y)/√2, v = (x − y)/√2, where
log r = C + ρu²/(2(1+ρ)) − ρv²/(2(1−ρ)), C = −½ log(1 − ρ²)):

1. **Quadrature (exact up to quadrature error).** E_P T* by Gauss–Hermite in P's coordinates and
   the inner max_{Q'} by :func:`dro_theory.duals.penalized_worst_case` (α = 1) on the Gauss–
   Hermite grid of Q with the quadrature weights as q0 — i.e. literally the DRO side of the
   theorem — equal :func:`estimators.synthetic.gaussian_phi_mi`. Tolerance: the a-posteriori
   quadrature error |D_20 − D_30| between 20 and 30 nodes per axis (the 30-node value is
   compared; Gauss–Hermite converges geometrically here, so this over-covers its error), plus
   1e-9 for the dual's root solve. (Finer grids put weights down to 1e-300 and scores up to
   e^{O(m)} on the dual solver, which is not what is being checked.)
2. **Monte Carlo with the score-matrix bounds** (:func:`estimators.bounds.phi_tight`,
   :func:`estimators.bounds.phi_plain`) on n sampled pairs with S_ij = T*(x_i, y_j):
   tight and plain both estimate I_φ at T* (tolerance 4 batch-means standard errors, plus the
   O(χ²/n) upward bias of the tight form's inner minimum); plain(S + c) estimates I_φ − gap(c)
   with the population gap(c) = E_Q[φ*(T* + c) − φ*(T*)] − c > 0 computed by quadrature
   (tolerance 4 SE), so the plain form is not shift-invariant. Independently of the sampling
   error, both library bounds equal the bounds recomputed here on a 300 × 300 block, at S and
   S + c (the inner minimum by brentq on mean (φ*)'(S − λ) = 1): relative 1e-9, so a bias of
   any size in either bound fails (the statistical checks alone have ±4 SE ≈ ±25 % windows).
3. **Trained estimator** :class:`estimators.phi_mi.PhiMI` (quick: KL only, 300 steps, width 64;
   full: KL, χ², Hellinger with the estimator's default width 256 and step rule), two-sided:
   |estimate − I_φ| ≤ CI half-width + the documented upward O(1/n) bias
   (e^{2I_KL} − 1)/(2 n_test). The CI does not include the critic's optimisation error, so the
   check can fail for an undertrained critic: that is reported, not hidden.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.polynomial.hermite_e import hermegauss
from scipy.optimize import brentq

from dro_theory.divergences import Divergence, resolve_divergence
from dro_theory.duals import penalized_worst_case
from estimators.bounds import phi_plain, phi_tight
from estimators.phi_mi import PhiMI
from estimators.synthetic import correlated_gaussians, gaussian_phi_mi
from validation.claims._recorder import Recorder, merge_config
from validation.records import Record, max_or_nan

__all__ = ["NAME", "REFERENCE", "run"]

NAME = "dro-and-phi-mi"
REFERENCE = "Theorem 3.6"
#: relative rounding of a mean of n² ≤ 1e7 conjugate values (pairwise sum) plus the root solve
BOUND_RTOL = 1e-9
#: size of the block on which the bounds are recomputed here (any matrix shows a coding error)
HERE_N = 300
#: bracket step for the inner minimum's shift λ (scores are O(1))
SHIFT_STEP = 1.0
ROOT_TOL = 1e-9
Z = 4.0  # standard errors for Monte Carlo checks (two-sided false-alarm rate ≈ 6e-5)


def _config(quick: bool) -> dict[str, Any]:
    return {
        "quick": quick,
        "rho": 0.5,
        "divergences": ["kl", "chi2", "hellinger", "reverse_kl", "js", "cressie_read:1.5"],
        "nodes": [20, 30],
        "mc_pairs": 1000 if quick else 3000,
        "mc_divergences": ["kl", "chi2", "hellinger", "js"] if quick else None,
        "mc_blocks": 10,
        "shift": -0.7,
        "trained": {
            "divergences": ["kl"] if quick else ["kl", "chi2", "hellinger"],
            "canonical_correlations": [0.5, 0.5],
            "n": 4000 if quick else 10000,
            "steps": 300 if quick else None,
            "hidden": 64 if quick else 256,  # full mode: the estimator's default width
            "batch_size": 256,
        },
    }


def _log_ratio_uv(u: np.ndarray, v: np.ndarray, rho: float) -> np.ndarray:
    c = -0.5 * np.log1p(-(rho**2))
    return c + rho * u**2 / (2 * (1 + rho)) - rho * v**2 / (2 * (1 - rho))


def _log_ratio_xy(x: np.ndarray, y: np.ndarray, rho: float) -> np.ndarray:
    """log p(x, y)/(p(x)p(y)) for one standard bivariate normal pair of correlation ρ."""
    return -0.5 * np.log1p(-(rho**2)) - (rho**2 * (x**2 + y**2) - 2 * rho * x * y) / (
        2 * (1 - rho**2)
    )


def _critic(div: Divergence, log_r: np.ndarray) -> np.ndarray:
    """T* = φ'(r), computed from log r without overflow where φ' has a log form."""
    if div.name == "kl":
        return 1.0 + log_r
    return np.asarray(div.phi_prime(np.exp(log_r)), dtype=np.float64)


def _grid(m: int) -> tuple[np.ndarray, np.ndarray]:
    z, w = hermegauss(m)
    return z, w / np.sqrt(2 * np.pi)


def _quadrature(div: Divergence, rho: float, m: int, shift: float = 0.0) -> tuple[float, float]:
    """(tight form via the DRO dual, plain form) at T* + shift, by m×m Gauss–Hermite."""
    z, w = _grid(m)
    uu, vv = np.meshgrid(z, z, indexing="ij")
    ww = np.outer(w, w).ravel()
    t_p = _critic(div, _log_ratio_uv(np.sqrt(1 + rho) * uu, np.sqrt(1 - rho) * vv, rho)) + shift
    e_p = float(ww @ t_p.ravel())
    t_q = (_critic(div, _log_ratio_uv(uu, vv, rho)) + shift).ravel()
    keep = ww > 0
    inner = penalized_worst_case(t_q[keep], div, 1.0, weights=ww[keep] / ww[keep].sum())
    with np.errstate(over="ignore", invalid="ignore"):
        plain = e_p - float(ww @ np.asarray(div.conjugate(t_q)))
    return e_p - float(inner.value), plain


def _quadrature_part(rec: Recorder, cfg: dict[str, Any]) -> dict[str, dict[str, float]]:
    rho, (m1, m2) = cfg["rho"], cfg["nodes"]
    out: dict[str, dict[str, float]] = {}
    for spec in cfg["divergences"]:
        div = resolve_divergence(spec)
        truth = float(gaussian_phi_mi([rho], div).value)
        coarse, _ = _quadrature(div, rho, m1)
        fine, plain0 = _quadrature(div, rho, m2)
        _, plain_c = _quadrature(div, rho, m2, cfg["shift"])
        err = abs(coarse - fine)
        rec.close(
            f"{spec}: tight form at T* = φ'(r) by quadrature + DRO dual vs closed-form I_φ",
            fine,
            truth,
            err + ROOT_TOL * max(1.0, abs(truth)),
            note="tolerance: |D_20 − D_30| (error estimate of the coarser rule) + root solve",
        )
        out[spec] = {
            "truth": truth,
            "quadrature": fine,
            "plain": plain0,
            "plain_shift": plain_c,
            "quad_err": err,
        }
    return out


def _blocks(s: np.ndarray, m: int) -> list[np.ndarray]:
    n = s.shape[0] // m
    return [s[k * n : (k + 1) * n, k * n : (k + 1) * n] for k in range(m)]


def _inner_here(off: np.ndarray, div: Divergence) -> float:
    """min_λ λ + mean φ*(off − λ), written here: brentq on mean (φ*)'(off − λ) = 1.

    g(λ) = mean (φ*)'(off − λ) − 1 decreases in λ; the bracket starts inside dom φ* (its
    upper end hi: λ > max(off) − hi) and widens by SHIFT_STEP until g changes sign.
    """
    _, hi, _ = div.conjugate_domain

    def g(lam: float) -> float:
        return float(np.mean(div.conjugate_derivative(off - lam))) - 1.0

    top = float(off.max())
    lo = top - hi + SHIFT_STEP * 1e-6 if np.isfinite(hi) else top - SHIFT_STEP
    while g(lo) < 0:
        lo -= SHIFT_STEP
    up = top + SHIFT_STEP
    while g(up) > 0:
        up += SHIFT_STEP
    lam = float(brentq(g, lo, up, xtol=1e-14, rtol=4 * np.finfo(np.float64).eps))
    return lam + float(np.mean(div.conjugate(off - lam)))


def _bounds_here(s: np.ndarray, div: Divergence) -> tuple[float, float]:
    """(tight, plain) of Theorem 3.6 on a score matrix, written here (diagonal = positives)."""
    off = s[~np.eye(s.shape[0], dtype=bool)]
    e_p = float(np.mean(np.diag(s)))
    return e_p - _inner_here(off, div), e_p - float(np.mean(div.conjugate(off)))


def _mc_part(
    rec: Recorder, cfg: dict[str, Any], quad: dict[str, dict[str, float]], seed: int
) -> dict[str, tuple[float, float]]:
    rho, n, nb, c = cfg["rho"], cfg["mc_pairs"], cfg["mc_blocks"], cfg["shift"]
    x, y = correlated_gaussians(n, [rho], seed=seed)
    log_r = _log_ratio_xy(x[:, :1], y[:, :1].T, rho)
    chi2 = float(gaussian_phi_mi([rho], "chi2").value)
    out: dict[str, tuple[float, float]] = {}
    worst_here = 0.0
    for spec in cfg["mc_divergences"] or cfg["divergences"]:
        div = resolve_divergence(spec)
        s = _critic(div, log_r)
        st = torch.from_numpy(s)
        tight = float(phi_tight(st, div))
        plain = float(phi_plain(st, div))
        tight_c = float(phi_tight(st + c, div))
        plain_c = float(phi_plain(st + c, div))
        blk = [torch.from_numpy(b) for b in _blocks(s, nb)]
        se_t = float(np.std([float(phi_tight(b, div)) for b in blk], ddof=1) / np.sqrt(nb))
        se_p = float(np.std([float(phi_plain(b, div)) for b in blk], ddof=1) / np.sqrt(nb))
        se_pc = float(np.std([float(phi_plain(b + c, div)) for b in blk], ddof=1) / np.sqrt(nb))
        truth = quad[spec]["truth"]
        rec.close(
            f"{spec}: Monte Carlo tight bound at T* (n = {n}) vs I_φ",
            tight,
            truth,
            Z * se_t + chi2 / n,
            note="4 batch-means SE + the O(χ²/n) upward bias of the inner minimum",
        )
        rec.close(
            f"{spec}: Monte Carlo plain bound at T* vs I_φ",
            plain,
            truth,
            Z * se_p,
            note="4 batch-means SE (the plain form is unbiased at a fixed critic)",
        )
        rec.close(
            f"{spec}: plain bound at T* {c:+g} vs its population value I_φ − gap (quadrature)",
            plain_c,
            quad[spec]["plain_shift"],
            Z * se_pc + quad[spec]["quad_err"],
            note="4 batch-means SE; the gap E_Q[φ*(T*+c) − φ*(T*)] − c > 0 shows the plain "
            "form is not shift-invariant",
        )
        for mat in (s[:HERE_N, :HERE_N], s[:HERE_N, :HERE_N] + c):
            t_here, p_here = _bounds_here(mat, div)
            t_lib = float(phi_tight(torch.from_numpy(mat), div))
            p_lib = float(phi_plain(torch.from_numpy(mat), div))
            scale = 1.0 + abs(t_here) + abs(p_here)
            worst_here = max_or_nan(worst_here, abs(t_lib - t_here) / scale)
            worst_here = max_or_nan(worst_here, abs(p_lib - p_here) / scale)
        rec.metric(f"plain_shift_loss_{spec}", quad[spec]["plain"] - quad[spec]["plain_shift"])
        rec.metric(f"tight_shift_change_{spec}", tight_c - tight)
        out[spec] = (tight, se_t)
    rec.close(
        "phi_tight and phi_plain vs the bounds written here (brentq inner minimum), at S and "
        "S + c (max relative error)",
        worst_here,
        0.0,
        BOUND_RTOL,
        note="same mathematics, independent code: float64 rounding of a mean of n² terms and "
        "the root solve",
    )
    return out


def _trained_part(rec: Recorder, cfg: dict[str, Any], seed: int) -> dict[str, tuple[float, float]]:
    tc = cfg["trained"]
    rhos = tc["canonical_correlations"]
    x, y = correlated_gaussians(tc["n"], rhos, seed=seed + 1)
    i_kl = float(gaussian_phi_mi(rhos, "kl").value)
    out: dict[str, tuple[float, float]] = {}
    for spec in tc["divergences"]:
        truth = float(gaussian_phi_mi(rhos, spec).value)
        est = PhiMI(
            divergence=spec,
            bound="tight",
            steps=tc["steps"],
            seed=seed,
            device="cpu",
            hidden=tc["hidden"],
            batch_size=tc["batch_size"],
        ).fit(x, y)
        lo, hi = (float(v) for v in est.ci_)
        half = 0.5 * (hi - lo)
        bias = (np.exp(2 * i_kl) - 1) / (2 * est.n_test_)
        rec.close(
            f"trained PhiMI({spec}): |estimate − I_φ| within CI half-width + bias",
            float(est.estimate_),
            truth,
            half + bias,
            note="stated tolerance; excludes the critic's optimisation error",
        )
        rec.metric(f"trained_{spec}_estimate", float(est.estimate_))
        rec.metric(f"trained_{spec}_truth", truth)
        rec.metric(f"trained_{spec}_steps", float(est.steps_))
        out[spec] = (float(est.estimate_), half)
    return out


def run(*, quick: bool = False, seed: int = 0, overrides: dict[str, Any] | None = None) -> Record:
    """Run the checks of Theorem 3.6; see the module docstring."""
    cfg = merge_config(_config(quick), overrides)
    rec = Recorder(NAME, REFERENCE, cfg, seed)
    quad = _quadrature_part(rec, cfg)
    mc = _mc_part(rec, cfg, quad, seed)
    trained = _trained_part(rec, cfg, seed)
    names = cfg["divergences"]
    rec.add_series(
        "estimates",
        index=np.arange(len(names)),
        truth=[quad[s]["truth"] for s in names],
        quadrature=[quad[s]["quadrature"] for s in names],
        monte_carlo=[mc[s][0] if s in mc else np.nan for s in names],
        se=[mc[s][1] if s in mc else np.nan for s in names],
    )
    tnames = cfg["trained"]["divergences"]
    rec.add_series(
        "trained",
        index=np.arange(len(tnames)),
        truth=[
            float(gaussian_phi_mi(cfg["trained"]["canonical_correlations"], s).value)
            for s in tnames
        ],
        estimate=[trained[s][0] for s in tnames],
        ci_half=[trained[s][1] for s in tnames],
    )
    return rec.finish()
