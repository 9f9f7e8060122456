r"""The bounds PhiMI trains and reports, on a K×K matrix of raw critic scores.

Wu et al. (NeurIPS 2023), Theorem 3.6: the tight (shift-optimised) Fenchel bound
I_φ ≥ E_P T − min_λ [λ + E_Q φ*(T − λ)], with P the diagonal (joint pairs) and Q the
off-diagonal entries (product of the marginals).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from numpy.typing import NDArray

from dro_theory.divergences import Divergence
from estimators.bounds import constrain_to_domain, dv, infonce, nwj, optimal_shift, phi_plain

__all__ = [
    "EXP_LINK_MAX",
    "bound_value",
    "evaluate",
    "link",
    "score_matrix",
    "tight",
    "tight_parts",
]

#: largest raw score fed to an exponential link: e^{2·30} ≈ 1e26 stays finite in float32
EXP_LINK_MAX = 30.0
#: most activations (rows × columns × width) of a concat critic held at once, ~128 MiB
_MAX_ACTIVATIONS = 1 << 24


def link(raw: torch.Tensor, div: Divergence, exp_link: bool = False) -> torch.Tensor:
    r"""Critic T = link(v) of the raw network output v, matched to the optimal critic φ'(r).

    Bounded dom φ*: :func:`estimators.bounds.constrain_to_domain`. χ² with ``exp_link``:
    T = 2(e^{v} − 1) = φ'(e^{v}); Cressie–Read α > 1 with ``exp_link``:
    T = (e^{(α−1)v} − 1)/(α − 1) = φ'(e^{v}) (v clamped at :data:`EXP_LINK_MAX`). Otherwise the
    identity (KL: φ'(e^{v}) = 1 + v).
    """
    _, hi, _ = div.conjugate_domain
    if math.isfinite(hi):
        return constrain_to_domain(raw, div)
    if exp_link and div.name == "chi2":
        return 2.0 * torch.expm1(torch.clamp(raw, max=EXP_LINK_MAX))
    if exp_link and div.name == "cressie_read":
        a1 = float(div.alpha) - 1.0  # type: ignore[attr-defined]
        return torch.expm1(a1 * torch.clamp(raw, max=EXP_LINK_MAX)) / a1
    return raw


def tight(scores: torch.Tensor, div: Divergence, exp_link: bool = False) -> torch.Tensor:
    """Tight bound of a (K, K) raw score matrix, valid on the whole support.

    Unbounded dom φ*: exactly :func:`estimators.bounds.phi_tight`. Bounded dom φ* = (−∞, hi):
    T = link(S) < hi and λ̂ = max(λ*, 0), so T − λ̂ < hi on every pair (λ-objective convex:
    this is its minimum over λ ≥ 0).
    """
    k = scores.shape[0]
    off = scores[~torch.eye(k, dtype=torch.bool, device=scores.device)]
    return tight_parts(torch.diagonal(scores), off, div, exp_link)


def tight_parts(
    joint: torch.Tensor, product: torch.Tensor, div: Divergence, exp_link: bool = False
) -> torch.Tensor:
    """:func:`tight` from raw joint scores (P) and raw product scores (Q) given separately."""
    _, hi, _ = div.conjugate_domain
    joint, product = link(joint, div, exp_link), link(product, div, exp_link)
    lam = optimal_shift(product, div)
    if math.isfinite(hi):
        lam = torch.clamp(lam, min=0.0)
    return joint.mean() - (lam + div.conjugate(product - lam).mean())


def bound_value(
    scores: torch.Tensor, bound: str, div: Divergence, exp_link: bool = False
) -> torch.Tensor:
    """The bound named ``bound`` on a (K, K) score matrix of *raw* critic outputs."""
    if bound == "tight":
        return tight(scores, div, exp_link)
    if bound == "plain":
        return phi_plain(link(scores, div, exp_link), div)
    if bound == "infonce":
        return infonce(scores)
    if bound == "nwj":
        return nwj(scores)
    return dv(scores)


def _device(critic: torch.nn.Module) -> torch.device:
    for t in (*critic.parameters(), *critic.buffers()):
        return t.device
    return torch.device("cpu")


def score_matrix(
    critic: torch.nn.Module, x: NDArray[np.float64], y: NDArray[np.float64]
) -> torch.Tensor:
    """Full float64 score matrix S_ij = critic(x_i, y_j) on the CPU, computed in row chunks."""
    dev = _device(critic)
    was_training = critic.training
    critic.eval()
    ev = copy.deepcopy(critic).to(dev, torch.float64)
    xt = torch.as_tensor(x, dtype=torch.float64, device=dev)
    yt = torch.as_tensor(y, dtype=torch.float64, device=dev)
    n = xt.shape[0]
    widths = [m.out_features for m in ev.modules() if isinstance(m, torch.nn.Linear)]
    concat = any(type(m).__name__ == "ConcatCritic" for m in ev.modules())
    width = max(widths) if (concat and widths) else None
    rows = n if width is None else max(1, _MAX_ACTIVATIONS // max(1, yt.shape[0] * width))
    with torch.no_grad():
        parts = [ev(xt[i : i + rows], yt).cpu() for i in range(0, n, rows)]
    critic.train(was_training)
    return torch.cat(parts, dim=0)


def evaluate(
    critic: torch.nn.Module,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    bound: str,
    div: Divergence,
    block: int,
    exp_link: bool = False,
) -> float:
    """The bound on rows (x, y), averaged over disjoint blocks of at most ``block`` rows."""
    n = x.shape[0]
    n_blocks = max(1, math.ceil(n / block))
    values = []
    for rows in np.array_split(np.arange(n), n_blocks):
        s = score_matrix(critic, x[rows], y[rows])
        values.append(float(bound_value(s, bound, div, exp_link)))
    return float(np.mean(values))
