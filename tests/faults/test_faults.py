"""Every fault of the catalogue makes the claim that should catch it fail (quick mode)."""

from __future__ import annotations

import pytest

from .catalogue import CATALOGUE, Fault
from .score import run_fault

pytestmark = pytest.mark.faults


def test_catalogue_is_large_and_names_unique() -> None:
    assert len(CATALOGUE) >= 30
    assert len({f.name for f in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("fault", CATALOGUE, ids=[f.name for f in CATALOGUE])
def test_fault_is_caught(fault: Fault) -> None:
    outcome = run_fault(fault)
    assert outcome.caught, f"{fault.name} not caught by {fault.claim}"
    assert not outcome.error, (
        f"{fault.name} crashed the claim instead of failing a check: {outcome.error}"
    )
