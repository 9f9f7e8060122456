r"""ADNCE: InfoNCE with detached Gaussian weights on the negatives (Wu et al. 2023, Sec. 4.2).

Weights on the RAW similarity s (not on e^{s/τ}),

.. math:: w_{ij} = \exp\!\big(-(s_{ij}-\mu)^2/(2\sigma^2)\big), \qquad
          \tilde w_{ij} = w_{ij} \big/ \tfrac{1}{|S_i|}\sum_{k \in S_i} w_{ik},

computed without gradient (the nominal w̃·Q0 is fixed, so τ·ℓ = −s⁺ + max_Q {E_Q s −
τ KL(Q‖w̃ Q0)} holds). The constant 1/(σ√(2π)) cancels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dro_theory.checks import check_positive
from estimators.losses.layout import (
    AnchorIndex,
    Reduction,
    check_choice,
    check_sim,
    finite_float,
    log_negative_count,
    positive_scores,
    prepare,
    reduce_loss,
    resolve_layout,
    with_minus_inf,
)

__all__ = ["POSITIVE_MODES", "adnce", "adnce_weights"]

#: how ADNCE treats the positive (see :func:`adnce`)
POSITIVE_MODES = ("unweighted", "none", "weighted")


def _log_weights(
    sim: Tensor, idx: AnchorIndex, mu: float, sigma: float, *, include_positive: bool
) -> Tensor:
    """log w̃ without gradient: Gaussian log-weights minus their log-mean over the
    normalisation set (the negatives, plus the positive when ``include_positive``); −inf
    outside it. One fused in-place pass: (s − μ)² · (−1/(2σ²)), exclusion, row log-mean-exp."""
    with torch.no_grad():
        logw = sim.detach() - mu
        logw.mul_(logw).mul_(-0.5 / (sigma * sigma))
        logw = with_minus_inf(logw, idx, positive=not include_positive, inplace=True)
        log_n = log_negative_count(sim, idx, 1 if include_positive else 0)
        if isinstance(log_n, Tensor):
            log_n = log_n.unsqueeze(1)
        logw.sub_(torch.logsumexp(logw, dim=1, keepdim=True) - log_n)
        return logw


def _gaussian(mu: object, sigma: object, positive: object) -> tuple[float, float, str]:
    sigma = check_positive(sigma, "sigma")
    return finite_float(mu, "mu"), sigma, check_choice(positive, "positive", POSITIVE_MODES)


def adnce_weights(
    sim: Tensor,
    *,
    mu: float = 0.7,
    sigma: float = 0.5,
    positive: str = "unweighted",
    layout: str | AnchorIndex = "nt_xent",
    **legacy: Tensor | None,
) -> Tensor:
    r"""The normalised ADNCE weights w̃ without gradient (for logging their range).

    w̃_ij as in the module docstring, over set(i) = the anchor's negatives (``positive`` =
    "unweighted" / "none") or its negatives and positive ("weighted"); 0 outside set(i).

    Returns
    -------
    torch.Tensor
        Shape (R, M), no gradient; each row averages to 1 over set(i).

    Raises
    ------
    InputError
        Bad ``sim``, layout, ``sigma`` ≤ 0, non-finite ``mu`` or an unknown ``positive``.
    """
    sim = check_sim(sim)
    mu, sigma, mode = _gaussian(mu, sigma, positive)
    idx = resolve_layout(sim, layout, **legacy)
    return _log_weights(sim, idx, mu, sigma, include_positive=mode == "weighted").exp()


def adnce(
    sim: Tensor,
    temperature: float,
    *,
    mu: float = 0.7,
    sigma: float = 0.5,
    positive: str = "unweighted",
    layout: str | AnchorIndex = "nt_xent",
    reduction: Reduction = "mean",
    **legacy: Tensor | None,
) -> Tensor:
    r"""ADNCE (Wu et al., NeurIPS 2023, Sec. 4.2), weights w̃ as in the module docstring.

    ``"unweighted"`` (authors' image code; default): S_i = neg(i),
        ℓ_i = −log( e^{s⁺/τ} / (e^{s⁺/τ} + Σ_{j∈neg} w̃_ij e^{s_ij/τ}) ).
    ``"none"`` (graph code, the paper's population form; use ``layout="population"``):
        S_i = neg(i), ℓ_i = −s⁺/τ + log (1/N) Σ_{j∈neg} w̃_ij e^{s_ij/τ}.
    ``"weighted"`` (sentence code): S_i = neg(i) ∪ {pos(i)},
        ℓ_i = −log( e^{s⁺/τ} / Σ_{j∈S_i} w̃_ij e^{s_ij/τ} ).

    As σ → ∞, w̃ → 1 and each mode reduces to its InfoNCE (NT-Xent for "unweighted" and
    "weighted", population InfoNCE for "none").

    Parameters
    ----------
    sim : torch.Tensor
        Shape (R, M) raw cosine similarities.
    temperature : float
        τ > 0.
    mu, sigma : float
        Centre and width of the Gaussian (defaults: the authors' CIFAR-10 values 0.7, 0.5).
    positive : {"unweighted", "none", "weighted"}
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
        As :func:`adnce_weights`, or τ not a finite number > 0.
    """
    sim, tau, idx = prepare(sim, temperature, layout, legacy)
    mu, sigma, mode = _gaussian(mu, sigma, positive)
    # offset = log w̃ (no grad), −inf off the normalisation set; for "unweighted" the positive's
    # column gets offset 0, so logits = s/τ + offset holds the plain positive logit there
    offset = _log_weights(sim, idx, mu, sigma, include_positive=mode == "weighted")
    if mode == "unweighted":
        offset[torch.arange(idx.rows, device=sim.device), idx.pos_index] = 0.0
    pos_offset = positive_scores(offset, idx) if mode == "weighted" else None
    logits = offset.add_(sim, alpha=1.0 / tau)  # in place on the no-grad buffer; grad wrt sim
    if mode == "none":
        loss = (
            torch.logsumexp(logits, dim=1)
            - log_negative_count(sim, idx)
            - positive_scores(sim, idx) / tau
        )
    else:  # −log(e^{s⁺/τ} / Σ_{S_i} w̃ e^{s/τ}) = cross-entropy on the positive's column
        loss = F.cross_entropy(logits, idx.pos_index, reduction="none")
        if pos_offset is not None:  # logits[pos] = s⁺/τ + log w̃_pos; the numerator is e^{s⁺/τ}
            loss = loss + pos_offset
    return reduce_loss(loss, reduction)
