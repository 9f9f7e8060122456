r"""InfoNCE in its two forms: the population form of the theory and NT-Xent (SimCLR).

With s⁺ the positive score, s_1..s_N the negatives' scores (the layout,
:mod:`estimators.losses.layout`) and τ > 0, per anchor:

* :func:`infonce_population` — ℓ = −s⁺/τ + log (1/N) Σ_j e^{s_j/τ} (Wu et al. 2023, Eq. 1 with
  E_{Q0}, Thm 3.2): no positive in the denominator, a mean over the negatives.
* :func:`nt_xent_from_sim` / :func:`nt_xent` — ℓ = −log(e^{s⁺/τ} / (e^{s⁺/τ} + Σ_j e^{s_j/τ}))
  (Chen et al. 2020, SimCLR; Oord et al. 2018, CPC). The two differ exactly by
  NT-Xent = population + log N + log(1 + e^{s⁺/τ} / Σ_j e^{s_j/τ}).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dro_theory.errors import InputError
from estimators.losses.layout import (
    AnchorIndex,
    Reduction,
    log_negative_count,
    negatives_only,
    positive_scores,
    prepare,
    reduce_loss,
    with_minus_inf,
)

__all__ = ["infonce_population", "nt_xent", "nt_xent_from_sim", "pair_similarity"]


def pair_similarity(z1: Tensor, z2: Tensor, *, normalize: bool = True) -> Tensor:
    r"""The (2B, 2B) similarity matrix of the 2B embeddings ``cat(z1, z2)``.

    Parameters
    ----------
    z1, z2 : torch.Tensor
        Shape (B, d): the two views; row i of ``z1`` and row i of ``z2`` are a positive pair.
    normalize : bool
        L2-normalise the rows first, so that entries are cosine similarities in [−1, 1].

    Returns
    -------
    torch.Tensor
        Shape (2B, 2B), S_ij = z_iᵀ z_j with z = cat(z1, z2); the layout ``"nt_xent"``.

    Raises
    ------
    InputError
        ``z1`` or ``z2`` not a 2-D tensor, or their shapes differ.
    """
    for name, z in (("z1", z1), ("z2", z2)):
        if not isinstance(z, Tensor) or z.ndim != 2:
            found = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise InputError(f"{name}: expected a 2-D (B, d) tensor, found {found}")
    if z1.shape != z2.shape:
        raise InputError(f"z2: expected the shape of z1 {tuple(z1.shape)}, found {tuple(z2.shape)}")
    z = torch.cat([z1, z2], dim=0)
    if normalize:
        z = F.normalize(z, dim=1)
    return z @ z.T


def infonce_population(
    sim: Tensor,
    temperature: float,
    *,
    layout: str | AnchorIndex = "population",
    reduction: Reduction = "mean",
    **legacy: Tensor | None,
) -> Tensor:
    r"""Population-form InfoNCE (Wu et al. 2023, Eq. 1 with E_{Q0}; Thm 3.2).

    Per anchor, with Q0 the uniform distribution over its N negatives,

    .. math:: \ell_i = -\frac{s^+_i}{\tau}
              + \log \frac1N \sum_{j \in \mathrm{neg}(i)} e^{s_{ij}/\tau},

    i.e. ℓ_i = −log(e^{s⁺/τ} / E_{Q0} e^{s/τ}); the authors' graph ``easy`` loss.

    Parameters
    ----------
    sim : torch.Tensor
        Shape (R, M) similarity matrix.
    temperature : float
        τ > 0.
    layout : {"population", "nt_xent"} or AnchorIndex
        Which columns are each row's positive and negatives
        (:mod:`estimators.losses.layout`); a prebuilt :class:`AnchorIndex` is not re-checked.
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
        Bad ``sim``, τ, layout or reduction.
    """
    sim, tau, idx = prepare(sim, temperature, layout, legacy)
    logits = negatives_only(sim / tau, idx)
    loss = torch.logsumexp(logits, dim=1) - log_negative_count(sim, idx)
    return reduce_loss(loss - positive_scores(sim, idx) / tau, reduction)


def nt_xent_from_sim(
    sim: Tensor,
    temperature: float,
    *,
    layout: str | AnchorIndex = "nt_xent",
    reduction: Reduction = "mean",
    **legacy: Tensor | None,
) -> Tensor:
    r"""NT-Xent / standard InfoNCE (Chen et al. 2020, SimCLR; the authors' image loss).

    Per anchor, with the positive IN the denominator and a sum over the N negatives,

    .. math:: \ell_i = -\log \frac{e^{s^+_i/\tau}}
              {e^{s^+_i/\tau} + \sum_{j \in \mathrm{neg}(i)} e^{s_{ij}/\tau}}.

    With ``layout="nt_xent"`` (default) ``sim`` is the (2B, 2B) matrix of
    :func:`pair_similarity`; with ``"population"`` it is SimCSE's cross-entropy over each row
    with target column i. Parameters, returns and errors as :func:`infonce_population`.
    """
    sim, tau, idx = prepare(sim, temperature, layout, legacy)
    logits = with_minus_inf(sim / tau, idx, positive=False)
    loss = F.cross_entropy(logits, idx.pos_index, reduction="none")
    return reduce_loss(loss, reduction)


def nt_xent(
    z1: Tensor,
    z2: Tensor,
    temperature: float,
    *,
    normalize: bool = True,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""NT-Xent on two views: :func:`nt_xent_from_sim` of :func:`pair_similarity` (z1, z2).

    Parameters
    ----------
    z1, z2 : torch.Tensor
        Shape (B, d) embeddings of the two views (row i of each is a positive pair).
    temperature : float
        τ > 0.
    normalize : bool
        Cosine similarity (L2-normalise first), as in SimCLR.
    reduction : {"mean", "sum", "none"}
        ``"none"`` gives shape (2B,): anchors cat(z1, z2) in order.
    """
    return nt_xent_from_sim(
        pair_similarity(z1, z2, normalize=normalize), temperature, reduction=reduction
    )
