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
