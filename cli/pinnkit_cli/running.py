"""What a command does around its work: finish or abandon its output folder, and turn failures into exit codes."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterator
from pathlib import Path

from pinnkit.outputs import OutputClaim
from pinnkit_cli.errors import (
    EXIT_DISK,
    EXIT_INTERRUPTED,
    EXIT_MEMORY,
    EXIT_TERMINATED,
    CliExit,
    Terminated,
    one_line,
)

__all__ = ["guarded", "is_out_of_memory", "write_or_exit"]

# Write failures that are the environment's, not the user's input.
DISK_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EIO}


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says the machine ran out of memory (numpy's or XLA's way)."""
    if isinstance(error, MemoryError):
        return True
    return type(error).__name__ in ("XlaRuntimeError", "JaxRuntimeError") and "RESOURCE_EXHAUSTED" in str(error)


@contextlib.contextmanager
def guarded(claim: OutputClaim) -> Iterator[None]:
    """Run a command's work on a claimed output folder; on any failure abandon the claim (an empty new folder is
    removed, an old output stays as it was, checkpoints are kept) and say in one line what happened."""
    try:
        yield
    except BaseException as error:
        claim.abandon()
        kept = f"; kept {claim.target}" if claim.state == "interrupted" else ""
        if isinstance(error, KeyboardInterrupt):
            raise CliExit(EXIT_INTERRUPTED, f"interrupted{kept}") from None
        if isinstance(error, Terminated):
            raise CliExit(EXIT_TERMINATED, f"terminated{kept}") from None
        if is_out_of_memory(error):
            raise CliExit(EXIT_MEMORY, f"error: out of memory ({one_line(error)[:200]}){kept}") from None
        if isinstance(error, OSError) and error.errno in DISK_ERRORS:
            raise CliExit(EXIT_DISK, f"error: a write failed: {error.strerror}{kept}") from None
        raise
    else:
        if claim.active:
            claim.abandon()


def write_or_exit(write: Callable[[], object], folder: Path, *, finished: str = "") -> None:
    """Call ``write``; a failed write (disk full, file-size limit, ...) becomes exit 3 with one line that says
    what was being written and, in ``finished``, the run's outcome that could not be saved."""
    try:
        write()
    except OSError as error:
        reason = error.strerror or str(error)
        tail = f"; {finished}" if finished else ""
        raise CliExit(EXIT_DISK, f"error: cannot write to {str(folder)!r}: {reason}{tail}") from None
