r"""Multi-process (DDP) helpers: rank / world size and the differentiable negative gather.

Contrastive losses need every other sample of the GLOBAL batch as a negative. Under DDP each
rank holds a shard of b samples; :func:`gather_with_grad` concatenates the shards of all W ranks
(rank order) and keeps the gradient flowing back to the local shard.

Why the backward is an all-reduce SUM. Let L = (1/W) Σ_r L_r be the full-batch loss, L_r the
loss of rank r's anchors against the gathered keys. The gradient of L with respect to the
local shard z_r collects contributions from every rank's loss: ∂L/∂z_r = (1/W) Σ_{r'} ∂L_{r'}/∂z_r.
Rank r' only holds ∂L_{r'}/∂(gathered), so the backward sums these over ranks and returns the
slice of shard r: grad(z_r) = Σ_{r'} ∂L_{r'}/∂z_r = W ∂L/∂z_r. DDP then AVERAGES parameter
gradients over ranks, which removes the factor W: each rank ends with ∂L/∂θ, exactly the
single-process full-batch gradient. (Without DDP, divide the local gradient by W.)

With one process, or when ``torch.distributed`` is not initialised, everything is a no-op.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from dro_theory.errors import InputError
from estimators.losses import AnchorIndex

__all__ = [
    "gather_with_grad",
    "is_distributed",
    "local_nt_xent_index",
    "rank",
    "world_size",
]


def is_distributed() -> bool:
    """Whether ``torch.distributed`` is available and a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes W (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; all_reduce(SUM) of the incoming gradient, local slice, backward."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        ctx.rank = dist.get_rank()
        ctx.size = tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = ctx.rank * ctx.size
        return grad[start : start + ctx.size]


def gather_with_grad(tensor: Tensor) -> Tensor:
    r"""Concatenate ``tensor`` from all ranks along dim 0, differentiably.

    Parameters
    ----------
    tensor : torch.Tensor
        Shape (b, ...): this rank's shard. Every rank must pass the same shape.

    Returns
    -------
    torch.Tensor
        Shape (W·b, ...): the shards in rank order; rows [rank·b, (rank+1)·b) are ``tensor``.
        The backward sums the gradients of all ranks' losses with respect to this rank's
        slice (module docstring), so after DDP's gradient averaging every rank holds the
        full-batch gradient. Returns ``tensor`` itself when not distributed.
    """
    if not isinstance(tensor, Tensor) or tensor.ndim < 1:
        found = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
        raise InputError(f"tensor: expected a tensor with at least 1 dimension, found {found}")
    if not is_distributed() or dist.get_world_size() == 1:
        return tensor
    out: Tensor = _GatherWithGrad.apply(tensor)
    return out


def local_nt_xent_index(
    local_batch: int,
    *,
    rank_: int | None = None,
    world_size_: int | None = None,
    device: torch.device | str | None = None,
) -> AnchorIndex:
    r"""Positive / self columns of the local anchors in the gathered NT-Xent layout.

    Rows are this rank's 2b anchors ``cat(z1_local, z2_local)``; columns are the 2Wb keys
    ``cat(gather_with_grad(z1_local), gather_with_grad(z2_local))``. The local view-1 anchor k
    sits in column rank·b + k and its positive in column Wb + rank·b + k (and vice versa for
    view 2). With W = 1 this is the square NT-Xent layout of :mod:`estimators.losses`.

    Parameters
    ----------
    local_batch : int
        b, the number of pairs on this rank.
    rank_, world_size_ : int, optional
        Override :func:`rank` / :func:`world_size` (for tests and single-process simulation).
    device : torch.device or str, optional

    Returns
    -------
    AnchorIndex
        ``pos_index`` and ``self_index``, shape (2b,) each; pass them to the losses with
        ``layout="nt_xent"``.
    """
    r = rank() if rank_ is None else int(rank_)
    w = world_size() if world_size_ is None else int(world_size_)
    if int(local_batch) < 1:
        raise InputError(f"local_batch: expected an integer >= 1, found {local_batch!r}")
    if w < 1 or not 0 <= r < w:
        raise InputError(f"rank_: expected 0 <= rank < world size {w}, found {r}")
    b = int(local_batch)
    k = torch.arange(b, device=device)
    own1 = r * b + k
    own2 = w * b + r * b + k
    self_index = torch.cat([own1, own2])
    pos_index = torch.cat([own2, own1])
    return AnchorIndex(pos_index=pos_index, self_index=self_index)
