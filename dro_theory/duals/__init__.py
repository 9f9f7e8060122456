r"""Worst cases in φ-divergence balls through their one- or two-variable duals.

One module per solver family, each exposing ``constrained`` and ``penalized`` over a batch of
standardised rows, and one registry keyed by the divergence:

* :mod:`~dro_theory.duals.kl` — Gibbs tilt q ∝ q0 e^{g/α} (Theorem 3.2);
* :mod:`~dro_theory.duals.chi2` — Pearson χ², closed forms and an exact support search;
* :mod:`~dro_theory.duals.power` — Cressie–Read, squared Hellinger, reverse KL;
* :mod:`~dro_theory.duals.threshold` — total variation, by sorting;
* :mod:`~dro_theory.duals.js` — Jensen–Shannon;
* :mod:`~dro_theory.duals.registry` — divergence → family; :mod:`~dro_theory.duals.verify` —
  the checks every answer passes; :mod:`~dro_theory.duals.batch` — standardised rows;
  :mod:`~dro_theory.duals.solve` — the entry points below.

The batch API (:func:`prepare_batch`, :func:`solve_batch`, :func:`solve_penalized_batch`,
:func:`kl_radius`) is what :mod:`dro_theory.lagrange` and :mod:`dro_theory.expansions` use.
"""

from __future__ import annotations

import numpy as np

from dro_theory.divergences import resolve_divergence
from dro_theory.duals.batch import Batch, FloatArray, prepare_batch
from dro_theory.duals.kl import tilt
from dro_theory.duals.solve import (
    ConstrainedBatch,
    PenalizedBatch,
    PenalizedWorstCase,
    penalized_worst_case,
    point_mass_limit,
    solve_batch,
    solve_penalized_batch,
    worst_case_dual,
)

__all__ = [
    "Batch",
    "ConstrainedBatch",
    "PenalizedBatch",
    "PenalizedWorstCase",
    "kl_radius",
    "penalized_worst_case",
    "point_mass_limit",
    "prepare_batch",
    "resolve_divergence",
    "solve_batch",
    "solve_penalized_batch",
    "worst_case_dual",
]


def kl_radius(batch: Batch, beta: FloatArray) -> FloatArray:
    r"""KL(q_β‖q0) of every row, q_β ∝ q0 e^{β g} on the standardised scores g = (f − μ)/σ.

    ``beta`` (shape (B,)) is the inverse temperature in standardised units, σ/τ for a raw
    temperature τ. Exact (shifted log-sum-exp, and a cancellation-free series for small β);
    constant rows are not special-cased here (callers set 0).
    """
    rows = batch.rows(np.arange(batch.d.shape[0]))
    return tilt(rows, np.asarray(beta, dtype=np.float64)).radius
