"""The ``cldro`` command line: the only package that prints to the terminal.

One module per command group (:mod:`validation.cli.worst_case`, :mod:`validation.cli.mi`,
:mod:`validation.cli.train`, :mod:`validation.cli.claims`), registered on the Typer application
of :mod:`validation.cli.app`. Errors: exit code 2 and one line naming the option and what was
wrong; ``--debug`` shows the traceback. Long work shows a tqdm progress bar (on stderr). Output
files are written atomically.
"""

from __future__ import annotations

import sys
import traceback

import typer

from dro_theory.errors import CldroError
from validation.cli import claims, mi, train, worst_case
from validation.cli.app import STATE, app

__all__ = ["app", "claims", "main", "mi", "train", "worst_case"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cldro`` console script; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    STATE["argv"] = ["cldro", *args]  # recorded by commands that write JSON
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

