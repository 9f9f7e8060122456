"""Run records of ``cldro validate``: one ``record.json`` per claim plus CSV series beside it.

A :class:`Record` holds what a claim checked (:class:`Check`: observed, expected, tolerance,
passed), free metrics, the data series its figure is drawn from, the configuration, the seed
and the environment. Figures are drawn from records only (:mod:`validation.plotting`), so a
record must carry every number a plot needs.

Layout written by :func:`write_record` into a folder ``DIR``::

    DIR/record.json      claim, paper reference, config, seed, checks, metrics, environment,
                         start time, seconds, and ``series``: {name: "name.csv"}
    DIR/<name>.csv       one CSV per series: a header row of column names, then float rows

Writing is atomic per file (:mod:`validation.atomic`), ``record.json`` is written last, and a
failing write removes the files it had written, so a reader either sees a whole record or none.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import math
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dro_theory.errors import InputError
from validation.atomic import write_json, write_text

__all__ = [
    "RECORD_FILE",
    "RELATIONS",
    "Check",
    "Record",
    "as_series",
    "check_at_least",
    "check_at_most",
    "check_close",
    "collect_environment",
    "find_records",
    "max_or_nan",
    "min_or_nan",
    "now_iso",
    "package_version",
    "read_record",
    "write_record",
]

#: the file name of a record inside its folder
RECORD_FILE = "record.json"
#: how ``observed`` is compared with ``expected`` (see :class:`Check`)
RELATIONS = ("abs", "rel", "le", "ge")
_FORMAT = "cldro-record/1"
_SERIES_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One numerical check of a claim.

    Attributes
    ----------
    name : str
        What is checked, e.g. ``"penalized identity, max |error|"``.
    observed, expected : float
        The measured value and the value the theory predicts (or the bound it must respect).
    tolerance : float
        The allowed deviation, derived from the mathematics (floating-point rounding for exact
        identities, standard errors for Monte Carlo, the next expansion term for asymptotics).
    passed : bool
        Whether ``observed`` meets ``expected`` within ``tolerance`` under ``relation``.
    note : str
        Where the tolerance comes from, or what the numbers mean.
    relation : {"abs", "rel", "le", "ge"}
        ``abs``: |observed − expected| ≤ tolerance; ``rel``: |observed − expected| ≤
        tolerance·|expected|; ``le``: observed ≤ expected + tolerance; ``ge``: observed ≥
        expected − tolerance. A non-finite observed value, expected value or tolerance never
        passes (the note then starts with ``FAILED:``); a tolerance must be positive (zero is
        accepted for ``le``/``ge`` only, where the bound carries the margin).
    """

    name: str
    observed: float
    expected: float
    tolerance: float
    passed: bool
    note: str = ""
    relation: str = "abs"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (field names as keys)."""
        return {
            "name": self.name,
            "observed": self.observed,
            "expected": self.expected,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "relation": self.relation,
            "note": self.note,
        }


def _verdict(observed: float, expected: float, tolerance: float, relation: str) -> str:
    """Why the numbers cannot be judged ("" when they can): the one non-finite rule.

    A NaN/inf observed value, expected value or tolerance fails; so does a negative tolerance,
    and a zero tolerance for a two-sided relation (an equality of floats needs a tolerance
    derived from rounding). A zero tolerance is accepted for ``le``/``ge`` only, where the
    bound itself carries the margin (e.g. chance + 3 standard errors).
    """
    for label, value in (("observed", observed), ("expected", expected), ("tolerance", tolerance)):
        if not math.isfinite(value):
            return f"FAILED: non-finite {label} value ({value!r})"
    if tolerance < 0 or (tolerance == 0 and relation in ("abs", "rel")):
        return f"FAILED: tolerance must be finite and positive, found {tolerance!r}"
    return ""


def _evaluate(observed: float, expected: float, tolerance: float, relation: str) -> bool:
    if relation not in RELATIONS:
        raise InputError(f"relation: expected one of {', '.join(RELATIONS)}, found {relation!r}")
    if _verdict(observed, expected, tolerance, relation):
        return False
    if relation == "abs":
        return abs(observed - expected) <= tolerance
    if relation == "rel":
        return abs(observed - expected) <= tolerance * abs(expected)
    if relation == "le":
        return observed <= expected + tolerance
    return observed >= expected - tolerance


def _make(
    name: str, observed: Any, expected: Any, tolerance: Any, relation: str, note: str
) -> Check:
    obs, exp, tol = float(observed), float(expected), float(tolerance)
    passed = _evaluate(obs, exp, tol, relation)
    why = _verdict(obs, exp, tol, relation)
    return Check(name, obs, exp, tol, passed, f"{why}; {note}" if why else note, relation)


def max_or_nan(*values: float) -> float:
    """The largest of ``values``, NaN when any is NaN (the builtin ``max(0.0, nan)`` is 0.0;
    numpy's ``nanmax`` ignores NaN: never use either for a worst error).

    Claims accumulate their worst error with this, so a NaN anywhere reaches the check.
    """
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    return float(np.max(arr)) if arr.size else math.nan


def min_or_nan(*values: float) -> float:
    """The smallest of ``values``, NaN when any is NaN (see :func:`max_or_nan`)."""
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    return float(np.min(arr)) if arr.size else math.nan


def check_close(
    name: str,
    observed: float,
    expected: float,
    tolerance: float,
    *,
    relative: bool = False,
    note: str = "",
) -> Check:
    """|observed − expected| ≤ tolerance (times |expected| when ``relative``)."""
    return _make(name, observed, expected, tolerance, "rel" if relative else "abs", note)


def check_at_most(
    name: str, observed: float, bound: float, tolerance: float = 0.0, *, note: str = ""
) -> Check:
    """observed ≤ bound + tolerance."""
    return _make(name, observed, bound, tolerance, "le", note)


def check_at_least(
    name: str, observed: float, bound: float, tolerance: float = 0.0, *, note: str = ""
) -> Check:
    """observed ≥ bound − tolerance."""
    return _make(name, observed, bound, tolerance, "ge", note)


# ------------------------------------------------------------------------------------------
Series = Mapping[str, NDArray[np.float64]]


@dataclass(frozen=True)
class Record:
    """Everything one claim run produced.

    Attributes
    ----------
    claim : str
        The claim's name (``cldro list``).
    paper_reference : str
        Theorem / equation of Wu et al., NeurIPS 2023.
    config : dict
        JSON-serialisable parameters of the run (sizes, temperatures, ``quick``).
    seed : int
        The seed every random draw of the run derives from.
    checks : tuple of Check
        Pass/fail checks.
    metrics : dict of str to float
        Measured numbers without pass/fail (findings, timings).
    series : dict of str to dict of str to ndarray
        Named tables (column name → 1-D float array, equal lengths) for the figures; each is
        written as ``<name>.csv`` beside ``record.json``.
    environment : dict of str to str
        Versions, solver, device, git sha (:func:`collect_environment`).
    started_at : str
        ISO-8601 UTC start time.
    seconds : float
        Wall time of the run.
    """

    claim: str
    paper_reference: str
    config: Mapping[str, Any]
    seed: int
    checks: tuple[Check, ...]
    metrics: Mapping[str, float] = field(default_factory=dict)
    series: Mapping[str, Series] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    started_at: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether every check passed; a record without checks fails (it established nothing)."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        """The checks that failed."""
        return tuple(c for c in self.checks if not c.passed)


def now_iso() -> str:
    """The current UTC time as an ISO-8601 string (seconds precision)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def as_series(**columns: ArrayLike) -> dict[str, NDArray[np.float64]]:
    """Build one series (column name → float64 1-D array) and check equal lengths."""
    table = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in columns.items()}
    lengths = {len(v) for v in table.values()}
    if len(lengths) > 1:
        raise InputError(f"series: expected columns of equal length, found lengths {lengths}")
    return table


