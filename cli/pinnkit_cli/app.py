"""The ``pinnkit`` command line: a thin typer layer over the library.

This module owns the entry point: exit codes (see :mod:`pinnkit_cli.errors`), signals and the compilation
cache. It imports nothing heavy itself: :func:`main` sets the signal handlers first and only then imports the
commands (:mod:`pinnkit_cli.commands`: typer, JAX, ...), so that Ctrl-C at any moment after start-up, even
during those imports, ends in exit 130 with one line and no traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from typing import NoReturn

from pinnkit_cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_MEMORY,
    EXIT_TERMINATED,
    SIGNALS_RECEIVED,
    CliExit,
    Terminated,
    UsageError,
    internal_error,
    is_out_of_memory,
    one_line,
    reset_work,
    signal_exit,
    work_started,
)

__all__ = ["app", "main", "run_command"]  # noqa: F822 - app: built on first use (module __getattr__)

# Harmless for the run (the program is compiled again next time) and printed once per program: a full disk or
# a file-size limit would otherwise fill stderr with them.
_QUIET_WARNINGS = (r"Error (writing|reading) persistent compilation cache entry",)

def __getattr__(name: str):
    if name == "app":  # the typer application, built on first use
        from pinnkit_cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# "starting" while the console script imports its modules, "running" while the command runs, then "finishing".
_phase = ["starting"]
# Held by whoever writes the last line and ends the process (so that exactly one line is written).
_LAST_WORD = threading.Lock()
# A repeat within this many seconds of the first signal is the same request, not a second Ctrl-C: supervisors
# such as timeout(1) send the signal to the process and then to its process group, so it arrives twice at once.
REPEAT_WINDOW_S = 1.0
# When the first SIGINT/SIGTERM arrived (time.monotonic()), set by whichever of the handler and the watcher
# sees it first.
_FIRST_SIGNAL_AT: list[float] = []


def _is_second_request(now: float) -> bool:
    """Whether a signal seen at ``now`` asks again: it comes after the repeat window that opened with the first
    one (recorded here if this is the first)."""
    if not _FIRST_SIGNAL_AT:
        _FIRST_SIGNAL_AT.append(now)
        return False
    return now - _FIRST_SIGNAL_AT[0] > REPEAT_WINDOW_S


def _leave_now(code: int, message: str) -> None:
    _LAST_WORD.acquire()  # never released: the process ends here
    os.write(2, message.encode() + b"\n")
    os._exit(code)


def _on_signal(signum, frame) -> None:
    first = not SIGNALS_RECEIVED
    if first:
        SIGNALS_RECEIVED.append(signum)
        _is_second_request(time.monotonic())  # records the first (unless the watcher thread saw it already)
    elif not _is_second_request(time.monotonic()):
        return  # the same request delivered twice (see REPEAT_WINDOW_S): the first one is being handled
    if _phase[0] == "finishing":
        return  # recorded: the last line and the exit code will say so (see _finish)
    if not first or _phase[0] == "starting":
        # A second Ctrl-C (or SIGTERM) while the first is being handled, or any while the modules are still
        # being imported: leave now. Nothing has been written yet in the second case, and an import cannot be
        # interrupted safely (numpy's and jaxlib's extension modules print the interrupt as an import error,
        # and may crash after it).
        _leave_now(*signal_exit())
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated()


def _unraisable(report) -> None:
    # Python prints an exception raised where it cannot propagate (a gc callback, __del__) with its traceback.
    # A signal's exception can land there: it is then raised again at the next safe point
    # (errors.check_signals), and printing it would break the one-line rule.
    if report.exc_type is not None and issubclass(report.exc_type, (KeyboardInterrupt, Terminated)):
        return
    sys.__unraisablehook__(report)


def _watch_signals() -> None:
    """A second Ctrl-C (or SIGTERM) ends the process at once, even while the main thread is inside a long C call
    (an XLA compilation), where Python's own handler only runs once the call returns."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    try:
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except (ValueError, OSError):  # pragma: no cover - not the main thread
        os.close(read)
        os.close(write)
        return

    def watch() -> None:
        seen: list[int] = []
        while True:
            try:
                data = os.read(read, 64)
            except OSError:  # pragma: no cover
                return
            if not data:  # pragma: no cover
                return
            numbers = [number for number in data if number in (signal.SIGINT, signal.SIGTERM)]
            if not numbers:
                continue
            seen += numbers
            # Copies that arrive together (bytes read at once, or within the repeat window) are one request.
            if _is_second_request(time.monotonic()):
                first = seen[0] == signal.SIGINT
                _leave_now(EXIT_INTERRUPTED if first else EXIT_TERMINATED, "interrupted" if first else "terminated")

    threading.Thread(target=watch, name="pinnkit-signals", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs a command and exits with its code (see :mod:`pinnkit_cli.errors`).

    Signals: Ctrl-C (SIGINT) exits 130 and SIGTERM 143, with one line and what was written kept (see
    :func:`pinnkit_cli.running.guarded`); during start-up (imports) at once; a second one at once, always.
    Copies of one signal that arrive within ``REPEAT_WINDOW_S`` of it (timeout(1) sends two) are one request.
    """
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    _watch_signals()
    sys.unraisablehook = _unraisable
    if hasattr(signal, "SIGXFSZ"):
        # A file-size limit then fails the write (EFBIG, exit 3) instead of killing the process silently.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    try:
        try:
            code, message = _run(argv, compilation_cache=True)
        finally:
            # From here on the handler only records a signal: raised now it could land anywhere in what is
            # left (the last line, the exit itself), and be lost, printed as a traceback or kill the process.
            _phase[0] = "finishing"
    except BaseException as error:  # a signal that arrived as the command returned
        code, message = _outcome_of(error)
    _finish(code, message)


def _finish(code: int, message: str) -> NoReturn:
    """Print the last line and end the process; a signal that has arrived by then decides the exit code."""
    _LAST_WORD.acquire()  # from here on, a second signal waits for this line (and the exit) instead
    received = signal_exit()
    if received is not None and code not in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        code, message = received[0], received[1] + _kept_suffix(message)
    _print_last(message)
    received = signal_exit()
    if received is not None and code not in (EXIT_INTERRUPTED, EXIT_TERMINATED) and not message:
        # The signal came while the (empty) success line was being printed: the process still says so.
        code = received[0]
        _print_last(received[1])
    if "jax" in sys.modules:
        # A run of several processes ends at a barrier where all meet (jax aborts a process whose peers or
        # coordinator vanished without it); after a failure, briefly: a peer may be what failed. Nothing to do
        # in a process on its own.
        from pinnkit.multiprocess import leave

        leave(wait_s=30.0 if code == 0 else 10.0)
    # No interpreter teardown: it restores the default signal handlers (a signal then kills the process without
    # a word), and XLA's threads may still be compiling (tearing them down from under it crashes the process).
    os._exit(code)


def _kept_suffix(message: str) -> str:
    """The "; kept FOLDER ..." part of a command's last line, carried over when a signal overrides it."""
    index = message.find("; kept ")
    return message[index:] if index >= 0 else ""


def run_command(argv: list[str] | None = None, *, compilation_cache: bool = False) -> int:
    """Run one command line in this process; print its one-line message (if any) on stderr; return its exit code.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
        compilation_cache: turn JAX's persistent compilation cache on first (what the console script does).

    Example:
        >>> run_command(["problems"])  # doctest: +ELLIPSIS
        allen-cahn: ...
        0
    """
    code, message = _run(argv, compilation_cache)
    _print_last(message)
    return code


def _print_last(message: str) -> None:
    try:
        if message:
            print(message, file=sys.stderr, flush=True)
        sys.stdout.flush()
    except (BrokenPipeError, KeyboardInterrupt, Terminated):
        pass


def _run(argv: list[str] | None, compilation_cache: bool) -> tuple[int, str]:
    reset_work()
    try:
        # Everything that can take time, imports included, runs inside the handlers below.
        if compilation_cache:
            from pinnkit.compilation_cache import enable_compilation_cache

            enable_compilation_cache()
        from pinnkit_cli.commands import app

        parse_errors = _parse_error_types()
        _phase[0] = "running"  # from now on a signal raises in the command, which cleans up after itself
        try:
            code = app(args=argv, standalone_mode=False)
        except parse_errors as error:
            if type(error).__name__ == "NoArgsIsHelpError":
                error.show()  # the help text, for a bare `pinnkit`
                return 0, ""
            return EXIT_BAD_INPUT, f"error: {one_line(error.format_message())}"
    except CliExit as error:
        received = signal_exit()
        if received is not None and error.code not in (EXIT_INTERRUPTED, EXIT_TERMINATED) and \
                error.code != received[0]:
            return received  # the command failed because of the signal (e.g. an import it broke)
        return error.code, error.message
    except BaseException as error:
        return _outcome_of(error)
    received = signal_exit()
    if received is not None:
        # The signal's exception was swallowed (see errors.check_signals) and the command finished: what it
        # wrote is complete and kept, and the exit code still says it was interrupted.
        return received
    if isinstance(code, int) and code == EXIT_INTERRUPTED:
        return code, "interrupted"
    return (code if isinstance(code, int) else 0), ""


def _outcome_of(error: BaseException) -> tuple[int, str]:
    """The exit code and message for an exception that left a command.

    Bad input (exit 2) is what the command rejects before its work starts (:func:`errors.begin_work`); the
    same exception types raised later are internal errors (exit 70), like anything no other rule covers.
    """
    received = signal_exit()
    if received is not None:
        return received  # whatever exception the signal became (during an import: an ImportError)
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(error, Terminated):
        return EXIT_TERMINATED, "terminated"
    if isinstance(error, UsageError):
        return EXIT_BAD_INPUT, f"error: {one_line(error)}"
    if is_out_of_memory(error):
        return EXIT_MEMORY, f"error: out of memory ({one_line(error)[:200]})"
    if not work_started():
        if isinstance(error, (ValueError, TypeError)):
            return EXIT_BAD_INPUT, f"error: {one_line(error)}"
        if isinstance(error, OSError):
            # A path given on the command line that cannot be read (write failures inside an output folder
            # are exit 3, see running.guarded).
            name = error.filename
            name = os.fsdecode(name) if isinstance(name, (str, bytes)) else str(name)
            where = f" ({one_line(name)[:120]!r})" if error.filename is not None else ""
            return EXIT_BAD_INPUT, f"error: {one_line(error.strerror or error)}{where}"
    import typer

    if isinstance(error, typer.Exit):
        return error.exit_code, ""
    if isinstance(error, typer.Abort):
        return EXIT_INTERRUPTED, "interrupted"
    if not isinstance(error, Exception):
        raise error  # SystemExit, GeneratorExit: not ours to report
    report = internal_error(error)
    return report.code, report.message


def _parse_error_types() -> type[Exception]:
    try:  # typer >= 0.20 carries its own click; older releases raise click's exceptions
        from typer.exceptions import TyperException
    except ImportError:  # pragma: no cover
        from click.exceptions import ClickException as TyperException
    return TyperException
