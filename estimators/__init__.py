"""estimators: torch score-matrix bounds, critics, the φ-MI estimator, contrastive losses, data I/O.

Public names are imported lazily (``estimators.phi_tight`` loads :mod:`estimators.bounds` on first
use), so ``import estimators`` stays light and nothing runs at import time.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    # bounds on a (K, K) score matrix
    "infonce": "estimators.bounds",
    "nwj": "estimators.bounds",
    "dv": "estimators.bounds",
    "phi_plain": "estimators.bounds",
    "phi_tight": "estimators.bounds",
    "optimal_shift": "estimators.bounds",
    "constrain_to_domain": "estimators.bounds",
    # critics
    "SeparableCritic": "estimators.critics",
    "ConcatCritic": "estimators.critics",
    "make_critic": "estimators.critics",
    # synthetic data with known φ-MI
    "PairedSample": "estimators.synthetic",
    "PhiMIValue": "estimators.synthetic",
    "correlated_gaussians": "estimators.synthetic",
    "transform": "estimators.synthetic",
    "gaussian_phi_mi": "estimators.synthetic",
    "renyi_mi": "estimators.synthetic",
    # user data
    "load_pairs": "estimators.io",
    # φ-MI estimation
    "PhiMI": "estimators.phi_mi",
    "ksg_mi": "estimators.ksg",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'estimators' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
