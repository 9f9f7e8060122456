"""The ``cldro`` command line: the only package that prints to the terminal.

One module per command group (:mod:`validation.cli.worst_case`, :mod:`validation.cli.mi`,
:mod:`validation.cli.train`, :mod:`validation.cli.claims`), registered on the Typer application
of :mod:`validation.cli.app`. Errors: exit code 2 and one line naming the option and what was
wrong; ``--debug`` (anywhere on the command line) shows the traceback. Long work shows a tqdm
progress bar (on stderr). Output files are checked before any work and written atomically, all
of a command's outputs together (:mod:`validation.cli.outputs`). Contract: docs/cli.md.
"""

from __future__ import annotations

import sys
import traceback

import typer

from dro_theory.errors import CldroError
from validation.cli import claims, mi, tau, train, worst_case
from validation.cli.app import STATE, app

__all__ = ["app", "claims", "main", "mi", "tau", "train", "worst_case"]

#: exit code of a usage or input error (click's convention for usage errors)
EXIT_INPUT = 2
#: exit code after Ctrl-C (128 + SIGINT)
EXIT_INTERRUPTED = 130


def _split_debug(args: list[str]) -> tuple[list[str], bool]:
    """Remove ``--debug`` from anywhere before a ``--`` separator; say whether it was there."""
    end = args.index("--") if "--" in args else len(args)
    head = [a for a in args[:end] if a != "--debug"]
    return head + args[end:], len(head) < end


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cldro`` console script; returns the exit code.

    Exit codes: 0 success; 1 a check failed (``cldro validate``); 2 bad input or options (one
    line on stderr naming the option or file; ``--debug`` adds the traceback); 130 interrupted.
    """
    raw = list(sys.argv[1:] if argv is None else argv)
    STATE["argv"] = ["cldro", *raw]  # recorded by commands that write JSON
    args, debug = _split_debug(raw)
    STATE["debug"] = debug
    try:
        rc = app(args=args, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:  # pragma: no cover - typer internals
        return int(exc.code or 0)
    except (CldroError, ValueError, OSError) as exc:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {_one_line(exc)}", err=True)
        return EXIT_INPUT
    except Exception as exc:
        # click's usage errors (typer vendors click) carry format_message() and an exit code;
        # printed as one line, except the help that a bare group prints.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        message = getattr(exc, "format_message", None)
        if callable(show) and isinstance(code, int):
            if type(exc).__name__ == "NoArgsIsHelpError" or not callable(message):
                show()
            else:
                if debug:
                    traceback.print_exc()
                typer.echo(f"error: {_one_line(message())} (see --help)", err=True)
            return code
        if type(exc).__name__ == "Abort":
            return EXIT_INTERRUPTED
        raise
    finally:
        STATE["debug"] = False
    return rc if isinstance(rc, int) else 0


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (newlines in a message would break the contract)."""
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
