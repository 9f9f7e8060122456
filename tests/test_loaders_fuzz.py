"""Property-based tests of every loader of ``estimators.io`` (.npy, .npz, .csv).

Property: :func:`estimators.io.load_pairs` returns valid pairs (float64, 2-D, finite, the same
number of rows, at least ``min_rows``) or raises :class:`InputError` with one line that starts
with the option or array it is about; never another exception, never an unpickled object.
Derandomised through the ``ci`` profile of tests/conftest.py.
"""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dro_theory import InputError
from estimators.io import PairedData, load_npy, load_pairs

#: the names an error message may start with (the options of load_pairs and the two arrays)
NAMES = ("path", "path_y", "x_dims", "x_cols", "y_cols", "x", "y", "x, y", "min_rows")
#: few rows keep the examples small; min_rows=1 lets valid data through
MIN_ROWS = 1
FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

DTYPES = st.sampled_from(
    ["<f8", "<f4", "<f2", "|i1", "<u8", "|b1", "<c16", "<U3", "|S2", "<M8[s]", "<m8[s]"]
)
ARRAYS = DTYPES.flatmap(
    lambda dt: hnp.arrays(
        dtype=np.dtype(dt),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
    )
)


def _check(load: object) -> None:
    """Call ``load`` and assert the property."""
    try:
        data = load()  # type: ignore[operator]
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message, message
        head = message.split(":", 1)[0].split(" (", 1)[0]
        event(f"InputError {head}")
        assert head in NAMES, message
        return
    event("valid")
    assert isinstance(data, PairedData)
    for arr in (data.x, data.y):
        assert arr.dtype == np.float64 and arr.ndim == 2 and arr.shape[1] >= 1
        assert np.isfinite(arr).all()
    assert data.x.shape[0] == data.y.shape[0] >= MIN_ROWS
    assert len(data.x_names) == data.x.shape[1] and len(data.y_names) == data.y.shape[1]


@FUZZ
@given(x=ARRAYS, y=ARRAYS)
def test_two_npy_and_npz(tmp_path: Path, x: np.ndarray, y: np.ndarray) -> None:
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    _check(lambda: load_pairs(tmp_path / "x.npy", tmp_path / "y.npy", min_rows=MIN_ROWS))
    _check(lambda: load_pairs(tmp_path / "d.npz", min_rows=MIN_ROWS))


@FUZZ
@given(data=ARRAYS, x_dims=st.integers(-2, 6) | st.none())
def test_single_npy(tmp_path: Path, data: np.ndarray, x_dims: int | None) -> None:
    np.save(tmp_path / "m.npy", data)
    _check(lambda: load_pairs(tmp_path / "m.npy", x_dims=x_dims, min_rows=MIN_ROWS))


@FUZZ
@given(
    x=hnp.arrays(np.float64, (6, 2), elements=st.floats(allow_nan=True, allow_infinity=True)),
    cut=st.integers(0, 400),
    member=st.sampled_from(["npy", "npz"]),
)
def test_truncated_files(tmp_path: Path, x: np.ndarray, cut: int, member: str) -> None:
    if member == "npy":
        path = tmp_path / "x.npy"
        np.save(path, x)
        np.save(tmp_path / "y.npy", x)
        path.write_bytes(path.read_bytes()[:cut])
        _check(lambda: load_pairs(path, tmp_path / "y.npy", min_rows=MIN_ROWS))
    else:
        path = tmp_path / "d.npz"
        np.savez(path, x=x, y=x)
        path.write_bytes(path.read_bytes()[:cut])
        _check(lambda: load_pairs(path, min_rows=MIN_ROWS))


CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-5, 5).map(str),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=4),
    st.sampled_from(["", " ", "a", "a", "\ufeffa", '"', "1e999", "nan", "-0"]),
)


@FUZZ
@given(
    header=st.lists(CELLS, min_size=0, max_size=4),
    rows=st.lists(st.lists(CELLS, min_size=0, max_size=5), max_size=6),
    x_cols=st.sampled_from(["0", "a", "0,1", "1,0", "a,a", "", "9", "-1"]),
    y_cols=st.sampled_from([None, "1", "b", "0", "2,3"]),
    bom=st.booleans(),
)
def test_csv(
    tmp_path: Path,
    header: list[str],
    rows: list[list[str]],
    x_cols: str,
    y_cols: str | None,
    bom: bool,
) -> None:
    path = tmp_path / "d.csv"
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    _check(lambda: load_pairs(path, x_cols=x_cols, y_cols=y_cols, min_rows=MIN_ROWS))


