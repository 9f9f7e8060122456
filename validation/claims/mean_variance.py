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

import math
from typing import Any

import numpy as np

from dro_theory.divergences import Divergence, resolve_divergence
from dro_theory.duals import penalized_worst_case, worst_case_dual
from dro_theory.errors import DROSolveError
from dro_theory.expansions import cumulants, mean_variance
from dro_theory.worst_case import worst_case
from validation.claims._recorder import Recorder, merge_config
from validation.records import Record, max_or_nan

__all__ = ["NAME", "REFERENCE", "run"]

NAME = "mean-variance"
REFERENCE = "Theorem 3.5"
_EPS = float(np.finfo(np.float64).eps)
#: ulps of rounding allowed per O(1) quantity (a 1e3 margin over a few ulps)
ULPS = 1e3
#: φ⁗(1) of each smooth φ, from φ'' (KL 1/t, reverse KL 1/t², Hellinger ½t^{−3/2},
#: JS ½(1/t − 1/(1+t)), χ² 2)
FOURTH = {"kl": 2.0, "reverse_kl": 6.0, "hellinger": 15.0 / 8.0, "js": 7.0 / 8.0, "chi2": 0.0}
#: scores given to the cvxpy χ² primal (a subsample keeps the quick run fast)
PRIMAL_N = 400
#: interior-point tolerance (~1e-8) propagated to a value with |f| ≤ 1
PRIMAL_TOL = 1e-6
SMOOTH = ("kl", "reverse_kl", "hellinger", "js", "cressie_read:1.5", "cressie_read:3", "chi2")


def _config(quick: bool) -> dict[str, Any]:
    return {
        "quick": quick,
        "n": 2000 if quick else 20000,
        "scores": "2·Beta(2, 5) − 1 (skewed, in [−1, 1])",
        "kl_temperatures": np.geomspace(1.0, 40.0, 10 if quick else 24).tolist(),
        "temperatures": np.geomspace(2.0, 256.0, 8).tolist(),
        "radii": np.geomspace(1e-4, 1.6e-3, 5).tolist(),
        "divergences": list(SMOOTH),
    }


def _moments(f: np.ndarray) -> tuple[float, float, float, float]:
    """(μ, σ², κ3, m4) of f under the uniform Q0, written here (central moments)."""
    c = f - f.mean()
    return float(f.mean()), float(np.mean(c**2)), float(np.mean(c**3)), float(np.mean(c**4))


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


def _fourth(div: Divergence) -> float:
    """The fourth derivative φ⁗(1), written here (the catalogue stores only φ''(1), φ'''(1))."""
    if div.name.startswith("cressie_read"):
        lam = float(getattr(div, "alpha", div.name.partition(":")[2]))
        return (lam - 2.0) * (lam - 3.0)  # φ'' = t^{λ−2}
    return FOURTH[div.name]


def _coefficients(spec: str, mom: tuple[float, float, float, float]) -> dict[str, float]:
    """The coefficients of dro-duals.md §4: A, B, C (penalised) and c2, c3 (constrained).

    φ*(s) = s + s²/(2a) + k3 s³ + k4 s⁴, k3 = −b/(6a³), k4 = (3b² − ad)/(24a⁵);
    penalised μ + A/α + B/α² + C/α³, A = σ²/(2a), B = k3κ3, C = k4 m4 − (9/2) a k3² σ⁴;
    constrained μ + √(2σ²η/a) + c2 η + c3 η^{3/2}, c2 = −bσγ/(3a²), c3 = C/A^{3/2} − B²/A^{5/2}.
    a and b come from the library's catalogue (what is being checked), d from :func:`_fourth`.
    ``mom`` is (μ, σ², κ3, m4), the central moments written here.
    """
    div = resolve_divergence(spec)
    a, b, d = float(div.curvature), float(div.third_derivative), _fourth(div)
    var, k3m, m4 = mom[1], mom[2], mom[3]
    k3, k4 = -b / (6 * a**3), (3 * b**2 - a * d) / (24 * a**5)
    big_a, big_b = var / (2 * a), k3 * k3m
    big_c = k4 * m4 - 4.5 * a * k3**2 * var**2
    c2 = -b * np.sqrt(var) * (k3m / var**1.5) / (3 * a**2)
    c3 = big_c / big_a**1.5 - big_b**2 / big_a**2.5
    return {"a": a, "A": big_a, "B": big_b, "C": big_c, "c2": float(c2), "c3": float(c3)}


