"""Property-based tests of the numeric options of mi, worst-case, train and validate.

Property (issue 11): exit 0 with a valid result, or exit 2 with ONE line on stderr that starts
with ``error:`` and names the option (or file); never a traceback, never a partial or temporary
file. Runs in process through ``validation.cli.main`` with few examples and tiny work
(``mi --steps`` ≤ 5, 20 scores, ``train`` stopped after its configuration is accepted);
derandomised through the ``ci`` profile of tests/conftest.py.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from validation.cli import main

FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: strings that are not numbers, or numbers in odd spellings
ODD = st.sampled_from(
    ["", "abc", "nan", "inf", "-inf", "1e309", "-0", "2e-320", "0x10", " 3", "1_000", "1,5", "--"]
)
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), ODD)
INTS = st.one_of(st.integers(-(2**70), 2**70).map(str), ODD)


def _fresh(tmp_path: Path) -> Path:
    """A new empty folder for one example (``tmp_path`` is shared by a test's examples)."""
    return Path(tempfile.mkdtemp(dir=tmp_path))


def _contract(rc: int, err: str, folder: Path, names: tuple[str, ...]) -> None:
    """Exit 0, or exit 2 with one error line naming one of ``names``; no temporary files."""
    if currently_in_test_context():  # also used by plain parametrised tests
        event(f"exit {rc}")
    assert rc in (0, 2), (rc, err)
    assert "Traceback" not in err
    assert not list(folder.rglob(".*.tmp")), "a temporary file was left behind"
    if rc == 2:
        lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("I_", "\r"))]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert any(name in lines[0] for name in names), lines[0]


# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pairs_npy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    path = tmp_path_factory.mktemp("mi") / "m.npy"
    np.save(path, np.hstack([x, x + rng.normal(size=(120, 2))]))
    return path


#: mi's numeric options: a valid value, and the values to fuzz (steps ≤ 5 keeps runs short)
MI_OPTIONS = {
    "--steps": ("3", st.one_of(st.integers(-3, 5).map(str), ODD)),
    "--seed": ("0", st.one_of(st.integers(-3, 2**63 - 1).map(str), ODD)),
    "--x-dims": ("2", st.one_of(st.integers(-2, 5).map(str), ODD)),
}


@FUZZ
@given(option=st.sampled_from(sorted(MI_OPTIONS)), data=st.data())
def test_mi_numeric_options(
    pairs_npy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    data: st.DataObject,
) -> None:
    tmp_path = _fresh(tmp_path)
    out = tmp_path / "mi" / "r.json"
    values = {opt: valid for opt, (valid, _) in MI_OPTIONS.items()}
    values[option] = data.draw(MI_OPTIONS[option][1], label="value")
    argv = ["mi", str(pairs_npy), "--device", "cpu", "--json", str(out)]
    rc = main([*argv, *(f"{opt}={v}" for opt, v in values.items())])
    err = capsys.readouterr().err
    _contract(rc, err, tmp_path, (option, option[2:].replace("-", "_")))
    assert out.exists() is (rc == 0)
    if rc == 0:
        record = json.loads(out.read_text())
        assert math.isfinite(record["estimate"]) and record["ci_low"] <= record["ci_high"]


def test_mi_seed_beyond_int64_names_the_option(
    pairs_npy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["mi", str(pairs_npy), "--x-dims", "2", "--steps", "2", f"--seed={2**64}"])
    _contract(rc, capsys.readouterr().err, tmp_path, ("seed",))


# ------------------------------------------------------------------------------------------
SCORES = st.lists(
    st.floats(allow_nan=True, allow_infinity=True) | st.floats(-10, 10),
    min_size=0,
    max_size=20,
)


