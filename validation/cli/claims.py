"""`cldro list`, `cldro validate`, `cldro figures`: the claim checks and their records."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from validation.cli.app import STATE, app, echo


# ==========================================================================================
# cldro list / validate / figures  (issue 5: claims, records, figures)
# ==========================================================================================
def _claim_names(names: list[str] | None) -> list[str]:
    from validation.claims import CLAIMS, get_claim

    if not names:
        return list(CLAIMS)
    return [get_claim(n).name for n in dict.fromkeys(names)]


def _fmt(x: float) -> str:
    return f"{x:.3g}" if x == x else "nan"


def _print_table(records: list[tuple[str, object]]) -> bool:
    """Print the pass/fail table; return whether everything passed."""
    from validation.records import Record

    all_ok = True
    echo(f"{'claim':28s} {'checks':>8s} {'seconds':>8s}  result")
    for name, rec in records:
        if not isinstance(rec, Record):
            all_ok = False
            echo(f"{name:28s} {'-':>8s} {'-':>8s}  ERROR  {rec}")
            continue
        ok = rec.passed
        all_ok &= ok
        n_ok = sum(c.passed for c in rec.checks)
        echo(
            f"{name:28s} {f'{n_ok}/{len(rec.checks)}':>8s} {rec.seconds:8.1f}  "
            f"{'PASS' if ok else 'FAIL'}"
        )
    for name, rec in records:
        if isinstance(rec, Record):
            for c in rec.failed:
                echo(
                    f"  FAILED {name}: {c.name}: observed {_fmt(c.observed)}, expected "
                    f"{_fmt(c.expected)} ({c.relation}, tolerance {_fmt(c.tolerance)})"
                )
    return all_ok


@app.command("list")
def list_cmd() -> None:
    """The claims of the paper that `cldro validate` checks."""
    from validation.claims import CLAIMS

    for spec in CLAIMS.values():
        echo(f"{spec.name:28s} {spec.reference}")
        echo(f"{'':28s} {spec.summary}")


@app.command("validate")
def validate_cmd(
    claims: Annotated[list[str] | None, typer.Argument(help="Claims to run (default all).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes (< 3 min in all).")] = False,
    out: Annotated[Path, typer.Option(help="Output folder for records, figures.")] = Path(
        "runs/validate"
    ),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Run the claim checks, print a pass/fail table, write records and figures."""
    import time

    from tqdm import tqdm

    from validation.claims import run_claim
    from validation.plotting import plot_record
    from validation.records import write_record

    names = _claim_names(claims)
    results: list[tuple[str, object]] = []
    t0 = time.perf_counter()
    # disable=None: no bar when stderr is not a terminal (no carriage returns in logs)
    bar = tqdm(names, desc="validate", unit="claim", file=sys.stderr, leave=False, disable=None)
    for name in bar:
        bar.set_postfix_str(name)
        try:
            record = run_claim(name, quick=quick, seed=seed)
        except Exception as exc:  # a claim that crashes is reported, the others still run
            if STATE["debug"]:
                traceback.print_exc()
            results.append((name, f"{type(exc).__name__}: {exc}"))
            continue
        folder = out / name
        write_record(record, folder)
        try:
            plot_record(record, folder / f"{name}.png")
        except Exception as exc:  # a figure that cannot be drawn does not lose the record
            typer.echo(f"warning: {name}: figure not drawn ({type(exc).__name__}: {exc})", err=True)
        results.append((name, record))
    bar.close()
    ok = _print_table(results)
    echo(f"records in {out}/  ({time.perf_counter() - t0:.1f} s)")
    if not ok:
        raise typer.Exit(code=1)


@app.command("figures")
def figures_cmd(
    from_dir: Annotated[Path, typer.Option("--from", help="Folder of records.")] = Path(
        "runs/validate"
    ),
    out: Annotated[Path, typer.Option(help="Folder for the figures.")] = Path("figures"),
) -> None:
    """Re-plot figures from saved records (no recomputation)."""
    from dro_theory.errors import InputError
    from validation.plotting import plot_record
    from validation.records import find_records, read_record

    paths = find_records(from_dir)
    if not paths:
        raise InputError(f"from: expected record folders (*/record.json), found none in {from_dir}")
    for path in paths:
        record = read_record(path)
        target = plot_record(record, out / f"{record.claim}.png")
        echo(f"{record.claim:28s} -> {target}")
