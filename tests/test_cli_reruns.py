"""Reruns are identical: the same command twice on the CPU gives the same bytes but timings.

The timing fields (the only ones allowed to differ) are :data:`TIMING_KEYS`: ``seconds``
(mi; worst-case's primal, dual and each solver attempt; a record's run time) and
``started_at`` (a record's start time).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from validation.cli import main

#: JSON keys whose values are wall-clock measurements
TIMING_KEYS = ("seconds", "started_at")
_TIMING = re.compile(r'("(?:' + "|".join(TIMING_KEYS) + r')": )("[^"]*"|[-+0-9.eE]+)')


def _untimed(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    masked, count = _TIMING.subn(r"\1<timing>", text)
    assert count >= 1  # the mask really applies to this file
    return masked


def test_the_mask_only_hides_timings() -> None:
    text = '{"seconds": 1.5e-3, "value": 2.0, "started_at": "2026-01-01T00:00:00+00:00"}'
    assert _TIMING.sub(r"\1<timing>", text) == (
        '{"seconds": <timing>, "value": 2.0, "started_at": <timing>}'
    )


def test_worst_case_twice_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = tmp_path / "s.npy"
    np.save(scores, np.random.default_rng(3).normal(size=50))
    for run in ("a", "b"):
        argv = ["worst-case", str(scores), "--method", "both", "--json", str(tmp_path / run)]
        assert main([*argv, "--q-out", str(tmp_path / f"{run}.npy")]) == 0
    capsys.readouterr()
    assert _untimed(tmp_path / "a") == _untimed(tmp_path / "b")
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()


def test_mi_twice_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(150, 2))
    np.savez(tmp_path / "d.npz", x=x, y=x + rng.normal(size=(150, 2)))
    argv = ["mi", str(tmp_path / "d.npz"), "--steps", "5", "--device", "cpu", "--seed", "7"]
    texts = []
    for _ in range(2):  # the same command line twice (the JSON records the command line)
        assert main([*argv, "--json", str(tmp_path / "r.json")]) == 0
        texts.append(_untimed(tmp_path / "r.json"))
    capsys.readouterr()
    assert texts[0] == texts[1]


def test_validate_twice_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    claim = "temperature-is-lagrange"  # the quickest claim (about 1 s with --quick)
    for run in ("a", "b"):
        assert main(["validate", claim, "--quick", "--out", str(tmp_path / run)]) == 0
    capsys.readouterr()
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.*"))
    assert files_a == files_b and Path(claim, "record.json") in files_a
    for rel in files_a:
        if rel.suffix == ".json":
            assert _untimed(tmp_path / "a" / rel) == _untimed(tmp_path / "b" / rel), rel
        elif rel.suffix == ".csv":
            assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
