"""The generic patcher reaches every binding of an object and restores them all."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from dro_theory.divergences import Hellinger

from .patcher import patched
from .wrappers import const

pytestmark = pytest.mark.faults


def test_function_replaced_in_every_loaded_module_and_restored() -> None:
    import dro_theory.duals as duals

    claim = importlib.import_module("validation.claims.infonce_is_kl_dro")
    orig = duals.penalized_worst_case

    def broken(*a: Any, **k: Any) -> Any:
        return orig(*a, **k)

    with patched("dro_theory.duals:penalized_worst_case", lambda o: broken):
        assert duals.penalized_worst_case is broken
        assert claim.penalized_worst_case is broken
    assert duals.penalized_worst_case is orig and claim.penalized_worst_case is orig


def test_class_attribute_patched_and_restored() -> None:
    before = Hellinger().curvature
    with patched("dro_theory.divergences:Hellinger.curvature", const(1.0)):
        assert Hellinger().curvature == 1.0
    assert Hellinger().curvature == before
    assert "curvature" in vars(Hellinger)


def test_bad_targets_raise() -> None:
    with pytest.raises(ValueError, match="module:name"):
        with patched("dro_theory.duals", const(None)):
            pass
    with pytest.raises(ValueError, match="bound in no scanned module"):
        with patched("math:pi", const(3.0)):
            pass
