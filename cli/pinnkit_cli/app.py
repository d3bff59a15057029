"""The ``pinnkit`` command line: a thin typer layer over the library.

Each command lives in its own module and registers itself on :data:`app`; this module only owns the
application object, the shared error convention and the entry point.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

app = typer.Typer(
    name="pinnkit",
    help="Train physics-informed neural networks and watch how they learn.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr with exit code 2."""


def fail(message: str) -> NoReturn:
    """Print one line to stderr and exit with code 2 (the convention for bad input)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def main() -> None:
    """Console-script entry point. Library ``ValueError``/``TypeError`` from bad input become exit 2."""
    # Import the command modules so that they register on ``app``.
    from pinnkit_cli import commands  # noqa: F401

    try:
        app()
    except (UsageError, ValueError, TypeError) as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
