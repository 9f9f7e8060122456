"""The domain interface the training loop consumes, and where the offline data lives.

A *domain* supplies exactly four pieces (``docs/domains.md`` explains the choice):

1. the training items: ``num_train`` items addressed by index 0 … num_train − 1;
2. ``views(index, device, generator)``: two views of the batch ``index`` (a LongTensor of item
   indices), already on ``device``, each accepted by the encoder;
3. ``build_encoder(seed)``: a :class:`~validation.training.encoders.ContrastiveModel` whose
   ``forward(view)`` returns (h, z) and ``features(view)`` returns h;
4. ``evaluate(model, device)``: the domain's evaluation metrics on held-out data, computed from
   frozen features, as a ``dict[str, float]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from dro_theory.errors import InputError
from validation.training.encoders import ContrastiveModel

__all__ = ["DATA_LOCAL", "Domain", "resolve_data_dir"]

#: the git-ignored folder that ``make data`` fills (repository root / data-local)
DATA_LOCAL = Path(__file__).resolve().parents[3] / "data-local"


@runtime_checkable
class Domain(Protocol):
    """The four pieces of a contrastive-learning domain (see the module docstring)."""

    name: str
    num_train: int

    def views(
        self, index: torch.Tensor, device: torch.device, generator: torch.Generator
    ) -> tuple[Any, Any]:
        """Two views of the training items ``index`` (LongTensor, shape (B,)), on ``device``."""
        ...

    def build_encoder(self, seed: int) -> ContrastiveModel:
        """A freshly initialised encoder (weights drawn from ``seed`` only)."""
        ...

    def evaluate(self, model: ContrastiveModel, device: torch.device) -> dict[str, float]:
        """Held-out metrics of the frozen ``model`` (it is left in the mode it was in)."""
        ...


def resolve_data_dir(
    path: str | os.PathLike[str] | None,
    candidates: tuple[Path, ...],
    marker: str,
    install: str,
) -> Path:
    """The first directory holding the file ``marker``: ``path`` if given, else a candidate.

    Raises
    ------
    InputError
        If ``path`` (or, when it is None, every candidate) lacks ``marker``; the message names
        the folders searched and the ``install`` command that provides the data.
    """
    search = (Path(path),) if path is not None else candidates
    for folder in search:
        if (folder / marker).is_file():
            return folder
    where = ", ".join(str(f) for f in search)
    raise InputError(f"data: expected {marker} in {where}, found none; install it with: {install}")
