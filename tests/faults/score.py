"""Run the fault catalogue: which claim check catches each fault."""

from __future__ import annotations

import time
from dataclasses import dataclass

from validation.claims import get_claim, run_claim

from .catalogue import Fault
from .patcher import patched_all

__all__ = ["Outcome", "run_fault", "table"]


@dataclass(frozen=True)
class Outcome:
    """The result of one fault: caught or not, by which checks, how long it took."""

    fault: Fault
    caught: bool
    failed_checks: tuple[str, ...]
    error: str
    seconds: float


def run_fault(fault: Fault, seed: int = 0) -> Outcome:
    """Apply ``fault`` and run its claim in quick mode; an exception counts as caught."""
    get_claim(fault.claim).runner()  # import the claim module so its bindings get patched
    t0 = time.perf_counter()
    with patched_all(fault.patches):
        try:
            record = run_claim(fault.claim, quick=True, seed=seed)
        except Exception as exc:  # a loud crash is a caught fault too
            return Outcome(
                fault, True, (), f"{type(exc).__name__}: {exc}", time.perf_counter() - t0
            )
    failed = tuple(c.name for c in record.failed)
    return Outcome(fault, not record.passed, failed, "", time.perf_counter() - t0)


def table(outcomes: list[Outcome]) -> str:
    """A plain-text score table: one row per fault, then caught/total."""
    lines = [f"{'fault':58s} {'claim':26s} caught  by"]
    for o in outcomes:
        by = o.failed_checks[0] if o.failed_checks else (o.error or "-")
        more = f" (+{len(o.failed_checks) - 1})" if len(o.failed_checks) > 1 else ""
        lines.append(
            f"{o.fault.name[:58]:58s} {o.fault.claim:26s} {'yes' if o.caught else 'NO':6s}  "
            f"{by[:90]}{more}"
        )
    caught = sum(o.caught for o in outcomes)
    seconds = sum(o.seconds for o in outcomes)
    lines.append(f"fault score: {caught}/{len(outcomes)} caught ({seconds:.0f} s of claim runs)")
    return "\n".join(lines)
