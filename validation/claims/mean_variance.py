r"""Claim ``mean-variance``: Theorem 3.5 of Wu et al. (NeurIPS 2023).

The CL-DRO inner value is approximately a mean–variance objective. Precisely, for scores f under
Q0 with mean μ, variance σ², cumulants κ3, κ4 and skewness γ = κ3/σ³, and a φ that is C³ at 1
(a = φ''(1), b = φ'''(1)):

* **penalised** (α = τ):
  max_Q {E_Q f − α D_φ(Q‖Q0)} = μ + σ²/(2αa) − bκ3/(6a³α²) + O(α⁻³).
  Derivation: the value is min_c c + α E φ*((f − c)/α); expand φ*(s) = s + s²/(2a) − bs³/(6a³)
  + … (since (φ*)'' = 1/φ'' and (φ*)''' = −φ'''/φ''³ at s = 0); the optimal shift c moves by
  O(1/α), which enters only at O(α⁻³). For KL (a = 1, b = −1) the error term is κ3/(6τ²) and the
  next one, from the cumulant series τ log E e^{f/τ} = Σ κ_k τ^{1−k}/k!, is κ4/(24τ³).
* **constrained**: max_{D_φ(Q‖Q0) ≤ η} E_Q f = μ + √(2ησ²/a) − (b/(3a²))σγη + O(η^{3/2})
  (Lam 2016; Duchi, Glynn & Namkoong 2021).
* **χ²** (φ = (t − 1)², a = 2, b = 0): both forms are exact while q ≥ 0 does not bind:
  μ + σ²/(4α) and μ + √(ησ²).

Checks (exact values from :mod:`dro_theory.duals`, cumulants from
:func:`dro_theory.expansions.cumulants`):

1. KL penalised: the log–log slope of |error| over τ is −2, tolerance 2·max|local slope + 2|
   predicted by the κ4 term over the τ range; and error·τ² → κ3/6 at the largest τ, tolerance
   2·|κ4|/(24τ) (twice the next term, which covers the κ5 term at that τ).
2. Every smooth φ, penalised: error·α² → −bκ3/(6a³), and the variance factor
   (P − μ)·2α/σ² → 1/a; constrained: (V − leading)/η → −bσγ/(3a²). Tolerance: the form of
   the expansion (D(x) = c + c'x + …, x = 1/α or √η) makes |D − c| ≈ |D(x) − D(x')| between the
   two finest points of the grid (x' = 2x), doubled, plus float64 rounding amplified by α² or
   1/η.
3. χ²: the mean–variance forms hold to float64 rounding below the binding threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dro_theory.divergences import divergence_from_spec, get_divergence
from dro_theory.duals import penalized_worst_case, worst_case_dual
from dro_theory.expansions import cumulants, mean_variance
from validation.claims._recorder import Recorder, merge_config
from validation.records import Record

__all__ = ["NAME", "REFERENCE", "run"]

NAME = "mean-variance"
REFERENCE = "Theorem 3.5"
_EPS = float(np.finfo(np.float64).eps)
SMOOTH = ("kl", "reverse_kl", "hellinger", "js", "cressie_read:1.5", "cressie_read:3", "chi2")


def _config(quick: bool) -> dict[str, Any]:
    return {
        "quick": quick,
        "n": 2000 if quick else 20000,
        "scores": "2·Beta(2, 5) − 1 (skewed, in [−1, 1])",
        "kl_temperatures": np.geomspace(1.0, 40.0, 10 if quick else 24).tolist(),
        "temperatures": np.geomspace(2.0, 64.0, 6).tolist(),
        "radii": np.geomspace(1e-4, 1.6e-3, 5).tolist(),
        "divergences": list(SMOOTH),
    }


def _kappas(f: np.ndarray) -> tuple[float, float, float, float]:
    """(μ, σ², κ3, κ4) of f under the uniform Q0, from :func:`dro_theory.expansions.cumulants`."""
    k = np.asarray(cumulants(f, order=4), dtype=np.float64)
    return float(k[0]), float(k[1]), float(k[2]), float(k[3])


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.polyfit(np.log(x), np.log(np.abs(y)), 1)[0])


def _kl_series_terms(f: np.ndarray, k3: float, tau: np.ndarray) -> np.ndarray:
    """|c_j| τ^{−j}, j = 1, 2, 3: the κ4, κ5, κ6 terms of the KL error relative to κ3/(6τ²).

    τ log E e^{f/τ} − μ − σ²/(2τ) = Σ_{k≥3} κ_k τ^{1−k}/k! = (κ3/(6τ²))(1 + Σ_j c_j τ^{−j})
    with c_1 = κ4/(4κ3), c_2 = κ5/(20κ3), c_3 = κ6/(120κ3). Shape (3, len(τ)).
    """
    k = np.asarray(cumulants(f, order=6), dtype=np.float64)
    c = np.abs([k[3] / (4 * k3), k[4] / (20 * k3), k[5] / (120 * k3)])
    return np.stack([c[j] * tau ** -(j + 1.0) for j in range(3)])


def _kl_part(rec: Recorder, cfg: dict[str, Any], f: np.ndarray, k: tuple[float, ...]) -> None:
    mu, var, k3, k4 = k
    taus = np.asarray(cfg["kl_temperatures"])
    exact = np.array([float(penalized_worst_case(f, "kl", t).value) for t in taus])
    err = exact - (mu + var / (2 * taus))
    slope = _slope(taus, err)
    # e = (κ3/6τ²)(1 + δ), δ = Σ c_j τ^{−j}: d log e/d log τ = −2 + τδ'/(1 + δ), bounded by
    # Σ j|c_j|τ^{−j} / (1 − Σ |c_j|τ^{−j}) (terms beyond κ6 covered by the factor 2)
    terms = _kl_series_terms(f, k3, taus)
    weighted = (np.arange(1, 4)[:, None] * terms).sum(axis=0)
    bound = weighted / np.clip(1.0 - terms.sum(axis=0), 1e-12, None)
    tol_slope = 2.0 * float(bound.max())
    rec.close(
        "KL penalised: log–log slope of |exact − (μ + σ²/2τ)| in τ",
        slope,
        -2.0,
        tol_slope,
        note="tolerance: 2 × the slope deviation the κ4, κ5, κ6 terms can cause over the τ range",
    )
    t_max = float(taus[-1])
    coef = float(err[-1] * t_max**2)
    tol_coef = 2.0 * abs(k3 / 6.0) * float(terms[:, -1].sum()) + 1e3 * _EPS * t_max**2
    rec.close(
        "KL penalised: error·τ² at the largest τ vs κ3/6",
        coef,
        k3 / 6.0,
        tol_coef,
        note="tolerance: 2 × (|κ4/(24τ)| + |κ5/(120τ²)| + |κ6/(720τ³)|) (+ rounding × τ²)",
    )
    rec.add_series(
        "kl_penalized",
        temperature=taus,
        error=err,
        predicted=k3 / (6 * taus**2),
        predicted_next=k3 / (6 * taus**2) + k4 / (24 * taus**3),
    )


def _richardson(d_fine: float, d_next: float, ratio: float, floor: float) -> float:
    """2 × the estimated distance to the limit of D(x) = c + c'x + … from two grid points.

    With x' = ratio·x the difference is D(x') − D(x) = c'x(ratio − 1), so
    |D(x) − c| ≈ |D(x') − D(x)|/(ratio − 1).
    """
    return 2.0 * abs(d_fine - d_next) / (ratio - 1.0) + floor


def _general_part(rec: Recorder, cfg: dict[str, Any], f: np.ndarray, k: tuple[float, ...]) -> None:
    mu, var, k3, _ = k
    sd = np.sqrt(var)
    gamma = k3 / sd**3
    alphas = np.asarray(cfg["temperatures"])
    radii = np.asarray(cfg["radii"])
    pen: dict[str, Any] = {"temperature": alphas}
    con: dict[str, Any] = {"radius": radii}
    module_gap = 0.0
    for spec in cfg["divergences"]:
        div = divergence_from_spec(spec)
        a, b = div.curvature, div.third_derivative
        label = spec.replace(":", "")
        # penalised
        p = np.array([float(penalized_worst_case(f, div, al).value) for al in alphas])
        e_pen = p - (mu + var / (2 * alphas * a))
        d = e_pen * alphas**2
        c_pen = -b * k3 / (6 * a**3)
        floor = 1e3 * _EPS * float(alphas[-1]) ** 2 * (abs(mu) + var + 1.0)
        tol_pen = _richardson(d[-1], d[-2], float(alphas[-1] / alphas[-2]), floor)
        if div.name == "kl":  # the higher terms are known: use them instead of Richardson
            tol_pen = 2.0 * abs(k3 / 6.0) * float(_kl_series_terms(f, k3, alphas)[:, -1].sum())
            tol_pen += floor
        rec.close(
            f"{spec} penalised: error·α² at α = {alphas[-1]:g} vs −φ'''κ3/(6φ''³)",
            float(d[-1]),
            c_pen,
            tol_pen,
            note="tolerance 2|D(α) − D(α/2)| (D = c + c'/α) + rounding × α²",
        )
        factor = (p[-1] - mu) * 2 * alphas[-1] / var
        nxt = abs(b * k3) / (3 * a**3 * alphas[-1] * var)
        rec.close(
            f"{spec} penalised: variance factor (P − μ)·2α/σ² vs 1/φ''(1) = {1 / a:g}",
            float(factor),
            1.0 / a,
            2.0 * nxt + floor / var,
            note="tolerance: 2 × the next term |φ'''κ3|/(3φ''³ασ²) (+ rounding)",
        )
        # constrained
        v = np.array([float(worst_case_dual(f, div, eta).value) for eta in radii])
        lead = mu + np.sqrt(2 * radii * var / a)
        e_con = v - lead
        dc = e_con / radii
        c_con = -b * sd * gamma / (3 * a**2)
        floor_c = 1e3 * _EPS * (abs(mu) + 1.0) / float(radii[0])
        rec.close(
            f"{spec} constrained: (V − μ − √(2ησ²/φ''))/η at η = {radii[0]:g} vs −φ'''σγ/(3φ''²)",
            float(dc[0]),
            c_con,
            _richardson(dc[0], dc[1], float(np.sqrt(radii[1] / radii[0])), floor_c),
            note="tolerance 2|D(η) − D(η')| (D = c + c'√η) + rounding / η",
        )
        # dro_theory.expansions states the same expansion: it must agree with this derivation
        mv_p = mean_variance(f, div, temperature=float(alphas[-1]))
        mv_c = mean_variance(f, div, radius=float(radii[0]))
        module_gap = max(
            module_gap,
            abs(float(mv_p.difference) - float(e_pen[-1])),
            abs(float(mv_p.next_term) - c_pen / float(alphas[-1]) ** 2),
            abs(float(mv_c.difference) - float(e_con[0])),
            abs(float(mv_c.next_term) - c_con * float(radii[0])),
        )
        pen[f"error_{label}"] = e_pen
        pen[f"predicted_{label}"] = c_pen / alphas**2
        con[f"error_{label}"] = e_con
        con[f"predicted_{label}"] = c_con * radii
    rec.close(
        "expansions.mean_variance: difference and next term vs this derivation (max |Δ|)",
        module_gap,
        0.0,
        1e-12,
        note="same formulas computed twice; float64 rounding",
    )
    rec.add_series("penalized", **pen)
    rec.add_series("constrained", **con)


def _chi2_part(rec: Recorder, f: np.ndarray, k: tuple[float, ...]) -> None:
    mu, var, _, _ = k
    chi2 = get_divergence("chi2")
    threshold = var / (mu - f.min()) ** 2  # q ≥ 0 binds beyond this radius
    radii = threshold * np.array([0.05, 0.3, 0.9])
    err_c = max(
        abs(float(worst_case_dual(f, chi2, eta).value) - (mu + np.sqrt(eta * var))) for eta in radii
    )
    a_min = (mu - f.min()) / 2  # q = q0(1 + (f − μ)/(2α)) ≥ 0 for α ≥ this
    alphas = a_min * np.array([1.1, 3.0, 30.0])
    err_p = max(
        abs(float(penalized_worst_case(f, chi2, al).value) - (mu + var / (4 * al))) for al in alphas
    )
    tol = 1e4 * _EPS * (abs(mu) + 1.0)
    rec.close(
        "χ² constrained = μ + √(ησ²) below the binding radius (max |error|)",
        err_c,
        0.0,
        tol,
        note="exact; float64 rounding",
    )
    rec.close(
        "χ² penalised = μ + σ²/(4α) where q ≥ 0 holds (max |error|)",
        err_p,
        0.0,
        tol,
        note="exact; float64 rounding",
    )
    rec.metric("chi2_binding_radius", threshold)


def run(*, quick: bool = False, seed: int = 0, overrides: dict[str, Any] | None = None) -> Record:
    """Run the checks of Theorem 3.5; see the module docstring."""
    cfg = merge_config(_config(quick), overrides)
    rec = Recorder(NAME, REFERENCE, cfg, seed)
    rng = np.random.default_rng(seed)
    f = 2.0 * rng.beta(2.0, 5.0, size=cfg["n"]) - 1.0
    k = _kappas(f)
    mu, var, k3, k4 = k
    for name, val in (
        ("mean", mu),
        ("variance", var),
        ("kappa3", k3),
        ("kappa4", k4),
        ("skewness", k3 / var**1.5),
    ):
        rec.metric(name, val)
    _kl_part(rec, cfg, f, k)
    _general_part(rec, cfg, f, k)
    _chi2_part(rec, f, k)
    return rec.finish()
