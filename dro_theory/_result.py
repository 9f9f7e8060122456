"""The result type shared by the primal (cvxpy) and dual (closed-form / 1-D) worst-case solvers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["WorstCase"]


@dataclass(frozen=True)
class WorstCase:
    r"""Answer to  max_q Σ_i q_i f_i  s.t.  q ∈ simplex, D_φ(q‖q0) ≤ η.

    For a batch of B anchors (dual only) every numeric field carries a leading axis of size B.

    Attributes
    ----------
    value : float or ndarray, shape (B,)
        The optimal value V(η) = Σ q*_i f_i.
    q : ndarray, shape (n,) or (B, n)
        The worst-case distribution q*.
    multiplier : float or ndarray
        α* ≥ 0, the Lagrange multiplier of the divergence constraint (for KL: the temperature τ
        whose softmax(f/τ)·q0 is q*). 0 when the ball contains the point mass on argmax f.
    normalizer : float or ndarray
        c*, the multiplier of Σ q = 1 in the dual V = min_{α≥0, c} c + αη + α E_{q0} φ*((f−c)/α)
        with the catalogue's φ* (:mod:`dro_theory.divergences`); for KL c* = α(log E e^{f/α} − 1).
    status : str
        ``"optimal"``, ``"point_mass"`` (radius at or beyond the point-mass radius, no solve),
        ``"closed_form"`` or a solver's status.
    solver : str
        ``"dual"``/``"closed_form"`` or the cvxpy solver that produced the verified answer.
    divergence : str
        The divergence's spec, e.g. ``"kl"`` or ``"cressie_read:1.5"``.
    radius : float
        η.
    seconds : float
        Wall time of the solve (including verification and fallbacks).
    diagnostics : dict
        Free-form checks: constraint slack, dual gap, solvers tried and their statuses.
    """

    value: float | NDArray[np.float64]
    q: NDArray[np.float64]
    multiplier: float | NDArray[np.float64]
    normalizer: float | NDArray[np.float64]
    status: str
    solver: str
    divergence: str
    radius: float
    seconds: float = 0.0
    diagnostics: dict[str, object] = field(default_factory=dict)
