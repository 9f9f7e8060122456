"""kNN monitor and linear probe on constructed instances with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from dro_theory.errors import InputError
from validation.training.evaluate import knn_top1, linear_probe_top1


def _clusters(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three well-separated directions (+ small noise) in 5-D."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.eye(5)[:3] * 10
    return centres[y] + 0.1 * torch.randn(n, 5, generator=g), y


def test_knn_separable_toy_is_perfect() -> None:
    xtr, ytr = _clusters(60, 0)
    xte, yte = _clusters(30, 1)
    assert knn_top1(xtr, ytr, xte, yte, k=10, temperature=0.1) == 100.0
    # k larger than the bank is capped, and still perfect with a small vote temperature
    assert knn_top1(xtr, ytr, xte, yte, k=500, temperature=0.01) == 100.0


def test_knn_vote_weights_follow_the_temperature() -> None:
    """One close neighbour of class 1, two farther ones of class 0 (cosines 1, cos 60°)."""
    bank = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2], [0.5, -math.sqrt(3) / 2]])
    labels = torch.tensor([1, 0, 0])
    query, target = torch.tensor([[1.0, 0.0]]), torch.tensor([1])
    # votes: class 1 e^{1/T}, class 0 2 e^{0.5/T}: class 1 wins iff T < 0.5 / log 2 = 0.721
    assert knn_top1(bank, labels, query, target, k=3, temperature=0.5) == 100.0
    assert knn_top1(bank, labels, query, target, k=3, temperature=1.0) == 0.0


def test_linear_probe_separable_and_deterministic() -> None:
    xtr, ytr = _clusters(90, 2)
    xte, yte = _clusters(30, 3)
    r1 = linear_probe_top1(xtr, ytr, xte, yte)
    r2 = linear_probe_top1(xtr, ytr, xte, yte)
    assert r1.test_top1 == 100.0 and r1.train_top1 == 100.0
    assert r1 == r2


def test_evaluation_errors() -> None:
    x, y = _clusters(9, 0)
    with pytest.raises(InputError, match="test_features: expected dimension 5, found 4"):
        knn_top1(x, y, x[:, :4], y)
    with pytest.raises(InputError, match="labels: expected one label per feature row"):
        knn_top1(x, y[:5], x, y)
    with pytest.raises(InputError, match="temperature: expected a number > 0"):
        knn_top1(x, y, x, y, temperature=0.0)
    with pytest.raises(InputError, match="labels: expected one label per feature row"):
        linear_probe_top1(x, y, x, y[:3])
