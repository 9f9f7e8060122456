r"""The implied-radius monitor (paper Cor. 3.4): η(τ) of the negatives a loss actually keeps.

For one anchor with kept negatives' similarities s_1..s_N and q0 uniform over them, the radius
implied by the temperature is η(τ) = KL(q_τ‖q0) with q_τ ∝ q0 e^{s/τ}
(:func:`dro_theory.lagrange.radius_for_temperature`), and its small-radius law is
η ≈ Var_{q0}(s)/(2τ²). With ``negatives="unbiased"`` the kept negatives are the other-class
ones only, so N varies per anchor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from validation.training.config import BatchLog, EpochRadius

__all__ = ["RadiusStats", "epoch_radius", "radius_stats"]


@dataclass(frozen=True)
class RadiusStats:
    """Means over the monitored anchors: exact η(τ), Var/(2τ²) and Var of the kept negatives."""

    eta_exact: float
    eta_approx: float
    neg_variance: float


def radius_stats(
    sim: torch.Tensor, keep: torch.Tensor, temperature: float, anchors: int
) -> RadiusStats:
    """η(τ) statistics of the first ``anchors`` rows of ``sim`` over their kept negatives.

    Parameters
    ----------
    sim : torch.Tensor
        (R, M) similarities.
    keep : torch.Tensor
        (R, M) bool, True on the negatives the loss uses for each row (at least 2 per row).
    temperature : float
        τ > 0.
    anchors : int
        Number of rows to monitor (from the top).

    Returns
    -------
    RadiusStats
        Computed in float64 on the host (one device-to-host copy of the monitored rows).
    """
    from dro_theory.lagrange import radius_for_temperature

    m = min(anchors, sim.shape[0])
    s = sim[:m].detach().to("cpu", torch.float64).numpy()
    k = keep[:m].to("cpu").numpy()
    counts = k.sum(axis=1)
    if m and bool((counts == counts[0]).all()):
        rows = s[k].reshape(m, int(counts[0]))
        var = rows.var(axis=1)
        eta = np.asarray(radius_for_temperature(rows, temperature), dtype=np.float64)
    else:  # N varies per anchor: one row at a time
        var = np.array([s[i][k[i]].var() for i in range(m)])
        eta = np.array([float(radius_for_temperature(s[i][k[i]], temperature)) for i in range(m)])
    return RadiusStats(
        eta_exact=float(eta.mean()),
        eta_approx=float((var / (2 * temperature**2)).mean()),
        neg_variance=float(var.mean()),
    )


def epoch_radius(log: list[BatchLog], epochs: int) -> tuple[EpochRadius, ...]:
    """Per-epoch means of the batch logs where the radius was computed (NaN when none)."""
    out = []
    for e in range(epochs):
        rows = [b for b in log if b.epoch == e and math.isfinite(b.eta_exact)]
        if not rows:
            out.append(EpochRadius(e + 1, math.nan, math.nan, math.nan))
            continue
        out.append(
            EpochRadius(
                epoch=e + 1,
                eta_exact_mean=float(np.mean([b.eta_exact for b in rows])),
                eta_approx_mean=float(np.mean([b.eta_approx for b in rows])),
                neg_variance_mean=float(np.mean([b.neg_variance for b in rows])),
            )
        )
    return tuple(out)
