r"""The SimCLR-style contrastive training loop (CPU by default, CUDA when present, DDP when run
under ``torchrun``), with a kNN monitor, a linear probe and the per-batch implied radius.

One step: a global batch of B images (a seeded permutation per epoch, last partial batch
dropped), two augmented views each, encoder + projection head, L2-normalised projections z, the
similarity matrix of the 2B anchors against the 2B keys (SimCLR layout: positive = the other
view, 2B − 2 negatives), one of the losses of :mod:`estimators.losses` (NT-Xent InfoNCE, ADNCE
with the image code's unweighted positive, DCL, HCL), AdamW with a linear warm-up and a cosine
decay of the learning rate.

Logged per batch (``BatchLog``): the loss, the variance of the anchors' negative similarities,
and the radius implied by the temperature (paper Cor. 3.4) computed two ways on a subsample of
``radius_anchors`` anchors: exactly, η(τ) = KL(q_τ‖q0) with q_τ ∝ q0 e^{s/τ} over the anchor's
negatives (:func:`dro_theory.lagrange.radius_for_temperature`), and by the small-radius law
η ≈ Var_{q0}(s)/(2τ²). Both are averaged over the subsampled anchors.

Distributed: with ``RANK``/``WORLD_SIZE`` set (torchrun) the loop initialises the process group
(nccl on CUDA, gloo on CPU), gives rank r the r-th slice of every global batch (so the gathered
batch is exactly the single-process batch), wraps the model in DistributedDataParallel and
gathers the projections with :func:`validation.training.distributed.gather_with_grad`; every
rank's loss covers its own 2b anchors against all 2B keys, and the DDP-averaged gradient is the
full-batch gradient. Augmentation parameters are drawn for the whole global batch on every rank
from the same generator and each rank applies its slice. (BatchNorm statistics stay per rank,
as in SimCLR without SyncBN, so losses match the single-process run only up to BN.)

``negatives="unbiased"`` (the oracle of paper Table 1): each anchor's negatives that share its
class label are removed through the losses' ``neg_mask`` (every loss then counts its N true
negatives per row), for InfoNCE, ADNCE, DCL and HCL alike.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from dro_theory.errors import InputError
from estimators.device import resolve_device
from estimators.losses import adnce, dcl, hcl, nt_xent_from_sim
from validation.atomic import atomic_path
from validation.training import distributed as ddp
from validation.training.augment import augmentation_for
from validation.training.data import DATASETS, ImageData, load_dataset
from validation.training.encoders import ENCODERS, build_model, count_parameters
from validation.training.evaluate import extract_features, knn_top1, linear_probe_top1

__all__ = [
    "LOSSES",
    "NEGATIVES",
    "BatchLog",
    "EpochRadius",
    "TrainConfig",
    "TrainResult",
    "batch_loss",
    "train",
    "true_negative_mask",
]

#: loss names accepted by :class:`TrainConfig`
LOSSES = ("infonce", "adnce", "dcl", "hcl")
#: negative-sampling settings
NEGATIVES = ("all", "unbiased")
#: fields that may differ between an interrupted run and its resumption
_RUNTIME_FIELDS = frozenset({"checkpoint", "resume", "progress", "device", "threads", "cache_dir"})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (the CLI options map one to one).

    Parameters
    ----------
    dataset : {"cifar10", "digits", "fashion-mnist"}
    data : str, optional
        CIFAR npz path / Fashion-MNIST folder (defaults in :mod:`validation.training.data`).
    encoder : {"cnn-small", "resnet18", "mlp"}
    loss : {"infonce", "adnce", "dcl", "hcl"}
    temperature : float
        τ of the loss.
    mu, sigma : float
        ADNCE Gaussian centre and width (on the raw cosine similarity).
    tau_plus, beta : float
        DCL/HCL class prior τ⁺ and HCL hardness β.
    negatives : {"all", "unbiased"}
        ``unbiased`` removes same-class negatives (InfoNCE only).
    epochs, batch_size : int
        Number of epochs; global batch size B (pairs per step).
    lr, weight_decay, warmup_epochs : float
        AdamW learning rate and decoupled weight decay; linear warm-up length, then cosine.
    subset, test_subset : int, optional
        Stratified subset sizes (see :func:`validation.training.data.load_dataset`).
    seed : int
        Seeds the subset, the initialisation, the batch order and the augmentations.
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
    checkpoint : str, optional
        Checkpoint file, written atomically after every epoch.
    resume : bool
        Continue from ``checkpoint`` when it exists.
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
    checkpoint: str | None = None
    resume: bool = False
    cache_dir: str | None = None
    threads: int | None = None
    progress: bool = False

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first invalid field."""
        if self.dataset not in DATASETS:
            raise InputError(
                f"dataset: expected one of {', '.join(DATASETS)}, found {self.dataset!r}"
            )
        if self.encoder not in ENCODERS:
            raise InputError(
                f"encoder: expected one of {', '.join(ENCODERS)}, found {self.encoder!r}"
            )
        if self.loss not in LOSSES:
            raise InputError(f"loss: expected one of {', '.join(LOSSES)}, found {self.loss!r}")
        if self.negatives not in NEGATIVES:
            raise InputError(
                f"negatives: expected one of {', '.join(NEGATIVES)}, found {self.negatives!r}"
            )
        for name in ("temperature", "sigma", "lr", "knn_temperature"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InputError(f"{name}: expected a finite number > 0, found {value!r}")
        for name in ("epochs", "batch_size", "knn_k", "width", "radius_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name}: expected an integer >= 1, found {value!r}")
        if self.batch_size < 2:
            raise InputError(f"batch_size: expected an integer >= 2, found {self.batch_size}")
        if not 0 <= self.tau_plus < 1:
            raise InputError(f"tau_plus: expected a number in [0, 1), found {self.tau_plus!r}")
        if self.beta < 0 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise InputError("beta, weight_decay, warmup_epochs: expected numbers >= 0")
        if self.radius_anchors < 0:
            raise InputError(
                f"radius_anchors: expected an integer >= 0, found {self.radius_anchors!r}"
            )
        if self.resume and self.checkpoint is None:
            raise InputError("resume: expected a --checkpoint path to resume from, found none")


@dataclass(frozen=True)
class BatchLog:
    """Per-step log: loss (mean over the global batch), variance of negative similarities,
    the exact implied radius η(τ) and its small-radius approximation Var/(2τ²) (NaN on steps
    where the radius is not computed), and the learning rate."""

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
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    knn_top1 : tuple of float
        kNN top-1 (%) on the test split; entry 0 is the untrained encoder, entry e after
        epoch e.
    loss_curve : tuple of float
        Mean training loss of each epoch.
    linear_probe_top1 : float or None
        Linear-probe test top-1 (%) after the last epoch (None if not run or not finished).
    epochs_done : int
        Epochs completed (less than ``config.epochs`` when stopped early).
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
            "linear_probe_top1": self.linear_probe_top1,
            "linear_probe_train_top1": self.linear_probe_train_top1,
            "seed": cfg["seed"],
            "config": cfg,
            "batch_log": log,
        }


