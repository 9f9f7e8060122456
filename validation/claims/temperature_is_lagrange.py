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
3. η(τ) = KL(q_τ‖q0) strictly decreasing over a τ grid (exact: dη/dτ = −Var_{q_τ}(f)/τ³ < 0).
4. η(τ)·2τ²/σ² → 1 at the largest τ; since η = v²/2 + γv³/3 + … with v = σ/τ, the deviation is
   (2γ/3)(σ/τ) + O(τ⁻²); tolerance twice that.

The exact curve comes from :func:`dro_theory.lagrange.lagrange_curve` and
:func:`dro_theory.lagrange.radius_for_temperature`; cumulants from
:func:`dro_theory.expansions.cumulants`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dro_theory.expansions import cumulants
from dro_theory.lagrange import lagrange_curve, radius_for_temperature
from validation.claims._recorder import Recorder, merge_config
from validation.records import Record

__all__ = ["NAME", "REFERENCE", "run"]

NAME = "temperature-is-lagrange"
REFERENCE = "Corollary 3.4"


def _config(quick: bool) -> dict[str, Any]:
    return {
        "quick": quick,
        "n": 2000 if quick else 20000,
        "scores": "2·Beta(2, 5) − 1 (skewed, in [−1, 1])",
        "radii": np.geomspace(1e-6, 1e-3, 10 if quick else 25).tolist(),
        "temperatures": np.geomspace(0.05, 50.0, 12 if quick else 40).tolist(),
    }


def run(*, quick: bool = False, seed: int = 0, overrides: dict[str, Any] | None = None) -> Record:
    """Run the checks of Corollary 3.4; see the module docstring."""
    cfg = merge_config(_config(quick), overrides)
    rec = Recorder(NAME, REFERENCE, cfg, seed)
    rng = np.random.default_rng(seed)
    f = 2.0 * rng.beta(2.0, 5.0, size=cfg["n"]) - 1.0
    _, var, k3, k4 = (float(v) for v in cumulants(f, order=4))
    sd = float(np.sqrt(var))
    gamma, kurt = k3 / sd**3, k4 / var**2
    rec.metric("skewness", gamma)
    rec.metric("excess_kurtosis", kurt)
    rec.metric("variance", var)

    radii = np.asarray(cfg["radii"])
    curve = lagrange_curve(f, radii)
    exact = np.asarray(curve.temperature, dtype=np.float64)
    law = np.sqrt(var / (2 * radii))
    rec.close(
        "law √(Var/2η) of the curve vs √(Var/2η) from the cumulants (max relative error)",
        float(np.max(np.abs(np.asarray(curve.temperature_law) - law) / law)),
        0.0,
        1e-10,
        note="the same formula; float64 rounding of the variance",
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

    taus = np.asarray(cfg["temperatures"])
    etas = np.array([float(radius_for_temperature(f, t)) for t in taus])
    rec.at_most(
        "η(τ) decreasing: max_k η(τ_{k+1}) − η(τ_k) ≤ 0",
        float(np.diff(etas).max()),
        0.0,
        note="exact: dη/dτ = −Var_{q_τ}(f)/τ³ < 0; observed must be negative",
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
