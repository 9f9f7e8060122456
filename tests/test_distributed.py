"""gather_with_grad on 2 CPU processes (gloo) against the single-process full batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from dro_theory.errors import InputError
from estimators.losses import adnce, hcl, infonce_population, nt_xent_from_sim, pair_similarity
from validation.training.distributed import (
    gather_with_grad,
    is_distributed,
    local_nt_xent_index,
    rank,
    world_size,
)

WORLD = 2
B_LOCAL = 3
DIM = 4
TAU = 0.5


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    z1 = torch.randn(WORLD * B_LOCAL, DIM, generator=g, dtype=torch.float64)
    z2 = z1 + 0.3 * torch.randn(WORLD * B_LOCAL, DIM, generator=g, dtype=torch.float64)
    return z1, z2


def _nt_xent_losses(
    sim: torch.Tensor,
    pos_index: torch.Tensor | None = None,
    self_index: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    p, s = pos_index, self_index
    return [
        nt_xent_from_sim(sim, TAU, layout="nt_xent", pos_index=p, self_index=s),
        adnce(sim, TAU, layout="nt_xent", pos_index=p, self_index=s),
        hcl(sim, TAU, tau_plus=0.1, beta=1.0, layout="nt_xent", pos_index=p, self_index=s),
        infonce_population(sim, TAU, layout="nt_xent", pos_index=p, self_index=s),
    ]


def _local_losses(z1: torch.Tensor, z2: torch.Tensor) -> list[torch.Tensor]:
    """Losses of this rank's anchors against the gathered keys (NT-Xent and cross-view)."""
    n1, n2 = torch.nn.functional.normalize(z1, dim=1), torch.nn.functional.normalize(z2, dim=1)
    keys = torch.cat([gather_with_grad(n1), gather_with_grad(n2)])
    sim = torch.cat([n1, n2]) @ keys.T
    idx = local_nt_xent_index(z1.shape[0])
    losses = _nt_xent_losses(sim, pos_index=idx.pos_index, self_index=idx.self_index)
    # population (cross-view) layout: anchor z1_k against all gathered z2, positive its own
    cross = n1 @ gather_with_grad(n2).T
    pos = rank() * z1.shape[0] + torch.arange(z1.shape[0])
    losses.append(infonce_population(cross, TAU, pos_index=pos))
    return losses


def _worker(r: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=r, world_size=WORLD)
    try:
        z1, z2 = _data()
        sl = slice(r * B_LOCAL, (r + 1) * B_LOCAL)
        results = []
        for k in range(5):
            a = z1[sl].clone().requires_grad_(True)
            b = z2[sl].clone().requires_grad_(True)
            loss = _local_losses(a, b)[k]
            loss.backward()
            assert a.grad is not None and b.grad is not None
            results.append((loss.detach(), a.grad.clone(), b.grad.clone()))
        torch.save(
            {"results": results, "rank": rank(), "world": world_size(), "dist": is_distributed()},
            Path(out_dir) / f"rank{r}.pt",
        )
    finally:
        dist.destroy_process_group()


def _full_batch(k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    z1, z2 = _data()
    a = z1.clone().requires_grad_(True)
    b = z2.clone().requires_grad_(True)
    if k < 4:
        loss = _nt_xent_losses(pair_similarity(a, b))[k]
    else:
        n1 = torch.nn.functional.normalize(a, dim=1)
        n2 = torch.nn.functional.normalize(b, dim=1)
        loss = infonce_population(n1 @ n2.T, TAU)
    loss.backward()
    assert a.grad is not None and b.grad is not None
    return loss.detach(), a.grad, b.grad


def test_two_ranks_match_the_full_batch(tmp_path: Path) -> None:
    # L = (1/W) Σ_r L_r (equal anchor counts); the gather's backward sums over ranks, so the
    # local gradient is W ∂L/∂z_local (DDP's averaging divides by W).
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    per_rank = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    for r, rec in enumerate(per_rank):
        assert rec["rank"] == r and rec["world"] == WORLD and rec["dist"]
    for k in range(5):
        loss, g1, g2 = _full_batch(k)
        dist_loss = sum(rec["results"][k][0] for rec in per_rank) / WORLD
        assert abs(float(dist_loss) - float(loss)) <= 1e-12
        for r, rec in enumerate(per_rank):
            sl = slice(r * B_LOCAL, (r + 1) * B_LOCAL)
            _, ga, gb = rec["results"][k]
            assert float((ga / WORLD - g1[sl]).abs().max()) <= 1e-12, (k, r)
            assert float((gb / WORLD - g2[sl]).abs().max()) <= 1e-12, (k, r)


def test_single_process_is_a_no_op() -> None:
    assert not is_distributed() and rank() == 0 and world_size() == 1
    x = torch.randn(3, 2, requires_grad=True)
    assert gather_with_grad(x) is x
    idx = local_nt_xent_index(3)
    assert idx.self_index is not None
    assert idx.self_index.tolist() == [0, 1, 2, 3, 4, 5]
    assert idx.pos_index.tolist() == [3, 4, 5, 0, 1, 2]


def test_local_index_on_rank_one_of_two() -> None:
    idx = local_nt_xent_index(2, rank_=1, world_size_=2)
    # columns: z1 of ranks 0,1 → 0..3; z2 of ranks 0,1 → 4..7; rank 1 owns 2,3 and 6,7
    assert idx.self_index is not None
    assert idx.self_index.tolist() == [2, 3, 6, 7]
    assert idx.pos_index.tolist() == [6, 7, 2, 3]


def test_errors() -> None:
    with pytest.raises(InputError, match="local_batch: expected an integer >= 1"):
        local_nt_xent_index(0)
    with pytest.raises(InputError, match="rank_: expected 0 <= rank"):
        local_nt_xent_index(2, rank_=2, world_size_=2)
    with pytest.raises(InputError, match="tensor: expected a tensor"):
        gather_with_grad(torch.tensor(1.0))
