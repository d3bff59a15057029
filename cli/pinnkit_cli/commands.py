"""The typer application: the commands of ``pinnkit`` (imported by :mod:`pinnkit_cli.app` once signals are set)."""

from __future__ import annotations

import typer

from pinnkit_cli import compare_command, detect_command, launch_command, problems_command, train_command

__all__ = ["app"]

app = typer.Typer(
    name="pinnkit",
    help="Train physics-informed neural networks and watch how they learn.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("problems")(problems_command.list_problems)
app.command("train")(train_command.train)
app.command("compare")(compare_command.compare)
app.command("plot")(compare_command.plot)
app.command("detect")(detect_command.detect)
app.command("launch", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    launch_command.launch)
