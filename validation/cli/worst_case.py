"""`cldro worst-case`: the worst case in a φ-ball, by the dual and (where affordable) the primal.

``--method auto`` (default) runs the cvxpy primal beside the dual only where the primal answers
in seconds and can be verified: n ≤ :data:`dro_theory.worst_case.PRIMAL_MAX_N` and radius ≥
:data:`dro_theory.worst_case.PRIMAL_MIN_RADIUS`;
otherwise the dual alone, and the output says why. ``dual``, ``primal`` and ``both`` choose.
Measurements behind the two thresholds: docs/cli.md.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer

from dro_theory.worst_case import PRIMAL_MIN_RADIUS
from validation.cli.app import app, echo
from validation.cli.outputs import commit, preflight

#: the primal solver's module (``dro_theory.worst_case`` the attribute is the function)
primal_solver = importlib.import_module("dro_theory.worst_case")

#: the values of ``--method``
METHODS = ("auto", "dual", "primal", "both")


def primal_plan(method: str, n: int, radius: float) -> str | None:
    """None when the primal should run, else the reason it is not run.

    Raises
    ------
    InputError
        An unknown ``method``, or ``method="primal"`` where the primal cannot be verified.
    """
    from dro_theory.errors import InputError

    if method not in METHODS:
        raise InputError(f"method: expected one of {', '.join(METHODS)}, found {method!r}")
    if method == "dual":
        return "not requested (--method dual)"
    if 0 < radius < PRIMAL_MIN_RADIUS:
        reason = (
            f"not verifiable at radius {radius:g} < {PRIMAL_MIN_RADIUS:g}: the solvers' "
            "feasibility tolerance is not small against the radius"
        )
        if method == "primal":
            raise InputError(f"radius: the cvxpy primal is {reason}; use --method dual")
        return reason
    if method == "auto" and not primal_solver.primal_affordable(n):
        return (
            f"skipped for n = {n} > {primal_solver.PRIMAL_MAX_N} (slow); --method both forces it"
        )
    return None


@app.command("worst-case")
def worst_case_cmd(
    scores: Annotated[Path, typer.Argument(help="Scores f as a 1-D .npy file.")],
    divergence: Annotated[
        str, typer.Option(help="kl, reverse_kl, chi2, hellinger, tv, js, cressie_read:ALPHA")
    ] = "kl",
    radius: Annotated[float, typer.Option(help="Ball radius η ≥ 0.")] = 0.1,
    weights: Annotated[Path | None, typer.Option(help="Reference weights q0 (.npy).")] = None,
    solver: Annotated[str | None, typer.Option(help="cvxpy solver (default Clarabel).")] = None,
    method: Annotated[
        str,
        typer.Option(
            help=f"auto (primal only for n ≤ {primal_solver.PRIMAL_MAX_N} and radius ≥ "
            f"{PRIMAL_MIN_RADIUS:g}), dual, primal or both."
        ),
    ] = "auto",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
    q_out: Annotated[Path | None, typer.Option("--q-out", help="Write q* as .npy.")] = None,
) -> None:
    """Worst-case distribution in a φ-ball: the dual, and the cvxpy primal where affordable."""
    import numpy as np

    from dro_theory.duals import worst_case_dual
    from validation.atomic import json_text, npy_bytes

    preflight({"--json": json_out, "--q-out": q_out})
    f = _wc_load_vector(scores, "scores")
    q0 = None if weights is None else _wc_load_vector(weights, "weights")
    skipped = primal_plan(method, int(f.shape[0]), radius)
    primal = None
    if skipped is None:
        primal, skipped = _wc_primal(f, divergence, radius, q0, solver, method)
    dual = None if method == "primal" else worst_case_dual(f, divergence, radius, weights=q0)
    best = primal if primal is not None else dual
    assert best is not None  # primal_plan never skips the primal with --method primal
    agreement = None
    if primal is not None and dual is not None:
        q_p, q_d = np.asarray(primal.q, np.float64), np.asarray(dual.q, np.float64)
        agreement = {
            "abs_value_difference": abs(float(primal.value) - float(dual.value)),
            "q_l1_difference": float(np.abs(q_p - q_d).sum()),
        }
    _wc_print(primal, dual, agreement, int(f.shape[0]), skipped)
    record = {
        "scores": str(scores),
        "weights": None if weights is None else str(weights),
        "n": int(f.shape[0]),
        "divergence": best.divergence,
        "radius": float(radius),
        "method": method,
        "primal": None if primal is None else _wc_summary(primal),
        "primal_not_run": skipped,
        "dual": None if dual is None else _wc_summary(dual),
        "agreement": agreement,
        "q_from": "primal" if primal is not None else "dual",
    }
    commit(
        {
            "--json": (json_out, json_text(record).encode()),
            "--q-out": (q_out, npy_bytes(np.asarray(best.q, dtype=np.float64))),
        }
    )


def _wc_primal(
    f: Any, divergence: str, radius: float, q0: Any, solver: str | None, method: str
) -> tuple[Any, str | None]:
    """(primal result, None), or (None, reason) when no solver verified it (not for --method
    primal, where the DROSolveError propagates)."""
    from dro_theory.errors import DROSolveError
    from dro_theory.worst_case import worst_case

    try:
        return worst_case(f, divergence, radius, weights=q0, solver=solver), None
    except DROSolveError as exc:
        if method == "primal":
            raise
        return None, f"not verified: {exc}"


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


def _wc_print(
    primal: Any, dual: Any, agreement: dict[str, float] | None, n: int, skipped: str | None
) -> None:
    first = primal if primal is not None else dual
    echo(f"worst case  divergence={first.divergence}  radius={first.radius:g}  n={n}")
    sides = [(label, r) for label, r in (("primal (cvxpy)", primal), ("dual", dual)) if r]
    rows = [
        ("", *(label for label, _ in sides)),
        ("value", *(f"{float(r.value):.10g}" for _, r in sides)),
        ("multiplier", *(f"{float(r.multiplier):.10g}" for _, r in sides)),
        ("normalizer", *(f"{float(r.normalizer):.10g}" for _, r in sides)),
        ("time (s)", *(f"{r.seconds:.4f}" for _, r in sides)),
        ("status", *(str(r.status) for _, r in sides)),
        ("solver", *(str(r.solver) for _, r in sides)),
    ]
    for label, *cells in rows:
        echo(f"  {label:<11} " + "  ".join(f"{c:>20}" for c in cells))
    if agreement is not None:
        echo(
            f"  |Δvalue| = {agreement['abs_value_difference']:.3g}   "
            f"L1(q_primal − q_dual) = {agreement['q_l1_difference']:.3g}"
        )
    if skipped is not None:
        echo(f"  primal (cvxpy): {skipped}")
