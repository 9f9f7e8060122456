"""The ONE domain interface of the training loop, and the image domain.

The loop (:mod:`validation.training.loop`) is domain-agnostic: a :class:`TrainingDomain` gives
it the training items, a function that makes the two views of a batch on the device, the
encoder, the similarity layout of the loss, and the evaluation metrics. Images (two SimCLR
augmentations) are :class:`ImageDomain`; sentences (two dropout views,
:class:`~validation.training.domains.sentences.SentenceDomain`) and molecular graphs (GraphCL
views, :class:`~validation.training.domains.gin.MoleculeDomain`) implement the same protocol.
See ``docs/training.md`` and ``docs/domains.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import nn

from validation.training.augment import DigitsAugment, SimCLRAugment, augmentation_for
from validation.training.data import ImageData, load_dataset
from validation.training.encoders import build_model
from validation.training.evaluate import extract_features, knn_top1, linear_probe_top1

if TYPE_CHECKING:
    from validation.training.config import TrainConfig

__all__ = ["LAYOUTS", "EvalSplit", "ImageDomain", "TrainingDomain", "image_domain"]

#: similarity layouts a domain may ask for: ``nt_xent`` (the 2B × 2B SimCLR matrix of
#: cat(z1, z2), 2B − 2 negatives) or ``cross`` (the B × B matrix z1 · z2ᵀ of SimCSE and the
#: authors' graph code, positive on the diagonal, B − 1 negatives)
LAYOUTS = ("nt_xent", "cross")


@dataclass(frozen=True)
class EvalSplit:
    """Frozen-encoder features and labels of the evaluation train and test splits.

    Attributes
    ----------
    train_features, test_features : torch.Tensor
        (N, d) and (M, d) float32 features on the training device.
    train_labels, test_labels : torch.Tensor
        (N,) and (M,) int64 class labels on the same device.
    num_classes : int
    """

    train_features: torch.Tensor
    train_labels: torch.Tensor
    test_features: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int


@runtime_checkable
class TrainingDomain(Protocol):
    """What the training loop asks of a domain (images, sentences, molecules).

    ``encoder`` (already on the device) maps ``views(...)`` to ``(features, projections)``
    with 2b rows, view 1's b items first; ``train_labels`` (on the device, or None for
    unlabelled training items) is used only by the "unbiased" negatives; ``views`` gets the
    GLOBAL batch's item indices (on the device), the slice of it that this rank trains on, and
    the augmentation generator; it returns ``cat(view 1, view 2)`` of the local items on the
    device (a tensor, or a batch object with ``.to``), or the pair ``(view 1, view 2)`` when
    the encoder must see each view alone (BatchNorm statistics per view; one forward pass per
    view, so not under DDP). ``layout`` is one of :data:`LAYOUTS`.
    ``evaluate`` returns the domain's held-out metrics (%) of the frozen model; the key
    ``"knn_top1"`` is the per-epoch monitor of the record. ``probe`` is the final linear
    probe (test, train top-1 %) or None where the domain has none.
    """

    @property
    def name(self) -> str:
        """The domain's name (``images``, ``wordnet``, ``molecules``)."""
        ...

    @property
    def layout(self) -> str:
        """The similarity layout of the loss, one of :data:`LAYOUTS`."""
        ...

    @property
    def train_size(self) -> int:
        """Number of training items."""
        ...

    @property
    def train_labels(self) -> torch.Tensor | None:
        """(train_size,) int64 labels on the device, or None (unlabelled)."""
        ...

    @property
    def encoder(self) -> nn.Module:
        """The model: ``forward(views) -> (features, projections)``; ``features(views)``."""
        ...

    def views(self, index: torch.Tensor, local: slice, generator: torch.Generator) -> Any:
        """``cat(view 1, view 2)`` (or the pair) of the items ``index[local]``, on the device."""
        ...

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Held-out metrics of ``model`` (eval mode, no gradient); has ``"knn_top1"``."""
        ...

    def probe(self, model: nn.Module) -> tuple[float, float] | None:
        """Final linear probe (test, train top-1 %), or None."""
        ...


@dataclass(frozen=True)
class ImageDomain:
    """Images kept decoded on the device, two SimCLR-style augmentations per item.

    Parameters
    ----------
    data : ImageData
        The data set; both splits are uploaded to ``device`` once.
    augment : SimCLRAugment or DigitsAugment
        The augmentation recipe (parameters drawn on the generator's device).
    model : torch.nn.Module
        The encoder with its projection head, already on ``device``.
    device : torch.device
    fast : bool
        bf16 autocast and channels-last evaluation (CUDA).
    knn_k : int
        kNN monitor neighbours.
    knn_temperature : float
        kNN monitor vote temperature.
    """

    data: ImageData
    augment: SimCLRAugment | DigitsAugment
    model: nn.Module
    device: torch.device
    fast: bool = False
    knn_k: int = 200
    knn_temperature: float = 0.1
    name: str = "images"
    layout: str = "nt_xent"

    @classmethod
    def on_device(
        cls,
        data: ImageData,
        augment: SimCLRAugment | DigitsAugment,
        model: nn.Module,
        device: torch.device,
        fast: bool = False,
    ) -> ImageDomain:
        """The domain with both splits (images and labels) moved to ``device`` once."""
        moved = replace(
            data,
            x_train=data.x_train.to(device),
            y_train=data.y_train.to(device),
            x_test=data.x_test.to(device),
            y_test=data.y_test.to(device),
        )
        return cls(moved, augment, model, device, fast)

    @property
    def train_size(self) -> int:
        """Number of training images."""
        return int(self.data.x_train.shape[0])

    @property
    def train_labels(self) -> torch.Tensor:
        """Training labels on the device."""
        return self.data.y_train

    @property
    def encoder(self) -> nn.Module:
        """The encoder with its projection head."""
        return self.model

    def views(self, index: torch.Tensor, local: slice, generator: torch.Generator) -> torch.Tensor:
        """Two augmented views of the local images: parameters for the whole global batch
        (two draws of ``len(index)``), this rank's slice applied."""
        n = int(index.shape[0])
        p1 = self.augment.sample(n, generator).select(local)
        p2 = self.augment.sample(n, generator).select(local)
        xb = self.data.x_train[index[local]]
        out = torch.cat([self.augment.apply(xb, p1), self.augment.apply(xb, p2)])
        if self.fast:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def evaluation(self, model: nn.Module) -> EvalSplit:
        """Backbone features of both splits (the device copies of the images)."""
        d = self.data

        def features(x: torch.Tensor) -> torch.Tensor:
            return extract_features(
                model,
                x,
                d.mean,
                d.std,
                device=self.device,
                channels_last=self.fast,
                autocast=self.fast,
            )

        return EvalSplit(
            train_features=features(d.x_train),
            train_labels=d.y_train,
            test_features=features(d.x_test),
            test_labels=d.y_test,
            num_classes=d.num_classes,
        )

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """kNN top-1 (%) of the test split against the training split's features."""
        s = self.evaluation(model)
        knn = knn_top1(
            s.train_features,
            s.train_labels,
            s.test_features,
            s.test_labels,
            k=self.knn_k,
            temperature=self.knn_temperature,
            num_classes=s.num_classes,
        )
        return {"knn_top1": knn}

    def probe(self, model: nn.Module) -> tuple[float, float]:
        """Linear probe on the frozen features: (test, train) top-1 (%)."""
        s = self.evaluation(model)
        res = linear_probe_top1(
            s.train_features,
            s.train_labels,
            s.test_features,
            s.test_labels,
            num_classes=s.num_classes,
        )
        return res.test_top1, res.train_top1


def image_domain(cfg: TrainConfig, device: torch.device) -> ImageDomain:
    """The image :class:`TrainingDomain` of ``cfg`` (data set, augmentation, encoder)."""
    data = load_dataset(
        cfg.dataset,
        data=cfg.data,
        subset=cfg.subset,
        test_subset=cfg.test_subset,
        seed=cfg.seed,
        cache_dir=cfg.cache_dir,
    )
    model = build_model(
        cfg.encoder,
        in_channels=data.channels,
        image_size=data.image_size,
        seed=cfg.seed,
        width=cfg.width,
    ).to(device)
    fast = device.type == "cuda" and cfg.channels_last
    if fast:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    aug = augmentation_for(cfg.dataset, data.mean, data.std)
    dom = ImageDomain.on_device(data, aug, model, device, fast=fast)
    return replace(dom, knn_k=cfg.knn_k, knn_temperature=cfg.knn_temperature)
