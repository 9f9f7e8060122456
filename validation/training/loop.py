r"""The SimCLR-style contrastive training loop, in named steps (CPU by default, CUDA when
present, DDP under ``torchrun``), with a kNN monitor, a linear probe and the implied radius.

One step (:func:`_train_step`): a global batch of B items (a seeded permutation per epoch, last
partial batch dropped), two views each from the domain (:mod:`validation.training.domain`:
images, WordNet sentences or molecules), encoder + projection head, L2-normalised projections
z, the similarity matrix in the domain's layout (``nt_xent``: the 2b local anchors against the
2B gathered keys, positive = the other view, 2B − 2 negatives; ``cross``: the b local view-1
anchors against the B gathered view-2 keys, positive on the diagonal, B − 1 negatives), the
loss ``cfg.loss`` of :data:`estimators.losses.LOSS_REGISTRY`, AdamW with a linear
warm-up and a cosine decay of the learning rate. The loss stays on the device and is read back
every ``log_every`` steps. End of epoch (:func:`_end_epoch`): the domain's evaluation (kNN
top-1 and the domain's own metrics), train/eval
seconds, the caller's ``on_epoch`` callback with the result so far (it may stop the run), and a
checkpoint every ``checkpoint_every`` epochs and after the last.

Logged per batch (:class:`~validation.training.config.BatchLog`): the loss, and every
``radius_every`` steps the implied radius of :mod:`validation.training.monitor` over the
negatives the loss keeps.

Distributed: rank r trains on the r-th slice of every global batch; projections are gathered
with :func:`validation.training.distributed.gather_with_grad`, so every rank's loss covers its
2b anchors against all 2B keys and the DDP-averaged gradient is the full-batch gradient
(BatchNorm statistics stay per rank, as in SimCLR without SyncBN).

``negatives="unbiased"`` (the oracle of paper Table 1): each anchor's same-class negatives are
removed from its layout, for every loss; N then varies per anchor.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from dro_theory.errors import InputError
from estimators.device import resolve_device
from estimators.losses import AnchorIndex, LossParams, contrastive_loss, negative_mask
from validation.training import distributed as ddp
from validation.training.checkpoint import RunState, load_checkpoint, save_checkpoint
from validation.training.config import (
    LOSSES,
    NEGATIVES,
    BatchLog,
    EpochRadius,
    EpochTime,
    TrainConfig,
    TrainResult,
)
from validation.training.domain import LAYOUTS, TrainingDomain, image_domain
from validation.training.domains.registry import make_domain
from validation.training.encoders import count_parameters
from validation.training.monitor import epoch_radius, radius_stats

__all__ = [
    "LOSSES",
    "NEGATIVES",
    "BatchLog",
    "BatchLoss",
    "EpochRadius",
    "EpochTime",
    "TrainConfig",
    "TrainResult",
    "batch_loss",
    "cross_index",
    "image_domain",
    "projections",
    "train",
    "true_negative_mask",
]

#: per-epoch permutation seed = (seed + 1) · this + epoch (a prime, so that seeds and epochs
#: never give the same generator seed for nearby values)
_PERM_SEED_STRIDE = 1_000_003

#: called after every epoch with the result so far; a true return value stops the run there
OnEpoch = Callable[[TrainResult], bool | None]


def _lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    span = max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


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
        (R, M) bool, True where a key is a negative of another class than the anchor (the
        oracle "unbiased" loss of Chuang et al. 2020 / paper Table 1).
    """
    return neg & (row_labels[:, None] != key_labels[None, :])


@dataclass(frozen=True)
class BatchLoss:
    """One batch's loss (0-d, on the device), similarities (2b, 2B) and kept negatives."""

    loss: torch.Tensor
    sim: torch.Tensor
    keep: torch.Tensor


