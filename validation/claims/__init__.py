"""The claims of Wu et al. (NeurIPS 2023) that ``cldro validate`` checks: one module per claim.

Every claim module exposes ``run(*, quick: bool = False, seed: int = 0) -> Record``
(:class:`validation.records.Record`): exact identities become checks with floating-point
tolerances, asymptotic statements checks whose tolerance is the next term of the expansion,
Monte Carlo statements checks whose tolerance comes from standard errors, and empirical
findings (training runs) metrics without pass/fail.

The registry below holds only metadata; a claim's module (and torch, cvxpy) is imported when the
claim runs, so ``cldro list`` stays fast.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dro_theory.errors import InputError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from validation.records import Record

__all__ = ["CLAIMS", "ClaimSpec", "get_claim", "run_claim"]


@dataclass(frozen=True)
class ClaimSpec:
    """A claim of the paper: its name, where it is stated, what is checked, and its module.

    Attributes
    ----------
    name : str
        The command-line name, e.g. ``"infonce-is-kl-dro"``.
    reference : str
        Theorem / corollary / section of Wu et al. (2023).
    summary : str
        One sentence: what the checks establish.
    module : str
        The module (under :mod:`validation.claims`) with its ``run`` function.
    """

    name: str
    reference: str
    summary: str
    module: str

    def runner(self) -> Callable[..., Record]:
        """The claim's ``run(*, quick, seed)`` function (imports the module)."""
        mod = importlib.import_module(f"validation.claims.{self.module}")
        return mod.run  # type: ignore[no-any-return]


_SPECS = (
    ClaimSpec(
        "infonce-is-kl-dro",
        "Theorem 3.2, Eq. 4",
        "penalised KL-DRO = τ·InfoNCE per anchor; the cvxpy worst case at η(τ) is the softmax "
        "tilt with multiplier τ; ∇θ CL-DRO = τ ∇θ InfoNCE (envelope theorem).",
        "infonce_is_kl_dro",
    ),
    ClaimSpec(
        "temperature-is-lagrange",
        "Corollary 3.4",
        "exact τ(η) vs the law √(Var/2η): relative error ~ (γ/3)√(2η) (log–log slope 1/2); "
        "α*(η) and η(τ) checked against KL(q_τ‖q0) and a root solve written in the claim.",
        "temperature_is_lagrange",
    ),
    ClaimSpec(
        "mean-variance",
        "Theorem 3.5",
        "penalised error ~ −φ'''κ3/(6φ''³τ²) (KL: κ3/6τ², slope −2); constrained error ~ "
        "−φ'''σγη/(3φ''²) (tolerance: the next term); χ² exact (dual, cvxpy primal); the "
        "1/φ''(1) variance factor across φ.",
        "mean_variance",
    ),
    ClaimSpec(
        "dro-and-phi-mi",
        "Theorem 3.6",
        "the tight (λ-shifted) variational form is D_φ at the optimal critic (quadrature and "
        "Monte Carlo on Gaussians); phi_tight/phi_plain equal bounds recomputed in the claim; the "
        "plain form is not shift-invariant; trained φ-MI within its CI.",
        "dro_and_phi_mi",
    ),
    ClaimSpec(
        "sampling-bias",
        "Theorem 3.3, Table 1",
        "L_unbiased ≤ τ·L_InfoNCE(τ) + τη whenever KL(Q_ideal‖Q0) ≤ η (tight at τ = α*(η)); "
        "a latent-class training with false negatives: biased–unbiased gap, DCL, HCL.",
        "sampling_bias",
    ),
    ClaimSpec(
        "adnce-reshapes-worst-case",
        "Section 4.2 (ADNCE)",
        "ADNCE = penalised KL-DRO around w·Q0; the tilt is Gaussian at μ + σ²/τ; worst-case "
        "mass on injected false negatives changes by the predicted factor: it rises where "
        "μ + σ²/τ lies beyond them (CIFAR-10, STL-10 settings), drops where the peak is inside.",
        "adnce_reshapes_worst_case",
    ),
)

#: name → spec, in the paper's order
CLAIMS: dict[str, ClaimSpec] = {s.name: s for s in _SPECS}


def get_claim(name: str) -> ClaimSpec:
    """The spec called ``name``; an unknown name raises InputError with a did-you-mean."""
    if name in CLAIMS:
        return CLAIMS[name]
    close = difflib.get_close_matches(str(name), list(CLAIMS), n=1, cutoff=0.4)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InputError(f"claim: expected one of {', '.join(CLAIMS)}, found {name!r}{hint}")


def run_claim(
    name: str, *, quick: bool = False, seed: int = 0, overrides: dict[str, Any] | None = None
) -> Record:
    """Run the claim called ``name`` and return its record.

    ``overrides`` replaces entries of the claim's configuration (tests shrink sizes with it).
    """
    return get_claim(name).runner()(quick=quick, seed=seed, overrides=overrides)