def _general_part(
    rec: Recorder, cfg: dict[str, Any], f: np.ndarray, k: tuple[float, float, float, float]
) -> None:
    mu, var = k[0], k[1]
    alphas = np.asarray(cfg["temperatures"])
    radii = np.asarray(cfg["radii"])
    al, eta = float(alphas[-1]), float(radii[0])
    pen: dict[str, Any] = {"temperature": alphas}
    con: dict[str, Any] = {"radius": radii}
    module_gap = 0.0
    for spec in cfg["divergences"]:
        c = _coefficients(spec, k)
        label = spec.replace(":", "")
        p = np.array([float(penalized_worst_case(f, spec, x).value) for x in alphas])
        e_pen = p - (mu + c["A"] / alphas)
        floor = ULPS * _EPS * al**2 * (abs(mu) + var + 1.0)
        rec.close(
            f"{spec} penalised: error·α² at α = {al:g} vs B = −φ'''κ3/(6φ''³)",
            float(e_pen[-1] * al**2),
            c["B"],
            2.0 * abs(c["C"]) / al + floor,
            note="tolerance: 2 × the next term |C|/α of dro-duals.md §4 (+ rounding × α²)",
        )
        rec.close(
            f"{spec} penalised: variance factor (P − μ)·2α/σ² vs 1/φ''(1) = {1 / c['a']:g}",
            float((p[-1] - mu) * 2 * al / var),
            1.0 / c["a"],
            2.0 * abs(2 * c["B"]) / (al * var) + floor / var,
            note="tolerance: 2 × the next term 2|B|/(ασ²) (+ rounding)",
        )
        v = np.array([float(worst_case_dual(f, spec, x).value) for x in radii])
        e_con = v - (mu + np.sqrt(2 * radii * var / c["a"]))
        floor_c = ULPS * _EPS * (abs(mu) + 1.0) / eta
        rec.close(
            f"{spec} constrained: (V − μ − √(2ησ²/φ''))/η at η = {eta:g} vs c2 = −φ'''σγ/(3φ''²)",
            float(e_con[0] / eta),
            c["c2"],
            2.0 * abs(c["c3"]) * np.sqrt(eta) + floor_c,
            note="tolerance: 2 × the next term |c3|√η of dro-duals.md §4 (+ rounding / η)",
        )
        # dro_theory.expansions states the same expansion: its terms must agree with these
        mv_p = mean_variance(f, spec, temperature=al)
        mv_c = mean_variance(f, spec, radius=eta)
        module_gap = max_or_nan(
            module_gap,
            abs(float(mv_p.difference) - float(e_pen[-1])),
            abs(float(mv_p.next_term) - c["B"] / al**2),
            abs(float(mv_c.difference) - float(e_con[0])),
            abs(float(mv_c.next_term) - c["c2"] * eta),
        )
        pen[f"error_{label}"] = e_pen
        pen[f"predicted_{label}"] = c["B"] / alphas**2
        con[f"error_{label}"] = e_con
        con[f"predicted_{label}"] = c["c2"] * radii
    rec.close(
        "expansions.mean_variance: leading and next terms vs the coefficients written here",
        module_gap,
        0.0,
        ULPS * _EPS * (abs(mu) + var + 1.0),
        note="the same formulas, two codes; float64 rounding of O(1) values",
    )
    rec.add_series("penalized", **pen)
    rec.add_series("constrained", **con)


