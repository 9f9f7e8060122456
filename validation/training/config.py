"""What defines a training run (:class:`TrainConfig`) and what it returns (:class:`TrainResult`).

See ``docs/training.md`` for the loop and the domain interface.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from dro_theory.checks import SEED_LIMIT, check_seed
from dro_theory.errors import InputError
from estimators.losses.adnce_loss import POSITIVE_MODES
from validation.training.data import DATASETS
from validation.training.domains.registry import DOMAIN_ENCODERS
from validation.training.encoders import ENCODERS

__all__ = [
    "ALL_DATASETS",
    "LOSSES",
    "NEGATIVES",
    "RUNTIME_FIELDS",
    "SEED_LIMIT",
    "BatchLog",
    "EpochRadius",
    "EpochTime",
    "TrainConfig",
    "TrainResult",
]

#: loss names accepted by :class:`TrainConfig` (keys of :data:`estimators.losses.LOSS_REGISTRY`)
LOSSES = ("infonce", "adnce", "dcl", "hcl")
#: negative-sampling settings
NEGATIVES = ("all", "unbiased")
#: every data set: the image ones, then the sentence and graph domains
ALL_DATASETS = (*DATASETS, *DOMAIN_ENCODERS)
#: fields that may differ between an interrupted run and its resumption (they change where
#: things go or how often the loop reports, not the numbers it computes)
RUNTIME_FIELDS = frozenset(
    {
        "checkpoint",
        "checkpoint_every",
        "resume",
        "progress",
        "device",
        "threads",
        "cache_dir",
        "log_every",
        "compile",
    }
)


def _check_number(name: str, value: object, low: float, *, strict: bool = False) -> None:
    """InputError unless ``value`` is a finite real number >= ``low`` (> when ``strict``)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (strict and value == low):  # type: ignore[operator]
        bound = "" if low == -math.inf else f" {'>' if strict else '>='} {low:g}"
        raise InputError(f"{name}: expected a finite number{bound}, found {value!r}")


