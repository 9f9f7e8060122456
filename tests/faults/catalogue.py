"""The fault catalogue: plausible bugs, each with the claim that must catch it.

Every fault wraps a PUBLIC library object (see :mod:`.patcher`); the claim named in the entry
must fail in quick mode while the fault is applied.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .wrappers import (
    Maker,
    arg_scaled,
    const,
    excess_scaled,
    field_map,
    field_scaled,
    forced_kwarg,
    q_is_nominal,
    tensor_map,
)

__all__ = ["CATALOGUE", "Fault"]

PWC = "dro_theory.duals:penalized_worst_case"
WCD = "dro_theory.duals:worst_case_dual"
WC = "dro_theory.worst_case:worst_case"
R4T = "dro_theory.lagrange:radius_for_temperature"
CURVE = "dro_theory.lagrange:lagrange_curve"
CUM = "dro_theory.expansions:cumulants"
MV = "dro_theory.expansions:mean_variance"
DIV = "dro_theory.divergences"
INFO = "estimators.losses:infonce_population"
CLDRO = "estimators.losses:phi_cl_dro"
ADNCE = "estimators.losses:adnce"
ADW = "estimators.losses:adnce_weights"
TIGHT = "estimators.bounds:phi_tight"
PLAIN = "estimators.bounds:phi_plain"
GPM = "estimators.synthetic:gaussian_phi_mi"


@dataclass(frozen=True)
class Fault:
    """One injected bug: ``patches`` are (target, maker) pairs, ``claim`` must catch it."""

    name: str
    claim: str
    patches: tuple[tuple[str, Maker], ...]


def _scaled(factor: float) -> Maker:
    return tensor_map(lambda out, ba: out * factor)


def _nan(out: torch.Tensor, ba: inspect.BoundArguments) -> torch.Tensor:
    return out * math.nan


def _positive_in_denominator(orig: Any) -> Any:
    """InfoNCE_pop with the positive added to the negatives' average (N + 1 terms over N)."""

    def broken(sim: torch.Tensor, temperature: float, **kw: Any) -> torch.Tensor:
        reduction = kw.pop("reduction", "mean")
        per = orig(sim, temperature, reduction="none", **kw)
        n = sim.shape[1] - 1
        out = per + torch.nn.functional.softplus(-per - math.log(n))
        return out.mean() if reduction == "mean" else out

    return broken


def _q_unnormalised(q: Any) -> Any:
    return np.asarray(q) * 1.01


def _nan_first(v: Any) -> Any:
    a = np.array(v, dtype=np.float64)
    a.reshape(-1)[0] = np.nan
    return a


def _f(name: str, claim: str, *patches: tuple[str, Maker]) -> Fault:
    return Fault(name, claim, tuple(patches))


C_INFO, C_TEMP, C_MV = "infonce-is-kl-dro", "temperature-is-lagrange", "mean-variance"
C_MI, C_BIAS, C_ADNCE = "dro-and-phi-mi", "sampling-bias", "adnce-reshapes-worst-case"

