"""Two CPU processes (gloo): the distributed loss and gradients equal the full-batch ones, and
``cldro train`` runs under torchrun.

Marked slow (opt-in, ``pytest -m slow``): each test starts two fresh Python processes that
import torch, ≈ 10–20 s on idle cores and up to ≈ 50 s on a loaded 2-core machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from estimators.losses import negative_mask
from validation.training.distributed import local_nt_xent_index
from validation.training.loop import TrainConfig, batch_loss

B, D_IN, D_OUT, WORLD = 8, 5, 4, 2
CASES = [
    replace(TrainConfig(), loss="infonce", temperature=0.5),
    replace(TrainConfig(), loss="infonce", temperature=0.5, negatives="unbiased"),
    replace(TrainConfig(), loss="adnce", temperature=0.4),
    replace(TrainConfig(), loss="adnce", temperature=0.4, negatives="unbiased"),
    replace(TrainConfig(), loss="hcl", temperature=0.5),
]


def _problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(B, D_IN, generator=g), torch.randn(B, D_IN, generator=g)
    w = torch.randn(D_OUT, D_IN, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    return x1, x2, w, y


def _loss_and_grad(
    cfg: TrainConfig, rank: int, world: int, model: nn.Module
) -> tuple[float, torch.Tensor]:
    x1, x2, _, y = _problem()
    b = B // world
    local = slice(rank * b, (rank + 1) * b)
    z = model(torch.cat([x1[local], x2[local]]))
    idx = local_nt_xent_index(b, rank_=rank, world_size_=world)
    neg = negative_mask(idx, 2 * B)
    labels = None
    if cfg.negatives == "unbiased":
        labels = (torch.cat([y[local], y[local]]), torch.cat([y, y]))
    loss = batch_loss(cfg, z, idx, neg, labels).loss
    model.zero_grad()
    loss.backward()
    lin = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    return float(loss.detach()), lin.weight.grad.detach().clone()  # type: ignore[union-attr]


def _linear() -> nn.Linear:
    lin = nn.Linear(D_IN, D_OUT, bias=False)
    with torch.no_grad():
        lin.weight.copy_(_problem()[2])
    return lin


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        results = []
        for cfg in CASES:
            model = nn.parallel.DistributedDataParallel(_linear())
            results.append(_loss_and_grad(cfg, rank, world, model))
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_give_the_full_batch_loss_and_gradient(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(WORLD, str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    for k, cfg in enumerate(CASES):
        full_loss, full_grad = _loss_and_grad(cfg, 0, 1, _linear())
        # the full-batch loss is the mean over 2B anchors = mean of the ranks' local means
        mean_loss = sum(r[k][0] for r in ranks) / WORLD
        assert mean_loss == pytest.approx(full_loss, rel=1e-6), cfg.loss
        for r in ranks:  # DDP-averaged gradient on every rank = full-batch gradient
            torch.testing.assert_close(r[k][1], full_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_cldro_train_under_torchrun(tmp_path: Path) -> None:
    out = tmp_path / "ddp.json"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "validation.cli", "train", "--dataset", "digits", "--subset", "300",
        "--epochs", "1", "--batch-size", "64", "--device", "cpu", "--no-progress",
        "--threads", "1", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rec = json.loads(out.read_text())
    assert rec["world_size"] == 2 and len(rec["knn_top1"]) == 2
    assert rec["loss_curve"][0] > 0
