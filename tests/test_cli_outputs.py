"""Output paths checked before any work, several outputs all or none, and run provenance."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

import estimators.io
from dro_theory import InputError
from validation.atomic import npy_bytes, write_all
from validation.cli import main
from validation.cli.outputs import commit, preflight
from validation.records import collect_environment


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture
def scores(tmp_path: Path) -> Path:
    path = tmp_path / "s.npy"
    np.save(path, np.random.default_rng(0).normal(size=40))
    return path


# ------------------------------------------------------------------------------------------
# preflight
def test_preflight_accepts_new_files_in_new_folders(tmp_path: Path) -> None:
    got = preflight({"--json": tmp_path / "a" / "b" / "r.json", "--q-out": None})
    assert got == {"--json": tmp_path / "a" / "b" / "r.json"}
    assert not (tmp_path / "a").exists()  # nothing created by the check
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


@pytest.mark.parametrize(
    ("make", "match"),
    [
        ("proc", r"^--json: expected a writable folder for '/proc/x.json'"),
        ("folder", r"^--json: expected a file path, found the folder"),
        ("under_file", r"^--json: expected a folder above .*found the file"),
    ],
)
def test_preflight_rejects_bad_paths(tmp_path: Path, make: str, match: str) -> None:
    target = {
        "proc": Path("/proc/x.json"),
        "folder": tmp_path,
        "under_file": tmp_path / "f.txt" / "r.json",
    }[make]
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(InputError, match=match):
        preflight({"--json": target})


def test_preflight_rejects_the_same_file_twice(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^--q-out: expected a file distinct from --json"):
        preflight({"--json": tmp_path / "o", "--q-out": tmp_path / "." / "o"})


@pytest.mark.parametrize("bad", ["/proc/x.json", "DIR"])
def test_mi_checks_json_before_loading_data(
    tmp_path: Path,
    bad: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data was loaded before --json was checked")

    monkeypatch.setattr(estimators.io, "load_pairs", no_work)
    target = str(tmp_path) if bad == "DIR" else bad
    rc = main(["mi", str(tmp_path / "d.npz"), "--steps", "5", "--json", target])
    assert rc == 2
    assert _one_error_line(capsys.readouterr().err).startswith("error: --json: ")


# ------------------------------------------------------------------------------------------
# all or none
def test_worst_case_unwritable_q_out_leaves_no_json(
    scores: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "r.json"
    rc = main(["worst-case", str(scores), "--json", str(out_json), "--q-out", "/proc/q.npy"])
    assert rc == 2
    assert _one_error_line(capsys.readouterr().err).startswith("error: --q-out: ")
    assert list(tmp_path.iterdir()) == [scores]


def test_write_all_failure_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")  # a file where the second target needs a folder
    first = tmp_path / "first.json"
    with pytest.raises(OSError):
        write_all([(first, b"{}"), (tmp_path / "f.txt" / "q.npy", b"q")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]  # no target, no temp file


def test_commit_names_the_options_and_writes_nothing_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import validation.atomic

    real_fsync = validation.atomic.os.fsync
    calls = []

    def fsync_fails_second(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(validation.atomic.os, "fsync", fsync_fails_second)
    files = {
        "--json": (tmp_path / "r.json", b"{}\n"),
        "--q-out": (tmp_path / "q.npy", npy_bytes(np.ones(3))),
    }
    with pytest.raises(InputError, match=r"^--json, --q-out: .*No space left.*none was written"):
        commit(files)
    assert list(tmp_path.iterdir()) == []


def test_commit_writes_every_given_output(tmp_path: Path) -> None:
    commit({"--json": (tmp_path / "r.json", b"{}\n"), "--q-out": (None, b"")})
    assert (tmp_path / "r.json").read_bytes() == b"{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


# ------------------------------------------------------------------------------------------
# root options and provenance
def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cldro {importlib.metadata.version('cldro')}"


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_before_or_after_the_subcommand(
    tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["worst-case", str(tmp_path / "missing.npy")]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "InputError" in err
    assert err.strip().splitlines()[-1].startswith("error: scores: expected an existing file")
    assert main(args[1:] if where == "before" else args[:-1]) == 2  # without: one line only
    _one_error_line(capsys.readouterr().err)


def test_environment_holds_the_full_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["/usr/bin/cldro", "validate", "mean-variance", "--out", "my runs/v"]
    monkeypatch.setattr(sys, "argv", argv)
    env = collect_environment()
    assert shlex.split(env["argv"]) == argv


def test_mi_source_is_a_clean_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    np.savez(tmp_path / "d.npz", x=x, y=x + rng.normal(size=(120, 2)))
    out = tmp_path / "r.json"
    argv = ["mi", str(tmp_path / "d.npz"), "--steps", "5", "--device", "cpu", "--json", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    assert json.loads(out.read_text())["source"] == "d.npz"
