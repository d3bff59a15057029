"""Imports every command module so that each registers itself on the typer app."""

from pinnkit_cli import compare_command, detect, problems_command, train_command  # noqa: F401
