"""Load a user's paired samples (x_i, y_i) for ``cldro mi``.

Accepted layouts (the file extension decides, and the content must match it):

* ``data.npz`` with arrays under the keys ``x`` and ``y``;
* two ``.npy`` files, ``path`` for x and ``path_y`` for y;
* one ``.npy`` matrix split by columns: the first ``x_dims`` columns are x, the rest y;
* one ``.csv`` with a header row; ``x_cols`` / ``y_cols`` select columns by name or 0-based
  index (``y_cols`` defaults to every column not in ``x_cols``).

Arrays with one axis become one column; two axes are (samples, features); more axes are an
error (no silent flattening). A CSV's first row must be a header of distinct names (a UTF-8
byte-order mark is ignored). Pickled payloads are never loaded. Every problem raises
:class:`~dro_theory.errors.InputError` naming the file and what was wrong.
"""

from __future__ import annotations

import csv
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dro_theory.errors import InputError

__all__ = ["PairedData", "load_npy", "load_pairs", "validate_pairs"]

FloatArray = NDArray[np.float64]
Columns = Sequence[str | int] | str | int | None


@dataclass(frozen=True)
class PairedData:
    """Validated float64 samples; iterating gives ``x`` then ``y``.

    Attributes
    ----------
    x : numpy.ndarray, shape (n, d_x)
    y : numpy.ndarray, shape (n, d_y)
    source : str
        The file name(s) they came from, unquoted, e.g. ``"data.csv"`` or ``"x.npy / y.npy"``.
    x_names, y_names : tuple of str
        Column names (CSV headers, or ``x[0]``, ``x[1]`` …).
    """

    x: FloatArray
    y: FloatArray
    source: str
    x_names: tuple[str, ...]
    y_names: tuple[str, ...]

    def __iter__(self) -> Iterator[FloatArray]:
        yield self.x
        yield self.y


def _existing(path: str | Path, name: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{name}: expected an existing file, found no file at {str(p)!r}")
    return p


def _numeric(arr: NDArray[np.generic], what: str, role: str, file: str) -> FloatArray:
    """``arr`` as float64 (n, d); ``what`` starts dtype/shape errors, ``role`` (x, y) "no rows"."""
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{what}: expected a numeric array, found dtype {arr.dtype}")
    out = np.asarray(arr, dtype=np.float64)
    if out.ndim == 0:
        raise InputError(f"{what}: expected an array of samples, found a scalar")
    if out.ndim > 2:
        raise InputError(
            f"{what}: expected a 1-D or 2-D array (samples, features), found shape {out.shape}"
        )
    if out.shape[0] == 0:
        raise InputError(f"{role}: no rows in {file!r} (expected samples, found shape {out.shape})")
    if out.ndim == 1:
        return out[:, None]
    return out


def load_npy(path: str | Path, name: str = "path") -> FloatArray:
    """Load one numeric ``.npy`` array (any shape) as float64.

    Raises
    ------
    InputError
        Naming ``name``: missing file, not a readable ``.npy`` (e.g. a text file or an ``.npz``
        archive under that name), or a non-numeric dtype.
    """
    p = _existing(path, name)
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(
            f"{name}: expected a NumPy .npy file, found {p.name!r} unreadable as one ({exc})"
        ) from exc
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise InputError(f"{name}: expected a .npy array, found an .npz archive in {p.name!r}")
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name} ({p.name}): expected a numeric array, found dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64)


def _load_npy(path: Path, name: str, role: str) -> FloatArray:
    return _numeric(load_npy(path, name), f"{name} ({path.name})", role, path.name)


