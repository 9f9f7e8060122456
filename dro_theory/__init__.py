"""dro_theory: φ-divergence balls, verified worst cases, duals, temperature ↔ radius, expansions.

numpy / scipy only: cvxpy is imported inside the primal solver alone (``import dro_theory`` does
not load it), torch never.

Note that the function :func:`worst_case` shares its name with the module
``dro_theory.worst_case``; the package attribute is the function. To reach the module itself
use ``importlib.import_module("dro_theory.worst_case")`` or ``from dro_theory.worst_case import
...``.
"""

from __future__ import annotations

from dro_theory.advisor import TemperatureAdvice, advise, advise_radius, advise_temperature
from dro_theory.divergences import (
    DIVERGENCE_NAMES,
    Divergence,
    divergence_from_spec,
    get_divergence,
    resolve_divergence,
)
from dro_theory.duals import PenalizedWorstCase, penalized_worst_case, worst_case_dual
from dro_theory.errors import CldroError, DROSolveError, InputError
from dro_theory.expansions import MeanVariance, cumulants, mean_variance
from dro_theory.lagrange import (
    LagrangeCurve,
    lagrange_curve,
    radius_for_temperature,
    temperature_for_radius,
)
from dro_theory.worst_case import WorstCase, worst_case, worst_case_sweep

__all__ = [
    "DIVERGENCE_NAMES",
    "CldroError",
    "DROSolveError",
    "Divergence",
    "InputError",
    "LagrangeCurve",
    "MeanVariance",
    "PenalizedWorstCase",
    "TemperatureAdvice",
    "WorstCase",
    "advise",
    "advise_radius",
    "advise_temperature",
    "cumulants",
    "divergence_from_spec",
    "get_divergence",
    "lagrange_curve",
    "mean_variance",
    "penalized_worst_case",
    "radius_for_temperature",
    "resolve_divergence",
    "temperature_for_radius",
    "worst_case",
    "worst_case_dual",
    "worst_case_sweep",
]
