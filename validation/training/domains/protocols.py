"""Evaluation protocols on frozen embeddings: retrieval recall@k and a cross-validated linear
classifier (GraphCL's protocol, with a linear model in place of the RBF SVM grid search).

Topic kNN reuses :func:`validation.training.evaluate.knn_top1`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dro_theory.errors import InputError

__all__ = ["CVResult", "cv_linear_accuracy", "recall_at_k"]

#: inverse L2 strength of the logistic regression (scikit-learn's default)
_C = 1.0
#: iteration cap of the lbfgs solver (standardised features converge well within it)
_MAX_ITER = 2000


@torch.no_grad()
def recall_at_k(
    queries: torch.Tensor, keys: torch.Tensor, ks: tuple[int, ...] = (1, 10)
) -> dict[int, float]:
    """Recall@k (%) of cosine retrieval where query i's one relevant key is key i.

    The rank of query i is the number of keys j with cos(q_i, k_j) > cos(q_i, k_i) (ties
    count in the query's favour); recall@k is the percentage of queries with rank < k.

    Parameters
    ----------
    queries, keys : torch.Tensor
        Shapes (n, d) and (n, d), row-aligned.
    ks : tuple of int
        The cut-offs, each >= 1.

    Raises
    ------
    InputError
        If the shapes differ or are not 2-D, or a cut-off is < 1.
    """
    if queries.ndim != 2 or queries.shape != keys.shape:
        raise InputError(
            f"queries, keys: expected two (n, d) tensors of equal shape, found "
            f"{tuple(queries.shape)} and {tuple(keys.shape)}"
        )
    if any(k < 1 for k in ks):
        raise InputError(f"ks: expected cut-offs >= 1, found {ks!r}")
    q = F.normalize(queries.double(), dim=1)
    v = F.normalize(keys.double(), dim=1)
    sim = q @ v.T
    rank = (sim > sim.diagonal()[:, None]).sum(dim=1)
    return {k: 100.0 * float((rank < k).double().mean()) for k in ks}


@dataclass(frozen=True)
class CVResult:
    """Accuracy (%) of each fold, their mean and (population) standard deviation."""

    folds: tuple[float, ...]
    mean: float
    std: float


def cv_linear_accuracy(
    features: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    *,
    folds: int = 10,
    seed: int = 0,
) -> CVResult:
    """Stratified k-fold accuracy of a standardised logistic regression on frozen features.

    Parameters
    ----------
    features : array, shape (n, d)
    labels : array of int, shape (n,)
    folds : int
        Number of stratified folds (GraphCL uses 10); every class needs at least ``folds``
        members.
    seed : int
        Seed of the fold shuffle.

    Raises
    ------
    InputError
        If the shapes disagree, ``folds`` < 2, or a class has fewer than ``folds`` members.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features.cpu() if isinstance(features, torch.Tensor) else features, float)
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).astype(int)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise InputError(
            f"features, labels: expected shapes (n, d) and (n,), found {x.shape} and {y.shape}"
        )
    if folds < 2:
        raise InputError(f"folds: expected an integer >= 2, found {folds!r}")
    smallest = int(np.unique(y, return_counts=True)[1].min()) if y.size else 0
    if smallest < folds:
        raise InputError(
            f"labels: expected every class to have >= {folds} members, found {smallest}"
        )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=_C, max_iter=_MAX_ITER))
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = 100.0 * cross_val_score(model, x, y, cv=split)
    return CVResult(tuple(float(s) for s in scores), float(scores.mean()), float(scores.std()))
