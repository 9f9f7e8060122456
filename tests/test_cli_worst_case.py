"""`cldro worst-case`: primal and dual side by side, JSON and q* files, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from validation.cli import main


@pytest.fixture
def scores_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "scores.npy"
    np.save(path, rng.normal(size=60))
    return path


def test_worst_case_prints_both_columns_and_writes_files(
    scores_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "w.npy"
    np.save(weights, np.random.default_rng(1).dirichlet(np.ones(60)))
    out_json, out_q = tmp_path / "out" / "wc.json", tmp_path / "q.npy"
    argv = [
        "worst-case",
        str(scores_file),
        "--divergence",
        "chi2",
        "--radius",
        "0.2",
        "--weights",
        str(weights),
        "--json",
        str(out_json),
        "--q-out",
        str(out_q),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for word in ("primal (cvxpy)", "dual", "value", "multiplier", "normalizer", "L1(q_primal"):
        assert word in out
    record = json.loads(out_json.read_text())
    assert record["divergence"] == "chi2" and record["radius"] == 0.2 and record["n"] == 60
    for side in ("primal", "dual"):
        assert set(record[side]) >= {"value", "multiplier", "normalizer", "status", "solver"}
    assert record["primal"]["solver"].startswith("clarabel")
    assert record["agreement"]["abs_value_difference"] <= 1e-6
    assert record["agreement"]["q_l1_difference"] <= 1e-6
    q = np.load(out_q)
    assert q.shape == (60,) and q.min() >= 0 and abs(q.sum() - 1.0) <= 1e-12
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_worst_case_point_mass_and_cressie_read(
    scores_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["worst-case", str(scores_file), "--radius", "10"]) == 0  # KL, log 60 < 10
    assert "point_mass" in capsys.readouterr().out
    argv = ["worst-case", str(scores_file), "--divergence", "cressie_read:1.5", "--radius", "0.1"]
    assert main(argv) == 0
    assert "cressie_read:1.5" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("make", "extra", "match"),
    [
        ("missing", [], "scores: expected an existing file"),
        ("twod", [], r"scores: expected a 1-D array, found shape \(3, 4\)"),
        ("text", [], "scores: expected a .npy file"),
        ("strings", [], r"scores \(.*\.npy\): expected a numeric array"),
        ("ok", ["--radius", "-1"], "radius: expected a finite non-negative number"),
        ("ok", ["--divergence", "kll"], "divergence: expected one of .*did you mean 'kl'"),
        ("ok", ["--solver", "nosuch"], "solver: expected one of"),
    ],
)
def test_worst_case_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: str, extra: list[str], match: str
) -> None:
    path = tmp_path / "s.npy"
    if make == "twod":
        np.save(path, np.zeros((3, 4)))
    elif make == "strings":
        np.save(path, np.array(["a", "b"]))
    elif make == "ok":
        np.save(path, np.arange(5.0))
    elif make == "text":
        path = tmp_path / "s.txt"
        path.write_text("1 2 3\n")
    assert main(["worst-case", str(path), *extra]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(match, lines[0]), lines[0]
    assert captured.out == ""


# ------------------------------------------------------------------------------------------
# issue 11: --method and the primal's limits
def _json(path: Path) -> dict[str, object]:
    return dict(json.loads(path.read_text()))


def test_tiny_radius_dual_answers_primal_reported_not_verifiable(
    scores_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    out = tmp_path / "r.json"
    t0 = time.perf_counter()
    assert main(["worst-case", str(scores_file), "--radius", "1e-8", "--json", str(out)]) == 0
    seconds = time.perf_counter() - t0
    assert seconds < 3.0  # the cvxpy fallback chain took 4–15 s here before (issue 11)
    text = capsys.readouterr().out
    assert "primal (cvxpy): not verifiable at radius 1e-08" in text
    record = _json(out)
    assert record["primal"] is None and record["q_from"] == "dual"
    assert "not verifiable" in str(record["primal_not_run"])
    dual = record["dual"]
    assert isinstance(dual, dict) and dual["status"] in ("optimal", "closed_form")


def test_method_primal_at_tiny_radius_is_an_input_error(
    scores_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["worst-case", str(scores_file), "--radius", "1e-8", "--method", "primal"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: radius: the cvxpy primal is not verifiable")


@pytest.mark.parametrize(
    ("method", "primal", "dual"),
    [("dual", False, True), ("primal", True, False), ("both", True, True), ("auto", True, True)],
)
def test_method_chooses_the_sides(
    scores_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    method: str,
    primal: bool,
    dual: bool,
) -> None:
    out, q_out = tmp_path / "r.json", tmp_path / "q.npy"
    argv = ["worst-case", str(scores_file), "--method", method, "--json", str(out)]
    assert main([*argv, "--q-out", str(q_out)]) == 0
    text = capsys.readouterr().out
    record = _json(out)
    assert (record["primal"] is not None) is primal and (record["dual"] is not None) is dual
    assert ("primal (cvxpy)" in text.splitlines()[1]) is primal
    assert (record["agreement"] is not None) is (primal and dual)
    assert record["q_from"] == ("primal" if primal else "dual")
    q = np.load(q_out)
    assert q.shape == (60,) and abs(q.sum() - 1.0) <= 1e-12


def test_auto_skips_the_primal_above_the_size_threshold(
    scores_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from validation.cli.worst_case import primal_solver

    monkeypatch.setattr(primal_solver, "PRIMAL_MAX_N", 59)  # the fixture has n = 60
    out = tmp_path / "r.json"
    assert main(["worst-case", str(scores_file), "--json", str(out)]) == 0
    assert "primal (cvxpy): skipped for n = 60 > 59" in capsys.readouterr().out
    assert _json(out)["primal"] is None
    assert main(["worst-case", str(scores_file), "--method", "both", "--json", str(out)]) == 0
    capsys.readouterr()
    assert _json(out)["primal"] is not None  # both forces it


def test_unknown_method(scores_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worst-case", str(scores_file), "--method", "fast"]) == 2
    assert "method: expected one of auto, dual, primal, both" in capsys.readouterr().err
