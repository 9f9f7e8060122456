r"""Total-variation dual (φ(t) = |t − 1|/2): the threshold family, exact by sorting.

Constrained: move mass η from the lowest scores to the maximisers (∝ q0); α* = max g − g at
the η-quantile from below, c* = max g − α*/2. Penalised: move all mass with g < max g − α to
the maximisers (each unit gains more than α). Exact, so no first-order check is needed.
"""

from __future__ import annotations

import numpy as np

from dro_theory.divergences import Divergence
from dro_theory.duals.batch import FloatArray, Rows, Solved

__all__ = ["constrained", "penalized"]


def constrained(div: Divergence, rows: Rows, eta: FloatArray) -> Solved:
    """Remove mass η from the lowest scores and put it on the maximisers (∝ q0)."""
    order = np.argsort(-rows.d, axis=1, kind="stable")  # ascending g
    ws = np.take_along_axis(rows.q0, order, axis=1)
    gs = rows.g_max[:, None] - np.take_along_axis(rows.d, order, axis=1)
    tops = np.take_along_axis(rows.top, order, axis=1)
    before = np.cumsum(ws, axis=1) - ws
    removed = np.where(tops, 0.0, np.clip(eta[:, None] - before, 0.0, ws))
    q_sorted = ws - removed
    q = np.empty_like(q_sorted)
    np.put_along_axis(q, order, q_sorted, axis=1)
    p_max = np.einsum("ij,ij->i", rows.q0, rows.top.astype(np.float64))
    q = q + np.where(rows.top, rows.q0 * (eta / p_max)[:, None], 0.0)
    # the η-quantile atom from below sets α* = max g − g_(j*), c* = max g − α*/2
    crossing = np.argmax((before + ws >= eta[:, None]) & (ws > 0), axis=1)
    alpha = rows.g_max - np.take_along_axis(gs, crossing[:, None], axis=1)[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rows.q0 > 0, q / rows.q0, 0.0)
    return Solved(ratio, alpha, rows.g_max - 0.5 * alpha, np.zeros_like(eta), 1)


def penalized(div: Divergence, rows: Rows, alpha: FloatArray) -> Solved:
    """Move all mass with g < max g − α to the maximisers (each unit gains > α)."""
    low = rows.d > alpha[:, None]
    moved = np.einsum("ij,ij->i", rows.q0, low.astype(np.float64))
    p_max = np.einsum("ij,ij->i", rows.q0, rows.top.astype(np.float64))
    ratio = np.where(low, 0.0, 1.0) + np.where(rows.top, (moved / p_max)[:, None], 0.0)
    return Solved(ratio, alpha, rows.g_max - 0.5 * alpha, np.zeros_like(alpha), 1)