def _load_npz(path: Path) -> tuple[FloatArray, FloatArray]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(
            f"path: expected a NumPy .npz archive, found {path.name!r} unreadable as one ({exc})"
        ) from exc
    if isinstance(archive, np.ndarray):
        raise InputError(
            f"path: expected an .npz archive, found a single .npy array in {path.name!r}"
        )
    with archive:
        keys = set(archive.files)
        missing = [k for k in ("x", "y") if k not in keys]
        if missing:
            raise InputError(
                f"path: expected arrays 'x' and 'y' in {path.name!r}, found keys {sorted(keys)}"
            )
        try:
            x_raw, y_raw = archive["x"], archive["y"]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(
                f"path: expected .npy members 'x' and 'y' in {path.name!r}, found unreadable "
                f"members ({exc})"
            ) from exc
    for key, member in (("x", x_raw), ("y", y_raw)):
        if not isinstance(member, np.ndarray):  # numpy returns raw bytes for non-.npy members
            raise InputError(
                f"path: expected .npy members 'x' and 'y' in {path.name!r}, found unreadable "
                f"members ({key!r} is not a .npy array)"
            )
    return (
        _numeric(x_raw, f"x ({path.name})", "x", path.name),
        _numeric(y_raw, f"y ({path.name})", "y", path.name),
    )


def _as_column_list(cols: Columns, name: str) -> list[str | int] | None:
    if cols is None:
        return None
    if isinstance(cols, str):
        items: list[str | int] = [c.strip() for c in cols.split(",") if c.strip()]
    elif isinstance(cols, bool):
        raise InputError(f"{name}: expected column names or indices, found {cols!r}")
    elif isinstance(cols, int):
        items = [cols]
    else:
        items = list(cols)
    if not items:
        raise InputError(f"{name}: expected at least one column, found none")
    return items


def _resolve(cols: list[str | int], header: list[str], name: str, path: Path) -> list[int]:
    out: list[int] = []
    for c in cols:
        if isinstance(c, int | np.integer) and not isinstance(c, bool):
            if not 0 <= int(c) < len(header):
                raise InputError(
                    f"{name}: expected column indices 0..{len(header) - 1} of {path.name!r}, "
                    f"found {c}"
                )
            out.append(int(c))
        elif isinstance(c, str):
            if c in header:
                out.append(header.index(c))
            elif c.lstrip("-").isdigit() and 0 <= int(c) < len(header):
                out.append(int(c))
            else:
                raise InputError(
                    f"{name}: expected column names among {header} of {path.name!r}, found {c!r}"
                )
        else:
            raise InputError(f"{name}: expected column names or indices, found {c!r}")
    if len(set(out)) != len(out):
        raise InputError(f"{name}: expected distinct columns, found repeats in {cols}")
    return out


