r"""Total-variation dual (φ(t) = |t − 1|/2): the threshold family, exact by sorting.

Constrained: move mass η from the lowest scores to the maximisers (∝ q0); α* = max g − g at
the η-quantile from below, c* = max g − α*/2. Penalised: move all mass with g < max g − α to
the maximisers (each unit gains more than α). Exact, so no first-order check is needed.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dro_theory.divergences import Divergence
from dro_theory.duals.batch import WARM_SIZE, FloatArray, Rows, Solved

__all__ = ["PARTIAL_MIN", "constrained", "penalized"]


#: rows at least this long sort only the prefix of lowest scores that carries mass η
#: (:func:`_prefix_order`) instead of the whole row
PARTIAL_MIN = 1 << 16
#: the prefix is cut where a strided sample puts this factor times η (plus :data:`_PAD`) of
#: mass, so that the sample's error (~1/√(sample size)) rarely leaves it short; a short prefix
#: is detected exactly and the full sort is used instead
_OVERSHOOT = 1.25
#: absolute extra mass in that cut (for small η, where the relative margin is tiny)
_PAD = 0.01


def _prefix_order(d: FloatArray, q0: FloatArray, eta: float) -> NDArray[np.intp] | None:
    """Ascending-g order of the atoms with d ≥ t for a cut t whose q0-mass reaches η.

    These atoms are exactly the first ones of the full stable sort (larger d first, ties by
    index), in the same order, so their cumulative masses are the full sort's. None when the
    prefix's mass falls short of η (then the caller sorts the whole row).
    """
    n = d.size
    step = max(1, n // WARM_SIZE)
    sample_d, sample_w = d[::step], q0[::step]
    by_d = np.argsort(-sample_d, kind="stable")
    cum = np.cumsum(sample_w[by_d])
    level = min(_OVERSHOOT * eta + _PAD, 1.0) * cum[-1]
    cut = sample_d[by_d[min(int(np.searchsorted(cum, level)), by_d.size - 1)]]
    idx = np.flatnonzero(d >= cut)
    order = idx[np.argsort(-d[idx], kind="stable")]
    if not np.cumsum(q0[order])[-1] >= eta:
        return None
    return order


def _row_order(d: FloatArray, q0: FloatArray, eta: float) -> NDArray[np.intp]:
    """The ascending-g order of the atoms that matter for radius η (a prefix or the whole row)."""
    order = _prefix_order(d, q0, eta) if d.size >= PARTIAL_MIN else None
    return np.argsort(-d, kind="stable") if order is None else order


def constrained(div: Divergence, rows: Rows, eta: FloatArray) -> Solved:
    """Remove mass η from the lowest scores and put it on the maximisers (∝ q0).

    Long rows sort only the prefix of lowest scores that carries mass η; atoms beyond it keep
    q = q0, exactly as in the full sort (their mass before them is already ≥ η).
    """
    size = rows.d.shape[0]
    q = np.array(rows.q0, dtype=np.float64)
    alpha = np.empty(size)
    for i in range(size):
        d, q0 = rows.d[i], rows.q0[i]
        order = _row_order(d, q0, float(eta[i]))
        ws = q0[order]
        gs = rows.g_max[i] - d[order]
        before = np.cumsum(ws) - ws
        removed = np.where(rows.top[i][order], 0.0, np.clip(eta[i] - before, 0.0, ws))
        q[i, order] = ws - removed
        # the η-quantile atom from below sets α* = max g − g_(j*), c* = max g − α*/2
        crossing = int(np.argmax((before + ws >= eta[i]) & (ws > 0)))
        alpha[i] = rows.g_max[i] - gs[crossing]
    p_max = np.einsum("ij,ij->i", rows.q0, rows.top.astype(np.float64))
    q += np.where(rows.top, rows.q0 * (eta / p_max)[:, None], 0.0)
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
