"""Tests of estimators.io.load_pairs: every format and every error path (tmp_path files)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from dro_theory import InputError
from estimators.io import load_pairs, validate_pairs

N = 120


@pytest.fixture
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 3))
    return x, x[:, :2] + rng.standard_normal((N, 2))


def _csv(path: Path, header: list[str], rows: np.ndarray | list[list[str]]) -> Path:
    lines = [",".join(header)]
    lines += [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------
# formats
def test_npz(tmp_path: Path, xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = load_pairs(tmp_path / "d.npz")
    assert np.array_equal(data.x, x) and np.array_equal(data.y, y)
    assert data.x.dtype == np.float64
    lx, ly = data  # unpacks
    assert lx.shape == (N, 3) and ly.shape == (N, 2)
    assert data.x_names == ("x[0]", "x[1]", "x[2]")


def test_two_npy_with_1d_and_int(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 50, size=N)  # 1-D integers → one float64 column
    y = rng.standard_normal((N, 2))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    data = load_pairs(tmp_path / "x.npy", tmp_path / "y.npy")
    assert data.x.shape == (N, 1) and data.x.dtype == np.float64
    assert np.array_equal(data.x[:, 0], x.astype(np.float64))
    assert np.array_equal(data.y, y)
    assert data.source == "x.npy / y.npy"  # clean, unquoted (issue 11: records)


# ------------------------------------------------------------------------------------------
# issue 11 regressions
@pytest.mark.parametrize("which", ["x", "y"])
def test_three_axes_are_an_error_not_flattened(tmp_path: Path, which: str) -> None:
    rng = np.random.default_rng(2)
    arrays = {"x": rng.standard_normal((N, 2)), "y": rng.standard_normal((N, 2))}
    arrays[which] = rng.standard_normal((N, 2, 2))
    np.save(tmp_path / "x.npy", arrays["x"])
    np.save(tmp_path / "y.npy", arrays["y"])
    with pytest.raises(
        InputError, match=r"expected a 1-D or 2-D array .*found shape \(120, 2, 2\)"
    ):
        load_pairs(tmp_path / "x.npy", tmp_path / "y.npy")
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(InputError, match=rf"^{which} \(d.npz\): expected a 1-D or 2-D"):
        load_pairs(tmp_path / "d.npz")


def test_empty_npy_says_no_rows(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.zeros((0, 2)))
    with pytest.raises(InputError, match=r"^x: no rows in 'm.npy'"):
        load_pairs(tmp_path / "m.npy", x_dims=1)
    np.save(tmp_path / "y.npy", np.zeros((0, 2)))
    np.save(tmp_path / "x.npy", np.ones((5, 2)))
    with pytest.raises(InputError, match=r"^y: no rows in 'y.npy'"):
        load_pairs(tmp_path / "x.npy", tmp_path / "y.npy")
    (tmp_path / "h.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"^x: no rows in 'h.csv'"):
        load_pairs(tmp_path / "h.csv", x_cols="a")


def test_csv_duplicate_header_named(tmp_path: Path, xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    path = _csv(tmp_path / "d.csv", ["a", "b", "a", "c", "d"], np.hstack([x, y]))
    with pytest.raises(InputError, match=r"distinct header names .*found duplicated \['a'\]"):
        load_pairs(path, x_cols="b")


def test_csv_byte_order_mark_ignored(tmp_path: Path, xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    path = _csv(tmp_path / "d.csv", ["a", "b", "c", "d", "e"], np.hstack([x, y]))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    data = load_pairs(path, x_cols="a,b,c")
    assert data.x_names == ("a", "b", "c") and np.array_equal(data.x, x)
    assert data.source == "d.csv"


def test_csv_without_header(tmp_path: Path, xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    lines = [",".join(str(v) for v in row) for row in np.hstack([x, y])]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"^path: the first row must be a header"):
        load_pairs(path, x_cols="0,1")


def test_single_npy_split(tmp_path: Path, xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    np.save(tmp_path / "m.npy", np.hstack([x, y]))
    data = load_pairs(str(tmp_path / "m.npy"), x_dims=3)
    assert np.array_equal(data.x, x) and np.array_equal(data.y, y)


def test_csv_by_name_index_and_default_y(tmp_path: Path, xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    path = _csv(tmp_path / "d.csv", ["a", "b", "c", "u", "v"], np.hstack([x, y]))
    data = load_pairs(path, x_cols=["a", "b", "c"], y_cols=["v", "u"])
    assert np.allclose(data.x, x, rtol=1e-15, atol=0) and np.allclose(data.y, y[:, ::-1])
    assert data.y_names == ("v", "u")
    by_index = load_pairs(path, x_cols=[0, 1, 2], y_cols="3,4")
    assert np.array_equal(by_index.y, data.y[:, ::-1])
    default_y = load_pairs(path, x_cols="a,b,c")
    assert default_y.y_names == ("u", "v")


def test_min_rows_parameter(tmp_path: Path, xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    np.savez(tmp_path / "d.npz", x=x[:20], y=y[:20])
    assert load_pairs(tmp_path / "d.npz", min_rows=20).x.shape == (20, 3)
    with pytest.raises(InputError, match=r"at least 100 rows.*found 20"):
        load_pairs(tmp_path / "d.npz")


# ------------------------------------------------------------------------------------------
# errors
def test_missing_and_unknown(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"path: expected an existing file"):
        load_pairs(tmp_path / "nope.npz")
    (tmp_path / "d.txt").write_text("1,2\n")
    with pytest.raises(InputError, match=r"path: expected a \.npz, \.npy or \.csv file"):
        load_pairs(tmp_path / "d.txt")
    np.save(tmp_path / "x.npy", np.zeros((N, 1)))
    with pytest.raises(InputError, match=r"path_y: expected an existing file"):
        load_pairs(tmp_path / "x.npy", tmp_path / "y.npy")


def test_content_does_not_match_extension(
    tmp_path: Path, xy: tuple[np.ndarray, np.ndarray]
) -> None:
    x, _ = xy
    (tmp_path / "t.npy").write_text("this is text\n")
    with pytest.raises(InputError, match=r"expected a NumPy .npy file"):
        load_pairs(tmp_path / "t.npy", x_dims=1)
    (tmp_path / "t.npz").write_text("this is text\n")
    with pytest.raises(InputError, match=r"expected a NumPy .npz archive"):
        load_pairs(tmp_path / "t.npz")
    with zipfile.ZipFile(tmp_path / "z.npz", "w") as zf:
        zf.writestr("x.npy", "not an array")
        zf.writestr("y.npy", "not an array")
    with pytest.raises(InputError, match=r"unreadable members"):
        load_pairs(tmp_path / "z.npz")
    np.save(tmp_path / "a.npy", x)
    (tmp_path / "a.npy").rename(tmp_path / "a.npz")
    with pytest.raises(InputError, match=r"found a single .npy array"):
        load_pairs(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x=x)
    (tmp_path / "b.npz").rename(tmp_path / "b.npy")
    with pytest.raises(InputError, match=r"found an .npz archive"):
        load_pairs(tmp_path / "b.npy", x_dims=1)
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(InputError, match=r"UTF-8 text CSV"):
        load_pairs(tmp_path / "bin.csv", x_cols="a")


def test_npz_keys_dtype_and_pickle(tmp_path: Path, xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    np.savez(tmp_path / "k.npz", a=x, b=y)
    with pytest.raises(InputError, match=r"expected arrays 'x' and 'y'.*\['a', 'b'\]"):
        load_pairs(tmp_path / "k.npz")
    np.savez(tmp_path / "s.npz", x=np.array(["a"] * N), y=y)
    with pytest.raises(InputError, match=r"numeric array.*<U1"):
        load_pairs(tmp_path / "s.npz")
    obj = np.empty(N, dtype=object)
    obj[:] = [[1.0]] * N
    np.save(tmp_path / "o.npy", obj, allow_pickle=True)
    np.save(tmp_path / "y.npy", y)
    with pytest.raises(InputError, match=r"expected a NumPy .npy file"):
        load_pairs(tmp_path / "o.npy", tmp_path / "y.npy")
    np.save(tmp_path / "c.npy", x.astype(complex))
    with pytest.raises(InputError, match=r"numeric array.*complex"):
        load_pairs(tmp_path / "c.npy", tmp_path / "y.npy")
    np.save(tmp_path / "scalar.npy", np.float64(1.0))
    with pytest.raises(InputError, match=r"scalar"):
        load_pairs(tmp_path / "scalar.npy", tmp_path / "y.npy")


def test_non_finite_counted_and_named(tmp_path: Path, xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    y = y.copy()
    y[3, 1] = np.nan
    y[7, 0] = np.inf
    np.savez(tmp_path / "nan.npz", x=x, y=y)
    with pytest.raises(
        InputError, match=r"y: expected finite values in 'nan.npz', found 2 NaN/inf"
    ):
        load_pairs(tmp_path / "nan.npz")


def test_mismatched_rows_and_constant_columns(
    tmp_path: Path, xy: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = xy
    np.savez(tmp_path / "m.npz", x=x, y=y[:-1])
    with pytest.raises(InputError, match=f"as many rows as x \\({N}\\).*found {N - 1}"):
        load_pairs(tmp_path / "m.npz")
    x = x.copy()
    x[:, 1] = 2.0
    np.savez(tmp_path / "c.npz", x=x, y=y)
    with pytest.raises(InputError, match=r"constant column 'x\[1\]'"):
        load_pairs(tmp_path / "c.npz")
    path = _csv(tmp_path / "c.csv", ["a", "b", "c", "u", "v"], np.hstack([x, y]))
    with pytest.raises(InputError, match=r"constant column 'b'"):
        load_pairs(path, x_cols="a,b", y_cols="u")


def test_csv_errors(tmp_path: Path, xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    rows = [[str(v) for v in r] for r in np.hstack([x, y])]
    rows[4][3] = "abc"
    path = _csv(tmp_path / "bad.csv", ["a", "b", "c", "u", "v"], rows)
    with pytest.raises(InputError, match=r"row 6, column 'u', found 'abc'"):
        load_pairs(path, x_cols="a", y_cols="u")
    assert load_pairs(path, x_cols="a", y_cols="v").y.shape == (N, 1)  # bad cell unused
    with pytest.raises(InputError, match=r"x_cols: expected the x columns"):
        load_pairs(path)
    with pytest.raises(InputError, match=r"x_cols: expected column names among"):
        load_pairs(path, x_cols="zz")
    with pytest.raises(InputError, match=r"y_cols: expected column indices 0..4"):
        load_pairs(path, x_cols="a", y_cols=[9])
    with pytest.raises(InputError, match=r"disjoint"):
        load_pairs(path, x_cols="a,b", y_cols="b")
    with pytest.raises(InputError, match=r"distinct"):
        load_pairs(path, x_cols="a,a", y_cols="b")
    with pytest.raises(InputError, match=r"y_cols: expected some columns left"):
        load_pairs(path, x_cols="a,b,c,u,v")
    rows[4][3] = "1.5"
    short = [*rows[:5], rows[5][:3], *rows[6:]]
    with pytest.raises(InputError, match=r"expected 5 cells per row.*found 3 in row 7"):
        load_pairs(_csv(tmp_path / "short.csv", ["a", "b", "c", "u", "v"], short), x_cols="a")
    (tmp_path / "empty.csv").write_text("\n\n")
    with pytest.raises(InputError, match=r"empty file"):
        load_pairs(tmp_path / "empty.csv", x_cols="a")
    with pytest.raises(InputError, match=r"x_cols: expected column names or indices"):
        load_pairs(path, x_cols=True)  # type: ignore[arg-type]


def test_options_that_do_not_apply(tmp_path: Path, xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    np.savez(tmp_path / "d.npz", x=x, y=y)
    np.save(tmp_path / "m.npy", np.hstack([x, y]))
    np.save(tmp_path / "y.npy", y)
    with pytest.raises(InputError, match=r"x_cols: column selection applies to .csv"):
        load_pairs(tmp_path / "d.npz", x_cols="a")
    with pytest.raises(InputError, match=r"path_y: a second file applies to .npy"):
        load_pairs(tmp_path / "d.npz", tmp_path / "y.npy")
    with pytest.raises(InputError, match=r"x_dims: expected only with a single .npy"):
        load_pairs(tmp_path / "d.npz", x_dims=2)
    with pytest.raises(InputError, match=r"x_dims: expected the number of x columns"):
        load_pairs(tmp_path / "m.npy")
    with pytest.raises(InputError, match=r"x_dims: expected an int in 1\.\.4"):
        load_pairs(tmp_path / "m.npy", x_dims=5)
    (tmp_path / "y.csv").write_text("a\n1\n")
    with pytest.raises(InputError, match=r"path_y: expected a .npy file"):
        load_pairs(tmp_path / "m.npy", tmp_path / "y.csv")
    with pytest.raises(InputError, match=r"min_rows"):
        load_pairs(tmp_path / "d.npz", min_rows=0)


# ------------------------------------------------------------------------------------------
# validate_pairs (the checks load_pairs and PhiMI.fit share)
def test_validate_pairs_accepts_good_data(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    validate_pairs(x, y, min_rows=N, source="mem")  # no exception
    validate_pairs(x[:, :1], y, min_rows=1, source="mem")


@pytest.mark.parametrize(
    ("edit", "kwargs", "match"),
    [
        ("nan_x", {}, r"^x: expected finite values in mem, found 2 NaN/inf entries$"),
        ("inf_y", {}, r"^y: expected finite values in mem, found 1 NaN/inf entries$"),
        ("short_y", {}, r"^y: expected as many rows as x \(120\) in mem, found 119$"),
        ("no_cols", {}, r"^x, y: expected at least one column each in mem, found none$"),
        ("none", {"min_rows": 121}, r"^x, y: expected at least 121 rows in mem, found 120$"),
        (
            "const_y",
            {},
            r"^y: expected non-constant columns in mem, found constant column 'y\[1\]'$",
        ),
        (
            "const_y",
            {"y_names": ["a", "b"]},
            r"^y: expected non-constant columns in mem, found constant column 'b'$",
        ),
        (
            "const_x7",
            {},
            r"found constant column 'x\[0\]', 'x\[1\]', 'x\[2\]', 'x\[3\]', 'x\[4\]' and 2 more$",
        ),
    ],
)
def test_validate_pairs_errors(
    xy: tuple[np.ndarray, np.ndarray], edit: str, kwargs: dict[str, object], match: str
) -> None:
    x, y = xy[0].copy(), xy[1].copy()
    if edit == "nan_x":
        x[3, 1] = x[4, 2] = np.nan
    elif edit == "inf_y":
        y[0, 0] = -np.inf
    elif edit == "short_y":
        y = y[:-1]
    elif edit == "no_cols":
        x = x[:, :0]
    elif edit == "const_y":
        y[:, 1] = 2.0
    elif edit == "const_x7":
        x = np.zeros((N, 7))
    with pytest.raises(InputError, match=match):
        validate_pairs(x, y, source="mem", **kwargs)  # type: ignore[arg-type]
