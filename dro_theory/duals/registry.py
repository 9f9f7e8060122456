r"""One registry from a divergence to its dual family (constrained and penalised solvers).

Each family module (:mod:`~dro_theory.duals.kl`, :mod:`~dro_theory.duals.chi2`,
:mod:`~dro_theory.duals.power`, :mod:`~dro_theory.duals.threshold`,
:mod:`~dro_theory.duals.js`) exposes ``constrained(div, rows, eta)`` and
``penalized(div, rows, alpha)`` over a batch of standardised rows. :func:`solve_constrained`
and :func:`solve_penalized` look the family up by the divergence's class and verify the answer
(:func:`dro_theory.duals.verify.verify`) unless the family checks itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dro_theory.divergences import (
    KL,
    ChiSquare,
    CressieRead,
    Divergence,
    Hellinger,
    JensenShannon,
    ReverseKL,
    TotalVariation,
)
from dro_theory.duals import chi2, js, kl, power, threshold
from dro_theory.duals.batch import FloatArray, Rows, Solved, SolveFn
from dro_theory.duals.verify import verify
from dro_theory.errors import InputError

__all__ = ["DUAL_FAMILIES", "DualFamily", "family_for", "solve_constrained", "solve_penalized"]


def _never(div: Divergence) -> bool:
    return False


@dataclass(frozen=True)
class DualFamily:
    """A family's two solvers, how its answers are checked, and its retry form if any.

    Attributes
    ----------
    name : str
        The family module's name.
    constrained, penalized : SolveFn
        The solvers at per-row radii η and temperatures α.
    self_checked : bool
        True when the solver reports its own check (KL: normalisation from its final pass;
        TV: exact by sort), so the general first-order check is skipped.
    retries : callable
        ``retries(div)``: whether rows failing the check are re-solved by the retry solvers.
    retry_constrained, retry_penalized : SolveFn or None
        The retry forms (the threshold form of the "plus" power shapes).
    """

    name: str
    constrained: SolveFn
    penalized: SolveFn
    self_checked: bool = False
    retries: Callable[[Divergence], bool] = _never
    retry_constrained: SolveFn | None = None
    retry_penalized: SolveFn | None = None


_POWER = DualFamily(
    "power",
    power.constrained,
    power.penalized,
    retries=power.has_threshold_form,
    retry_constrained=power.threshold_constrained,
    retry_penalized=power.threshold_penalized,
)

#: the divergence class → its dual family (subclasses resolve through their MRO)
DUAL_FAMILIES: dict[type[Divergence], DualFamily] = {
    KL: DualFamily("kl", kl.constrained, kl.penalized, self_checked=True),
    ChiSquare: DualFamily(
        "chi2",
        chi2.constrained,
        chi2.penalized,
        retries=power.has_threshold_form,
        retry_constrained=power.threshold_constrained,
        retry_penalized=power.threshold_penalized,
    ),
    CressieRead: _POWER,
    Hellinger: _POWER,
    ReverseKL: _POWER,
    TotalVariation: DualFamily(
        "threshold", threshold.constrained, threshold.penalized, self_checked=True
    ),
    JensenShannon: DualFamily("js", js.constrained, js.penalized),
}


def family_for(div: Divergence) -> DualFamily:
    """The dual family of ``div``; InputError when the catalogue has none."""
    for cls in type(div).__mro__:
        family = DUAL_FAMILIES.get(cls)
        if family is not None:
            return family
    raise InputError(f"divergence: no dual solver for {div}; expected a catalogue divergence")


def solve_constrained(div: Divergence, rows: Rows, eta: FloatArray) -> Solved:
    """Constrained answer of ``div``'s family at per-row radii ``eta``, verified."""
    family = family_for(div)
    solved = family.constrained(div, rows, eta)
    if family.self_checked:
        return solved
    retry = family.retry_constrained if family.retries(div) else None
    return verify(div, rows, solved, eta, retry)


def solve_penalized(div: Divergence, rows: Rows, alpha: FloatArray) -> Solved:
    """Penalised answer of ``div``'s family at per-row temperatures ``alpha``, verified."""
    family = family_for(div)
    solved = family.penalized(div, rows, alpha)
    if family.self_checked:
        return solved
    retry = family.retry_penalized if family.retries(div) else None
    return verify(div, rows, solved, alpha, retry)
