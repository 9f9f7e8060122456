r"""The temperature advisor on a trained encoder: a ``cldro train`` checkpoint and its data.

Loads the encoder of a checkpoint, draws a batch of B training images (seeded), makes two
augmented views with the data set's training augmentation, embeds them with the projection
head — by default with BatchNorm on the batch's statistics, as in the training step whose loss
the temperature enters (``batch_stats=False``: the running statistics of eval mode) — and
hands the (2B, 2B − 2) cosine similarities to the negatives — the NT-Xent layout of training,
Wu et al. (NeurIPS 2023) eq. (1) — to :mod:`dro_theory.advisor` through
:mod:`estimators.similarity`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dro_theory.advisor import TemperatureAdvice, advise, check_one_of
from dro_theory.errors import InputError
from estimators.device import resolve_device
from estimators.similarity import NegativeScores, negative_scores
from validation.training.augment import augmentation_for
from validation.training.data import load_dataset
from validation.training.encoders import ContrastiveModel, build_model

__all__ = ["CheckpointEncoder", "advise_from_checkpoint", "checkpoint_scores", "load_encoder"]


@dataclass(frozen=True)
class CheckpointEncoder:
    """An encoder restored from a ``cldro train`` checkpoint.

    Attributes
    ----------
    model : ContrastiveModel
        Backbone and projection head with the checkpoint's weights (eval mode).
    config : dict
        The checkpoint's training configuration (``TrainConfig`` fields).
    epoch : int
        Epochs trained.
    """

    model: ContrastiveModel
    config: dict[str, Any]
    epoch: int


def load_encoder(
    path: str | Path, *, dataset: str | None = None, device: str = "cpu"
) -> CheckpointEncoder:
    """Restore the encoder of a ``cldro train --checkpoint`` file.

    Parameters
    ----------
    path : str or Path
        The checkpoint.
    dataset : str, optional
        Data set whose image shape the encoder takes (default: the checkpoint's).
    device : str
        ``auto``, ``cpu``, ``cuda[:N]``.

    Raises
    ------
    InputError
        Missing or unreadable file, not a cldro checkpoint, or weights that do not fit the
        encoder built for ``dataset``.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"checkpoint: expected an existing file, found no file at {str(p)!r}")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InputError(f"checkpoint: expected a cldro training checkpoint, found {p}") from exc
    if not isinstance(blob, dict) or "config" not in blob or "model" not in blob:
        raise InputError(f"checkpoint: expected a cldro training checkpoint, found {p}")
    cfg = dict(blob["config"])
    name = str(dataset if dataset is not None else cfg["dataset"])
    shapes = {"cifar10": (3, 32), "digits": (1, 8), "fashion-mnist": (1, 28)}
    if name not in shapes:
        raise InputError(f"dataset: expected one of {', '.join(shapes)}, found {name!r}")
    channels, size = shapes[name]
    model = build_model(
        cfg["encoder"], in_channels=channels, image_size=size, seed=0, width=cfg.get("width", 16)
    )
    try:
        model.load_state_dict(blob["model"])
    except RuntimeError as exc:
        raise InputError(
            f"dataset: expected images the checkpoint's {cfg['encoder']} encoder takes "
            f"(trained on {cfg['dataset']}), found {name!r}"
        ) from exc
    model.to(resolve_device(device)).eval()
    return CheckpointEncoder(model=model, config=cfg, epoch=int(blob.get("epoch", 0)))


def checkpoint_scores(
    encoder: CheckpointEncoder,
    *,
    batch_size: int | None = None,
    dataset: str | None = None,
    data: str | Path | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    batch_stats: bool = True,
) -> NegativeScores:
    """Cosine similarities of a batch's 2B anchors to their 2B − 2 negatives.

    Parameters
    ----------
    encoder : CheckpointEncoder
    batch_size : int, optional
        Pairs B (default: the checkpoint's training batch size).
    dataset, data : optional
        Data set name and file (default: the checkpoint's).
    seed : int
        Seed of the batch draw and of the augmentations.
    cache_dir : str or Path, optional
        Folder of the decoded-image cache.
    batch_stats : bool
        BatchNorm on the batch's statistics (training mode, as in the loss); False: running
        statistics (eval mode). The encoder's weights are not changed either way.

    Returns
    -------
    NegativeScores
        (2B, 2B − 2) negatives and (2B,) positives.

    Raises
    ------
    InputError
        A batch size < 2 or larger than the training split.
    """
    cfg = encoder.config
    name = str(dataset if dataset is not None else cfg["dataset"])
    b = int(batch_size if batch_size is not None else cfg["batch_size"])
    images = load_dataset(
        name,
        data=data if data is not None else cfg.get("data"),
        subset=cfg.get("subset"),
        test_subset=cfg.get("test_subset"),
        seed=int(cfg.get("seed", 0)),
        cache_dir=cache_dir,
    )
    n = int(images.x_train.shape[0])
    if not 2 <= b <= n:
        raise InputError(f"batch_size: expected 2 ≤ B ≤ {n} (training images), found {b}")
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(n, generator=gen)[:b]
    aug = augmentation_for(name, images.mean, images.std)
    device = next(encoder.model.parameters()).device
    x = images.x_train[pick].to(device)
    views = torch.cat([aug.apply(x, aug.sample(b, gen)), aug.apply(x, aug.sample(b, gen))])
    model = copy.deepcopy(encoder.model) if batch_stats else encoder.model
    model.train(batch_stats)
    with torch.no_grad():
        _, z = model(views)
    zz = z.detach().to("cpu", torch.float64).numpy()
    return negative_scores(zz[:b], zz[b:])


def advise_from_checkpoint(
    path: str | Path,
    *,
    radius: float | None = None,
    temperature: float | None = None,
    batch_size: int | None = None,
    dataset: str | None = None,
    data: str | Path | None = None,
    seed: int = 0,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    batch_stats: bool = True,
) -> TemperatureAdvice:
    """The temperature advisor on a checkpoint's encoder and data: one of radius/temperature.

    Parameters
    ----------
    path : str or Path
        A ``cldro train`` checkpoint.
    radius, temperature : float, optional
        Exactly one: η > 0 (τ per anchor) or τ > 0 (η per anchor).
    batch_size, dataset, data, seed, cache_dir, batch_stats
        As in :func:`checkpoint_scores`.
    device : str
        Where the encoder runs.

    Returns
    -------
    TemperatureAdvice
        Over the 2B anchors of the batch.

    Raises
    ------
    InputError
        Both or neither of radius/temperature, a bad checkpoint, data set or batch size.
    """
    check_one_of(radius, temperature)
    enc = load_encoder(path, dataset=dataset, device=device)
    scores = checkpoint_scores(
        enc,
        batch_size=batch_size,
        dataset=dataset,
        data=data,
        seed=seed,
        cache_dir=cache_dir,
        batch_stats=batch_stats,
    )
    return advise(scores.negatives, radius=radius, temperature=temperature)
