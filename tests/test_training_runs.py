"""Training runs cut short, resumed, recorded per epoch; the η monitor's negatives (issue 12)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from dro_theory.errors import InputError
from estimators.losses import negative_mask
from validation.cli import main
from validation.training import loop
from validation.training.data import default_cifar_npz
from validation.training.distributed import local_nt_xent_index
from validation.training.loop import TrainConfig, batch_loss, train
from validation.training.monitor import RadiusStats, radius_stats

TINY = TrainConfig(
    dataset="digits",
    encoder="mlp",
    subset=400,
    epochs=3,
    batch_size=64,
    lr=2e-3,
    radius_anchors=8,
    radius_every=2,
    device="cpu",
    probe=False,
)


class _Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the loop may catch it."""


def _kill_at(monkeypatch: pytest.MonkeyPatch, epoch: int, it: int) -> None:
    real = loop._train_step

    def step(run: Any, st: Any, e: int, i: int, perm: torch.Tensor) -> None:
        if (e, i) == (epoch, it):
            raise _Killed
        real(run, st, e, i, perm)

    monkeypatch.setattr(loop, "_train_step", step)


def test_killed_mid_epoch_and_resumed_equals_the_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full_ckpt = tmp_path / "full.pt"
    full = train(replace(TINY, checkpoint=str(full_ckpt)))
    cfg = replace(TINY, checkpoint=str(tmp_path / "run.pt"), resume=True)
    with monkeypatch.context() as m:
        _kill_at(m, epoch=1, it=2)  # mid-epoch 2 (steps per epoch: 400 // 64 = 6)
        with pytest.raises(_Killed):
            train(cfg)
    assert torch.load(cfg.checkpoint, weights_only=False)["epoch"] == 1  # type: ignore[arg-type]
    rest = train(cfg)
    assert rest.epochs_done == 3
    assert rest.knn_top1 == full.knn_top1
    assert rest.loss_curve == full.loss_curve
    assert [b.loss for b in rest.batch_log] == [b.loss for b in full.batch_log]
    assert [b.eta_exact for b in rest.batch_log] == pytest.approx(
        [b.eta_exact for b in full.batch_log], nan_ok=True, rel=0, abs=0
    )
    a = torch.load(full_ckpt, weights_only=False)["model"]
    b = torch.load(cfg.checkpoint, weights_only=False)["model"]  # type: ignore[arg-type]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_every_k_epochs_and_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved: list[int] = []
    real = loop.save_checkpoint
    monkeypatch.setattr(
        loop,
        "save_checkpoint",
        lambda p, c, m, o, g, st: (saved.append(st.epoch), real(p, c, m, o, g, st)),
    )
    train(replace(TINY, epochs=5, checkpoint=str(tmp_path / "c.pt"), checkpoint_every=2))
    assert saved == [2, 4, 5]


def test_reading_the_loss_every_n_steps_changes_no_number() -> None:
    a = train(replace(TINY, epochs=1))
    b = train(replace(TINY, epochs=1, log_every=4))
    assert a.batch_log == b.batch_log and a.knn_top1 == b.knn_top1


def test_loss_check_still_fires_when_read_every_n_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    real = loop.batch_loss

    def nan_loss(*args: Any, **kw: Any) -> loop.BatchLoss:
        out = real(*args, **kw)
        return replace(out, loss=out.loss + math.nan)  # finite gradients, NaN value

    monkeypatch.setattr(loop, "batch_loss", nan_loss)
    with pytest.raises(FloatingPointError, match="loss became nan at step 0"):
        train(replace(TINY, epochs=1, log_every=4))