def batch_loss(
    cfg: TrainConfig,
    z: torch.Tensor,
    layout: AnchorIndex,
    neg: torch.Tensor,
    labels: tuple[torch.Tensor, torch.Tensor] | None = None,
    cross: bool = False,
) -> BatchLoss:
    """The loss of this rank's anchors against the gathered global batch.

    Parameters
    ----------
    cfg : TrainConfig
        Loss name and parameters.
    z : torch.Tensor
        (2b, d) projections of this rank's b pairs, ``cat(view 1, view 2)`` (normalised here).
    layout : AnchorIndex
        Positive / self columns in the gathered layout
        (:func:`validation.training.distributed.local_nt_xent_index`).
    neg : torch.Tensor
        (2b, 2B) bool, :func:`estimators.losses.negative_mask` of ``layout``.
    labels : (torch.Tensor, torch.Tensor), optional
        Anchor and key labels; when given, same-class negatives are removed.
    cross : bool
        The ``cross`` layout: rows are the b view-1 anchors, columns the B gathered view-2
        keys (``layout`` from :func:`cross_index`); else the NT-Xent layout.

    Returns
    -------
    BatchLoss
        The mean loss over the 2b local anchors (with ``gather_with_grad`` and DDP averaging,
        the parameter gradient of the full-batch loss), the cosine similarities and the
        negatives the loss kept.
    """
    z = F.normalize(z.float(), dim=1)
    b = z.shape[0] // 2
    if cross:
        sim = z[:b] @ ddp.gather_with_grad(z[b:]).T
    else:
        keys = torch.cat([ddp.gather_with_grad(z[:b]), ddp.gather_with_grad(z[b:])])
        sim = z @ keys.T
    keep = neg if labels is None else true_negative_mask(labels[0], labels[1], neg)
    used = layout if labels is None else layout.with_negatives(keep)
    params = LossParams(
        mu=cfg.mu,
        sigma=cfg.sigma,
        positive=cfg.adnce_positive,
        tau_plus=cfg.tau_plus,
        beta=cfg.beta,
    )
    loss = contrastive_loss(cfg.loss, sim, cfg.temperature, layout=used, params=params)
    return BatchLoss(loss, sim, keep)


def cross_index(local_batch: int, device: torch.device | None = None) -> AnchorIndex:
    """The ``cross`` layout of this rank's b view-1 anchors against the gathered B = W·b
    view-2 keys: anchor k's positive is column rank·b + k; no self column."""
    rank, world = ddp.rank(), ddp.world_size()
    pos = torch.arange(local_batch, device=device) + rank * local_batch
    return AnchorIndex.explicit(pos, None, world * local_batch)


def _layout(dom: TrainingDomain, b: int, device: torch.device) -> tuple[AnchorIndex, int]:
    """The domain's batch layout for b local pairs, and its number of key columns."""
    world = ddp.world_size()
    if dom.layout == "cross":
        return cross_index(b, device), world * b
    if dom.layout != "nt_xent":
        raise InputError(f"layout: expected one of {', '.join(LAYOUTS)}, found {dom.layout!r}")
    return ddp.local_nt_xent_index(b, device=device), 2 * world * b


@dataclass
class _Run:
    """What :func:`_setup` builds: everything the steps read (fixed during the run)."""

    cfg: TrainConfig
    device: torch.device
    domain: TrainingDomain
    net: nn.Module
    opt: torch.optim.Optimizer
    gen: torch.Generator
    layout: AnchorIndex
    neg: torch.Tensor
    local: slice
    steps: int
    warmup: int
    world: int
    rank: int
    params: int
    pending: list[tuple[int, int, float, torch.Tensor, tuple[float, float, float]]] = field(
        default_factory=list
    )
    bar: Any = None  # a tqdm bar on rank 0 with ``progress``, else None

    @property
    def model(self) -> nn.Module:
        """The bare encoder (not wrapped by DDP or ``torch.compile``)."""
        return self.domain.encoder

    @property
    def autocast(self) -> bool:
        """bf16 autocast on (CUDA and ``cfg.bf16``)."""
        return self.device.type == "cuda" and self.cfg.bf16


def _setup(
    cfg: TrainConfig, ddp_device: torch.device | None, domain: TrainingDomain | None
) -> _Run:
    """Device, domain, model wrappers, optimiser, generator and the batch layout."""
    device = ddp_device if ddp_device is not None else resolve_device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rank, world = ddp.rank(), ddp.world_size()
    if cfg.batch_size % world:
        raise InputError(
            f"batch_size: expected a multiple of the world size {world}, found {cfg.batch_size}"
        )
    dom = domain if domain is not None else make_domain(cfg, device)
    if cfg.negatives == "unbiased" and dom.train_labels is None:
        raise InputError(
            f"negatives: expected 'all' for the unlabelled {dom.name} domain, found 'unbiased'"
        )
    steps = dom.train_size // cfg.batch_size
    if steps < 1:
        raise InputError(
            f"batch_size: expected at most the {dom.train_size} training items, found "
            f"{cfg.batch_size}"
        )
    model = dom.encoder
    net: nn.Module = model
    if world > 1:
        cuda = device.type == "cuda"
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if cuda else None
        )
    if cfg.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    b = cfg.batch_size // world
    layout, cols = _layout(dom, b, device)
    return _Run(
        cfg=cfg,
        device=device,
        domain=dom,
        net=net,
        opt=torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay),
        gen=torch.Generator(device=device).manual_seed(cfg.seed),
        layout=layout,
        neg=negative_mask(layout, cols),
        local=slice(rank * b, (rank + 1) * b),
        steps=steps,
        warmup=round(cfg.warmup_epochs * steps),
        world=world,
        rank=rank,
        params=count_parameters(model),
    )


