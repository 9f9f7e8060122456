"""GraphCL augmentations (You et al., 2020), vectorised over a :class:`GraphBatch`.

Each function takes ``apply`` (bool, one per graph) and changes only those graphs; counts per
graph follow the GraphCL code as described in ``reference/paper.md`` §3.3 (floor(ratio · n)
nodes dropped or masked, floor(ratio · m) bonds removed and as many random bonds added, a
connected subgraph of ⌈keep · n⌉ nodes grown from a random seed node). Edges stay symmetric
(both directions of a bond are kept, dropped or added together) and no graph becomes empty.
:func:`graphcl_view` draws one augmentation per graph uniformly, as GraphCL's ``random4``.
"""

from __future__ import annotations

import torch

from dro_theory.errors import InputError
from validation.training.domains.molecules import GraphBatch

__all__ = [
    "AUGMENTATIONS",
    "drop_nodes",
    "graphcl_view",
    "keep_nodes",
    "mask_attributes",
    "perturb_edges",
    "rank_within",
    "subgraph",
]

#: GraphCL's node-drop, edge-perturbation and attribute-mask ratio
RATIO = 0.1
#: GraphCL's subgraph keeps 20% of the nodes
SUBGRAPH_KEEP = 0.2
#: GraphCL's attribute-mask noise N(0.5, 0.5²)
_MASK_MEAN, _MASK_STD = 0.5, 0.5
#: the augmentations of :func:`graphcl_view` (``random4``)
AUGMENTATIONS = ("drop_nodes", "subgraph", "perturb_edges", "mask_attributes")