def _header(row: list[str], path: Path) -> list[str]:
    """The stripped header names; InputError for an all-numeric row or a duplicated name."""
    header = [h.strip() for h in row]
    if all(_is_number(h) for h in header):
        raise InputError(
            f"path: the first row must be a header of column names in {path.name!r}, found "
            f"only numbers {header[:5]}"
        )
    dups = sorted(h for h, count in Counter(header).items() if count > 1)
    if dups:
        raise InputError(
            f"path: expected distinct header names in {path.name!r}, found duplicated {dups}"
        )
    return header


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_csv(
    path: Path, x_cols: Columns, y_cols: Columns
) -> tuple[FloatArray, FloatArray, list[str], list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: drop a byte-order mark
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(
            f"path: expected a UTF-8 text CSV file, found {path.name!r} unreadable ({exc})"
        ) from exc
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise InputError(
            f"path: expected a header row and data in {path.name!r}, found an empty file"
        )
    header = _header(rows[0], path)
    xs = _as_column_list(x_cols, "x_cols")
    if xs is None:
        raise InputError(
            f"x_cols: expected the x columns of {path.name!r} (names or indices), found none"
        )
    x_idx = _resolve(xs, header, "x_cols", path)
    ys = _as_column_list(y_cols, "y_cols")
    if ys is None:
        y_idx = [i for i in range(len(header)) if i not in x_idx]
        if not y_idx:
            raise InputError(
                f"y_cols: expected some columns left for y in {path.name!r}, found none"
            )
    else:
        y_idx = _resolve(ys, header, "y_cols", path)
    overlap = set(x_idx) & set(y_idx)
    if overlap:
        names = [header[i] for i in sorted(overlap)]
        raise InputError(f"y_cols: expected columns disjoint from x_cols, found {names} in both")
    if len(rows) == 1:
        raise InputError(
            f"x: no rows in {path.name!r} (expected data below the header, found none)"
        )
    data = np.empty((len(rows) - 1, len(header)), dtype=np.float64)
    used = sorted(set(x_idx) | set(y_idx))
    for r, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise InputError(
                f"path: expected {len(header)} cells per row in {path.name!r}, found {len(row)} "
                f"in row {r + 2}"
            )
        for j in used:
            cell = row[j].strip()
            try:
                data[r, j] = float(cell)
            except ValueError as exc:
                raise InputError(
                    f"path: expected a number in {path.name!r} row {r + 2}, column "
                    f"{header[j]!r}, found {cell!r}"
                ) from exc
    return data[:, x_idx], data[:, y_idx], [header[i] for i in x_idx], [header[i] for i in y_idx]


def validate_pairs(
    x: FloatArray,
    y: FloatArray,
    *,
    x_names: Sequence[str] | None = None,
    y_names: Sequence[str] | None = None,
    min_rows: int = 100,
    source: str = "the arrays given",
) -> None:
    """Check paired float64 (n, d) samples; raise :class:`InputError` on the first problem.

    The checks (in order) are those of :func:`load_pairs`: finite values (with the count),
    as many rows in y as in x, at least one column each, at least ``min_rows`` rows, and no
    constant column (named, at most five shown).

    Parameters
    ----------
    x : numpy.ndarray, shape (n, d_x)
    y : numpy.ndarray, shape (m, d_y)
    x_names, y_names : sequence of str, optional
        Column names used in messages; ``x[0]``, ``x[1]`` … when None.
    min_rows : int
        Fewest rows accepted.
    source : str
        Where the data came from, quoted in every message ("... in <source>, found ...").

    Raises
    ------
    InputError
        NaN/inf entries, mismatched rows, no columns, fewer than ``min_rows`` rows, or a
        constant column.
    """
    where = source
    xn = list(x_names) if x_names is not None else [f"x[{i}]" for i in range(x.shape[1])]
    yn = list(y_names) if y_names is not None else [f"y[{i}]" for i in range(y.shape[1])]
    for arr, label in ((x, "x"), (y, "y")):
        bad = int(arr.size - np.isfinite(arr).sum())
        if bad:
            raise InputError(
                f"{label}: expected finite values in {where}, found {bad} NaN/inf entries"
            )
    if x.shape[0] != y.shape[0]:
        raise InputError(
            f"y: expected as many rows as x ({x.shape[0]}) in {where}, found {y.shape[0]}"
        )
    if x.shape[1] == 0 or y.shape[1] == 0:
        raise InputError(f"x, y: expected at least one column each in {where}, found none")
    if x.shape[0] < min_rows:
        raise InputError(f"x, y: expected at least {min_rows} rows in {where}, found {x.shape[0]}")
    for arr, names, label in ((x, xn, "x"), (y, yn, "y")):
        const = np.flatnonzero(np.ptp(arr, axis=0) == 0)
        if const.size:
            shown = ", ".join(repr(names[i]) for i in const[:5])
            more = f" and {const.size - 5} more" if const.size > 5 else ""
            raise InputError(
                f"{label}: expected non-constant columns in {where}, found constant column "
                f"{shown}{more}"
            )


def _load_npy_layout(
    p: Path, path_y: str | Path | None, x_dims: int | None
) -> tuple[FloatArray, FloatArray, list[str]]:
    """x, y and the file names from two .npy files, or one split after ``x_dims`` columns."""
    if path_y is not None:
        py = _existing(path_y, "path_y")
        if py.suffix.lower() != ".npy":
            raise InputError(f"path_y: expected a .npy file, found {py.name!r}")
        return _load_npy(p, "path", "x"), _load_npy(py, "path_y", "y"), [p.name, py.name]
    if x_dims is None:
        raise InputError(
            f"x_dims: expected the number of x columns to split {p.name!r}, found None "
            "(or give path_y)"
        )
    data = _load_npy(p, "path", "x")
    if not isinstance(x_dims, int) or isinstance(x_dims, bool) or not 1 <= x_dims < data.shape[1]:
        raise InputError(
            f"x_dims: expected an int in 1..{data.shape[1] - 1} for the {data.shape[1]} "
            f"columns of {p.name!r}, found {x_dims!r}"
        )
    return data[:, :x_dims], data[:, x_dims:], [p.name]


def load_pairs(
    path: str | Path,
    path_y: str | Path | None = None,
    x_dims: int | None = None,
    x_cols: Columns = None,
    y_cols: Columns = None,
    *,
    min_rows: int = 100,
) -> PairedData:
    """Load paired samples (x, y) as float64 2-D arrays with the same number of rows.

    Parameters
    ----------
    path : str or Path
        ``.npz`` (keys ``x``, ``y``), ``.npy`` (x, or x and y with ``x_dims``) or ``.csv``.
    path_y : str or Path, optional
        A second ``.npy`` holding y.
    x_dims : int, optional
        For a single ``.npy``: the number of leading columns that form x.
    x_cols, y_cols : sequence of str or int, or a comma-separated str, optional
        For ``.csv``: the columns of x and of y (names from the header, or 0-based indices).
    min_rows : int
        Fewest samples accepted (default 100).

    Returns
    -------
    PairedData
        ``x, y = load_pairs(...)`` unpacks it.

    Raises
    ------
    InputError
        Missing file, unknown extension, a file whose content does not match its extension,
        missing keys, non-numeric or non-finite values (with the count), non-numeric CSV cells
        (with row and column), mismatched rows, fewer than ``min_rows`` rows, constant columns
        (named), or options that do not apply to the format.
    """
    if not isinstance(min_rows, int) or isinstance(min_rows, bool) or min_rows < 1:
        raise InputError(f"min_rows: expected a positive int, found {min_rows!r}")
    p = _existing(path, "path")
    ext = p.suffix.lower()
    if ext not in (".npz", ".npy", ".csv"):
        raise InputError(f"path: expected a .npz, .npy or .csv file, found {p.name!r}")
    if ext != ".csv" and (x_cols is not None or y_cols is not None):
        raise InputError(f"x_cols: column selection applies to .csv files only, found {p.name!r}")
    if ext != ".npy" and path_y is not None:
        raise InputError(f"path_y: a second file applies to .npy input only, found {p.name!r}")
    if x_dims is not None and (ext != ".npy" or path_y is not None):
        raise InputError(
            "x_dims: expected only with a single .npy file, found it with another layout"
        )
    x_names: list[str] | None = None
    y_names: list[str] | None = None
    if ext == ".npz":
        x, y = _load_npz(p)
        names = [p.name]
    elif ext == ".csv":
        x, y, x_names, y_names = _load_csv(p, x_cols, y_cols)
        names = [p.name]
    else:
        x, y, names = _load_npy_layout(p, path_y, x_dims)
    if x_names is None or y_names is None:
        x_names = [f"x[{i}]" for i in range(x.shape[1])]
        y_names = [f"y[{i}]" for i in range(y.shape[1])]
    quoted = " / ".join(repr(n) for n in names)  # messages quote file names; the record does not
    validate_pairs(x, y, x_names=x_names, y_names=y_names, min_rows=min_rows, source=quoted)
    return PairedData(
        x=np.ascontiguousarray(x),
        y=np.ascontiguousarray(y),
        source=" / ".join(names),
        x_names=tuple(x_names),
        y_names=tuple(y_names),
    )
