"""The ``cldro`` Typer application, its root options and the one output helper.

Errors: exit code 2 and one line naming the option and what was wrong; ``--debug`` shows the
traceback. Long work shows a tqdm progress bar (on stderr). Output files are written atomically.
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

@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    STATE["debug"] = debug