def _evaluate(run: _Run) -> dict[str, float]:
    """The domain's held-out metrics of the bare model (``knn_top1`` among them)."""
    metrics = run.domain.evaluate(run.model)
    if "knn_top1" not in metrics:
        raise InputError(f"domain: expected a knn_top1 metric, found {sorted(metrics)}")
    return metrics


def _start(run: _Run) -> RunState:
    """The resumed state (checkpoint present and ``resume``) or a fresh one (kNN at epoch 0)."""
    ckpt = run.cfg.checkpoint
    if run.cfg.resume and ckpt is not None and Path(ckpt).is_file():
        return load_checkpoint(Path(ckpt), run.cfg, run.model, run.opt, run.gen, run.device)
    metrics = _evaluate(run)
    return RunState(epoch=0, knn=[metrics["knn_top1"]], metrics=[metrics])


def projections(net: nn.Module, views: Any) -> torch.Tensor:
    """Projections z of ``cat(view 1, view 2)`` (one forward pass), or of a pair of views
    (one pass per view, concatenated: BatchNorm statistics per view)."""
    if isinstance(views, tuple):
        return torch.cat([net(v)[1] for v in views])
    return net(views)[1]


def _train_step(run: _Run, st: RunState, epoch: int, it: int, perm: torch.Tensor) -> None:
    """One optimisation step; the loss is queued on the device (read by :func:`_flush`)."""
    cfg = run.cfg
    step = epoch * run.steps + it
    gidx = perm[it * cfg.batch_size : (it + 1) * cfg.batch_size]
    views = run.domain.views(gidx, run.local, run.gen)
    lr = _lr_at(step, run.steps * cfg.epochs, run.warmup, cfg.lr)
    for group in run.opt.param_groups:
        group["lr"] = lr
    with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.autocast):
        z = projections(run.net, views)
    labels = None
    cross = run.domain.layout == "cross"
    if run.domain.train_labels is not None and cfg.negatives == "unbiased":
        yg = run.domain.train_labels[gidx]
        labels = (yg[run.local], yg) if cross else (yg[run.local].repeat(2), yg.repeat(2))
    out = batch_loss(cfg, z, run.layout, run.neg, labels, cross=cross)
    run.opt.zero_grad(set_to_none=True)
    out.loss.backward()
    run.opt.step()
    loss_value = out.loss.detach()
    if run.world > 1:
        dist.all_reduce(loss_value, op=dist.ReduceOp.SUM)
        loss_value = loss_value / run.world
    radius = (math.nan, math.nan, math.nan)
    if cfg.radius_anchors > 0 and step % cfg.radius_every == 0:
        tr = time.perf_counter()
        r = radius_stats(out.sim, out.keep, cfg.temperature, cfg.radius_anchors)
        radius = (r.neg_variance, r.eta_exact, r.eta_approx)
        st.radius_seconds += time.perf_counter() - tr
    run.pending.append((step, epoch, lr, loss_value, radius))


def _flush(run: _Run, st: RunState) -> list[float]:
    """Read the queued losses back in one copy, check them, append their batch logs."""
    if not run.pending:
        return []
    values = torch.stack([p[3] for p in run.pending]).tolist()
    for (step, epoch, lr, _, (var, eta, approx)), lv in zip(run.pending, values, strict=True):
        if not math.isfinite(lv):
            raise FloatingPointError(f"loss became {lv} at step {step}")
        st.log.append(BatchLog(step, epoch, lv, var, eta, approx, lr))
    run.pending.clear()
    if run.bar is not None:
        run.bar.update(len(values))
        run.bar.set_postfix(loss=f"{values[-1]:.3f}", knn=f"{st.knn[-1]:.1f}")
    return [float(v) for v in values]


def _run_epoch(run: _Run, st: RunState) -> list[float]:
    """All steps of epoch ``st.epoch``; returns the per-step losses."""
    cfg = run.cfg
    seed = (cfg.seed + 1) * _PERM_SEED_STRIDE + st.epoch
    perm = torch.randperm(run.domain.train_size, generator=torch.Generator().manual_seed(seed))
    perm = perm.to(run.device)
    run.model.train()
    losses: list[float] = []
    for it in range(run.steps):
        _train_step(run, st, st.epoch, it, perm)
        if (it + 1) % cfg.log_every == 0:
            losses += _flush(run, st)
    return losses + _flush(run, st)


def _end_epoch(run: _Run, st: RunState, losses: list[float], train_s: float) -> None:
    """kNN evaluation and the epoch's train/eval seconds."""
    te = time.perf_counter()
    st.losses.append(sum(losses) / len(losses))
    metrics = _evaluate(run)
    st.knn.append(metrics["knn_top1"])
    st.metrics.append(metrics)
    eval_s = time.perf_counter() - te
    st.times.append(EpochTime(st.epoch + 1, train_s, eval_s))
    st.seconds += train_s + eval_s
    st.epoch += 1


