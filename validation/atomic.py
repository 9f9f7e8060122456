"""Atomic file output: write to a temporary file in the target folder, then rename.

A reader never sees a half-written file: either the old file (or none) or the whole new one.
:func:`write_all` commits several files together: every temporary file is written first and
the renames happen only once all of them are complete.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_path",
    "json_text",
    "npy_bytes",
    "write_all",
    "write_bytes",
    "write_json",
    "write_text",
]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    The parent folder is created. On an exception the temporary file is removed and ``target``
    is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    # mkstemp creates 0600; give the final file the mode an ordinary open() would (0666 & ~umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _write(target: str | os.PathLike[str], mode: str, fill: Callable[[IO[Any]], object]) -> Path:
    with atomic_path(target) as tmp, open(tmp, mode) as fh:
        fill(fh)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(target)


def write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write ``data`` to ``target``."""
    return _write(target, "wb", lambda fh: fh.write(data))


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``target``."""
    return _write(target, "w", lambda fh: fh.write(text))


def write_all(files: Sequence[tuple[str | os.PathLike[str], bytes]]) -> list[Path]:
    """Atomically write several files together: all of them or none.

    Every temporary file is written and synced before the first rename; if any write fails,
    every temporary file is removed and no target is touched. (Only a rename failing after
    the others succeeded could leave a partial set; renames within one folder do not fail
    once the temporary files exist there.)

    Parameters
    ----------
    files : sequence of (path, bytes)
        Targets (distinct) and their whole content.

    Returns
    -------
    list of Path
        The targets, in order.
    """
    targets = [Path(t) for t, _ in files]
    if len({t.resolve() for t in targets}) != len(targets):
        raise ValueError(f"write_all: expected distinct targets, found {[str(t) for t in targets]}")
    with contextlib.ExitStack() as stack:
        for target, (_, data) in zip(targets, files, strict=True):
            tmp = stack.enter_context(atomic_path(target))
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    return targets


def json_text(obj: Any) -> str:
    """``obj`` as indented, strictly valid JSON text (with a final newline).

    Non-finite floats (not representable in JSON) become the strings ``"nan"``, ``"inf"`` and
    ``"-inf"``; numpy scalars and arrays become numbers and lists; paths become strings.
    """
    return json.dumps(_finite(obj), indent=2, allow_nan=False, default=_default) + "\n"


def npy_bytes(array: Any) -> bytes:
    """The bytes of ``array`` saved as a ``.npy`` file (never pickled)."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_json(target: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically write ``obj`` as indented, strictly valid JSON (:func:`json_text`)."""
    return write_text(target, json_text(obj))


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    try:
        import numpy as np

        if isinstance(obj, np.floating | np.ndarray):
            return _finite(obj.tolist())
    except ImportError:  # pragma: no cover
        pass
    return obj


def _default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")
