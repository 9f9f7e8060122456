"""The JSON-ready summary of one PhiMI fit."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["PhiMIResult"]


@dataclass(frozen=True)
class PhiMIResult:
    """Everything ``cldro mi`` reports about one fit (JSON-ready via :meth:`as_dict`).

    ``training`` is ``log_ratio`` or ``direct``; ``link_scale``, ``link_shift`` (a, c) and
    ``log_ratio_cap`` (v_max) define the reported critic T = link(a·min(v, v_max) + c) of the
    two-stage fit (1, 0 and None when trained directly; KL is always trained directly).
    ``base`` says whether the critic started from the Gaussian-copula log-ratio,
    ``closed_form`` whether that closed form alone was kept (better on validation).
    ``valid`` is False when the estimate leaves the range I_φ allows (``range_low``,
    ``range_high``) or is not finite; ``problem`` then says why. ``warnings`` lists one-line
    reasons to suspect bias. ``ci_covers`` says what the interval accounts for; ``folds`` is
    the number of cross-fitting folds (1: one split), ``fold_estimates`` their held-out values.
    """

    estimate: float
    ci_low: float
    ci_high: float
    ci_level: float
    ci_method: str
    ci_covers: str
    divergence: str
    bound: str
    critic: str
    base: bool
    closed_form: bool
    training: str
    link_scale: float
    link_shift: float
    log_ratio_cap: float | None
    n_train: int
    n_val: int
    n_test: int
    steps: int
    best_step: int
    stopped_early: bool
    budget_stopped: bool
    seconds: float
    seed: int
    valid: bool
    problem: str | None
    range_low: float
    range_high: float
    warnings: tuple[str, ...]
    folds: int = 1
    fold_estimates: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (``warnings`` as a list)."""
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        out["fold_estimates"] = list(self.fold_estimates)
        return out
