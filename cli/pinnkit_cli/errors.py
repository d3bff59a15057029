"""Exit codes and the one-line error convention of the ``pinnkit`` command line.

==== ===================================================================================================
code meaning
==== ===================================================================================================
0    done
1    training diverged (the history and the last finite checkpoint are kept); compare: every run diverged
2    bad input: an unknown name, a value out of range, a size this machine cannot hold, a folder pinnkit
     may not use (in use by another run, not written by pinnkit, holding an unfinished run's checkpoints);
     nothing is written
3    the disk or file system failed a write (full, file-size limit, read-only, ...); nothing half-written
     is left (checkpoints are kept), and the run's final numbers are printed on stderr
4    out of memory while running (sizes that cannot fit are refused up front with code 2)
130  interrupted (SIGINT, Ctrl-C); checkpoints already written are kept (continue with ``--resume``), a new
     folder without any is removed; during start-up, or at a second Ctrl-C (more than 1 s after the first), the
     process ends at once
143  terminated (SIGTERM); as for 130
70   an internal error (a bug in pinnkit): one line naming the exception; ``PINNKIT_TRACEBACK=1`` prints the
     traceback too. Any exception that no rule above covers, a ``ValueError`` or ``TypeError`` raised once the
     work has started (:func:`begin_work`) included: bad input is rejected before that, by name
==== ===================================================================================================

Every failure prints exactly one line on stderr (control characters escaped) and no traceback.
"""

from __future__ import annotations

import re
from typing import NoReturn

__all__ = [
    "EXIT_BAD_INPUT", "EXIT_DISK", "EXIT_DIVERGED", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_MEMORY", "EXIT_OK",
    "EXIT_TERMINATED", "CliExit", "Terminated", "UsageError", "begin_work", "check_signals", "fail", "internal_error",
    "is_out_of_memory", "one_line", "printable_path", "reset_work", "show_path", "signal_exit", "work_started",
]

EXIT_OK = 0
EXIT_DIVERGED = 1
EXIT_BAD_INPUT = 2
EXIT_DISK = 3
EXIT_MEMORY = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_INTERNAL = 70

# The signals (SIGINT, SIGTERM) the console script has received, first first; filled by its handler.
SIGNALS_RECEIVED: list[int] = []
# Whether the running command has started its work (see begin_work); reset for each command line.
_WORK_STARTED: list[bool] = [False]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr with exit code 2."""


class CliExit(Exception):
    """Leave with ``code`` after printing ``message`` (one line on stderr; none if empty)."""

    def __init__(self, code: int, message: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message


class Terminated(BaseException):
    """SIGTERM arrived (raised from the signal handler, like ``KeyboardInterrupt`` for SIGINT)."""


def one_line(message: object) -> str:
    """A message fit for one line of a terminal: control characters escaped, newlines folded.

    Example:
        >>> one_line("bad\\x00value\\nnext")
        'bad\\\\x00value next'
    """
    text = " ".join(str(message).split("\n"))
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text).strip()


def fail(message: str) -> NoReturn:
    """Stop with exit code 2 and ``error: message`` on stderr (the convention for bad input)."""
    raise CliExit(EXIT_BAD_INPUT, f"error: {one_line(message)}")


def begin_work() -> None:
    """Mark the end of input validation: from here on an exception is the program's fault, not the input's.

    Before it, a ``ValueError``, ``TypeError`` or ``OSError`` that leaves a command is reported as bad input
    (exit 2): it can only come from checking what the user gave. After it (an output folder is claimed, a file
    has been read and is being processed) the same exceptions are internal errors (exit 70): a shape error
    inside a training step is a ``TypeError`` too. Input problems found later are reported with :func:`fail`.
    """
    _WORK_STARTED[0] = True


def work_started() -> bool:
    """Whether :func:`begin_work` was called for the running command line."""
    return _WORK_STARTED[0]


def reset_work() -> None:
    """A new command line starts in validation (called by the entry points)."""
    _WORK_STARTED[0] = False


def internal_error(error: BaseException, suffix: str = "") -> CliExit:
    """The exit-70 report of ``error`` (a bug), with ``suffix`` (e.g. what was kept) appended; prints the
    traceback on stderr first when ``PINNKIT_TRACEBACK`` is set."""
    import os

    if os.environ.get("PINNKIT_TRACEBACK"):
        import traceback

        traceback.print_exception(error)
    return CliExit(EXIT_INTERNAL, f"internal error: {type(error).__name__}: {one_line(error)[:300]}{suffix} "
                                  "(a bug in pinnkit; PINNKIT_TRACEBACK=1 prints the traceback)")


def signal_exit() -> tuple[int, str] | None:
    """(exit code, message) when the console script has received SIGINT or SIGTERM, else None.

    An interrupt can surface as another exception: numpy's and jaxlib's extension modules turn a
    ``KeyboardInterrupt`` raised while they initialise into an ``ImportError``. Whatever the exception, a
    received signal decides the exit code.
    """
    import signal

    if not SIGNALS_RECEIVED:
        return None
    if SIGNALS_RECEIVED[0] == signal.SIGINT:
        return EXIT_INTERRUPTED, "interrupted"
    return EXIT_TERMINATED, "terminated"


def check_signals() -> None:
    """Raise the exception of a signal received earlier whose exception was swallowed: Python prints and ignores
    an exception raised in a garbage-collection callback or a ``__del__`` method, and the signal handler's
    ``KeyboardInterrupt`` can land there (JAX registers a gc callback). Called where a command is safe to stop
    (after each history row); a no-op when no signal came."""
    received = signal_exit()
    if received is not None:
        raise KeyboardInterrupt if received[0] == EXIT_INTERRUPTED else Terminated()


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says the machine ran out of memory (numpy's or XLA's way)."""
    if isinstance(error, MemoryError):
        return True
    return type(error).__name__ in ("XlaRuntimeError", "JaxRuntimeError") and "RESOURCE_EXHAUSTED" in str(error)


def show_path(path: object) -> str:
    """A user's path for an error message: quoted, control characters escaped, a very long one cut to its head
    and tail with its length stated (one rule for the library's messages and the CLI's:
    :func:`pinnkit.outputs.show_path`)."""
    from pinnkit.outputs import show_path as shown  # not at import time: errors.py is imported before JAX is

    return shown(path)


def printable_path(path: object) -> str:
    """A path for a success line, unquoted and whole: control characters (newline, ESC, ...) and undecodable
    bytes escaped as ``\\xNN``-style sequences, so that a name cannot move the cursor or recolour the terminal.

    Example:
        >>> print(printable_path("runs/a\\nb\\x1b[31m"))
        runs/a\\nb\\x1b[31m
    """
    import os

    text = os.fsdecode(path) if isinstance(path, bytes | os.PathLike) else str(path)
    return "".join(character if character.isprintable() else ascii(character)[1:-1] for character in text)
