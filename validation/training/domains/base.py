"""Where the offline data of the sentence and graph domains lives.

The domain interface itself is :class:`validation.training.domain.TrainingDomain` (the one the
training loop consumes); ``Domain`` here is a deprecated alias of it.
"""

from __future__ import annotations

import os
from pathlib import Path

from dro_theory.errors import InputError
from validation.training.domain import TrainingDomain

__all__ = ["DATA_LOCAL", "Domain", "resolve_data_dir"]

#: the git-ignored folder that ``make data`` fills (repository root / data-local)
DATA_LOCAL = Path(__file__).resolve().parents[3] / "data-local"


#: deprecated alias of the one domain interface (kept for the old import path)
Domain = TrainingDomain


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
