"""``pinnkit problems``: list the registered problems."""

from __future__ import annotations

import typer

from pinnkit import problems


def list_problems() -> None:
    """List the problems, one line each: name, equation, default parameters."""
    for name in problems.names():
        typer.echo(problems.get(name).describe())
