"""Output files of a command: checked before any work, committed together at the end.

:func:`preflight` runs first in a command: every output path given is checked (not a folder,
its folder exists or can be created, a file can really be created there) so that a bad
``--json`` fails in a second rather than after the computation. :func:`commit` writes all the
outputs of the command together (:func:`validation.atomic.write_all`): all of them or none.
Every message names the option (``--json``, ``--q-out`` …).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from dro_theory.errors import InputError
from validation.atomic import write_all
from validation.cli.app import echo

__all__ = ["commit", "preflight"]


def preflight(outputs: Mapping[str, Path | None]) -> dict[str, Path]:
    """Check that every given output path can be written; return them by option.

    Parameters
    ----------
    outputs : mapping of option name to Path or None
        E.g. ``{"--json": Path("r.json"), "--q-out": None}``; None (option not given) is skipped.

    Returns
    -------
    dict of str to Path
        The given options and their paths, in order.

    Raises
    ------
    InputError
        Naming the option: the path is an existing folder, a parent is a file, the folder
        cannot be written (a probe file cannot be created there, e.g. under ``/proc``), or two
        options name the same file.
    """
    given = {opt: Path(p) for opt, p in outputs.items() if p is not None}
    seen: dict[Path, str] = {}
    for opt, path in given.items():
        key = path.resolve()
        if key in seen:
            raise InputError(
                f"{opt}: expected a file distinct from {seen[key]}, found the same path "
                f"{str(path)!r}"
            )
        seen[key] = opt
        _check_one(opt, path)
    return given


def _check_one(option: str, path: Path) -> None:
    if path.is_dir():
        raise InputError(f"{option}: expected a file path, found the folder {str(path)!r}")
    if path.exists() and not path.is_file():
        raise InputError(f"{option}: expected a regular file, found {str(path)!r}")
    folder = path.parent
    while not folder.exists():  # atomic writes create missing folders: probe the first existing
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(
            f"{option}: expected a folder above {str(path)!r}, found the file {folder}"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".cldro-probe.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(
            f"{option}: expected a writable folder for {str(path)!r}, found {str(folder)!r} "
            f"not writable ({exc.strerror or exc})"
        ) from exc
    os.close(fd)
    os.unlink(probe)


def commit(files: Mapping[str, tuple[Path | None, bytes]]) -> None:
    """Write every given output together (all or none) and print ``wrote PATH`` for each.

    Parameters
    ----------
    files : mapping of option name to (path or None, content)
        The content of each output; options whose path is None are skipped.

    Raises
    ------
    InputError
        Naming the options, when the files cannot be written (no file is left behind).
    """
    given = [(opt, path, data) for opt, (path, data) in files.items() if path is not None]
    if not given:
        return
    try:
        write_all([(path, data) for _, path, data in given])
    except OSError as exc:
        names = ", ".join(opt for opt, _, _ in given)
        raise InputError(
            f"{names}: expected the outputs to be written, found an error ({exc}); none was written"
        ) from exc
    for _, path, _ in given:
        echo(f"wrote {path}")
