"""What the training loop needs from a data domain, and the image domain.

The loop (:mod:`validation.training.loop`) is domain-agnostic: a :class:`TrainingDomain` gives
it the number of training items and their labels, a function that makes the two views of a
batch on the device, the encoder, and the evaluation features. Images (two SimCLR
augmentations) are :class:`ImageDomain`; sentences (two dropout views) and molecular graphs
(two GraphCL augmentations) plug in the same way. See ``docs/training.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import nn

from validation.training.augment import DigitsAugment, SimCLRAugment
from validation.training.data import ImageData
from validation.training.evaluate import extract_features

__all__ = ["EvalSplit", "ImageDomain", "TrainingDomain"]


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


class TrainingDomain(Protocol):
    """The four things the training loop asks of a domain.

    ``encoder`` maps a batch of views to ``(features, projections)`` and has a ``features``
    method for evaluation; ``train_labels`` (on the device) is used only by the "unbiased"
    negatives; ``views`` gets the GLOBAL batch's item indices (on the device), the slice of it
    that this rank trains on, and the augmentation generator (on the device; every rank draws
    the same numbers for the whole global batch and keeps its slice, so that a run under DDP
    sees exactly the single-process views); it returns ``cat(view 1, view 2)`` of the local
    items, on the device.
    """

    @property
    def train_size(self) -> int:
        """Number of training items."""
        ...

    @property
    def train_labels(self) -> torch.Tensor:
        """(train_size,) int64 labels on the device."""
        ...

    @property
    def encoder(self) -> nn.Module:
        """The model: ``forward(views) -> (features, projections)``; ``features(views)``."""
        ...

    def views(self, index: torch.Tensor, local: slice, generator: torch.Generator) -> torch.Tensor:
        """``cat(view 1, view 2)`` of the items ``index[local]``, on the device."""
        ...

    def evaluation(self, model: nn.Module) -> EvalSplit:
        """Features of the evaluation splits under ``model`` (eval mode, no gradient)."""
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
    """

    data: ImageData
    augment: SimCLRAugment | DigitsAugment
    model: nn.Module
    device: torch.device
    fast: bool = False

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
