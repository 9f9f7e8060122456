"""The state of a training run between epochs, and its checkpoint file (atomic writes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from dro_theory.errors import InputError
from validation.atomic import atomic_path
from validation.training.config import BatchLog, EpochTime, TrainConfig

__all__ = ["RunState", "load_checkpoint", "save_checkpoint"]


@dataclass
class RunState:
    """What a run has done so far (mutable: the loop appends to it every epoch)."""

    epoch: int
    knn: list[float]
    losses: list[float] = field(default_factory=list)
    log: list[BatchLog] = field(default_factory=list)
    seconds: float = 0.0
    radius_seconds: float = 0.0
    times: list[EpochTime] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)


def save_checkpoint(
    path: Path,
    cfg: TrainConfig,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    st: RunState,
) -> None:
    """Write model, optimiser, augmentation generator and ``st`` to ``path`` atomically."""
    blob = {
        "config": cfg.numeric_key(),
        "epoch": st.epoch,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "generator": gen.get_state(),
        "knn": st.knn,
        "losses": st.losses,
        "log": [asdict(b) for b in st.log],
        "times": [asdict(t) for t in st.times],
        "metrics": st.metrics,
        "seconds": st.seconds,
        "radius_seconds": st.radius_seconds,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_checkpoint(
    path: Path,
    cfg: TrainConfig,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    device: torch.device,
) -> RunState:
    """Restore model, optimiser and generator from ``path``; return the saved state.

    Raises
    ------
    InputError
        Not a cldro training checkpoint, or one of another configuration (names the fields).
    """
    try:
        blob = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:
        raise InputError(f"checkpoint: expected a cldro training checkpoint, found {path}") from exc
    if not isinstance(blob, dict) or "config" not in blob:
        raise InputError(f"checkpoint: expected a cldro training checkpoint, found {path}")
    key = cfg.numeric_key()
    if blob["config"] != key:
        diff = sorted(k for k in key if blob["config"].get(k) != key[k])
        raise InputError(
            f"checkpoint: expected a checkpoint of the same configuration, found one that "
            f"differs in {', '.join(diff)}"
        )
    model.load_state_dict(blob["model"])
    opt.load_state_dict(blob["optimizer"])
    gen.set_state(blob["generator"].cpu())
    return RunState(
        epoch=int(blob["epoch"]),
        knn=list(blob["knn"]),
        losses=list(blob["losses"]),
        log=[BatchLog(**b) for b in blob["log"]],
        seconds=float(blob["seconds"]),
        radius_seconds=float(blob["radius_seconds"]),
        times=[EpochTime(**t) for t in blob.get("times", [])],
        metrics=[dict(m) for m in blob.get("metrics", [])],
    )