@FUZZ
@given(
    scores=SCORES,
    radius=FLOATS,
    alpha=st.one_of(st.none(), FLOATS),
    method=st.sampled_from(["dual", "auto"]),
)
def test_worst_case_numeric_options(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    scores: list[float],
    radius: str,
    alpha: str | None,
    method: str,
) -> None:
    tmp_path = _fresh(tmp_path)
    path = tmp_path / "s.npy"
    np.save(path, np.array(scores, dtype=np.float64))
    out, q_out = tmp_path / "o" / "r.json", tmp_path / "o" / "q.npy"
    divergence = "kl" if alpha is None else f"cressie_read:{alpha}"
    argv = ["worst-case", str(path), f"--radius={radius}", "--divergence", divergence]
    rc = main([*argv, "--method", method, "--json", str(out), "--q-out", str(q_out)])
    err = capsys.readouterr().err
    _contract(rc, err, tmp_path, ("radius", "scores", "divergence", "alpha"))
    assert out.exists() is (rc == 0) and q_out.exists() is (rc == 0)  # all or none
    if rc == 0:
        f = np.array(scores)
        value = json.loads(out.read_text())["dual"]["value"]
        spread = float(f.max() - f.min())
        tol = 1e-9 * max(1.0, spread)  # the dual's rounding on a value between min f and max f
        assert f.min() - tol <= value <= f.max() + tol
        q = np.load(q_out)
        assert q.shape == f.shape and q.min() >= 0 and abs(q.sum() - 1.0) <= 1e-9


# ------------------------------------------------------------------------------------------
class _Accepted(Exception):
    """Raised in place of training once the configuration has been accepted."""


#: train's numeric options and the domain a value must be in to be accepted
TRAIN_DOMAINS = {
    "--temperature": lambda v: math.isfinite(v) and v > 0,
    "--sigma": lambda v: math.isfinite(v) and v > 0,
    "--tau-plus": lambda v: 0 <= v < 1,
    "--epochs": lambda v: v >= 1,
    "--batch-size": lambda v: v >= 2,
    "--lr": lambda v: math.isfinite(v) and v > 0,
    "--knn-temperature": lambda v: math.isfinite(v) and v > 0,
    "--radius-every": lambda v: v >= 1,
    "--radius-anchors": lambda v: v >= 0,
}
INT_OPTIONS = {"--epochs", "--batch-size", "--radius-every", "--radius-anchors"}
#: values outside the option's domain that the fuzz runs found accepted before
#: TrainConfig.validate checked them (validation/training/config.py): each exits 2 naming it
TRAIN_GAPS = [
    ("--mu", "nan"),
    ("--beta", "nan"),
    ("--weight-decay", "inf"),
    ("--seed", "-1"),
    ("--seed", str(2**64)),
    ("--subset", "0"),
    ("--test-subset", "-1"),
    ("--threads", "0"),
]


@FUZZ
@given(option=st.sampled_from(sorted(TRAIN_DOMAINS)), data=st.data())
def test_train_numeric_options(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    data: st.DataObject,
) -> None:
    import validation.training.loop as loop

    def accepted(*args: object, **kwargs: object) -> None:
        raise _Accepted

    monkeypatch.setattr(loop, "_train", accepted)
    tmp_path = _fresh(tmp_path)
    value = data.draw(INTS if option in INT_OPTIONS else FLOATS, label="value")
    argv = ["train", "--device", "cpu", "--json", str(tmp_path / "r.json"), f"{option}={value}"]
    try:
        rc = main(argv)
    except _Accepted:
        parsed = float(value) if option not in INT_OPTIONS else int(value)
        assert TRAIN_DOMAINS[option](parsed), f"{option}={value} accepted"
        return
    _contract(rc, capsys.readouterr().err, tmp_path, (option, option[2:].replace("-", "_")))
    assert rc == 2


@pytest.mark.parametrize(("option", "value"), TRAIN_GAPS)
def test_train_former_gaps_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    value: str,
) -> None:
    import validation.training.loop as loop

    def accepted(*args: object, **kwargs: object) -> None:
        raise _Accepted

    monkeypatch.setattr(loop, "_train", accepted)
    try:
        rc = main(["train", "--device", "cpu", f"{option}={value}"])
    except _Accepted:
        rc = 0
    assert rc == 2
    _contract(rc, capsys.readouterr().err, tmp_path, (option[2:].replace("-", "_"),))


# ------------------------------------------------------------------------------------------
@settings(FUZZ, max_examples=4)
@given(seed=st.one_of(st.integers(0, 2**32 - 1).map(str), ODD))
def test_validate_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: str) -> None:
    tmp_path = _fresh(tmp_path)
    out = tmp_path / "v"
    rc = main(
        ["validate", "temperature-is-lagrange", "--quick", "--out", str(out), f"--seed={seed}"]
    )
    err = capsys.readouterr().err
    _contract(rc, err, tmp_path, ("seed",))
    assert (out / "temperature-is-lagrange" / "record.json").exists() is (rc == 0)
