"""`cldro mi`: generalized mutual information of a user's paired data."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from validation.cli.app import STATE, app, echo, version
from validation.cli.outputs import commit, preflight


# ==========================================================================================
# cldro mi  (issue 3: φ-MI)
# ==========================================================================================
@app.command("mi")
def mi_cmd(
    data: Annotated[Path, typer.Argument(help="Data: .npz (x, y), .npy, or .csv.")],
    data_y: Annotated[Path | None, typer.Argument(help="Y as a second .npy.")] = None,
    divergence: Annotated[
        str, typer.Option(help="kl, reverse_kl, chi2, hellinger, tv, js, cressie_read:ALPHA")
    ] = "kl",
    bound: Annotated[str, typer.Option(help="tight, plain, infonce, nwj, dv")] = "tight",
    critic: Annotated[str, typer.Option(help="separable or concat")] = "separable",
    steps: Annotated[int | None, typer.Option(help="Training steps (default: auto).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    x_dims: Annotated[
        int | None, typer.Option("--x-dims", help="Single .npy: number of leading x columns.")
    ] = None,
    x_cols: Annotated[
        str | None, typer.Option("--x-cols", help="CSV: x columns, e.g. a,b or 0,1.")
    ] = None,
    y_cols: Annotated[
        str | None, typer.Option("--y-cols", help="CSV: y columns (default: the rest).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="CPU threads for torch (default: torch's choice).")
    ] = None,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="No progress display on stderr.")
    ] = False,
    max_seconds: Annotated[
        float | None,
        typer.Option(min=0.001, help="Training time budget; the best critic so far is used."),
    ] = None,
    folds: Annotated[
        int, typer.Option(help="Cross-fitting: K critics; the interval covers their spread too.")
    ] = 1,
) -> None:
    """Generalized (φ-divergence) mutual information of paired data, with a confidence interval."""
    preflight({"--json": json_out})  # before importing torch or reading data
    from estimators.io import load_pairs
    from estimators.phi_mi import PhiMI

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    pairs = load_pairs(data, data_y, x_dims=x_dims, x_cols=x_cols, y_cols=y_cols)
    est = PhiMI(
        divergence=divergence,
        bound=bound,
        critic=critic,
        steps=steps,
        seed=seed,
        device=device,
        progress=not no_progress,
        max_seconds=max_seconds,
        folds=folds,
    ).fit(pairs.x, pairs.y)
    res = est.result_
    _report(res)
    if json_out is not None:
        from validation.atomic import json_text

        settings = {"x_dims": x_dims, "x_cols": x_cols, "y_cols": y_cols}
        record = _record(res, settings, threads=threads, max_seconds=max_seconds)
        record["source"] = pairs.source
        commit({"--json": (json_out, json_text(record).encode())})
    if not res.valid and not (math.isfinite(res.estimate) and res.estimate < res.range_low):
        raise typer.Exit(code=1)  # below 0 is an outcome; non-finite or too large is a failure


def _record(
    res: Any, columns: dict[str, Any], *, threads: int | None, max_seconds: float | None
) -> dict[str, Any]:
    """The JSON record of one estimate: result, run facts, the settings that shaped it."""
    keys = ("estimate", "ci_low", "ci_high", "divergence", "bound", "n_train", "n_test")
    record: dict[str, Any] = {k: _finite_or_none(getattr(res, k)) for k in keys}
    record.update(_run_facts(res))
    record.update(
        columns=columns,
        threads=threads,
        max_seconds=max_seconds,
        seconds=res.seconds,
        seed=res.seed,
        ci_level=res.ci_level,
        ci_method=res.ci_method,
        critic=res.critic,
        n_val=res.n_val,
        steps=res.steps,
        best_step=res.best_step,
    )
    return record


def _report(res: Any) -> None:
    """The estimate line (only for an estimate in the allowed range) and one line a warning."""
    if res.valid:
        echo(
            f"I_{res.divergence}(X;Y) = {res.estimate:.4g} [{res.ci_low:.4g}, {res.ci_high:.4g}]"
            f"  n_test={res.n_test}"
        )
    else:
        echo(f"I_{res.divergence}(X;Y): no estimate reported: {res.problem}")
    for line in res.warnings:
        typer.echo(f"warning: {line}", err=True)


def _run_facts(res: Any) -> dict[str, Any]:
    """Validity, warnings, what the interval covers, how training ended, provenance."""
    return {
        "valid": res.valid,
        "problem": res.problem,
        "range": [res.range_low, _finite_or_none(res.range_high)],
        "warnings": list(res.warnings),
        "ci_covers": res.ci_covers,
        "folds": res.folds,
        "fold_estimates": [_finite_or_none(v) for v in res.fold_estimates],
        "budget_stopped": res.budget_stopped,
        "stopped_early": res.stopped_early,
        "base": res.base,
        "argv": list(STATE.get("argv") or sys.argv),
        "version": version(),
    }


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN/inf: a non-finite float becomes null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value
