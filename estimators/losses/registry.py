"""One registry from a loss name to the loss: used by training and by the claim checks.

Every entry has the same call, ``fn(sim, temperature, layout, params, reduction)``, where
``params`` (:class:`LossParams`) carries the loss-specific settings; a loss ignores the
settings it does not have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from torch import Tensor

from estimators.losses.adnce_loss import adnce
from estimators.losses.debiased_loss import dcl, hcl
from estimators.losses.infonce_loss import infonce_population, nt_xent_from_sim
from estimators.losses.layout import AnchorIndex, Reduction, check_choice
from estimators.losses.phi_dro_loss import phi_cl_dro

__all__ = ["LOSS_REGISTRY", "LossFn", "LossParams", "contrastive_loss"]


@dataclass(frozen=True)
class LossParams:
    """Loss-specific settings (each loss reads the ones it has).

    Attributes
    ----------
    mu, sigma : float
        ADNCE Gaussian centre and width on the raw similarity.
    positive : str
        ADNCE's treatment of the positive (``"unweighted"``, ``"none"``, ``"weighted"``).
    tau_plus, beta : float
        DCL/HCL class prior τ⁺ and HCL hardness β.
    divergence : str
        φ-CL-DRO divergence name or spec.
    """

    mu: float = 0.7
    sigma: float = 0.5
    positive: str = "unweighted"
    tau_plus: float = 0.1
    beta: float = 1.0
    divergence: str = "kl"


LossFn = Callable[[Tensor, float, "str | AnchorIndex", LossParams, Reduction], Tensor]


def _infonce(
    sim: Tensor, tau: float, layout: str | AnchorIndex, p: LossParams, red: Reduction
) -> Tensor:
    return nt_xent_from_sim(sim, tau, layout=layout, reduction=red)


def _population(
    sim: Tensor, tau: float, layout: str | AnchorIndex, p: LossParams, red: Reduction
) -> Tensor:
    return infonce_population(sim, tau, layout=layout, reduction=red)


def _adnce(
    sim: Tensor, tau: float, layout: str | AnchorIndex, p: LossParams, red: Reduction
) -> Tensor:
    return adnce(
        sim, tau, mu=p.mu, sigma=p.sigma, positive=p.positive, layout=layout, reduction=red
    )


def _dcl(
    sim: Tensor, tau: float, layout: str | AnchorIndex, p: LossParams, red: Reduction
) -> Tensor:
    return dcl(sim, tau, tau_plus=p.tau_plus, layout=layout, reduction=red)


def _hcl(
    sim: Tensor, tau: float, layout: str | AnchorIndex, p: LossParams, red: Reduction
) -> Tensor:
    return hcl(sim, tau, tau_plus=p.tau_plus, beta=p.beta, layout=layout, reduction=red)


def _phi_cl_dro(
    sim: Tensor, tau: float, layout: str | AnchorIndex, p: LossParams, red: Reduction
) -> Tensor:
    return phi_cl_dro(sim, tau, p.divergence, layout=layout, reduction=red)


#: loss name → loss; "infonce" is the NT-Xent training form, "infonce_population" the theory's
LOSS_REGISTRY: Mapping[str, LossFn] = MappingProxyType(
    {
        "infonce": _infonce,
        "infonce_population": _population,
        "adnce": _adnce,
        "dcl": _dcl,
        "hcl": _hcl,
        "phi_cl_dro": _phi_cl_dro,
    }
)


def contrastive_loss(
    name: str,
    sim: Tensor,
    temperature: float,
    *,
    layout: str | AnchorIndex,
    params: LossParams | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """The loss ``name`` of :data:`LOSS_REGISTRY` on ``sim``.

    Parameters
    ----------
    name : str
        A key of :data:`LOSS_REGISTRY`.
    sim, temperature, layout, reduction
        As the losses (:mod:`estimators.losses.layout` for ``layout``).
    params : LossParams, optional
        Loss-specific settings (defaults when None).

    Raises
    ------
    InputError
        An unknown ``name``, or what the loss raises.
    """
    key = check_choice(name, "loss", tuple(LOSS_REGISTRY))
    return LOSS_REGISTRY[key](sim, temperature, layout, params or LossParams(), reduction)
