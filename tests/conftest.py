"""Shared test configuration: derandomised hypothesis, GPU tests skipped without CUDA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", derandomize=False, deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: the CIFAR-10 npz: the git-ignored copy in the checkout, else the shared one beside it
#: (absent on some machines)
_ROOT = Path(__file__).resolve().parents[1]
CIFAR_NPZ = next(
    (p for p in (_ROOT / "data-local" / "cifar10-jpeg.npz",) if p.is_file()),
    _ROOT.parent / "shared" / "data" / "cifar10-jpeg.npz",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any("gpu" in item.keywords for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (no GPU on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
