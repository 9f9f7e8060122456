"""Atomic output: files appear whole or not at all, with ordinary permissions."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from validation.atomic import atomic_path, write_bytes, write_json, write_text


def test_write_json_round_trip_and_non_finite(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "r.json"
    write_json(target, {"a": 1.5, "b": float("nan"), "c": [np.float64(2.0), float("-inf")]})
    assert json.loads(target.read_text()) == {"a": 1.5, "b": "nan", "c": [2.0, "-inf"]}


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_failed_first_write_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new.bin"
    with pytest.raises(TypeError, match="cannot write"):
        write_json(target, {"x": object()})
    assert list(tmp_path.iterdir()) == []


def test_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_bytes(tmp_path / "f.bin", b"\x00\x01")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_bytes() == b"\x00\x01"


def test_write_all_writes_every_file_with_ordinary_permissions(tmp_path: Path) -> None:
    from validation.atomic import write_all

    targets = write_all([(tmp_path / "a" / "x.json", b"{}"), (tmp_path / "y.npy", b"q")])
    assert targets == [tmp_path / "a" / "x.json", tmp_path / "y.npy"]
    assert (tmp_path / "a" / "x.json").read_bytes() == b"{}"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "y.npy").stat().st_mode) == 0o666 & ~umask
    assert not list(tmp_path.rglob(".*.tmp"))


def test_write_all_refuses_the_same_target_twice(tmp_path: Path) -> None:
    from validation.atomic import write_all

    with pytest.raises(ValueError, match="distinct targets"):
        write_all([(tmp_path / "x", b"1"), (tmp_path / "." / "x", b"2")])
    assert list(tmp_path.iterdir()) == []


def test_json_text_and_npy_bytes(tmp_path: Path) -> None:
    from validation.atomic import json_text, npy_bytes

    assert json_text({"a": np.float64(1.5), "b": float("inf")}) == (
        '{\n  "a": 1.5,\n  "b": "inf"\n}\n'
    )
    (tmp_path / "q.npy").write_bytes(npy_bytes(np.arange(3.0)))
    assert np.array_equal(np.load(tmp_path / "q.npy", allow_pickle=False), np.arange(3.0))
    with pytest.raises(ValueError):  # object arrays would need a pickle: refused
        npy_bytes(np.array([object()], dtype=object))
