"""`cldro mi`: generalized mutual information of a user's paired data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from validation.cli.app import app, echo
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
) -> None:
    """Generalized (φ-divergence) mutual information of paired data, with a confidence interval."""
    preflight({"--json": json_out})  # before importing torch or reading data
    from estimators.io import load_pairs
    from estimators.phi_mi import PhiMI

    pairs = load_pairs(data, data_y, x_dims=x_dims, x_cols=x_cols, y_cols=y_cols)
    est = PhiMI(
        divergence=divergence,
        bound=bound,
        critic=critic,
        steps=steps,
        seed=seed,
        device=device,
        progress=True,
    ).fit(pairs.x, pairs.y)
    res = est.result_
    echo(
        f"I_{res.divergence}(X;Y) = {res.estimate:.4g} [{res.ci_low:.4g}, {res.ci_high:.4g}]"
        f"  n_test={res.n_test}"
    )
    if json_out is not None:
        from validation.atomic import json_text

        keys = ("estimate", "ci_low", "ci_high", "divergence", "bound", "n_train", "n_test")
        record: dict[str, Any] = {k: getattr(res, k) for k in keys}
        record.update(
            seconds=res.seconds,
            seed=res.seed,
            ci_level=res.ci_level,
            ci_method=res.ci_method,
            critic=res.critic,
            n_val=res.n_val,
            steps=res.steps,
            best_step=res.best_step,
            source=pairs.source,
        )
        commit({"--json": (json_out, json_text(record).encode())})