def _rand(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def _counts(group: torch.Tensor, num_groups: int) -> torch.Tensor:
    return torch.bincount(group, minlength=num_groups)


def rank_within(group: torch.Tensor, num_groups: int, generator: torch.Generator) -> torch.Tensor:
    """A uniformly random rank 0..c_g−1 of each element inside its group g (c_g members)."""
    order = torch.argsort(group.double() + _rand(group.numel(), generator, group.device))
    start = torch.cumsum(_counts(group, num_groups), 0) - _counts(group, num_groups)
    rank = torch.empty_like(group)
    rank[order] = torch.arange(group.numel(), device=group.device) - start[group[order]]
    return rank


def keep_nodes(batch: GraphBatch, keep: torch.Tensor) -> GraphBatch:
    """The batch restricted to the nodes ``keep`` (bool, (N,)) and the edges between them."""
    new_id = torch.cumsum(keep.long(), 0) - 1
    src, dst = batch.edge_index
    alive = keep[src] & keep[dst]
    edges = new_id[batch.edge_index[:, alive]]
    return GraphBatch(batch.x[keep], edges, batch.graph[keep], batch.num_graphs)


def _check(batch: GraphBatch, apply: torch.Tensor, ratio: float, name: str) -> None:
    """``apply`` is one bool per graph and ``ratio`` is a fraction in [0, 1)."""
    if apply.shape != (batch.num_graphs,) or apply.dtype != torch.bool:
        raise InputError(
            f"apply: expected a bool tensor of shape ({batch.num_graphs},), "
            f"found {apply.dtype} {tuple(apply.shape)}"
        )
    if not 0.0 <= ratio < 1.0:
        raise InputError(f"{name}: expected a fraction in [0, 1), found {ratio!r}")


def drop_nodes(
    batch: GraphBatch, apply: torch.Tensor, generator: torch.Generator, ratio: float = RATIO
) -> GraphBatch:
    """Remove floor(ratio · n_g) random nodes (and their edges) from each applied graph g."""
    _check(batch, apply, ratio, "ratio")
    n = _counts(batch.graph, batch.num_graphs)
    quota = torch.where(apply, torch.floor(ratio * n.double()).long(), torch.zeros_like(n))
    rank = rank_within(batch.graph, batch.num_graphs, generator)
    return keep_nodes(batch, rank >= quota[batch.graph])


def mask_attributes(
    batch: GraphBatch, apply: torch.Tensor, generator: torch.Generator, ratio: float = RATIO
) -> GraphBatch:
    """Replace the features of floor(ratio · n_g) random nodes by N(0.5, 0.5²) noise."""
    _check(batch, apply, ratio, "ratio")
    n = _counts(batch.graph, batch.num_graphs)
    quota = torch.where(apply, torch.floor(ratio * n.double()).long(), torch.zeros_like(n))
    masked = rank_within(batch.graph, batch.num_graphs, generator) < quota[batch.graph]
    noise = torch.randn(batch.x.shape, generator=generator, device=generator.device)
    noise = _MASK_MEAN + _MASK_STD * noise.to(batch.x.device)
    x = torch.where(masked[:, None], noise, batch.x)
    return GraphBatch(x, batch.edge_index, batch.graph, batch.num_graphs)


def perturb_edges(
    batch: GraphBatch, apply: torch.Tensor, generator: torch.Generator, ratio: float = RATIO
) -> GraphBatch:
    """Remove floor(ratio · m_g) random bonds of each applied graph and add as many random ones.

    A bond is an edge pair (i, j), (j, i); added bonds join two distinct nodes of the same graph
    (chosen uniformly, so a few may repeat an existing bond, as in GraphCL).
    """
    _check(batch, apply, ratio, "ratio")
    src, dst = batch.edge_index
    half = batch.edge_index[:, src < dst]
    bond_graph = batch.graph[half[0]]
    m = _counts(bond_graph, batch.num_graphs)
    quota = torch.where(apply, torch.floor(ratio * m.double()).long(), torch.zeros_like(m))
    removed = rank_within(bond_graph, batch.num_graphs, generator) < quota[bond_graph]
    n = _counts(batch.graph, batch.num_graphs)
    start = torch.cumsum(n, 0) - n
    g_new = bond_graph[removed]
    u = start[g_new] + (_rand(g_new.numel(), generator, n.device) * n[g_new]).long()
    v = start[g_new] + (_rand(g_new.numel(), generator, n.device) * n[g_new]).long()
    kept = torch.cat([half[:, ~removed], torch.stack([u, v])[:, u != v]], dim=1)
    edges = torch.cat([kept, kept.flip(0)], dim=1)
    return GraphBatch(batch.x, edges, batch.graph, batch.num_graphs)


def subgraph(
    batch: GraphBatch,
    apply: torch.Tensor,
    generator: torch.Generator,
    keep: float = SUBGRAPH_KEEP,
) -> GraphBatch:
    """Keep, in each applied graph, a connected set of ⌈keep · n_g⌉ nodes around a random node.

    The set grows from a uniformly random seed node by adding random neighbours of the set
    until it reaches the target size (or the seed's component is exhausted).
    """
    if not 0.0 < keep <= 1.0:
        raise InputError(f"keep: expected a fraction in (0, 1], found {keep!r}")
    _check(batch, apply, 1.0 - keep, "1 - keep")
    g, num = batch.graph, batch.num_graphs
    n = _counts(g, num)
    target = torch.where(apply, torch.ceil(keep * n.double()).long().clamp_min(1), n)
    inside = (rank_within(g, num, generator) == 0) | ~apply[g]
    src, dst = batch.edge_index
    for _ in range(int(n.max()) if n.numel() else 0):
        size = _counts(g[inside], num)
        frontier = torch.zeros_like(inside)
        frontier[dst[inside[src]]] = True
        frontier &= ~inside & (size < target)[g]
        if not bool(frontier.any()):
            break
        fg = g[frontier]
        pick = rank_within(fg, num, generator) < (target - size)[fg]
        inside[frontier.nonzero().squeeze(1)[pick]] = True
    return keep_nodes(batch, inside)


def graphcl_view(batch: GraphBatch, generator: torch.Generator) -> GraphBatch:
    """One GraphCL ``random4`` view: each graph gets one of :data:`AUGMENTATIONS` uniformly."""
    choice = torch.randint(
        len(AUGMENTATIONS), (batch.num_graphs,), generator=generator, device=generator.device
    ).to(batch.x.device)
    out = drop_nodes(batch, choice == 0, generator)
    out = subgraph(out, choice == 1, generator)
    out = perturb_edges(out, choice == 2, generator)
    return mask_attributes(out, choice == 3, generator)