def test_cli_writes_the_record_and_a_line_after_every_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rec.json"
    _kill_at(monkeypatch, epoch=1, it=3)
    args = ["train", "--dataset", "digits", "--subset", "400", "--epochs", "3"]
    args += ["--batch-size", "64", "--device", "cpu", "--no-progress", "--json", str(out)]
    with pytest.raises(_Killed):
        main(args)
    rec = json.loads(out.read_text())  # the run died in epoch 2: epoch 1 is on disk
    assert rec["epochs"] == 1 and len(rec["knn_top1"]) == 2 and len(rec["loss_curve"]) == 1
    (times,) = rec["epoch_seconds"]
    assert times["epoch"] == 1 and times["train_seconds"] > 0 and times["eval_seconds"] > 0
    err = capsys.readouterr().err
    assert "[epoch 1/3] infonce loss" in err and "[epoch 2/3]" not in err
    assert not list(tmp_path.glob(".*.tmp"))


def test_eta_is_taken_over_the_negatives_the_loss_keeps() -> None:
    """Loop reference: per-anchor KL(q_τ‖uniform) over the OTHER-CLASS negatives only."""
    g = torch.Generator().manual_seed(3)
    b, tau = 6, 0.4
    z = torch.randn(2 * b, 5, generator=g)
    y = torch.tensor([0, 1, 0, 2, 1, 0])
    idx = local_nt_xent_index(b, rank_=0, world_size_=1)
    neg = negative_mask(idx, 2 * b)
    yy = torch.cat([y, y])
    out = batch_loss(replace(TINY, negatives="unbiased"), z, idx, neg, (yy, yy))
    got = radius_stats(out.sim, out.keep, tau, anchors=2 * b)
    s_all = out.sim.double().numpy()
    etas, variances = [], []
    for i in range(2 * b):
        keys = [j for j in range(2 * b) if j not in (i, (i + b) % (2 * b)) and yy[j] != yy[i]]
        s = s_all[i, keys]
        logq = s / tau - logsumexp(s / tau)
        etas.append(float(np.sum(np.exp(logq) * (logq + np.log(s.size)))))
        variances.append(float(s.var()))
    # float64 rounding of sums of ≤ 10 terms of size ≤ e^{2/τ}: relative 1e-12 is ample
    assert got.eta_exact == pytest.approx(np.mean(etas), rel=1e-12)
    assert got.neg_variance == pytest.approx(np.mean(variances), rel=1e-12)
    everything = radius_stats(out.sim, neg, tau, anchors=2 * b)
    assert everything.eta_exact != pytest.approx(got.eta_exact, rel=1e-3)


def test_the_loop_monitors_the_kept_negatives(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = loop.radius_stats

    def spy(sim: torch.Tensor, keep: torch.Tensor, tau: float, anchors: int) -> RadiusStats:
        seen.append((sim, keep))
        return real(sim, keep, tau, anchors)

    monkeypatch.setattr(loop, "radius_stats", spy)
    train(replace(TINY, epochs=1, negatives="unbiased", radius_every=1))
    full = negative_mask(local_nt_xent_index(64, rank_=0, world_size_=1), 128)
    assert seen and all(bool((k & ~full).sum() == 0) for _, k in seen)
    assert all(int(k.sum()) < int(full.sum()) for _, k in seen)  # same-class keys removed


def test_data_path_prefers_the_copy_in_the_checkout(tmp_path: Path) -> None:
    local, shared = tmp_path / "local.npz", tmp_path / "shared.npz"
    with pytest.raises(InputError, match=r"data: expected the CIFAR-10 npz .* found none"):
        default_cifar_npz((local, shared))
    shared.write_bytes(b"x")
    assert default_cifar_npz((local, shared)) == shared
    local.write_bytes(b"x")
    assert default_cifar_npz((local, shared)) == local


def test_on_epoch_can_stop_the_run_and_the_checkpoint_is_written(tmp_path: Path) -> None:
    ckpt = tmp_path / "c.pt"
    cfg = replace(TINY, epochs=4, checkpoint=str(ckpt), checkpoint_every=5, probe=True)
    r = train(cfg, on_epoch=lambda so_far: so_far.epochs_done == 2)
    assert r.epochs_done == 2 and r.linear_probe_top1 is None
    assert torch.load(ckpt, weights_only=False)["epoch"] == 2
