r"""The penalised φ-CL-DRO loss (Wu et al., NeurIPS 2023, Def. 3.1 with the Lagrangian at
α = τ; Thm 3.2, 3.6).

Per anchor, with Q0 uniform over the N negatives,

.. math:: \ell_i = -s^+_i + \max_{Q} \{E_Q s - \tau D_\phi(Q\|Q_0)\}
          = -s^+_i + \min_c \Big\{ c + \frac{\tau}{N}\sum_{j\in\mathrm{neg}(i)}
            \phi^*\!\Big(\frac{s_{ij}-c}{\tau}\Big) \Big\}.

For KL the value is exactly τ log mean e^{s/τ}: the loss equals τ · population InfoNCE.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dro_theory.divergences import Divergence, resolve_divergence
from estimators.bounds import optimal_shift
from estimators.losses.layout import (
    AnchorIndex,
    Reduction,
    negative_mask,
    positive_scores,
    prepare,
    reduce_loss,
)

__all__ = ["phi_cl_dro"]


def _shift(u: Tensor, div: Divergence, weights: Tensor | None) -> Tensor:
    """λ* per row without gradient, shape (R, 1)."""
    with torch.no_grad():
        lam = optimal_shift(u.detach(), div, dim=1, weights=weights)
        return torch.as_tensor(lam, dtype=u.dtype, device=u.device).reshape(u.shape[0], 1)


def phi_cl_dro(
    sim: Tensor,
    temperature: float,
    divergence: str | Divergence = "kl",
    *,
    layout: str | AnchorIndex = "population",
    reduction: Reduction = "mean",
    **legacy: Tensor | None,
) -> Tensor:
    r"""Penalised φ-CL-DRO loss (equation in the module docstring).

    Substituting c = τλ, the inner value is τ·min_λ {λ + mean φ*(s/τ − λ)}; λ* comes from
    :func:`estimators.bounds.optimal_shift` per row without gradient; by the envelope theorem
    the gradient at fixed λ* is the gradient of the minimum. For KL (φ*(u) = e^{u−1}),
    λ* = log mean e^{s/τ} − 1 and the loss equals τ · population InfoNCE with no additive
    constant.

    Parameters
    ----------
    sim : torch.Tensor
        Shape (R, M) similarities.
    temperature : float
        τ > 0 (the penalty multiplier α).
    divergence : str or Divergence
        Catalogue name or spec (``"kl"``, ``"chi2"``, ``"cressie_read:1.5"``) or an instance.
    layout : {"population", "nt_xent"} or AnchorIndex
        See :mod:`estimators.losses.layout`.
    reduction : {"mean", "sum", "none"}
    **legacy
        ``pos_index``, ``self_index``, ``neg_mask``: the older keyword form of ``layout``.

    Returns
    -------
    torch.Tensor
        0-d, or shape (R,) for ``reduction="none"``; in units of s (not divided by τ).

    Raises
    ------
    InputError
        Bad ``sim``, τ, layout, reduction or an unknown divergence.
    """
    sim, tau, idx = prepare(sim, temperature, layout, legacy)
    div = resolve_divergence(divergence)
    neg = negative_mask(idx, int(sim.shape[1]))
    rows, cols = sim.shape
    if idx.n_neg is None:
        # every row has the same number of negatives; pack them into (R, N)
        n = cols - (1 if idx.self_index is None else 2)
        u = (sim / tau)[neg].reshape(rows, n)
        lam = _shift(u, div, None)
        inner = lam.squeeze(1) + div.conjugate(u - lam).mean(dim=1)
    else:
        # N varies per row: weights 1/N_i on the negatives, 0 elsewhere; the other entries get
        # the row's mean negative (inside dom φ* after the shift) so φ* stays finite there
        w = neg.to(sim.dtype) / idx.n_neg.to(sim.dtype).unsqueeze(1)
        u_all = sim / tau
        fill = (u_all.detach() * w).sum(dim=1, keepdim=True)
        u = torch.where(neg, u_all, fill)
        lam = _shift(u, div, w)
        inner = lam.squeeze(1) + (w * div.conjugate(u - lam)).sum(dim=1)
    return reduce_loss(tau * inner - positive_scores(sim, idx), reduction)