@FUZZ
@given(raw=st.binary(max_size=300), ext=st.sampled_from([".npy", ".npz", ".csv", ".txt"]))
def test_arbitrary_bytes(tmp_path: Path, raw: bytes, ext: str) -> None:
    path = tmp_path / f"d{ext}"
    path.write_bytes(raw)
    _check(lambda: load_pairs(path, x_cols="0" if ext == ".csv" else None, min_rows=MIN_ROWS))


# ------------------------------------------------------------------------------------------
# pickled payloads are refused and never unpickled
UNPICKLED: list[str] = []


def _mark(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class _Payload:
    """An object whose unpickling is observable (it calls :func:`_mark`)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return _mark, ("unpickled",)


@pytest.mark.parametrize("layout", ["npy", "npz", "npy_raw_pickle", "npz_raw_pickle"])
def test_pickled_payloads_are_never_loaded(tmp_path: Path, layout: str) -> None:
    UNPICKLED.clear()
    payload = np.array([_Payload(), _Payload()], dtype=object)
    x = np.arange(4.0)
    if layout == "npy":
        np.save(tmp_path / "x.npy", payload, allow_pickle=True)
        np.save(tmp_path / "y.npy", x)
        call = lambda: load_pairs(tmp_path / "x.npy", tmp_path / "y.npy", min_rows=1)  # noqa: E731
    elif layout == "npz":
        np.savez(tmp_path / "d.npz", x=payload, y=x)
        call = lambda: load_pairs(tmp_path / "d.npz", min_rows=1)  # noqa: E731
    elif layout == "npy_raw_pickle":  # a plain pickle stream under a .npy name
        (tmp_path / "x.npy").write_bytes(pickle.dumps(_Payload()))
        np.save(tmp_path / "y.npy", x)
        call = lambda: load_pairs(tmp_path / "x.npy", tmp_path / "y.npy", min_rows=1)  # noqa: E731
    else:
        import zipfile

        with zipfile.ZipFile(tmp_path / "d.npz", "w") as zf:
            zf.writestr("x.npy", pickle.dumps(_Payload()))
            zf.writestr("y.npy", pickle.dumps(_Payload()))
        call = lambda: load_pairs(tmp_path / "d.npz", min_rows=1)  # noqa: E731
    with pytest.raises(InputError):
        call()
    assert UNPICKLED == []
    pickle.loads(pickle.dumps(_Payload()))  # the probe works: unpickling is observable
    assert UNPICKLED == ["unpickled"]


def test_load_npy_refuses_object_arrays(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"^scores: expected a NumPy .npy file"):
        load_npy(tmp_path / "o.npy", "scores")


ROWS = st.integers(1, 8)


@FUZZ
@given(
    n=ROWS,
    dx=st.integers(1, 3),
    dy=st.integers(1, 3),
    data=st.data(),
    layout=st.sampled_from(["npy2", "npy1", "npz", "csv"]),
)
def test_near_valid_round_trip(
    tmp_path: Path, n: int, dx: int, dy: int, data: st.DataObject, layout: str
) -> None:
    """Well-formed files: the loaded arrays equal the written ones whenever they are accepted."""
    values = hnp.arrays(np.float64, (n, dx + dy), elements=st.floats(-1e6, 1e6), unique=True)
    both = data.draw(values, label="values")
    bad = data.draw(st.sampled_from([None, np.nan, np.inf, -np.inf]), label="non-finite")
    if bad is not None:
        both[data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, dx + dy - 1))] = bad
    x, y = both[:, :dx], both[:, dx:]
    names = [f"c{i}" for i in range(dx + dy)]
    if layout == "npy2":
        np.save(tmp_path / "x.npy", x)
        np.save(tmp_path / "y.npy", y)
        call = lambda: load_pairs(tmp_path / "x.npy", tmp_path / "y.npy", min_rows=MIN_ROWS)  # noqa: E731
    elif layout == "npy1":
        np.save(tmp_path / "m.npy", both)
        call = lambda: load_pairs(tmp_path / "m.npy", x_dims=dx, min_rows=MIN_ROWS)  # noqa: E731
    elif layout == "npz":
        np.savez(tmp_path / "d.npz", x=x, y=y)
        call = lambda: load_pairs(tmp_path / "d.npz", min_rows=MIN_ROWS)  # noqa: E731
    else:
        with (tmp_path / "d.csv").open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([names, *(map(repr, row) for row in both.tolist())])
        cols = ",".join(names[:dx])
        call = lambda: load_pairs(tmp_path / "d.csv", x_cols=cols, min_rows=MIN_ROWS)  # noqa: E731
    _check(call)
    try:
        got = call()
    except InputError:
        assert not np.isfinite(both).all() or (np.ptp(both, axis=0) == 0).any()
        return
    assert np.array_equal(got.x, x) and np.array_equal(got.y, y)
