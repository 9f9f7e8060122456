"""Evaluation protocols on toy embeddings with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dro_theory.errors import InputError
from validation.training.domains.protocols import cv_linear_accuracy, recall_at_k


def test_recall_is_perfect_when_keys_equal_queries() -> None:
    q = torch.eye(6) + 0.01
    assert recall_at_k(q, q.clone(), ks=(1, 3)) == {1: 100.0, 3: 100.0}


def test_recall_counts_the_rank_of_the_true_key() -> None:
    # query i's true key sits at rank i (keys j < i are more similar), so recall@k = k / n
    n = 5
    angles = torch.arange(n, dtype=torch.float64)
    queries = torch.stack([torch.ones(n), torch.zeros(n)], dim=1)
    keys = torch.stack([torch.cos(0.3 * angles), torch.sin(0.3 * angles)], dim=1)
    out = recall_at_k(queries, keys, ks=(1, 2, 5))
    assert out == {1: 100.0 * 1 / n, 2: 100.0 * 2 / n, 5: 100.0}


def test_recall_errors() -> None:
    with pytest.raises(InputError, match=r"queries, keys: expected two \(n, d\) tensors"):
        recall_at_k(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(InputError, match="ks: expected cut-offs >= 1"):
        recall_at_k(torch.zeros(3, 2), torch.zeros(3, 2), ks=(0,))


def test_cv_accuracy_separable_and_random_labels() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = rng.normal(size=(120, 4)) + 10.0 * np.eye(3, 4)[y]  # class means 10 apart, unit noise
    sep = cv_linear_accuracy(x, y, folds=10, seed=0)
    assert len(sep.folds) == 10 and sep.mean == 100.0 and sep.std == 0.0
    # labels independent of the features: the mean accuracy is chance (1/3) up to the fold
    # noise; 4 standard errors of a 120-sample proportion (sqrt(p(1-p)/120) = 4.3 points)
    noise = cv_linear_accuracy(rng.normal(size=(120, 4)), rng.permutation(y), folds=10, seed=0)
    assert abs(noise.mean - 100.0 / 3) < 4 * 100.0 * np.sqrt((1 / 3) * (2 / 3) / 120)
    assert noise.std == pytest.approx(float(np.std(noise.folds)), abs=1e-12)


def test_cv_errors() -> None:
    x, y = np.zeros((20, 2)), np.repeat([0, 1], 10)
    with pytest.raises(InputError, match="features, labels: expected shapes"):
        cv_linear_accuracy(x, y[:5])
    with pytest.raises(InputError, match="folds: expected an integer >= 2, found 1"):
        cv_linear_accuracy(x, y, folds=1)
    with pytest.raises(InputError, match="every class to have >= 10 members, found 2"):
        cv_linear_accuracy(np.zeros((12, 2)), np.r_[np.zeros(10), np.ones(2)].astype(int))