def _check_int(name: str, value: object, low: int) -> None:
    """InputError unless ``value`` is an integer >= low."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InputError(f"{name}: expected an integer >= {low}, found {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (the ``cldro train`` options, same names).

    Parameters
    ----------
    dataset : {"cifar10", "digits", "fashion-mnist", "wordnet", "molecules"}
    data : str, optional
        CIFAR npz path / Fashion-MNIST folder / WordNet dict folder / solubility SDF folder
        (defaults in :mod:`validation.training.data` and :mod:`validation.training.domains`).
    encoder : str
        Images: {"cnn-small", "resnet18", "mlp"}; wordnet: {"small", "minilm"}; molecules:
        {"gin"}.
    loss : {"infonce", "adnce", "dcl", "hcl"}
    temperature : float
        τ of the loss.
    mu, sigma : float
        ADNCE Gaussian centre and width (on the raw cosine similarity).
    adnce_positive : {"unweighted", "weighted", "none"}
        ADNCE's positive: unweighted (the authors' image code), weighted (their sentence
        code: the positive reweighted too, weights normalised over the whole row), none (the
        population form of their graph code). See :func:`estimators.losses.adnce`.
    tau_plus, beta : float
        DCL/HCL class prior τ⁺ and HCL hardness β.
    negatives : {"all", "unbiased"}
        ``unbiased`` removes each anchor's same-class negatives, for every loss.
    epochs, batch_size : int
        Number of epochs; global batch size B (pairs per step).
    lr, weight_decay, warmup_epochs : float
        AdamW learning rate and decoupled weight decay; linear warm-up length, then cosine.
    subset, test_subset : int, optional
        Stratified subset sizes (see :func:`validation.training.data.load_dataset`); for
        wordnet ``subset`` caps the training sentences; neither for molecules.
    seed : int
        In [0, 2⁶³): seeds the subset, the initialisation, the batch order and the
        augmentations.
    device : str
        ``auto`` (CUDA when present), ``cpu``, ``cuda[:N]``.
    width : int
        Base width of ``cnn-small``.
    knn_k, knn_temperature : int, float
        kNN monitor neighbours and vote temperature.
    probe : bool
        Fit the linear probe at the end.
    radius_every, radius_anchors : int
        Log the implied radius every ``radius_every`` steps on the first ``radius_anchors``
        anchors (0 anchors: never).
    log_every : int
        Read the loss back from the device every ``log_every`` steps (and at the end of an
        epoch); the per-step losses are kept on the device until then.
    checkpoint : str, optional
        Checkpoint file, written atomically every ``checkpoint_every`` epochs and after the
        last epoch of the call.
    checkpoint_every : int
        Epochs between checkpoints.
    resume : bool
        Continue from ``checkpoint`` when it exists.
    bf16, channels_last, compile : bool
        On CUDA: bf16 autocast, channels-last memory layout, ``torch.compile`` of the model
        (``compile`` also on the CPU).
    cache_dir : str, optional
        Folder for the decoded-image cache.
    threads : int, optional
        ``torch.set_num_threads`` (left alone when None).
    progress : bool
        Show a tqdm bar (stderr).
    """

    dataset: str = "digits"
    data: str | None = None
    encoder: str = "mlp"
    loss: str = "infonce"
    temperature: float = 0.5
    mu: float = 0.7
    sigma: float = 0.5
    adnce_positive: str = "unweighted"
    tau_plus: float = 0.1
    beta: float = 1.0
    negatives: str = "all"
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_epochs: float = 0.5
    subset: int | None = None
    test_subset: int | None = None
    seed: int = 0
    device: str = "auto"
    width: int = 16
    knn_k: int = 200
    knn_temperature: float = 0.1
    probe: bool = True
    radius_every: int = 1
    radius_anchors: int = 64
    log_every: int = 1
    checkpoint: str | None = None
    checkpoint_every: int = 1
    resume: bool = False
    bf16: bool = True
    channels_last: bool = True
    compile: bool = False
    cache_dir: str | None = None
    threads: int | None = None
    progress: bool = False

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first invalid field."""
        encoders = DOMAIN_ENCODERS.get(self.dataset, ENCODERS)
        for name, value, choices in (
            ("dataset", self.dataset, ALL_DATASETS),
            ("encoder", self.encoder, encoders),
            ("loss", self.loss, LOSSES),
            ("negatives", self.negatives, NEGATIVES),
            ("adnce_positive", self.adnce_positive, POSITIVE_MODES),
        ):
            if value not in choices:
                raise InputError(f"{name}: expected one of {', '.join(choices)}, found {value!r}")
        for name in ("temperature", "sigma", "lr", "knn_temperature"):
            _check_number(name, getattr(self, name), 0.0, strict=True)
        for name in ("mu", "beta", "weight_decay", "warmup_epochs"):
            _check_number(name, getattr(self, name), 0.0 if name != "mu" else -math.inf)
        _check_number("tau_plus", self.tau_plus, 0.0)
        if self.tau_plus >= 1:
            raise InputError(f"tau_plus: expected a number in [0, 1), found {self.tau_plus!r}")
        for name in (
            "epochs",
            "batch_size",
            "knn_k",
            "width",
            "radius_every",
            "log_every",
            "checkpoint_every",
        ):
            _check_int(name, getattr(self, name), 1)
        _check_int("batch_size", self.batch_size, 2)
        _check_int("radius_anchors", self.radius_anchors, 0)
        check_seed(self.seed)
        for name in ("subset", "test_subset", "threads"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        self._check_domain_options()
        if self.resume and self.checkpoint is None:
            raise InputError("resume: expected a --checkpoint path to resume from, found none")

    def _check_domain_options(self) -> None:
        """The subset options the sentence and graph domains do not take."""
        if self.dataset == "molecules" and self.subset is not None:
            raise InputError(
                f"subset: expected none for molecules (GraphCL trains on all of them), found "
                f"{self.subset!r}"
            )
        if self.dataset in DOMAIN_ENCODERS and self.test_subset is not None:
            raise InputError(
                f"test_subset: expected none for {self.dataset} (fixed held-out tasks), found "
                f"{self.test_subset!r}"
            )

    def numeric_key(self) -> dict[str, Any]:
        """The fields that decide the numbers (all but :data:`RUNTIME_FIELDS`)."""
        return {k: v for k, v in asdict(self).items() if k not in RUNTIME_FIELDS}


@dataclass(frozen=True)
class BatchLog:
    """Per-step log: loss (mean over the global batch), variance of the kept negatives'
    similarities, the exact implied radius η(τ) and its small-radius approximation Var/(2τ²)
    (NaN on steps where the radius is not computed), and the learning rate."""

    step: int
    epoch: int
    loss: float
    neg_variance: float
    eta_exact: float
    eta_approx: float
    lr: float


@dataclass(frozen=True)
class EpochRadius:
    """Per-epoch means of the per-batch radius logs (over the steps where they were computed)."""

    epoch: int
    eta_exact_mean: float
    eta_approx_mean: float
    neg_variance_mean: float


@dataclass(frozen=True)
class EpochTime:
    """Wall-clock seconds of one epoch: the training steps and the kNN evaluation after it."""

    epoch: int
    train_seconds: float
    eval_seconds: float


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`validation.training.loop.train` (also the record so far, per epoch).

    Attributes
    ----------
    knn_top1 : tuple of float
        kNN top-1 (%) on the domain's held-out split; entry 0 is the untrained encoder, entry
        e after epoch e.
    loss_curve : tuple of float
        Mean training loss of each epoch.
    epoch_times : tuple of EpochTime
        Train and evaluation seconds of each epoch.
    linear_probe_top1 : float or None
        Linear-probe test top-1 (%) after the last epoch (None if not run or not finished).
    epochs_done : int
        Epochs completed (less than ``config.epochs`` when stopped early).
    metrics : tuple of dict
        The domain's held-out metrics (%), entry 0 before training, entry e after epoch e
        (images: ``knn_top1``; wordnet: ``recall_at_1``, ``recall_at_10``, ``knn_top1`` = topic
        kNN; molecules: ``cv_accuracy``, ``cv_accuracy_std``, ``knn_top1``).
    """

    config: TrainConfig
    device: str
    world_size: int
    parameters: int
    seconds: float
    steps_per_epoch: int
    epochs_done: int
    knn_top1: tuple[float, ...]
    loss_curve: tuple[float, ...]
    batch_log: tuple[BatchLog, ...]
    implied_radius: tuple[EpochRadius, ...]
    linear_probe_top1: float | None
    linear_probe_train_top1: float | None
    radius_seconds: float
    epoch_times: tuple[EpochTime, ...] = ()
    metrics: tuple[dict[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``cldro train --json`` record); the batch log is columnar."""
        cfg = asdict(self.config)
        log = {f.name: [getattr(b, f.name) for b in self.batch_log] for f in fields(BatchLog)}
        return {
            "dataset": cfg["dataset"],
            "encoder": cfg["encoder"],
            "loss": cfg["loss"],
            "epochs": self.epochs_done,
            "device": self.device,
            "world_size": self.world_size,
            "parameters": self.parameters,
            "seconds": self.seconds,
            "radius_seconds": self.radius_seconds,
            "steps_per_epoch": self.steps_per_epoch,
            "knn_top1": list(self.knn_top1),
            "loss_curve": list(self.loss_curve),
            "implied_radius": [asdict(r) for r in self.implied_radius],
            "epoch_seconds": [asdict(t) for t in self.epoch_times],
            "metrics": [dict(m) for m in self.metrics],
            "linear_probe_top1": self.linear_probe_top1,
            "linear_probe_train_top1": self.linear_probe_train_top1,
            "seed": cfg["seed"],
            "config": cfg,
            "batch_log": log,
        }
