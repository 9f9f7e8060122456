r"""Debiased and hard-negative contrastive losses: DCL (Chuang et al., NeurIPS 2020) and HCL
(Robinson et al., ICLR 2021), in the authors' form.

With pos_i = e^{s⁺/τ}, importance weights v_ij = e^{β s_ij/τ} over the N negatives and
R_i = Σ_j v_ij e^{s_ij/τ} / ((1/N) Σ_j v_ij),

.. math:: Ng_i = \max\Big( \frac{-\tau^+ N\,\mathrm{pos}_i + R_i}{1-\tau^+},\;
          N e^{-1/\tau} \Big), \qquad
          \ell_i = -\log \frac{\mathrm{pos}_i}{\mathrm{pos}_i + Ng_i}.

τ⁺ is the class prior; β = 0 gives DCL; τ⁺ = 0 and β = 0 give NT-Xent (floor inactive).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from dro_theory.errors import InputError
from estimators.losses.layout import (
    AnchorIndex,
    Reduction,
    finite_float,
    log_negative_count,
    negatives_only,
    positive_scores,
    prepare,
    reduce_loss,
)

__all__ = ["dcl", "hcl"]


def _check_prior(tau_plus: object, beta: object) -> tuple[float, float]:
    tp = finite_float(tau_plus, "tau_plus")
    if not 0.0 <= tp < 1.0:
        raise InputError(f"tau_plus: expected a class prior in [0, 1), found {tp!r}")
    b = finite_float(beta, "beta")
    if b < 0:
        raise InputError(f"beta: expected a number >= 0, found {b!r}")
    return tp, b


def hcl(
    sim: Tensor,
    temperature: float,
    *,
    tau_plus: float = 0.1,
    beta: float = 1.0,
    layout: str | AnchorIndex = "nt_xent",
    reduction: Reduction = "mean",
    **legacy: Tensor | None,
) -> Tensor:
    r"""Hard-negative contrastive loss (Robinson et al., ICLR 2021; equation in the module
    docstring). As in the authors' code the weights v are NOT detached.

    Computed in the log domain: ℓ_i = softplus(log Ng_i − s⁺/τ),
    log R_i = log N + lse_j((1+β)s_ij/τ) − lse_j(β s_ij/τ), and
    log(R − T) = log R + log(−expm1(log T − log R)) for T = τ⁺ N pos < R, with R − T clamped
    below at eps·R (below that it is zero within the rounding of R and T); the floor
    N e^{−1/τ} is used when T ≥ R or the debiased term is below it.

    Parameters
    ----------
    sim : torch.Tensor
        Shape (R, M) similarities.
    temperature : float
        τ > 0.
    tau_plus : float
        Class prior τ⁺ ∈ [0, 1).
    beta : float
        Hardness concentration β ≥ 0.
    layout : {"nt_xent", "population"} or AnchorIndex
        See :mod:`estimators.losses.layout`.
    reduction : {"mean", "sum", "none"}
    **legacy
        ``pos_index``, ``self_index``, ``neg_mask``: the older keyword form of ``layout``.

    Returns
    -------
    torch.Tensor
        0-d, or shape (R,) for ``reduction="none"``.

    Raises
    ------
    InputError
        Bad ``sim``, τ, layout, reduction, τ⁺ outside [0, 1) or β < 0.
    """
    sim, tau, idx = prepare(sim, temperature, layout, legacy)
    tau_plus, beta = _check_prior(tau_plus, beta)
    log_n = log_negative_count(sim, idx)
    pos_logit = positive_scores(sim, idx) / tau
    masked = negatives_only(sim, idx)
    log_r = torch.logsumexp(masked * ((1.0 + beta) / tau), dim=1)
    if beta != 0.0:
        log_r = log_r + log_n - torch.logsumexp(masked * (beta / tau), dim=1)
    floor = log_n - 1.0 / tau
    if tau_plus == 0.0:
        log_ng = torch.clamp(log_r, min=floor)
    else:
        log_t = math.log(tau_plus) + log_n + pos_logit
        eps = torch.finfo(sim.dtype).eps
        d = torch.clamp(log_t - log_r, max=math.log1p(-eps))  # R − T ≥ eps·R
        debiased = log_r + torch.log(-torch.expm1(d)) - math.log1p(-tau_plus)
        use = (log_t < log_r) & (debiased > floor)
        log_ng = torch.where(use, debiased, floor)
    return reduce_loss(F.softplus(log_ng - pos_logit), reduction)


def dcl(
    sim: Tensor,
    temperature: float,
    *,
    tau_plus: float = 0.1,
    layout: str | AnchorIndex = "nt_xent",
    reduction: Reduction = "mean",
    **legacy: Tensor | None,
) -> Tensor:
    r"""Debiased contrastive loss (Chuang et al., NeurIPS 2020): :func:`hcl` with β = 0.

    .. math:: Ng_i = \max\Big( \frac{-\tau^+ N e^{s^+_i/\tau} + \sum_{j} e^{s_{ij}/\tau}}
              {1-\tau^+},\; N e^{-1/\tau} \Big), \qquad
              \ell_i = -\log \frac{e^{s^+_i/\tau}}{e^{s^+_i/\tau} + Ng_i}.

    Parameters, returns and errors as :func:`hcl`.
    """
    return hcl(
        sim,
        temperature,
        tau_plus=tau_plus,
        beta=0.0,
        layout=layout,
        reduction=reduction,
        **legacy,
    )
