"""`cldro mi`, in process through ``validation.cli.main``, on small files and few steps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from estimators.synthetic import correlated_gaussians
from validation.cli import main

LINE = re.compile(
    r"^I_(\S+)\(X;Y\) = (\S+) \[(\S+), (\S+)\]  n_test=(\d+)$",
    re.MULTILINE,
)


@pytest.fixture
def pairs() -> tuple[np.ndarray, np.ndarray]:
    s = correlated_gaussians(200, [0.7, 0.5], seed=0)
    return s.x, s.y


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["mi", "--steps", "20", "--device", "cpu", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_npz_prints_line_and_writes_json(
    tmp_path: Path, pairs: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, x=pairs[0], y=pairs[1])
    out_json = tmp_path / "sub" / "mi.json"
    rc, out, err = _run([str(data), "--divergence", "chi2", "--json", str(out_json)], capsys)
    assert rc == 0, err
    m = LINE.search(out)
    assert m is not None, out
    assert m.group(1) == "chi2" and int(m.group(5)) == 60
    low, est, high = float(m.group(3)), float(m.group(2)), float(m.group(4))
    assert low <= est <= high
    record = json.loads(out_json.read_text())
    for key in (
        "estimate",
        "ci_low",
        "ci_high",
        "divergence",
        "bound",
        "n_train",
        "n_test",
        "seconds",
        "seed",
    ):
        assert key in record
    assert record["divergence"] == "chi2" and record["bound"] == "tight"
    assert record["n_test"] == 60 and record["seed"] == 0
    assert f"{record['estimate']:.4g}" == m.group(2)
    assert not list(out_json.parent.glob(".*.tmp"))  # atomic write left no temp file
    assert "step" in err  # the progress bar goes to stderr


def test_two_npy_files_and_options(
    tmp_path: Path, pairs: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "x.npy", pairs[0])
    np.save(tmp_path / "y.npy", pairs[1])
    args = [str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--bound", "infonce"]
    rc, out, _ = _run([*args, "--seed", "3", "--critic", "concat"], capsys)
    assert rc == 0
    assert LINE.search(out) is not None and out.startswith("I_kl(X;Y)")


def test_single_npy_with_x_dims_and_csv_columns(
    tmp_path: Path, pairs: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    both = np.hstack(pairs)
    np.save(tmp_path / "xy.npy", both)
    rc, out, _ = _run([str(tmp_path / "xy.npy"), "--x-dims", "2"], capsys)
    assert rc == 0 and LINE.search(out)
    csv = tmp_path / "d.csv"
    lines = ["a,b,c,d"] + [",".join(f"{v:.6f}" for v in row) for row in both]
    csv.write_text("\n".join(lines) + "\n")
    rc, out, _ = _run(
        [str(csv), "--x-cols", "a,b", "--y-cols", "c,d", "--divergence", "cr:1.5"], capsys
    )
    assert rc == 0 and out.startswith("I_cressie_read:1.5(X;Y)")


@pytest.mark.parametrize(
    ("case", "extra", "message"),
    [
        ("nan", [], "x: expected finite values"),
        ("rows", [], "y: expected as many rows as x"),
        ("few", [], "expected at least 100 rows"),
        ("const", [], "y: expected non-constant columns"),
        ("ok", ["--divergence", "kll"], "divergence: expected one of"),
        ("ok", ["--bound", "infonce", "--divergence", "chi2"], "estimates KL MI only"),
        ("ok", ["--bound", "smile"], "bound: expected one of"),
        ("ok", ["--critic", "bilinear"], "critic: expected one of"),
        ("ok", ["--device", "tpu"], "device: expected auto, cpu or cuda"),
        ("missing", [], "path: expected an existing file"),
        ("garbage", [], "expected a NumPy .npz archive"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path,
    pairs: tuple[np.ndarray, np.ndarray],
    capsys: pytest.CaptureFixture[str],
    case: str,
    extra: list[str],
    message: str,
) -> None:
    x, y = pairs[0].copy(), pairs[1].copy()
    path = tmp_path / "d.npz"
    if case == "nan":
        x[3, 0] = np.nan
    elif case == "rows":
        y = y[:150]
    elif case == "few":
        x, y = x[:50], y[:50]
    elif case == "const":
        y[:, 0] = 1.0
    if case == "garbage":
        path.write_bytes(b"not an archive")
    elif case != "missing":
        np.savez(path, x=x, y=y)
    rc, out, err = _run([str(path), *extra], capsys)
    assert rc == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]


def test_unknown_option_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["mi", str(tmp_path / "d.npz"), "--no-such-option"])
    capsys.readouterr()
    assert rc == 2


def test_run_control_options_and_json_provenance(
    tmp_path: Path, pairs: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    data = tmp_path / "d.npz"
    np.savez(data, x=pairs[0], y=pairs[1])
    out_json = tmp_path / "mi.json"
    threads = torch.get_num_threads()
    try:
        args = ["--threads", "1", "--no-progress", "--max-seconds", "0.001"]
        rc, out, err = _run([str(data), *args, "--json", str(out_json)], capsys)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert rc == 0, err
    assert LINE.search(out) is not None
    assert "I_kl (tight): step" not in err  # --no-progress
    assert "warning: max_seconds ended training: the best critic so far was used" in err
    record = json.loads(out_json.read_text())
    assert record["budget_stopped"] is True and record["max_seconds"] == 0.001
    assert record["threads"] == 1 and record["valid"] is True and record["problem"] is None
    assert "max_seconds ended training: the best critic so far was used" in record["warnings"]
    assert record["argv"][:2] == ["cldro", "mi"] and "--max-seconds" in record["argv"]
    assert record["columns"] == {"x_dims": None, "x_cols": None, "y_cols": None}
    assert isinstance(record["version"], str) and record["version"]
    assert "not the critic's optimisation error" in record["ci_covers"]
    assert record["folds"] == 1 and record["fold_estimates"] == [record["estimate"]]


def test_progress_is_plain_lines_on_a_non_terminal(
    tmp_path: Path, pairs: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, x=pairs[0], y=pairs[1])
    rc, _, err = _run([str(data)], capsys)
    assert rc == 0 and "\r" not in err
    assert [line for line in err.splitlines() if " step " in line][-1].startswith(
        "I_kl (tight): step 20/20 val "
    )


def test_reverse_kl_is_refused(
    tmp_path: Path, pairs: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, x=pairs[0], y=pairs[1])
    rc, out, err = _run([str(data), "--divergence", "reverse_kl"], capsys)
    assert rc == 2 and out == ""
    assert err.startswith("error: divergence: expected a divergence PhiMI can estimate")


def test_an_estimate_out_of_range_is_not_reported(
    tmp_path: Path,
    pairs: tuple[np.ndarray, np.ndarray],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dataclasses

    import estimators.phi_mi.estimator as module

    real = module.held_out

    def broken(*args: object, **kwargs: object) -> object:
        return dataclasses.replace(real(*args, **kwargs), estimate=float("nan"))

    monkeypatch.setattr(module, "held_out", broken)
    data = tmp_path / "d.npz"
    np.savez(data, x=pairs[0], y=pairs[1])
    out_json = tmp_path / "mi.json"
    rc, out, _ = _run([str(data), "--json", str(out_json)], capsys)
    assert rc == 1
    assert LINE.search(out) is None
    assert "I_kl(X;Y): no estimate reported: the estimate is not finite" in out
    record = json.loads(out_json.read_text())
    assert record["valid"] is False and record["estimate"] is None
    assert "not finite" in record["problem"]


def test_folds_cross_fit_and_the_json_says_what_the_interval_covers(
    tmp_path: Path, pairs: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    data, out_json = tmp_path / "d.npz", tmp_path / "mi.json"
    np.savez(data, x=pairs[0], y=pairs[1])
    rc, _, err = _run([str(data), "--folds", "3", "--json", str(out_json)], capsys)
    assert rc == 0, err
    record = json.loads(out_json.read_text())
    assert record["folds"] == 3 and len(record["fold_estimates"]) == 3
    # the estimate is the mean of the fold values (cross-fitting), and the interval contains it
    assert record["estimate"] == pytest.approx(np.mean(record["fold_estimates"]), rel=1e-12)
    assert record["ci_low"] <= record["estimate"] <= record["ci_high"]
    assert "fold" in record["ci_covers"]


def test_folds_below_one_exits_2(
    tmp_path: Path, pairs: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, x=pairs[0], y=pairs[1])
    rc, _, err = _run([str(data), "--folds", "0"], capsys)
    assert rc == 2 and "folds" in err and len(err.strip().splitlines()) == 1
