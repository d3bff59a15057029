"""The ``pinnkit`` command line: a thin typer layer over the library.

This module builds the application from the command modules (which never import it) and owns the entry point:
exit codes (see :mod:`pinnkit_cli.errors`), signals and the compilation cache.
"""

from __future__ import annotations

import os
import signal
import sys

import typer

from pinnkit_cli import compare_command, detect_command, problems_command, train_command
from pinnkit_cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_MEMORY,
    EXIT_TERMINATED,
    CliExit,
    Terminated,
    UsageError,
    one_line,
)
from pinnkit_cli.running import is_out_of_memory

__all__ = ["app", "main", "run_command"]

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


def _terminate(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs a command and exits with its code (see :mod:`pinnkit_cli.errors`)."""
    signal.signal(signal.SIGTERM, _terminate)
    if hasattr(signal, "SIGXFSZ"):
        # A file-size limit then fails the write (EFBIG, exit 3) instead of killing the process silently.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    from pinnkit.compilation_cache import enable_compilation_cache

    enable_compilation_cache()
    code = run_command(argv)
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        # Skip the interpreter's teardown: XLA's threads may still be compiling, and tearing them down from
        # under it crashes the process.
        os._exit(code)
    sys.exit(code)


try:  # typer >= 0.20 carries its own click; older releases raise click's exceptions
    from typer.exceptions import TyperException as _ParseError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException as _ParseError


def run_command(argv: list[str] | None = None) -> int:
    """Run one command line in this process; print its one-line message (if any) on stderr; return its exit code.

    Example:
        >>> run_command(["problems"])  # doctest: +ELLIPSIS
        allen-cahn: ...
        0
    """
    code, message = _run(argv)
    if message:
        print(message, file=sys.stderr, flush=True)
    sys.stdout.flush()
    return code


def _run(argv: list[str] | None) -> tuple[int, str]:
    try:
        code = app(args=argv, standalone_mode=False)
    except CliExit as error:
        return error.code, error.message
    except _ParseError as error:
        if type(error).__name__ == "NoArgsIsHelpError":
            error.show()  # the help text, for a bare `pinnkit`
            return 0, ""
        return EXIT_BAD_INPUT, f"error: {one_line(error.format_message())}"
    except typer.Exit as error:
        return error.exit_code, ""
    except (typer.Abort, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    except Terminated:
        return EXIT_TERMINATED, "terminated"
    except (UsageError, ValueError, TypeError) as error:
        return EXIT_BAD_INPUT, f"error: {one_line(error)}"
    except BaseException as error:
        if is_out_of_memory(error):
            return EXIT_MEMORY, f"error: out of memory ({one_line(error)[:200]})"
        raise
    if isinstance(code, int) and code == EXIT_INTERRUPTED:
        return code, "interrupted"
    return (code if isinstance(code, int) else 0), ""
