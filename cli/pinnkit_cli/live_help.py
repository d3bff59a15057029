"""Option help computed when the command is built, not when its module is imported.

typer builds the click command from the function's ``typer.Option`` defaults at every invocation; an option
made here reads its help from a function at that moment, so a help text derived from a registry (the
reweighting schemes, say) shows what is registered when the command runs, later registrations included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from typer.models import OptionInfo

__all__ = ["live_option"]


class _LiveHelpOption(OptionInfo):
    """An ``OptionInfo`` whose ``help`` is computed on each read."""

    def __init__(self, info: OptionInfo, help_text: Callable[[], str]) -> None:
        self.__dict__.update(vars(info))
        self._help_text = help_text

    @property  # type: ignore[override]
    def help(self) -> str:
        return self._help_text()

    @help.setter
    def help(self, value: Any) -> None:
        del value  # the help is computed (OptionInfo.__init__ and copies assign it)


def live_option(default: Any, *param_decls: str, help: Callable[[], str], **options: Any) -> Any:
    """``typer.Option(default, *param_decls, **options)`` with the help text ``help()`` read at each invocation.

    Example:
        >>> names = ["a"]
        >>> option = live_option("a", help=lambda: f"one of {', '.join(names)}")
        >>> names.append("b")
        >>> option.help
        'one of a, b'
    """
    return _LiveHelpOption(typer.Option(default, *param_decls, **options), help)
