"""The ``cldro`` command line (the only module that prints to the terminal).

Errors: exit code 2 and one line naming the option and what was wrong; ``--debug`` shows the
traceback. Long work shows a tqdm progress bar (on stderr). Output files are written atomically.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from dro_theory.errors import CldroError

app = typer.Typer(
    name="cldro",
    help="Contrastive learning as distributionally robust optimization (Wu et al., NeurIPS 2023).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

_STATE = {"debug": False}


def _echo(text: str = "") -> None:
    typer.echo(text)


def _fail(message: str) -> typer.Exit:
    """Print one error line to stderr and return the exit-2 exception to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _STATE["debug"] = debug


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
    raise _fail("worst-case: not implemented yet")


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
    steps: Annotated[int | None, typer.Option(help="Training steps (default: auto).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
) -> None:
    """Generalized (φ-divergence) mutual information of paired data, with a confidence interval."""
    raise _fail("mi: not implemented yet")


# ==========================================================================================
# cldro train  (issue 4: contrastive training)
# ==========================================================================================
@app.command("train")
def train_cmd(
    dataset: Annotated[str, typer.Option(help="cifar10, digits, fashion-mnist")] = "digits",
    loss: Annotated[str, typer.Option(help="infonce, adnce, dcl, hcl")] = "infonce",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write metrics JSON.")] = None,
) -> None:
    """Contrastive training of an encoder, with a kNN monitor and a linear probe."""
    raise _fail("train: not implemented yet")


# ==========================================================================================
# cldro list / validate / figures  (issue 5: claims, records, figures)
# ==========================================================================================
@app.command("list")
def list_cmd() -> None:
    """The claims of the paper that `cldro validate` checks."""
    raise _fail("list: not implemented yet")


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
    raise _fail("validate: not implemented yet")


@app.command("figures")
def figures_cmd(
    from_dir: Annotated[Path, typer.Option("--from", help="Folder of records.")] = Path(
        "runs/validate"
    ),
    out: Annotated[Path, typer.Option(help="Folder for the figures.")] = Path("figures"),
) -> None:
    """Re-plot figures from saved records (no recomputation)."""
    raise _fail("figures: not implemented yet")


# ==========================================================================================
def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cldro`` console script; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        rc = app(args=args, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:  # pragma: no cover - typer internals
        return int(exc.code or 0)
    except (CldroError, ValueError, FileNotFoundError, OSError) as exc:
        if "--debug" in args:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        return 2
    except Exception as exc:
        # click's usage errors (typer vendors click) carry show() and an exit code.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            return code
        if type(exc).__name__ == "Abort":
            return 130
        raise
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
