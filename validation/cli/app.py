"""The ``cldro`` Typer application and its root options (``--debug``, ``--version``).

Errors: exit code 2 and one line naming the option and what was wrong; ``--debug`` (before or
after the subcommand) shows the traceback. Long work shows a tqdm progress bar (on stderr).
Output files are checked before any work and written atomically (:mod:`validation.cli.outputs`).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

app = typer.Typer(
    name="cldro",
    help="Contrastive learning as distributionally robust optimization (Wu et al., NeurIPS 2023).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

STATE: dict[str, Any] = {"debug": False}


def echo(text: str = "") -> None:
    typer.echo(text)


def version() -> str:
    """The installed version of the ``cldro`` distribution ("not installed" when it is not)."""
    from validation.records import package_version

    return package_version("cldro")


def _show_version(value: bool) -> None:
    if value:
        echo(f"cldro {version()}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks on errors (also after the command).")
    ] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    STATE["debug"] = debug or STATE["debug"]
