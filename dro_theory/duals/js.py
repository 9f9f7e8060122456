r"""Jensen–Shannon dual: L = w/(1 − w + ε), w = e^{−2(max g − g)/α}.

Penalised: ε > 0 from E_{q0} L = 1 (inner Newton in log ε). Constrained: α from
D_JS(q_α‖q0) = η (outer root in log(1/α), each step an inner solve).
"""

from __future__ import annotations

import numpy as np

from dro_theory._roots import Index, find_increasing_root
from dro_theory.divergences import Divergence
from dro_theory.duals.batch import FloatArray, Rows, Solved
from dro_theory.duals.verify import ACCEPT, no_normaliser

__all__ = ["constrained", "penalized"]


def penalized(div: Divergence, rows: Rows, alpha: FloatArray) -> Solved:
    """Inner solve: ε > 0 with E_{q0} L = 1 (Newton in log ε; E L decreases in ε)."""
    z = -2.0 * rows.d / alpha[:, None]
    w = np.exp(z)
    one_minus = -np.expm1(z)

    def fun(y: FloatArray, idx: Index) -> tuple[FloatArray, FloatArray]:
        eps = np.exp(y)
        den = one_minus[idx] + eps[:, None]
        a = w[idx] / den
        m = np.einsum("ij,ij->i", rows.q0[idx], a)
        m2 = np.einsum("ij,ij->i", rows.q0[idx], a / den)
        return -np.log(m), eps * m2 / m

    root = find_increasing_root(fun, np.zeros(alpha.shape[0]))
    ratio = w / (one_minus + np.exp(root.x)[:, None])
    ratio /= np.einsum("ij,ij->i", rows.q0, ratio)[:, None]
    return Solved(
        ratio, alpha, no_normaliser(alpha), root.residual, root.iterations, root.converged
    )


def constrained(div: Divergence, rows: Rows, eta: FloatArray) -> Solved:
    """Outer solve: D_JS(q_α‖q0) = η, increasing in t = log(1/α)."""
    log_eta = np.log(eta)

    def fun(t: FloatArray, idx: Index) -> tuple[FloatArray, None]:
        inner = penalized(div, rows.sub(idx), np.exp(-t))
        radius = np.einsum("ij,ij->i", rows.q0[idx], div.phi(inner.ratio))
        # D below its rounding (≤ 0, e.g. q ≈ q0 far out in α) is below any η > 0: −inf
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(radius > 0, np.log(radius), -np.inf) - log_eta[idx], None

    root = find_increasing_root(fun, 0.5 * np.log(2.0 * div.curvature * eta))
    solved = penalized(div, rows, np.exp(-root.x))
    residual = np.maximum(np.abs(root.residual), np.abs(solved.residual))
    settled = root.converged & (np.abs(solved.residual) <= ACCEPT)
    return Solved(solved.ratio, solved.alpha, solved.normalizer, residual, root.iterations, settled)
