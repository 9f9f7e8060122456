r"""Second stage of the two-stage fit: T = link(a·min(v, v_max) + c) fitted on validation.

The trained critic v ≈ log r + const (Donsker–Varadhan); the two scalars (a, c) maximise the
target bound on the validation split, and v is capped at its largest validation *joint* value.
Every capped, rescaled critic is still a critic, so the held-out value stays a valid bound;
the cap removes the unbounded upper tail of E_Q φ*(T) for exponential links (χ²: E_Q e^{2u}).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import optimize

from dro_theory.divergences import Divergence
from estimators.phi_mi._config import FitConfig
from estimators.phi_mi._scoring import EXP_LINK_MAX, link, score_matrix, tight_parts

__all__ = ["AffineCritic", "Calibration", "calibrate"]

#: most validation rows used to calibrate the link, and product pairs per row (k-shifted
#: pairs (x_i, y_{i+k}); all m(m − 1) made one Hellinger λ-solve take ~18 s at m = 700)
_CALIBRATION_ROWS = 2048
_CALIBRATION_NEGATIVES = 64
#: log a is searched in [−6, 6]: a ∈ [0.0025, 403] covers any useful sharpening/shrinkage
_LOG_SCALE_RANGE = 6.0
#: headroom below EXP_LINK_MAX for the largest calibrated score of an exponential link, where
#: float64 cancellation in 2(e^{u} − E e^{u}) would otherwise make the bound garbage
_EXP_HEADROOM = 10.0
#: Nelder–Mead settings: initial simplex step in (log a, δ), tolerances, iteration cap
_SIMPLEX_STEP = 0.5
_XATOL, _FATOL, _MAXITER = 1e-3, 1e-7, 200


class AffineCritic(torch.nn.Module):
    """S_ij = a · min(v(x_i, y_j), v_max) + c for a trained log-ratio critic v."""

    def __init__(self, inner: torch.nn.Module, scale: float, shift: float, cap: float) -> None:
        super().__init__()
        self.inner = inner
        for name, value in (("scale", scale), ("shift", shift), ("cap", cap)):
            self.register_buffer(name, torch.tensor(value, dtype=torch.float64))
        self.scale: torch.Tensor
        self.shift: torch.Tensor
        self.cap: torch.Tensor

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Calibrated scores of shape (K, M)."""
        return self.scale * torch.clamp(self.inner(x, y), max=self.cap) + self.shift


@dataclass(frozen=True)
class Calibration:
    """(a, c) and the cap v_max found by :func:`calibrate`."""

    scale: float
    shift: float
    cap: float


def _pairs(
    critic: torch.nn.Module, x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Joint and capped product scores of the calibration rows, and the cap."""
    m = min(x.shape[0], _CALIBRATION_ROWS)
    v = score_matrix(critic, x[:m], y[:m])
    rows = torch.arange(m)
    shifts = torch.arange(1, min(_CALIBRATION_NEGATIVES, m - 1) + 1)
    joint = torch.diagonal(v)
    cap = float(joint.max())
    off = v[rows[:, None], (rows[:, None] + shifts[None, :]) % m].reshape(-1)
    return joint, torch.clamp(off, max=cap), cap


def _max_scale(div: Divergence) -> float:
    """Largest a allowed: the a of the optimal critic for v = log r, ∞ for TV.

    Squared Hellinger T = 1 − e^{−a v} is optimal at a = ½, Cressie–Read α < 1 at a = 1 − α
    (≤ ½ for the accepted α ≥ ½); then Var_P e^{−a v} = E_Q r^{1−2a} − (E_Q r^{1−a})² is finite
    for every Gaussian core, while a > ½ lets it be infinite. χ², JS, α > 1: a = 1. TV's link
    ½ tanh is bounded on both sides, so any a is safe (its optimum is a → ∞).
    """
    if div.name == "tv":
        return math.exp(_LOG_SCALE_RANGE)
    if div.name == "hellinger":
        return 0.5
    alpha = getattr(div, "alpha", None) if div.name == "cressie_read" else None
    if alpha is not None and alpha < 1.0:
        return 1.0 - float(alpha)
    return 1.0


def calibrate(
    critic: torch.nn.Module, x_val: NDArray[np.float64], y_val: NDArray[np.float64], cfg: FitConfig
) -> Calibration:
    r"""(a, c, v_max) maximising the target bound of link(a·min(v, v_max) + c) on validation.

    c = −log mean_Q e^{a v} + δ; Nelder–Mead over (log a, δ) from (log min(a_max, 1), 0),
    with a ≤ a_max of :func:`_max_scale`: a larger a sharpens the ratio beyond the optimal
    critic, which the finite-sample bound of a heavy-tailed link rewards on the calibration
    rows and punishes on new rows (Hellinger at a = 62: −1e24 on test). Exponential links
    also keep δ ≤ 0. The test split stays untouched.
    """
    joint, off, cap = _pairs(critic, x_val, y_val)
    div = cfg.div
    exp_guard = cfg.exp_link and not math.isfinite(div.conjugate_domain[1]) and div.name != "kl"
    log_a_max = math.log(_max_scale(div))

    def affine(theta: NDArray[np.float64]) -> tuple[float, float]:
        log_a = float(np.clip(theta[0], -_LOG_SCALE_RANGE, _LOG_SCALE_RANGE))
        delta = float(theta[1])
        log_a = min(log_a, log_a_max)
        if exp_guard:
            delta = min(delta, 0.0)
        a = math.exp(log_a)
        lme = float(torch.logsumexp(a * off, dim=0)) - math.log(off.numel())
        return a, -lme + delta

    def loss(theta: NDArray[np.float64]) -> float:
        a, c = affine(theta)
        if exp_guard and a * cap + c > EXP_LINK_MAX - _EXP_HEADROOM:
            return math.inf
        with torch.no_grad():
            if cfg.bound == "tight":
                value = float(tight_parts(a * joint + c, a * off + c, div, cfg.exp_link))
            else:
                t_joint = link(a * joint + c, div, cfg.exp_link)
                t_off = link(a * off + c, div, cfg.exp_link)
                value = float(t_joint.mean() - div.conjugate(t_off).mean())
        return -value if math.isfinite(value) else math.inf

    start = np.array([min(log_a_max, 0.0), 0.0])
    while not math.isfinite(loss(start)) and start[0] > -_LOG_SCALE_RANGE:
        start[0] -= _SIMPLEX_STEP  # shrink a until the start is feasible
    simplex = start + np.array([[0.0, 0.0], [_SIMPLEX_STEP, 0.0], [0.0, _SIMPLEX_STEP]])
    res = optimize.minimize(
        loss,
        start,
        method="Nelder-Mead",
        options={"initial_simplex": simplex, "xatol": _XATOL, "fatol": _FATOL, "maxiter": _MAXITER},
    )
    theta = res.x if loss(res.x) <= loss(start) else start
    a, c = affine(theta)
    return Calibration(a, c, cap)