# ------------------------------------------------------------------------------------------
# pieces
# ------------------------------------------------------------------------------------------
def _lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    span = max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


def _loss(
    cfg: TrainConfig,
    sim: torch.Tensor,
    pos: torch.Tensor,
    self_: torch.Tensor,
    neg_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    kw: dict[str, Any] = {
        "layout": "nt_xent",
        "pos_index": pos,
        "self_index": self_,
        "neg_mask": neg_mask,
    }
    tau = cfg.temperature
    if cfg.loss == "infonce":
        return nt_xent_from_sim(sim, tau, **kw)
    if cfg.loss == "adnce":
        return adnce(sim, tau, mu=cfg.mu, sigma=cfg.sigma, positive="unweighted", **kw)
    if cfg.loss == "dcl":
        return dcl(sim, tau, tau_plus=cfg.tau_plus, **kw)
    return hcl(sim, tau, tau_plus=cfg.tau_plus, beta=cfg.beta, **kw)


def batch_loss(
    cfg: TrainConfig,
    z: torch.Tensor,
    pos: torch.Tensor,
    self_: torch.Tensor,
    neg: torch.Tensor,
    labels: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of this rank's anchors against the gathered global batch.

    Parameters
    ----------
    cfg : TrainConfig
        Loss name and parameters.
    z : torch.Tensor
        (2b, d) projections of this rank's b pairs, ``cat(view 1, view 2)`` (normalised here).
    pos, self_ : torch.Tensor
        (2b,) positive / self columns in the gathered layout
        (:func:`validation.training.distributed.local_nt_xent_index`).
    neg : torch.Tensor
        (2b, 2B) bool mask of each anchor's negatives.
    labels : (torch.Tensor, torch.Tensor), optional
        Anchor and key labels; when given, same-class negatives are removed
        (:func:`true_negative_mask`).

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        The mean loss over the 2b local anchors and the (2b, 2B) cosine similarities (before
        any removal). The keys are ``cat(gather(z₁), gather(z₂))``; with the all-reduce-sum
        backward of ``gather_with_grad`` and DDP's gradient averaging, the parameter gradient is
        that of the full-batch loss (the mean over all 2B anchors).
    """
    z = F.normalize(z.float(), dim=1)
    b = z.shape[0] // 2
    keys = torch.cat([ddp.gather_with_grad(z[:b]), ddp.gather_with_grad(z[b:])])
    sim = z @ keys.T
    keep = None if labels is None else true_negative_mask(labels[0], labels[1], neg)
    return _loss(cfg, sim, pos, self_, keep), sim


def _negative_mask(rows: int, cols: int, pos: torch.Tensor, self_: torch.Tensor) -> torch.Tensor:
    mask = torch.ones(rows, cols, dtype=torch.bool, device=pos.device)
    ar = torch.arange(rows, device=pos.device)
    mask[ar, pos] = False
    mask[ar, self_] = False
    return mask


def true_negative_mask(
    row_labels: torch.Tensor, key_labels: torch.Tensor, neg: torch.Tensor
) -> torch.Tensor:
    """The "unbiased" negatives: each anchor's negatives of another class.

    Parameters
    ----------
    row_labels, key_labels : torch.Tensor
        Class labels of the R anchors and the M keys.
    neg : torch.Tensor
        (R, M) bool, True on each anchor's negatives.

    Returns
    -------
    torch.Tensor
        (R, M) bool ``neg_mask`` for :mod:`estimators.losses`: True where a key is a negative of
        another class than the anchor. The losses then sum (or average) over the true negatives
        only, the oracle "unbiased" loss of Chuang et al. 2020 / paper Table 1.
    """
    return neg & (row_labels[:, None] != key_labels[None, :])


def _radius_stats(
    sim: torch.Tensor, neg: torch.Tensor, temperature: float, anchors: int
) -> tuple[float, float, float]:
    """(mean exact η, mean Var/(2τ²), mean Var) over the first ``anchors`` rows, float64."""
    from dro_theory.lagrange import radius_for_temperature

    m = min(anchors, sim.shape[0])
    n = int(neg[0].sum())
    s = sim[:m][neg[:m]].reshape(m, n).detach().to("cpu", torch.float64).numpy()
    var = s.var(axis=1)
    eta = np.asarray(radius_for_temperature(s, temperature), dtype=np.float64)
    return float(eta.mean()), float((var / (2 * temperature**2)).mean()), float(var.mean())


@dataclass
class _State:
    epoch: int
    knn: list[float]
    losses: list[float]
    log: list[BatchLog]
    seconds: float
    radius_seconds: float


def _evaluate_knn(
    model: nn.Module, data: ImageData, cfg: TrainConfig, device: torch.device, cuda: bool
) -> float:
    kw: dict[str, Any] = {"device": device, "channels_last": cuda, "autocast": cuda}
    ftr = extract_features(model, data.x_train, data.mean, data.std, **kw)
    fte = extract_features(model, data.x_test, data.mean, data.std, **kw)
    return knn_top1(
        ftr,
        data.y_train.to(device),
        fte,
        data.y_test.to(device),
        k=cfg.knn_k,
        temperature=cfg.knn_temperature,
        num_classes=data.num_classes,
    )


def _config_key(cfg: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in asdict(cfg).items() if k not in _RUNTIME_FIELDS}


def _save(
    path: Path,
    cfg: TrainConfig,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    st: _State,
) -> None:
    blob = {
        "config": _config_key(cfg),
        "epoch": st.epoch,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "generator": gen.get_state(),
        "knn": st.knn,
        "losses": st.losses,
        "log": [asdict(b) for b in st.log],
        "seconds": st.seconds,
        "radius_seconds": st.radius_seconds,
    }
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def _load(
    path: Path,
    cfg: TrainConfig,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    device: torch.device,
) -> _State:
    try:
        blob = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:
        raise InputError(f"checkpoint: expected a cldro training checkpoint, found {path}") from exc
    if not isinstance(blob, dict) or "config" not in blob:
        raise InputError(f"checkpoint: expected a cldro training checkpoint, found {path}")
    if blob["config"] != _config_key(cfg):
        diff = sorted(k for k in _config_key(cfg) if blob["config"].get(k) != getattr(cfg, k))
        raise InputError(
            f"checkpoint: expected a checkpoint of the same configuration, found one that "
            f"differs in {', '.join(diff)}"
        )
    model.load_state_dict(blob["model"])
    opt.load_state_dict(blob["optimizer"])
    gen.set_state(blob["generator"].cpu())
    return _State(
        epoch=int(blob["epoch"]),
        knn=list(blob["knn"]),
        losses=list(blob["losses"]),
        log=[BatchLog(**b) for b in blob["log"]],
        seconds=float(blob["seconds"]),
        radius_seconds=float(blob["radius_seconds"]),
    )


def _epoch_radius(log: list[BatchLog], epochs: int) -> tuple[EpochRadius, ...]:
    out = []
    for e in range(epochs):
        rows = [b for b in log if b.epoch == e and math.isfinite(b.eta_exact)]
        if not rows:
            out.append(EpochRadius(e + 1, math.nan, math.nan, math.nan))
            continue
        out.append(
            EpochRadius(
                epoch=e + 1,
                eta_exact_mean=float(np.mean([b.eta_exact for b in rows])),
                eta_approx_mean=float(np.mean([b.eta_approx for b in rows])),
                neg_variance_mean=float(np.mean([b.neg_variance for b in rows])),
            )
        )
    return tuple(out)


def _init_distributed(device_name: str) -> tuple[bool, torch.device | None]:
    """Initialise the process group under torchrun; returns (we initialised it, device)."""
    if ddp.is_distributed() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False, None
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    dev = None
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return True, dev


# ------------------------------------------------------------------------------------------
# the loop
# ------------------------------------------------------------------------------------------
def train(config: TrainConfig, *, stop_after: int | None = None) -> TrainResult:
    """Train an encoder contrastively and evaluate it (see the module docstring).

    Parameters
    ----------
    config : TrainConfig
        The run.
    stop_after : int, optional
        Stop after this many epochs *in this call* (an interruption: the checkpoint stays
        resumable and the linear probe is not run unless all epochs are done).

    Returns
    -------
    TrainResult
    """
    cfg = config
    cfg.validate()
    we_init, ddp_device = _init_distributed(cfg.device)
    try:
        return _train(cfg, stop_after, ddp_device)
    finally:
        if we_init:
            dist.destroy_process_group()


def _train(
    cfg: TrainConfig, stop_after: int | None, ddp_device: torch.device | None
) -> TrainResult:
    t0 = time.perf_counter()
    device = ddp_device if ddp_device is not None else resolve_device(cfg.device)
    cuda = device.type == "cuda"
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    rank, world = ddp.rank(), ddp.world_size()
    if cfg.batch_size % world:
        raise InputError(
            f"batch_size: expected a multiple of the world size {world}, found {cfg.batch_size}"
        )
    data = load_dataset(
        cfg.dataset,
        data=cfg.data,
        subset=cfg.subset,
        test_subset=cfg.test_subset,
        seed=cfg.seed,
        cache_dir=cfg.cache_dir,
    )
    n = data.x_train.shape[0]
    steps = n // cfg.batch_size
    if steps < 1:
        raise InputError(
            f"batch_size: expected at most the {n} training images, found {cfg.batch_size}"
        )
    aug = augmentation_for(cfg.dataset, data.mean, data.std)
    x_train = data.x_train.to(device)
    y_train = data.y_train.to(device)
    model = build_model(
        cfg.encoder,
        in_channels=data.channels,
        image_size=data.image_size,
        seed=cfg.seed,
        width=cfg.width,
    ).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    params = count_parameters(model)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if cuda else None
        )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    total = steps * cfg.epochs
    warmup = round(cfg.warmup_epochs * steps)
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint is not None else None

    if cfg.resume and ckpt is not None and ckpt.is_file():
        st = _load(ckpt, cfg, model, opt, gen, device)
    else:
        st = _State(0, [_evaluate_knn(model, data, cfg, device, cuda)], [], [], 0.0, 0.0)
    t_start_call = t0

    b = cfg.batch_size // world
    local = slice(rank * b, (rank + 1) * b)
    idx = ddp.local_nt_xent_index(b, device=device)
    pos, self_ = idx.pos_index, idx.self_index
    assert self_ is not None
    neg = _negative_mask(2 * b, 2 * cfg.batch_size, pos, self_)

    bar = None
    if cfg.progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=total,
            initial=st.epoch * steps,
            desc=f"{cfg.loss} τ={cfg.temperature}",
            unit="step",
            leave=False,
        )
    done_here = 0
    model.train()
    while st.epoch < cfg.epochs and (stop_after is None or done_here < stop_after):
        epoch = st.epoch
        perm = torch.randperm(
            n, generator=torch.Generator().manual_seed((cfg.seed + 1) * 1_000_003 + epoch)
        ).to(device)
        epoch_losses = []
        for it in range(steps):
            step = epoch * steps + it
            gidx = perm[it * cfg.batch_size : (it + 1) * cfg.batch_size]
            p1 = aug.sample(cfg.batch_size, gen).select(local)
            p2 = aug.sample(cfg.batch_size, gen).select(local)
            xb = x_train[gidx[local]]
            views = torch.cat([aug.apply(xb, p1), aug.apply(xb, p2)])
            if cuda:
                views = views.contiguous(memory_format=torch.channels_last)
            lr = _lr_at(step, total, warmup, cfg.lr)
            for group in opt.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                _, z = net(views)
            labels = None
            if cfg.negatives == "unbiased":
                yg = y_train[gidx]
                labels = (torch.cat([yg[local], yg[local]]), torch.cat([yg, yg]))
            loss, sim = batch_loss(cfg, z, pos, self_, neg, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_value = loss.detach()
            if world > 1:
                dist.all_reduce(loss_value, op=dist.ReduceOp.SUM)
                loss_value = loss_value / world
            lv = float(loss_value)
            if not math.isfinite(lv):
                raise FloatingPointError(f"loss became {lv} at step {step}")
            epoch_losses.append(lv)
            eta = approx = var = math.nan
            if cfg.radius_anchors > 0 and step % cfg.radius_every == 0:
                tr = time.perf_counter()
                eta, approx, var = _radius_stats(sim, neg, cfg.temperature, cfg.radius_anchors)
                st.radius_seconds += time.perf_counter() - tr
            st.log.append(BatchLog(step, epoch, lv, var, eta, approx, lr))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{lv:.3f}", knn=f"{st.knn[-1]:.1f}")
        st.losses.append(float(np.mean(epoch_losses)))
        st.knn.append(_evaluate_knn(model, data, cfg, device, cuda))
        st.epoch += 1
        done_here += 1
        if ckpt is not None:
            now = time.perf_counter()
            st.seconds += now - t_start_call
            t_start_call = now
            if rank == 0:
                _save(ckpt, cfg, model, opt, gen, st)
            if world > 1:
                dist.barrier()
    if bar is not None:
        bar.close()

    probe_test = probe_train = None
    if cfg.probe and st.epoch == cfg.epochs:
        kw: dict[str, Any] = {"device": device, "channels_last": cuda, "autocast": cuda}
        ftr = extract_features(model, data.x_train, data.mean, data.std, **kw)
        fte = extract_features(model, data.x_test, data.mean, data.std, **kw)
        probe = linear_probe_top1(
            ftr,
            data.y_train.to(device),
            fte,
            data.y_test.to(device),
            num_classes=data.num_classes,
        )
        probe_test, probe_train = probe.test_top1, probe.train_top1
    st.seconds += time.perf_counter() - t_start_call
    return TrainResult(
        config=cfg,
        device=str(device),
        world_size=world,
        parameters=params,
        seconds=st.seconds,
        steps_per_epoch=steps,
        epochs_done=st.epoch,
        knn_top1=tuple(st.knn),
        loss_curve=tuple(st.losses),
        batch_log=tuple(st.log),
        implied_radius=_epoch_radius(st.log, st.epoch),
        linear_probe_top1=probe_test,
        linear_probe_train_top1=probe_train,
        radius_seconds=st.radius_seconds,
    )