# ------------------------------------------------------------------------------------------
def package_version(dist: str) -> str:
    """The installed version of distribution ``dist``, or "not installed"."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else "unknown"


def collect_environment(*, solver: str = "none", device: str = "cpu") -> dict[str, str]:
    """Versions and provenance of a run; never fails (missing pieces read "not installed").

    Package versions come from the installed metadata, so nothing heavy is imported.
    """
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": package_version("numpy"),
        "scipy": package_version("scipy"),
        "torch": package_version("torch"),
        "cvxpy": package_version("cvxpy"),
        "clarabel": package_version("clarabel"),
        "solver": solver,
        "device": device,
        "git_sha": _git_sha(),
        "argv": shlex.join(sys.argv),  # the full command line, shell-quoted
    }


# ------------------------------------------------------------------------------------------
def _csv_text(name: str, table: Series) -> str:
    if not _SERIES_NAME.match(name):
        raise InputError(
            f"series: expected names of letters, digits, '_', '-', '.', found {name!r}"
        )
    cols = as_series(**{str(k): v for k, v in table.items()})
    if not cols:
        raise InputError(f"series: expected at least one column in {name!r}, found none")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(cols))
    for row in zip(*cols.values(), strict=True):
        writer.writerow([repr(float(v)) for v in row])
    return buf.getvalue()


def _record_json(record: Record) -> dict[str, Any]:
    return {
        "format": _FORMAT,
        "claim": record.claim,
        "paper_reference": record.paper_reference,
        "config": dict(record.config),
        "seed": int(record.seed),
        "passed": record.passed,
        "checks": [c.to_dict() for c in record.checks],
        "metrics": {k: float(v) for k, v in record.metrics.items()},
        "series": {name: f"{name}.csv" for name in record.series},
        "environment": dict(record.environment),
        "started_at": record.started_at,
        "seconds": float(record.seconds),
    }


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def write_record(record: Record, directory: str | Path) -> Path:
    """Write ``record`` into ``directory`` (created); return the path of ``record.json``.

    Every file's text is produced in memory first (so a record that cannot be serialised
    touches nothing), each file is written atomically, ``record.json`` last; when any write
    fails, the files written by this call are removed again and the error is re-raised.
    """
    directory = Path(directory)
    texts = {f"{name}.csv": _csv_text(name, table) for name, table in record.series.items()}
    payload = _record_json(record)
    json.dumps(payload, default=_json_default)  # fail early (before any file) on odd objects
    written: list[Path] = []
    try:
        for fname, text in texts.items():
            written.append(write_text(directory / fname, text))
        target = directory / RECORD_FILE
        write_json(target, payload)
        written.append(target)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return directory / RECORD_FILE


def _read_csv(path: Path) -> dict[str, NDArray[np.float64]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"series: expected a readable CSV at {path}, found {exc}") from exc
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise InputError(f"series: expected a header row in {path}, found an empty file")
    header, body = rows[0], rows[1:]
    try:
        data = np.array([[float(v) for v in row] for row in body], dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"series: expected numbers in {path}, found {exc}") from exc
    if body and data.shape[1] != len(header):
        raise InputError(f"series: expected {len(header)} columns in {path}, found {data.shape}")
    data = data.reshape(len(body), len(header))
    return {name: data[:, k].copy() for k, name in enumerate(header)}


def _number(value: Any) -> float:
    # write_json stores non-finite floats as the strings "nan", "inf", "-inf"
    return float(value)


def read_record(path: str | Path) -> Record:
    """Read a record from its folder or its ``record.json`` (series CSVs loaded too).

    Raises
    ------
    InputError
        When the path does not exist, is not JSON, or is JSON that is not a cldro record.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_FILE
    if not path.is_file():
        raise InputError(f"record: expected a record folder or {RECORD_FILE}, found no {path}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"record: expected a cldro {RECORD_FILE}, found non-JSON {path}") from exc
    if not isinstance(raw, dict) or raw.get("format") != _FORMAT:
        found = raw.get("format", "no format tag") if isinstance(raw, dict) else type(raw).__name__
        raise InputError(f"record: expected a cldro record ({_FORMAT}), found {found!r} in {path}")
    try:
        checks = tuple(
            Check(
                name=str(c["name"]),
                observed=_number(c["observed"]),
                expected=_number(c["expected"]),
                tolerance=_number(c["tolerance"]),
                passed=bool(c["passed"]),
                note=str(c.get("note", "")),
                relation=str(c.get("relation", "abs")),
            )
            for c in raw["checks"]
        )
        series = {name: _read_csv(path.parent / fname) for name, fname in raw["series"].items()}
        return Record(
            claim=str(raw["claim"]),
            paper_reference=str(raw["paper_reference"]),
            config=dict(raw["config"]),
            seed=int(raw["seed"]),
            checks=checks,
            metrics={k: _number(v) for k, v in raw["metrics"].items()},
            series=series,
            environment={k: str(v) for k, v in raw["environment"].items()},
            started_at=str(raw["started_at"]),
            seconds=float(raw["seconds"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(
            f"record: expected the fields of a cldro record in {path}, found {exc!r}"
        ) from exc


def find_records(directory: str | Path) -> list[Path]:
    """The ``record.json`` files directly inside ``directory``'s sub-folders (sorted)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"from: expected a folder of records, found no folder {directory}")
    found = sorted(directory.glob(f"*/{RECORD_FILE}"))
    if (directory / RECORD_FILE).is_file():
        found.insert(0, directory / RECORD_FILE)
    return found

