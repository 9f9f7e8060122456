"""Training loop of the critic: minibatch ascent on the bound, early stopping on validation."""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from estimators.phi_mi._config import FitConfig
from estimators.phi_mi._scoring import bound_value, evaluate

__all__ = ["FitHistory", "Progress", "TrainOutcome", "train"]


@dataclass(frozen=True)
class FitHistory:
    """Training curve of a :class:`PhiMI` fit, one entry per validation check.

    Attributes
    ----------
    step : numpy.ndarray of int
        Optimiser steps done at each check (0: the critic before training).
    train : numpy.ndarray
        Mean of the training-batch bound over the steps since the previous check (float32
        batches of ``batch_size_`` pairs; optimistic: these are the pairs the critic fits).
    val : numpy.ndarray
        The bound on the whole validation split (float64), the early-stopping criterion.
    best_step : int
        Step whose critic was kept (highest ``val``).
    stopped_early : bool
        Whether training ended by patience before the step budget.
    budget_stopped : bool
        Whether ``max_seconds`` ended training (the best critic so far is kept).
    """

    step: NDArray[np.int64]
    train: NDArray[np.float64]
    val: NDArray[np.float64]
    best_step: int
    stopped_early: bool
    budget_stopped: bool = False


@dataclass(frozen=True)
class TrainOutcome:
    """The training curve, the kept (best-validation) parameters and the steps done."""

    history: FitHistory
    best_state: dict[str, torch.Tensor]
    steps: int


class Progress:
    """Progress on stderr: a tqdm bar on a terminal, one plain line per check otherwise.

    ``enabled`` False: silent. Plain lines (no carriage returns) keep logs readable when
    stderr is a file or a pipe.
    """

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.enabled, self.total, self.label = bool(enabled), total, label
        self.bar: Any = None
        if self.enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=label, unit="step", leave=False)

    def step(self) -> None:
        """One optimiser step done."""
        if self.bar is not None:
            self.bar.update(1)

    def check(self, step: int, val: float, best: float) -> None:
        """A validation check at ``step``."""
        if self.bar is not None:
            self.bar.set_postfix(val=f"{val:.4g}", best=f"{best:.4g}")
        elif self.enabled:
            sys.stderr.write(
                f"{self.label}: step {step}/{self.total} val {val:.4g} best {best:.4g}\n"
            )
            sys.stderr.flush()

    def close(self) -> None:
        """End of training."""
        if self.bar is not None:
            self.bar.close()


class _Curve:
    """Running record of the validation checks and the best critic so far."""

    def __init__(self, critic: torch.nn.Module) -> None:
        self.steps: list[int] = []
        self.train: list[float] = []
        self.val: list[float] = []
        self.best_val, self.best_step, self.since_best = -math.inf, 0, 0
        self.best_state = copy.deepcopy(critic.state_dict())

    def add(self, critic: torch.nn.Module, step: int, train: float, val: float) -> None:
        self.steps.append(step)
        self.train.append(train)
        self.val.append(val)
        if val > self.best_val:
            self.best_val, self.best_step, self.since_best = val, step, 0
            self.best_state = copy.deepcopy(critic.state_dict())
        else:
            self.since_best += 1


def train(
    critic: torch.nn.Module,
    x_tr: torch.Tensor,
    y_tr: torch.Tensor,
    val: tuple[NDArray[np.float64], NDArray[np.float64]],
    batch: int,
    steps_max: int,
    gen: torch.Generator,
    cfg: FitConfig,
    deadline: float | None = None,
) -> TrainOutcome:
    """Maximise the training bound with AdamW; keep the critic best on the validation split.

    Checks every ``eval_every`` steps (and at step 0), stops after ``patience`` checks without
    improvement, at ``steps_max``, or when ``time.perf_counter()`` passes ``deadline``.
    """
    div, bound = cfg.train_div, cfg.train_bound
    opt = torch.optim.AdamW(critic.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_train = x_tr.shape[0]
    per_epoch, order, pos = n_train // batch, torch.randperm(n_train, generator=gen), 0

    def check(step: int, running: list[float]) -> None:
        value = evaluate(critic, val[0], val[1], bound, div, cfg.eval_block)
        curve.add(critic, step, float(np.mean(running)), value)
        progress.check(step, value, curve.best_val)

    curve = _Curve(critic)
    progress = Progress(cfg.progress, steps_max, f"I_{div} ({bound})")
    with torch.no_grad():
        first = float(bound_value(critic(x_tr[:batch], y_tr[:batch]), bound, div))
    check(0, [first])
    running: list[float] = []
    stopped = budget = False
    step = 0
    try:
        for step in range(1, steps_max + 1):
            if pos >= per_epoch:
                order, pos = torch.randperm(n_train, generator=gen), 0
            idx = order[pos * batch : (pos + 1) * batch].to(x_tr.device)
            pos += 1
            critic.train()
            value = bound_value(critic(x_tr[idx], y_tr[idx]), bound, div)
            opt.zero_grad(set_to_none=True)
            (-value).backward()
            opt.step()
            running.append(float(value.detach()))
            progress.step()
            budget = deadline is not None and time.perf_counter() > deadline
            if step % cfg.eval_every == 0 or step == steps_max or budget:
                check(step, running)
                running = []
                if budget or curve.since_best >= cfg.patience:
                    stopped = step < steps_max and not budget
                    break
    finally:
        progress.close()
    history = FitHistory(
        step=np.asarray(curve.steps, dtype=np.int64),
        train=np.asarray(curve.train, dtype=np.float64),
        val=np.asarray(curve.val, dtype=np.float64),
        best_step=curve.best_step,
        stopped_early=stopped,
        budget_stopped=budget,
    )
    return TrainOutcome(history, curve.best_state, step)
