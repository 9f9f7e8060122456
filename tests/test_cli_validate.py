"""`cldro list`, `cldro validate`, `cldro figures`: output, files written, exit codes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from validation import cli
from validation.claims import CLAIMS
from validation.records import read_record

CHEAP = "mean-variance"


@pytest.fixture(autouse=True)
def _tiny_cheap_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the claim the CLI runs (the CLI path is what is tested, not the claim's size)."""
    import validation.claims.mean_variance as mv

    real = mv._config
    tiny = {"n": 400, "divergences": ["kl", "chi2"], "kl_temperatures": [1.0, 4.0, 16.0, 40.0]}
    monkeypatch.setattr(mv, "_config", lambda quick: {**real(quick), **tiny})


def test_list_names_every_claim(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for spec in CLAIMS.values():
        assert spec.name in out and spec.reference in out


def test_validate_one_claim_writes_record_and_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = cli.main(["validate", CHEAP, "--quick", "--out", str(tmp_path), "--seed", "3"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert CHEAP in out and "PASS" in out
    rec = read_record(tmp_path / CHEAP)
    assert rec.claim == CHEAP and rec.seed == 3 and rec.passed
    assert (tmp_path / CHEAP / f"{CHEAP}.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (tmp_path / CHEAP).glob("*.csv")) == sorted(
        f"{n}.csv" for n in rec.series
    )


def test_unknown_claim_exits_2_with_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = cli.main(["validate", "mean-varience", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "did you mean 'mean-variance'" in err
    assert not list(tmp_path.iterdir())


def test_failing_check_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import validation.claims.mean_variance as mv

    real = mv.penalized_worst_case

    def off(*a: object, **k: object) -> object:
        res = real(*a, **k)  # type: ignore[arg-type]
        return dataclasses.replace(res, value=res.value + 1e-4)

    monkeypatch.setattr(mv, "penalized_worst_case", off)
    rc = cli.main(["validate", CHEAP, "--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL" in out and "FAILED mean-variance" in out
    assert not read_record(tmp_path / CHEAP).passed  # the failing record is still written


def test_crashing_claim_is_reported_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import validation.claims.mean_variance as mv

    def boom(**kwargs: object) -> None:
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(mv, "run", boom)
    rc = cli.main(["validate", CHEAP, "--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "ERROR" in out and "solver exploded" in out


def test_figures_from_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    assert cli.main(["validate", CHEAP, "--quick", "--out", str(runs)]) == 0
    figs = tmp_path / "figs"
    assert cli.main(["figures", "--from", str(runs), "--out", str(figs)]) == 0
    assert (figs / f"{CHEAP}.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    # no records / not a record -> exit 2 with one error line
    assert cli.main(["figures", "--from", str(tmp_path / "nothing"), "--out", str(figs)]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["figures", "--from", str(empty), "--out", str(figs)]) == 2
    bad = tmp_path / "bad" / "x"
    bad.mkdir(parents=True)
    (bad / "record.json").write_text("{}")
    assert cli.main(["figures", "--from", str(bad.parent), "--out", str(figs)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 3 and "expected a cldro record" in err
