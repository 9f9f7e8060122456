"""dro_theory: φ-divergence balls, verified worst cases, duals, temperature ↔ radius, expansions.

numpy / scipy only (cvxpy is imported inside the primal solver alone, torch never). The public
names below are imported lazily so that ``import dro_theory`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from dro_theory.divergences import (
    DIVERGENCE_NAMES,
    Divergence,
    divergence_from_spec,
    get_divergence,
)
from dro_theory.errors import CldroError, DROSolveError, InputError

_LAZY = {
    "WorstCase": "dro_theory.worst_case",
    "worst_case": "dro_theory.worst_case",
    "worst_case_dual": "dro_theory.duals",
    "penalized_worst_case": "dro_theory.duals",
    "PenalizedWorstCase": "dro_theory.duals",
    "radius_for_temperature": "dro_theory.lagrange",
    "temperature_for_radius": "dro_theory.lagrange",
    "lagrange_curve": "dro_theory.lagrange",
    "LagrangeCurve": "dro_theory.lagrange",
    "mean_variance": "dro_theory.expansions",
    "MeanVariance": "dro_theory.expansions",
}

__all__ = [
    "DIVERGENCE_NAMES",
    "CldroError",
    "DROSolveError",
    "Divergence",
    "InputError",
    "divergence_from_spec",
    "get_divergence",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dro_theory' has no attribute {name!r}")
