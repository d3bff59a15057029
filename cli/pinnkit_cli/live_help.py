"""Options whose help text is computed when the command is built, not when its module is imported.

typer builds the click command from the function's defaults on every call of the application, reading each
option's ``help`` then. An option made by :func:`computed_help_option` reads it from a function: its help lists
what a registry holds at that moment (the optimizers a plan may name), an entry registered after the CLI's
modules were imported included.

Example:
    >>> names = ["adam"]
    >>> option = computed_help_option("adam", help=lambda: "one of " + ", ".join(names))
    >>> names.append("sgd")
    >>> option.help
    'one of adam, sgd'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from typer.models import OptionInfo

__all__ = ["computed_help_option"]


class _ComputedHelpOption(OptionInfo):
    def __init__(self, info: OptionInfo, text: Callable[[], str]):
        state = dict(vars(info))
        state.pop("help", None)
        self.__dict__.update(state)
        self._text = text

    @property
    def help(self) -> str:
        return self._text()

    @help.setter
    def help(self, value: Any) -> None:  # the text is always computed
        pass


def computed_help_option(default: Any, *param_decls: str, help: Callable[[], str], **options: Any) -> Any:
    """``typer.Option(default, *param_decls, **options)`` whose help text is ``help()``, read whenever the
    command is built (see the module docstring)."""
    return _ComputedHelpOption(typer.Option(default, *param_decls, **options), help)