CATALOGUE: tuple[Fault, ...] = (
    # --- Theorem 3.2: KL-DRO = τ·InfoNCE
    _f("infonce_population value ×1.01", C_INFO, (INFO, _scaled(1.01))),
    _f("infonce_population returns NaN", C_INFO, (INFO, tensor_map(_nan))),
    _f("infonce_population: positive in the denominator", C_INFO, (INFO, _positive_in_denominator)),
    _f("phi_cl_dro value ×0.99", C_INFO, (CLDRO, _scaled(0.99))),
    _f("penalized_worst_case: temperature off 2 %", C_INFO, (PWC, arg_scaled("temperature", 1.02))),
    _f("penalized_worst_case returns q0", C_INFO, (PWC, q_is_nominal)),
    _f("penalized_worst_case value NaN", C_INFO, (PWC, field_scaled("value", math.nan))),
    _f("penalized_worst_case q not normalised", C_INFO, (PWC, field_map("q", _q_unnormalised))),
    _f("worst_case (cvxpy) returns q0", C_INFO, (WC, q_is_nominal)),
    _f("worst_case multiplier ×1.02", C_INFO, (WC, field_scaled("multiplier", 1.02))),
    _f("worst_case radius 5 % too large", C_INFO, (WC, arg_scaled("radius", 1.05))),
    _f("radius_for_temperature at τ·1.02", C_INFO, (R4T, arg_scaled("temperature", 1.02))),
    # --- Corollary 3.4: the temperature is the Lagrange multiplier
    _f("lagrange_curve temperature ×1.01", C_TEMP, (CURVE, field_scaled("temperature", 1.01))),
    _f(
        "lagrange_curve law √(Var/η) (½ swapped)",
        C_TEMP,
        (CURVE, field_scaled("temperature_law", 2**0.5)),
    ),
    _f(
        "lagrange_curve temperature NaN at one radius",
        C_TEMP,
        (CURVE, field_map("temperature", _nan_first)),
    ),
    _f("lagrange_curve at radii 3 % too large", C_TEMP, (CURVE, arg_scaled("radii", 1.03))),
    _f("radius_for_temperature ×1.03", C_TEMP, (R4T, tensor_map(lambda out, ba: out * 1.03))),
    _f("radius_for_temperature sign flip", C_TEMP, (R4T, tensor_map(lambda out, ba: -out))),
    # --- Theorem 3.5: mean–variance
    _f("worst_case_dual hellinger: V − μ ×1.01", C_MV, (WCD, excess_scaled(1.01, "hellinger"))),
    _f(
        "worst_case_dual reverse_kl: radius ×1.05",
        C_MV,
        (WCD, arg_scaled("radius", 1.05, "reverse_kl")),
    ),
    _f("worst_case_dual js: V − μ ×1.10", C_MV, (WCD, excess_scaled(1.10, "js"))),
    _f(
        "worst_case_dual cressie_read: radius ×1.05",
        C_MV,
        (WCD, arg_scaled("radius", 1.05, "cressie_read")),
    ),
    _f("worst_case_dual kl: radius ×1.01", C_MV, (WCD, arg_scaled("radius", 1.01, "kl"))),
    _f(
        "worst_case_dual χ²: ½ convention (radius ×2)",
        C_MV,
        (WCD, arg_scaled("radius", 2.0, "chi2")),
    ),
    _f("penalized_worst_case χ²: V − μ ×1.01", C_MV, (PWC, excess_scaled(1.01, "chi2"))),
    _f(
        "penalized_worst_case hellinger: α off 2 %",
        C_MV,
        (PWC, arg_scaled("temperature", 1.02, "hellinger")),
    ),
    _f(
        "Hellinger φ''(1) = 1 (½ convention swapped)",
        C_MV,
        (f"{DIV}:Hellinger.curvature", const(1.0)),
    ),
    _f("Hellinger φ'''(1) 5 % off", C_MV, (f"{DIV}:Hellinger.third_derivative", const(-0.7875))),
    _f("KL φ'''(1) sign flip", C_MV, (f"{DIV}:KL.third_derivative", const(1.0))),
    _f("ReverseKL φ'''(1) = −1 (KL's)", C_MV, (f"{DIV}:ReverseKL.third_derivative", const(-1.0))),
    _f("χ² φ''(1) = 1 (½ convention swapped)", C_MV, (f"{DIV}:ChiSquare.curvature", const(1.0))),
    _f("mean_variance next_term ×2", C_MV, (MV, field_scaled("next_term", 2.0))),
    _f(
        "cumulants: κ3 ×1.05",
        C_MV,
        (CUM, tensor_map(lambda k, ba: k * np.r_[1, 1, 1.05, np.ones(len(k) - 3)])),
    ),
    # --- Theorem 3.6: CL-DRO and φ-MI
    _f("phi_tight biased +5 %", C_MI, (TIGHT, _scaled(1.05))),
    _f("phi_tight biased −1 %", C_MI, (TIGHT, _scaled(0.99))),
    _f("phi_tight sign flip", C_MI, (TIGHT, _scaled(-1.0))),
    _f("phi_tight returns NaN", C_MI, (TIGHT, tensor_map(_nan))),
    _f("phi_plain value ×1.01", C_MI, (PLAIN, _scaled(1.01))),
    _f("gaussian_phi_mi value ×1.01", C_MI, (GPM, field_scaled("value", 1.01))),
    _f("gaussian_phi_mi χ²: ½ convention", C_MI, (GPM, field_scaled("value", 0.5, "chi2"))),
    _f(
        "penalized_worst_case js: value +1e-3",
        C_MI,
        (PWC, field_map("value", lambda v: v + 1e-3, "js")),
    ),
    # --- Theorem 3.3: sampling bias
    _f("infonce_population: temperature off 2 %", C_BIAS, (INFO, arg_scaled("temperature", 1.02))),
    _f("infonce_population value ×0.99", C_BIAS, (INFO, _scaled(0.99))),
    _f(
        "worst_case_dual kl: multiplier ×1.05",
        C_BIAS,
        (WCD, field_scaled("multiplier", 1.05, "kl")),
    ),
    _f("worst_case_dual kl: value ×1.01", C_BIAS, (WCD, field_scaled("value", 1.01, "kl"))),
    _f(
        "worst_case_dual kl: multiplier NaN",
        C_BIAS,
        (WCD, field_scaled("multiplier", math.nan, "kl")),
    ),
    # --- Section 4.2: ADNCE
    _f("adnce value ×1.01", C_ADNCE, (ADNCE, _scaled(1.01))),
    _f(
        "adnce: positive weighted into the denominator",
        C_ADNCE,
        (ADNCE, forced_kwarg("positive", "unweighted")),
    ),
    _f(
        "adnce + adnce_weights: σ 1 % off",
        C_ADNCE,
        (ADNCE, arg_scaled("sigma", 1.01)),
        (ADW, arg_scaled("sigma", 1.01)),
    ),
    _f(
        "adnce + adnce_weights: μ 5 % off",
        C_ADNCE,
        (ADNCE, arg_scaled("mu", 1.05)),
        (ADW, arg_scaled("mu", 1.05)),
    ),
    _f("adnce_weights not normalised (×1.05)", C_ADNCE, (ADW, _scaled(1.05))),
    _f("penalized_worst_case ignores the weights", C_ADNCE, (PWC, forced_kwarg("weights", None))),
)
