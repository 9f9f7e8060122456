"""Run records: checks evaluate their relation, write/read round trip, atomicity, bad files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dro_theory.errors import InputError
from validation import records
from validation.records import (
    Check,
    Record,
    as_series,
    check_at_least,
    check_at_most,
    check_close,
    collect_environment,
    find_records,
    read_record,
    write_record,
)


def _record(**kw: object) -> Record:
    base: dict[str, object] = {
        "claim": "demo-claim",
        "paper_reference": "Theorem 0",
        "config": {"quick": True, "sizes": [1, 2], "name": "x"},
        "seed": 7,
        "checks": (
            check_close("identity", 1e-14, 0.0, 1e-10, note="rounding"),
            check_at_most("bound", 0.2, 0.1, 0.0),
        ),
        "metrics": {"gap": 0.25, "nan_metric": math.nan},
        "series": {"curve": as_series(x=[1.0, 2.0, 3.0], y=[0.1, math.inf, -2.5e-300])},
        "environment": collect_environment(solver="CLARABEL"),
        "started_at": "2026-01-01T00:00:00+00:00",
        "seconds": 1.5,
    }
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("check", "passed"),
    [
        (check_close("a", 1.0, 1.0 + 1e-9, 1e-8), True),
        (check_close("a", 1.0, 1.1, 1e-8), False),
        (check_close("r", 101.0, 100.0, 0.02, relative=True), True),
        (check_close("r", 103.0, 100.0, 0.02, relative=True), False),
        (check_at_most("le", 1.0, 0.5, 0.6), True),
        (check_at_most("le", 1.0, 0.5, 0.4), False),
        (check_at_least("ge", 0.0, 0.1, 0.2), True),
        (check_at_least("ge", 0.0, 0.1, 0.0), False),
        (check_close("nan", math.nan, 0.0, 1.0), False),
        (check_close("neg tol", 0.0, 0.0, -1.0), False),
    ],
)
def test_checks_evaluate_their_relation(check: Check, passed: bool) -> None:
    assert check.passed is passed


def test_record_passed_and_failed() -> None:
    rec = _record()
    assert not rec.passed
    assert [c.name for c in rec.failed] == ["bound"]


def test_round_trip(tmp_path: Path) -> None:
    rec = _record()
    path = write_record(rec, tmp_path / "demo")
    assert path == tmp_path / "demo" / "record.json"
    assert (tmp_path / "demo" / "curve.csv").is_file()
    back = read_record(tmp_path / "demo")
    assert back.claim == rec.claim and back.seed == 7 and back.config == rec.config
    assert back.checks == rec.checks
    assert back.metrics["gap"] == 0.25 and math.isnan(back.metrics["nan_metric"])
    np.testing.assert_array_equal(back.series["curve"]["x"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(back.series["curve"]["y"], [0.1, math.inf, -2.5e-300])
    assert back.environment["solver"] == "CLARABEL"
    assert back.seconds == 1.5
    # reading the json path directly works too, and the file is strict JSON
    assert read_record(path).claim == "demo-claim"
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))


def test_environment_never_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("no git")

    monkeypatch.setattr(records.subprocess, "run", boom)
    env = collect_environment()
    assert env["git_sha"] == "unknown"
    assert {"python", "numpy", "torch", "cvxpy", "solver", "device"} <= set(env)


def test_failing_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(records, "write_json", fail)
    with pytest.raises(OSError, match="disk full"):
        write_record(_record(), tmp_path / "demo")
    assert not list((tmp_path / "demo").iterdir())  # CSV removed again, no temp files


def test_unserialisable_record_touches_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="series"):
        write_record(_record(series={"bad name!": as_series(x=[1.0])}), tmp_path / "demo")
    assert not (tmp_path / "demo").exists()


def test_series_columns_must_match() -> None:
    with pytest.raises(InputError, match="equal length"):
        as_series(x=[1.0, 2.0], y=[1.0])


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="found no"):
        read_record(tmp_path / "missing")
    bad = tmp_path / "bad" / "record.json"
    bad.parent.mkdir()
    bad.write_text("not json {")
    with pytest.raises(InputError, match="non-JSON"):
        read_record(bad)
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(InputError, match="expected a cldro record"):
        read_record(bad)
    path = write_record(_record(), tmp_path / "ok")
    raw = json.loads(path.read_text())
    del raw["checks"]
    path.write_text(json.dumps(raw))
    with pytest.raises(InputError, match="fields of a cldro record"):
        read_record(path)
    (tmp_path / "ok" / "curve.csv").write_text("x,y\n1.0,abc\n")
    raw["checks"] = []
    path.write_text(json.dumps(raw))
    with pytest.raises(InputError, match="expected numbers"):
        read_record(path)


def test_find_records(tmp_path: Path) -> None:
    write_record(_record(claim="b"), tmp_path / "b")
    write_record(_record(claim="a"), tmp_path / "a")
    assert [p.parent.name for p in find_records(tmp_path)] == ["a", "b"]
    with pytest.raises(InputError, match="no folder"):
        find_records(tmp_path / "nope")


def test_unserialisable_config_touches_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cannot write"):
        write_record(_record(config={"obj": object()}), tmp_path / "demo")
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize(
    ("observed", "expected", "tolerance", "label"),
    [
        (math.nan, 0.0, 1.0, "observed"),
        (math.inf, 0.0, 1.0, "observed"),
        (0.0, math.nan, 1.0, "expected"),
        (0.0, -math.inf, 1.0, "expected"),
        (0.0, 0.0, math.inf, "tolerance"),
        (0.0, 0.0, math.nan, "tolerance"),
    ],
)
@pytest.mark.parametrize("relation", ["abs", "rel", "le", "ge"])
def test_non_finite_fails_with_a_note(
    observed: float, expected: float, tolerance: float, label: str, relation: str
) -> None:
    make = {
        "abs": lambda: check_close("x", observed, expected, tolerance, note="why"),
        "rel": lambda: check_close("x", observed, expected, tolerance, relative=True),
        "le": lambda: check_at_most("x", observed, expected, tolerance),
        "ge": lambda: check_at_least("x", observed, expected, tolerance),
    }[relation]
    c = make()
    assert c.passed is False
    assert c.note.startswith(f"FAILED: non-finite {label}")


def test_tolerance_must_be_positive_for_equalities() -> None:
    assert not check_close("zero tol", 0.0, 0.0, 0.0).passed
    assert "positive" in check_close("zero tol", 0.0, 0.0, 0.0).note
    assert not check_close("zero tol", 1.0, 1.0, 0.0, relative=True).passed
    # one-sided: the bound carries the margin, zero tolerance is accepted
    assert check_at_least("ge", 1.0, 0.5, 0.0).passed
    assert not check_at_most("le", 0.0, 0.0, -1e-12).passed


def test_record_without_checks_fails() -> None:
    assert not _record(checks=()).passed


def test_max_or_nan_propagates_nan() -> None:
    assert max(0.0, math.nan) == 0.0  # the pattern the claims must not use
    assert math.isnan(records.max_or_nan(0.0, math.nan, 1.0))
    assert math.isnan(records.min_or_nan(math.nan, -1.0))
    assert records.max_or_nan(0.0, 2.0, 1.0) == 2.0
    assert records.min_or_nan(0.0, 2.0, -1.0) == -1.0
    assert math.isnan(records.max_or_nan())
