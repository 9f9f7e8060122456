r"""Claim ``temperature-is-lagrange``: Corollary 3.4 of Wu et al. (NeurIPS 2023).

The temperature is the Lagrange multiplier of the KL radius, α*(η) ≈ √(Var_{Q0} f/(2η)).

Expansion used for the tolerances (derived here). Stationarity of the dual
min_α α log E e^{f/α} + αη in u = 1/α, with the cumulant series α log E e^{f/α} =
Σ_k κ_k u^{k−1}/k!, reads η = Σ_{k≥2} (k − 1)κ_k u^k/k!. With v = σu, γ = κ3/σ³ (skewness),
k4 = κ4/σ⁴ (excess kurtosis) and ε = √(2η):

.. math:: ε^2 = v^2 + \tfrac{2γ}{3} v^3 + \tfrac{k_4}{4} v^4 + O(v^5)
          \;\Rightarrow\; v = ε - \tfrac{γ}{3}ε^2 + b_3 ε^3 + O(ε^4),
          \quad b_3 = \tfrac{5γ^2}{18} - \tfrac{k_4}{8}.

The law is τ_law = σ/ε and the exact multiplier α* = σ/v, so the relative error of the law is

.. math:: r(η) = 1 - τ_{law}/α^* = \tfrac{γ}{3}ε - b_3 ε^2 + O(ε^3).

Checks:

1. log–log slope of r over η is 1/2. The two-term model gives the local slope
   ½ + ½·c₂ε/(c₁ + c₂ε) (c₁ = γ/3, c₂ = −b₃); the tolerance is twice its largest deviation
   from ½ over the radius range (the factor 2 covers the O(ε³) term, smaller than the
   O(ε²) one at these radii).
2. r(η)/ε → γ/3 at the smallest radius; tolerance 2|c₂|ε_min.
3. η(τ) from :func:`dro_theory.lagrange.radius_for_temperature` equals KL(q_τ‖q0) written
   here (log space), and the exact α*(η) of :func:`dro_theory.lagrange.lagrange_curve` equals
   an independent brentq root of KL(q_α‖q0) = η (float64 rounding of a sum of n terms).
4. η(τ)·2τ²/σ² → 1 at the largest τ; since η = v²/2 + γv³/3 + … with v = σ/τ, the deviation is
   (2γ/3)(σ/τ) + O(τ⁻²); tolerance twice that.

Moments are computed here with numpy (not the library's cumulants).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

from dro_theory.lagrange import lagrange_curve, radius_for_temperature
from validation.claims._recorder import Recorder, merge_config
from validation.records import Record, max_or_nan

__all__ = ["NAME", "REFERENCE", "run"]

NAME = "temperature-is-lagrange"
REFERENCE = "Corollary 3.4"
_EPS = float(np.finfo(np.float64).eps)
#: ulps allowed per unit of the largest term of a KL sum (its terms are ≤ log n + max|f|/τ)
ULPS = 1e3
#: brentq's relative x-tolerance
ROOT_RTOL = 1e-13
#: the root lies within this factor of the law √(Var/2η) at the radii used (η ≤ 1e-3)
BRACKET = 4.0


def _config(quick: bool) -> dict[str, Any]:
    return {
        "quick": quick,
        "n": 2000 if quick else 20000,
        "scores": "2·Beta(2, 5) − 1 (skewed, in [−1, 1])",
        "radii": np.geomspace(1e-6, 1e-3, 10 if quick else 25).tolist(),
        "temperatures": np.geomspace(0.05, 50.0, 12 if quick else 40).tolist(),
    }


def _kl_tilt(f: np.ndarray, tau: float) -> float:
    """η(τ) = KL(q_τ‖q0), q_τ ∝ e^{f/τ} (uniform q0), written here in log space."""
    x = f / tau
    log_q = x - logsumexp(x)
    return float(np.exp(log_q) @ log_q + np.log(f.size))


def _kl_rounding(f: np.ndarray, tau_min: float) -> float:
    """Absolute float64 rounding of :func:`_kl_tilt` for τ ≥ tau_min."""
    return ULPS * _EPS * (float(np.log(f.size)) + float(np.abs(f).max()) / tau_min)


def _root(f: np.ndarray, eta: float, var: float) -> float:
    """α*(η) by brentq on the definition KL(q_α‖q0) = η (η decreasing in α).

    Bracketed around the law √(Var/2η) by factors of BRACKET; xtol relative ROOT_RTOL.
    """
    law = float(np.sqrt(var / (2 * eta)))
    lo, hi = law / BRACKET, law * BRACKET
    return float(brentq(lambda a: _kl_tilt(f, a) - eta, lo, hi, xtol=ROOT_RTOL * lo, rtol=_EPS * 4))


def _moments(f: np.ndarray) -> tuple[float, float, float]:
    """(variance, skewness, excess kurtosis) of f under the uniform q0, written here."""
    c = f - f.mean()
    var = float(np.mean(c**2))
    return var, float(np.mean(c**3)) / var**1.5, float(np.mean(c**4)) / var**2 - 3.0


def run(*, quick: bool = False, seed: int = 0, overrides: dict[str, Any] | None = None) -> Record:
    """Run the checks of Corollary 3.4; see the module docstring."""
    cfg = merge_config(_config(quick), overrides)
    rec = Recorder(NAME, REFERENCE, cfg, seed)
    rng = np.random.default_rng(seed)
    f = 2.0 * rng.beta(2.0, 5.0, size=cfg["n"]) - 1.0
    var, gamma, kurt = _moments(f)
    sd = float(np.sqrt(var))
    rec.metric("skewness", gamma)
    rec.metric("excess_kurtosis", kurt)
    rec.metric("variance", var)
    radii = np.asarray(cfg["radii"])
    _law_part(rec, f, radii, (var, gamma, kurt))
    taus = np.asarray(cfg["temperatures"])
    etas = np.asarray(radius_for_temperature(f, taus), dtype=np.float64).reshape(-1)
    here = np.array([_kl_tilt(f, t) for t in taus])
    rec.close(
        "radius_for_temperature η(τ) vs KL(q_τ‖q0) written here (max |error|)",
        max_or_nan(*np.abs(etas - here)),
        0.0,
        _kl_rounding(f, float(taus.min())),
        note="float64 rounding of a sum whose terms are ≤ log n + max|f|/τ (× 1e3 ulps)",
    )
    ratio = float(etas[-1] * 2 * taus[-1] ** 2 / var)
    rec.close(
        f"η(τ)·2τ²/Var at τ = {taus[-1]:g} vs 1",
        ratio,
        1.0,
        2.0 * abs(2 * gamma / 3 * sd / taus[-1]),
        note="tolerance: 2 × the next term (2γ/3)(σ/τ)",
    )
    rec.add_series("eta_tau", temperature=taus, radius=etas, radius_law=var / (2 * taus**2))
    return rec.finish()


def _law_part(
    rec: Recorder, f: np.ndarray, radii: np.ndarray, mom: tuple[float, float, float]
) -> None:
    var, gamma, kurt = mom
    curve = lagrange_curve(f, radii)
    exact = np.asarray(curve.temperature, dtype=np.float64)
    root = np.array([_root(f, float(e), var) for e in radii])
    law = np.sqrt(var / (2 * radii))
    rec.close(
        "lagrange_curve α*(η) vs brentq on KL(q_α‖q0) = η written here (max relative error)",
        max_or_nan(*(np.abs(exact - root) / root)),
        0.0,
        0.5 * _kl_rounding(f, float(law.min()) / BRACKET) / float(radii.min()) + ROOT_RTOL,
        note="dα/α = −dη/(2η): half the rounding of η relative to the smallest η, + xtol",
    )
    rec.close(
        "law column of lagrange_curve vs √(Var/2η) written here (max relative error)",
        max_or_nan(*(np.abs(np.asarray(curve.temperature_law) - law) / law)),
        0.0,
        ULPS * _EPS,
        note="float64 rounding of the variance (1e3 ulps)",
    )
    rel = 1.0 - law / exact
    eps = np.sqrt(2 * radii)
    c1, c2 = gamma / 3.0, -(5 * gamma**2 / 18.0 - kurt / 8.0)
    predicted = c1 * eps + c2 * eps**2
    local_dev = 0.5 * c2 * eps / (c1 + c2 * eps)
    slope = float(np.polyfit(np.log(radii), np.log(np.abs(rel)), 1)[0])
    rec.close(
        "relative error of the law: log–log slope in η",
        slope,
        0.5,
        2.0 * float(np.abs(local_dev).max()),
        note="tolerance: 2 × the slope deviation of the O(η) term over the radius range",
    )
    rec.close(
        "relative error / √(2η) at the smallest η vs skewness/3",
        float(rel[0] / eps[0]),
        c1,
        2.0 * abs(c2) * float(eps[0]),
        note="tolerance: 2 × the next term |b₃|√(2η)",
    )
    rec.add_series(
        "tau_eta",
        radius=radii,
        tau_exact=exact,
        tau_law=law,
        rel_error=rel,
        rel_error_predicted=predicted,
    )
