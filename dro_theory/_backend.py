"""Array-backend dispatch: the same φ formulas evaluate numpy arrays and torch tensors.

``dro_theory`` never imports torch. When a function receives a torch tensor, torch is already
loaded by the caller, so the namespace is taken from ``sys.modules``. This keeps one copy of
every φ / φ* formula for the numpy theory and the differentiable torch estimators.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
from scipy import special

__all__ = ["is_torch", "namespace"]

_NUMPY = SimpleNamespace(
    exp=np.exp,
    log=np.log,
    log1p=np.log1p,
    sqrt=np.sqrt,
    abs=np.abs,
    sign=np.sign,
    where=np.where,
    clip=np.clip,
    xlogy=special.xlogy,
    asarray=lambda x, like=None: np.asarray(x, dtype=np.float64),
)


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "requires_grad")


def namespace(x: Any) -> SimpleNamespace:
    """The elementwise functions for ``x``'s backend (numpy or torch)."""
    if not is_torch(x):
        return _NUMPY
    torch = sys.modules["torch"]
    return SimpleNamespace(
        exp=torch.exp,
        log=torch.log,
        log1p=torch.log1p,
        sqrt=torch.sqrt,
        abs=torch.abs,
        sign=torch.sign,
        where=torch.where,
        clip=torch.clip,
        xlogy=torch.special.xlogy,
        asarray=lambda v, like=x: torch.as_tensor(v, dtype=like.dtype, device=like.device),
    )
