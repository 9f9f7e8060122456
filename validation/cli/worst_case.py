"""`cldro worst-case`: the worst case in a φ-ball, primal and dual side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from validation.cli.app import app, echo


# ==========================================================================================
# cldro worst-case  (issue 2: the theory core)
# ==========================================================================================
@app.command("worst-case")
def worst_case_cmd(
    scores: Annotated[Path, typer.Argument(help="Scores f as a 1-D .npy file.")],
    divergence: Annotated[
        str, typer.Option(help="kl, reverse_kl, chi2, hellinger, tv, js, cressie_read:ALPHA")
    ] = "kl",
    radius: Annotated[float, typer.Option(help="Ball radius η ≥ 0.")] = 0.1,
    weights: Annotated[Path | None, typer.Option(help="Reference weights q0 (.npy).")] = None,
    solver: Annotated[str | None, typer.Option(help="cvxpy solver (default Clarabel).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
    q_out: Annotated[Path | None, typer.Option("--q-out", help="Write q* as .npy.")] = None,
) -> None:
    """Worst-case distribution in a φ-ball: primal (cvxpy) and dual side by side."""
    import numpy as np

    from dro_theory.duals import worst_case_dual
    from dro_theory.worst_case import worst_case

    f = _wc_load_vector(scores, "scores")
    q0 = None if weights is None else _wc_load_vector(weights, "weights")
    primal = worst_case(f, divergence, radius, weights=q0, solver=solver)
    dual = worst_case_dual(f, divergence, radius, weights=q0)
    q_p, q_d = np.asarray(primal.q, dtype=np.float64), np.asarray(dual.q, dtype=np.float64)
    agreement = {
        "abs_value_difference": abs(float(primal.value) - float(dual.value)),
        "q_l1_difference": float(np.abs(q_p - q_d).sum()),
    }
    _wc_print_table(primal, dual, agreement, n=f.shape[0])
    if json_out is not None:
        from validation.atomic import write_json

        record = {
            "scores": str(scores),
            "weights": None if weights is None else str(weights),
            "n": int(f.shape[0]),
            "divergence": primal.divergence,
            "radius": float(radius),
            "primal": _wc_summary(primal),
            "dual": _wc_summary(dual),
            "agreement": agreement,
        }
        write_json(json_out, record)
        echo(f"wrote {json_out}")
    if q_out is not None:
        from validation.atomic import atomic_path

        with atomic_path(q_out) as tmp, open(tmp, "wb") as fh:
            np.save(fh, q_p)
        echo(f"wrote {q_out}")


def _wc_load_vector(path: Path, name: str) -> Any:
    """Load a 1-D numeric .npy file (estimators.io.load_npy); InputError naming ``name``."""
    from dro_theory.errors import InputError
    from estimators.io import load_npy

    if path.suffix.lower() != ".npy":
        raise InputError(f"{name}: expected a .npy file, found {path.name!r}")
    arr = load_npy(path, name)
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array, found shape {arr.shape} in {path}")
    return arr


def _wc_summary(result: Any) -> dict[str, Any]:
    return {
        "value": float(result.value),
        "multiplier": float(result.multiplier),
        "normalizer": float(result.normalizer),
        "status": result.status,
        "solver": result.solver,
        "seconds": float(result.seconds),
        "diagnostics": result.diagnostics,
    }


def _wc_print_table(primal: Any, dual: Any, agreement: dict[str, float], n: int) -> None:
    echo(f"worst case  divergence={primal.divergence}  radius={primal.radius:g}  n={n}")
    rows = [
        ("", "primal (cvxpy)", "dual"),
        ("value", f"{float(primal.value):.10g}", f"{float(dual.value):.10g}"),
        ("multiplier", f"{float(primal.multiplier):.10g}", f"{float(dual.multiplier):.10g}"),
        ("normalizer", f"{float(primal.normalizer):.10g}", f"{float(dual.normalizer):.10g}"),
        ("time (s)", f"{primal.seconds:.4f}", f"{dual.seconds:.4f}"),
        ("status", primal.status, dual.status),
        ("solver", primal.solver, dual.solver),
    ]
    for label, left, right in rows:
        echo(f"  {label:<11} {left:>20}  {right:>20}")
    echo(
        f"  |Δvalue| = {agreement['abs_value_difference']:.3g}   "
        f"L1(q_primal − q_dual) = {agreement['q_l1_difference']:.3g}"
    )
