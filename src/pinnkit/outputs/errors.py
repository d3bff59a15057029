"""Why an output folder was refused, when the caller may act on the reason (both are ``ValueError`` s)."""

from __future__ import annotations

from typing import Any

__all__ = ["OutputInUseError", "UnfinishedOutputError"]


class OutputInUseError(ValueError):
    """The folder is locked by another pinnkit run (its ``pid``, when the marker says).

    Example:
        >>> OutputInUseError("output folder 'run' is in use by another pinnkit run (pid 7)", pid=7).pid
        7
    """

    def __init__(self, message: str, pid: Any = None):
        super().__init__(message)
        self.pid = pid


class UnfinishedOutputError(ValueError):
    """The folder holds an entry (``entry``) that only an unfinished run can use; its marker's ``state``.

    Example:
        >>> UnfinishedOutputError("...", entry="checkpoint-000010.eqx", state="interrupted").entry
        'checkpoint-000010.eqx'
    """

    def __init__(self, message: str, entry: str, state: Any):
        super().__init__(message)
        self.entry = entry
        self.state = state


# Shown (in tracebacks and reprs) where users import them from.
OutputInUseError.__module__ = UnfinishedOutputError.__module__ = "pinnkit.outputs"
