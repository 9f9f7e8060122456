"""Evaluation of frozen encoder features: a weighted kNN monitor and a linear probe.

* :func:`knn_top1` — the InstDisc / SimCLR-repository weighted kNN classifier, also used by the
  ADNCE image code (``reference/paper.md`` §3.1): features are L2-normalised, the k nearest
  training features by cosine similarity vote for their labels with weights exp(s/T), and the
  class with the largest total vote wins.
* :func:`linear_probe_top1` — multinomial logistic regression (a linear layer with softmax
  cross-entropy and an L2 penalty) on frozen, standardised features, fitted by full-batch
  L-BFGS from a zero start (deterministic, so no seed is needed). The ADNCE code trains its
  linear layer for 100 epochs with augmented images; a probe on un-augmented features is the
  cheap, standard stand-in.
* :func:`extract_features` — backbone features of a uint8 image set, in eval mode, in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dro_theory.errors import InputError
from validation.training.augment import normalize

__all__ = ["ProbeResult", "extract_features", "knn_top1", "linear_probe_top1"]


@torch.no_grad()
def extract_features(
    model: nn.Module,
    x: torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    device: torch.device,
    batch_size: int = 1024,
    channels_last: bool = False,
    autocast: bool = False,
) -> torch.Tensor:
    """Backbone features ``model.features`` of uint8 images x (N, C, H, W), float32 (N, d).

    The model is put in eval mode for the pass and restored to its previous mode afterwards.
    """
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, x.shape[0], batch_size):
            xb = normalize(x[start : start + batch_size].to(device, non_blocking=True), mean, std)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                feats = model.features(xb)  # type: ignore[operator]
            out.append(feats.float())
    finally:
        model.train(was_training)
    return torch.cat(out, dim=0)


@torch.no_grad()
def knn_top1(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    chunk: int = 1024,
) -> float:
    r"""Top-1 accuracy (%) of the temperature-weighted kNN classifier.

    For a test feature u and normalised training features v_j with labels y_j, let N_k(u) be
    the k training points of largest cosine similarity s_j = ûᵀv̂_j. The score of class c is
    Σ_{j ∈ N_k(u)} exp(s_j / T) · 1[y_j = c]; the prediction is the arg-max.

    Parameters
    ----------
    train_features, test_features : torch.Tensor
        Shapes (N, d) and (M, d).
    train_labels, test_labels : torch.Tensor
        Integer labels, shapes (N,) and (M,).
    k : int
        Number of neighbours (capped at N).
    temperature : float
        Vote temperature T > 0.
    num_classes : int, optional
        Defaults to 1 + the largest label.
    chunk : int
        Test rows per similarity block (memory: chunk × N).
    """
    if train_features.ndim != 2 or test_features.ndim != 2:
        raise InputError(
            f"features: expected 2-D (N, d) tensors, found {tuple(train_features.shape)} and "
            f"{tuple(test_features.shape)}"
        )
    if train_features.shape[1] != test_features.shape[1]:
        raise InputError(
            f"test_features: expected dimension {train_features.shape[1]}, "
            f"found {test_features.shape[1]}"
        )
    if len(train_labels) != len(train_features) or len(test_labels) != len(test_features):
        raise InputError("labels: expected one label per feature row, found mismatched lengths")
    if temperature <= 0:
        raise InputError(f"temperature: expected a number > 0, found {temperature!r}")
    if k < 1:
        raise InputError(f"k: expected an integer >= 1, found {k!r}")
    c = int(num_classes) if num_classes is not None else int(train_labels.max()) + 1
    k = min(int(k), train_features.shape[0])
    bank = F.normalize(train_features.float(), dim=1)
    labels = train_labels.to(bank.device).long()
    correct = 0
    for start in range(0, test_features.shape[0], chunk):
        q = F.normalize(test_features[start : start + chunk].float().to(bank.device), dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)
        votes = torch.zeros(q.shape[0], c, device=bank.device)
        votes.scatter_add_(1, labels[idx], (sim / temperature).exp())
        pred = votes.argmax(dim=1)
        correct += int((pred == test_labels[start : start + chunk].to(bank.device)).sum())
    return 100.0 * correct / test_features.shape[0]


@dataclass(frozen=True)
class ProbeResult:
    """Linear-probe outcome: test and train top-1 accuracy (%) and the final training loss."""

    test_top1: float
    train_top1: float
    loss: float


def linear_probe_top1(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    weight_decay: float = 1e-4,
    max_iter: int = 200,
    num_classes: int | None = None,
) -> ProbeResult:
    r"""Linear probe: L2-penalised multinomial logistic regression on frozen features.

    Minimises (1/N) Σ_i CE(W x̃_i + b, y_i) + λ ‖W‖²_F over (W, b), where x̃ is standardised with
    the training mean and standard deviation, by full-batch L-BFGS (strong-Wolfe line search)
    from W = 0, b = 0 — a convex problem with a deterministic solver, so no seed is involved.
    """
    if train_features.ndim != 2 or test_features.ndim != 2:
        raise InputError("features: expected 2-D (N, d) tensors")
    if len(train_labels) != len(train_features) or len(test_labels) != len(test_features):
        raise InputError("labels: expected one label per feature row, found mismatched lengths")
    c = int(num_classes) if num_classes is not None else int(train_labels.max()) + 1
    x = train_features.double()
    mu, sd = x.mean(dim=0), x.std(dim=0).clamp_min(1e-8)
    x = (x - mu) / sd
    xt = (test_features.double().to(x.device) - mu) / sd
    y = train_labels.to(x.device).long()
    yt = test_labels.to(x.device).long()
    w = torch.zeros(x.shape[1], c, dtype=torch.float64, device=x.device, requires_grad=True)
    b = torch.zeros(c, dtype=torch.float64, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + weight_decay * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        loss = float(F.cross_entropy(x @ w + b, y) + weight_decay * w.square().sum())
        train_acc = 100.0 * float(((x @ w + b).argmax(1) == y).double().mean())
        test_acc = 100.0 * float(((xt @ w + b).argmax(1) == yt).double().mean())
    return ProbeResult(test_top1=test_acc, train_top1=train_acc, loss=loss)