def _chi2_part(rec: Recorder, f: np.ndarray, k: tuple[float, float, float, float]) -> None:
    """χ²: the laws against the dual, the cvxpy primal, and the objective at the returned q."""
    mu, var = k[0], k[1]
    threshold = var / (mu - f.min()) ** 2  # q ≥ 0 binds beyond this radius
    radii = threshold * np.array([0.05, 0.3, 0.9])
    law_c = mu + np.sqrt(radii * var)
    v_c = np.array([float(worst_case_dual(f, "chi2", e).value) for e in radii])
    err_c = max_or_nan(*np.abs(v_c - law_c))
    sub = f[:: max(1, f.size // PRIMAL_N)]  # the cvxpy primal on a subsample (size PRIMAL_N)
    m_s, v_s = float(sub.mean()), float(sub.var())
    eta_s = 0.3 * v_s / (m_s - sub.min()) ** 2
    try:  # worst_case verifies its primal against the dual: a refusal fails the check
        primal_value = float(worst_case(sub, "chi2", eta_s).value)
    except DROSolveError:
        primal_value = math.nan
    err_primal = abs(primal_value - (m_s + np.sqrt(eta_s * v_s)))
    a_min = (mu - f.min()) / 2  # q = q0(1 + (f − μ)/(2α)) ≥ 0 for α ≥ this
    err_p, err_q = 0.0, 0.0
    for al in a_min * np.array([1.1, 3.0, 30.0]):
        res = penalized_worst_case(f, "chi2", al)
        q = np.asarray(res.q, dtype=np.float64)
        direct = float(q @ f) - al * float(np.sum((q * f.size - 1.0) ** 2) / f.size)
        q_law = (1.0 + (f - mu) / (2 * al)) / f.size
        err_p = max_or_nan(err_p, abs(float(res.value) - (mu + var / (4 * al))))
        err_p = max_or_nan(err_p, abs(float(res.value) - direct))
        err_q = max_or_nan(err_q, float(np.abs(q - q_law).sum()))
    tol = 10 * ULPS * _EPS * (abs(mu) + 1.0)
    rec.close(
        "χ² constrained: worst_case_dual = μ + √(ησ²) below the binding radius (max |error|)",
        err_c,
        0.0,
        tol,
        note="exact; float64 rounding (1e4 ulps)",
    )
    rec.close(
        "χ² constrained: cvxpy primal = μ + √(ησ²) (subsample, η below binding)",
        err_primal,
        0.0,
        PRIMAL_TOL,
        note="interior-point tolerance ~1e-8 propagated to the value (|f| ≤ 1); NaN: the "
        "solver's own primal–dual verification refused the solution",
    )
    rec.close(
        "χ² penalised: value = μ + σ²/(4α) = E_q f − αχ²(q‖q0) at its q (max |error|)",
        err_p,
        0.0,
        tol,
        note="exact where q ≥ 0 holds; float64 rounding (1e4 ulps)",
    )
    rec.close(
        "χ² penalised: q vs q0(1 + (f − μ)/(2α)) (max L1)",
        err_q,
        0.0,
        tol,
        note="exact closed form; float64 rounding",
    )
    rec.metric("chi2_binding_radius", threshold)


def run(*, quick: bool = False, seed: int = 0, overrides: dict[str, Any] | None = None) -> Record:
    """Run the checks of Theorem 3.5; see the module docstring."""
    cfg = merge_config(_config(quick), overrides)
    rec = Recorder(NAME, REFERENCE, cfg, seed)
    rng = np.random.default_rng(seed)
    f = 2.0 * rng.beta(2.0, 5.0, size=cfg["n"]) - 1.0
    mom = _moments(f)
    mu, var, k3, m4 = mom
    k4 = m4 - 3 * var**2
    lib = np.asarray(cumulants(f, order=4), dtype=np.float64)
    here = np.array([mu, var, k3, k4])
    rec.close(
        "cumulants(f, order=4) vs (μ, σ², κ3, m4 − 3σ⁴) written here (max |error|)",
        max_or_nan(*np.abs(lib - here)),
        0.0,
        ULPS * _EPS,
        note="moments of scores in [−1, 1]: float64 rounding (1e3 ulps)",
    )
    for name, val in (
        ("mean", mu),
        ("variance", var),
        ("kappa3", k3),
        ("kappa4", k4),
        ("skewness", k3 / var**1.5),
    ):
        rec.metric(name, val)
    k = (mu, var, k3, k4)
    _kl_part(rec, cfg, f, k)
    _general_part(rec, cfg, f, mom)
    _chi2_part(rec, f, mom)
    return rec.finish()
