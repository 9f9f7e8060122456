"""Contrastive losses on a similarity matrix, one module per loss family.

* :mod:`~estimators.losses.layout` — the anchor/positive/negative layout (:class:`AnchorIndex`),
  built and checked once, passed to every loss as ``layout=``; the one negative mask.
* :mod:`~estimators.losses.infonce_loss` — population InfoNCE and NT-Xent.
* :mod:`~estimators.losses.adnce_loss` — ADNCE.
* :mod:`~estimators.losses.debiased_loss` — DCL and HCL.
* :mod:`~estimators.losses.phi_dro_loss` — φ-CL-DRO.
* :mod:`~estimators.losses.registry` — loss name → loss, used by training and the claims.

All losses are dtype agnostic, work in the log domain and take ``reduction`` ∈ {"mean", "sum",
"none"}. See ``docs/losses.md``.
"""

from __future__ import annotations

from estimators.losses.adnce_loss import adnce, adnce_weights
from estimators.losses.debiased_loss import dcl, hcl
from estimators.losses.infonce_loss import (
    infonce_population,
    nt_xent,
    nt_xent_from_sim,
    pair_similarity,
)
from estimators.losses.layout import AnchorIndex, negative_mask
from estimators.losses.phi_dro_loss import phi_cl_dro
from estimators.losses.registry import LOSS_REGISTRY, LossParams, contrastive_loss

__all__ = [
    "LOSS_REGISTRY",
    "AnchorIndex",
    "LossParams",
    "adnce",
    "adnce_weights",
    "contrastive_loss",
    "dcl",
    "hcl",
    "infonce_population",
    "negative_mask",
    "nt_xent",
    "nt_xent_from_sim",
    "pair_similarity",
    "phi_cl_dro",
]