def _checkpoint(run: _Run, st: RunState, last: bool) -> None:
    """Write the checkpoint every ``checkpoint_every`` epochs and after the last one."""
    ckpt = run.cfg.checkpoint
    if ckpt is not None and (last or st.epoch % run.cfg.checkpoint_every == 0):
        if run.rank == 0:
            save_checkpoint(Path(ckpt), run.cfg, run.model, run.opt, run.gen, st)
        if run.world > 1:
            dist.barrier()


def _caller_stops(run: _Run, st: RunState, on_epoch: OnEpoch | None) -> bool:
    """Call ``on_epoch`` on rank 0 with the result so far; True when it asks to stop (the
    answer is broadcast so that every rank stops together)."""
    stop = False
    if on_epoch is not None and run.rank == 0:
        stop = bool(on_epoch(_result(run, st, None)))
    if run.world > 1:
        flag = torch.tensor([int(stop)], device=run.device)
        dist.broadcast(flag, src=0)
        stop = bool(flag.item())
    return stop


def _result(run: _Run, st: RunState, probe: tuple[float, float] | None) -> TrainResult:
    return TrainResult(
        config=run.cfg,
        device=str(run.device),
        world_size=run.world,
        parameters=run.params,
        seconds=st.seconds,
        steps_per_epoch=run.steps,
        epochs_done=st.epoch,
        knn_top1=tuple(st.knn),
        loss_curve=tuple(st.losses),
        batch_log=tuple(st.log),
        implied_radius=epoch_radius(st.log, st.epoch),
        linear_probe_top1=None if probe is None else probe[0],
        linear_probe_train_top1=None if probe is None else probe[1],
        radius_seconds=st.radius_seconds,
        epoch_times=tuple(st.times),
        metrics=tuple(st.metrics),
    )


def _train(
    cfg: TrainConfig,
    stop_after: int | None,
    ddp_device: torch.device | None,
    domain: TrainingDomain | None,
    on_epoch: OnEpoch | None,
) -> TrainResult:
    run = _setup(cfg, ddp_device, domain)
    t0 = time.perf_counter()
    st = _start(run)
    st.seconds += time.perf_counter() - t0
    if cfg.progress and run.rank == 0:
        from tqdm.auto import tqdm

        total = run.steps * cfg.epochs
        run.bar = tqdm(  # disable=None: no bar when stderr is not a terminal (the epoch lines stay)
            total=total, initial=st.epoch * run.steps, unit="step", leave=False, disable=None
        )
    done = 0
    while st.epoch < cfg.epochs and (stop_after is None or done < stop_after):
        ts = time.perf_counter()
        losses = _run_epoch(run, st)
        done += 1
        _end_epoch(run, st, losses, time.perf_counter() - ts)
        stop = _caller_stops(run, st, on_epoch)
        last = stop or st.epoch == cfg.epochs or done == stop_after
        _checkpoint(run, st, last)
        if stop:
            break
    if run.bar is not None:
        run.bar.close()
    tp = time.perf_counter()
    probe = run.domain.probe(run.model) if cfg.probe and st.epoch == cfg.epochs else None
    st.seconds += time.perf_counter() - tp
    return _result(run, st, probe)


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


def train(
    config: TrainConfig,
    *,
    stop_after: int | None = None,
    domain: TrainingDomain | None = None,
    on_epoch: OnEpoch | None = None,
) -> TrainResult:
    """Train an encoder contrastively and evaluate it (see the module docstring).

    Parameters
    ----------
    config : TrainConfig
        The run.
    stop_after : int, optional
        Stop after this many epochs *in this call* (an interruption: the checkpoint stays
        resumable and the linear probe is not run unless all epochs are done).
    domain : TrainingDomain, optional
        The data domain (default: the domain of ``config.dataset``,
        :func:`validation.training.domains.registry.make_domain`).
    on_epoch : callable, optional
        Called on rank 0 after every epoch with the result so far (no linear probe), e.g. to
        print a line and write the record so far; when it returns True the run stops after
        that epoch (checkpoint written, no linear probe), e.g. at the end of a time budget.

    Returns
    -------
    TrainResult

    Raises
    ------
    InputError
        An invalid configuration or checkpoint.
    FloatingPointError
        The loss became NaN or infinite.
    """
    config.validate()
    we_init, ddp_device = _init_distributed(config.device)
    try:
        return _train(config, stop_after, ddp_device, domain, on_epoch)
    finally:
        if we_init:
            dist.destroy_process_group()
