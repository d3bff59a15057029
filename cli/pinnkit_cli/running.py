"""What a command does around its work: finish or abandon its output folder, and turn failures into exit codes."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from pinnkit.outputs import OutputClaim
from pinnkit_cli.errors import (
    EXIT_BAD_INPUT,
    EXIT_DISK,
    EXIT_INTERRUPTED,
    EXIT_MEMORY,
    EXIT_OK,
    EXIT_TERMINATED,
    CliExit,
    Terminated,
    begin_work,
    internal_error,
    is_out_of_memory,
    one_line,
    printable_path,
    signal_exit,
)

__all__ = ["describe_folder", "guarded", "is_out_of_memory", "write_or_exit"]

# Write failures that are the environment's, not the user's input: a full disk or quota, a file-size limit, a
# read-only or failing file system, no descriptors left.
DISK_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EMFILE, errno.ENFILE}
# ... and, for a path inside the output folder, that folder made unwritable or removed under the running command.
FOLDER_ERRORS = {errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR}


def _is_write_failure(error: BaseException, claim: OutputClaim) -> bool:
    if not isinstance(error, OSError):
        return False
    if error.errno in DISK_ERRORS:
        return True
    if error.errno not in FOLDER_ERRORS or not isinstance(error.filename, (str, bytes, os.PathLike)):
        return False
    path = Path(os.path.abspath(os.fsdecode(error.filename)))
    return any(path.is_relative_to(folder) for folder in (claim.folder, claim.target))


@contextlib.contextmanager
def guarded(claim: OutputClaim | Callable[[], OutputClaim]) -> Iterator[OutputClaim]:
    """Run a command's work on a claimed output folder; on any failure abandon the claim (an empty new folder is
    removed, an old output stays as it was, what the claim keeps stays: checkpoints, finished runs) and say in
    one line what happened and what was kept.

    ``claim`` may be a function that makes the claim: then an interrupt that arrives just after the folder was
    claimed still abandons it (nothing is left behind). The work starts once the folder is claimed
    (:func:`pinnkit_cli.errors.begin_work`): an exception other than the ones named in
    :mod:`pinnkit_cli.errors` is a bug from then on (exit 70). Yields the claim.
    """
    claim = claim() if callable(claim) else claim
    begin_work()
    try:
        yield claim
    except GeneratorExit:  # the context was dropped unfinished (a signal inside contextlib's own code)
        claim.abandon()
        raise
    except BaseException as error:
        write_failure = _is_write_failure(error, claim)  # before abandon() moves a kept staging folder
        claim.abandon()
        kept = _kept(claim)
        received = signal_exit()
        if received is not None and not (isinstance(error, CliExit) and error.code == received[0]):
            raise CliExit(received[0], f"{received[1]}{kept}") from None  # whatever the signal became
        if isinstance(error, CliExit):
            if error.code not in (EXIT_BAD_INPUT, EXIT_OK) and kept and "; kept " not in error.message:
                raise CliExit(error.code, error.message + kept) from None
            raise
        if isinstance(error, KeyboardInterrupt):
            raise CliExit(EXIT_INTERRUPTED, f"interrupted{kept}") from None
        if isinstance(error, Terminated):
            raise CliExit(EXIT_TERMINATED, f"terminated{kept}") from None
        if is_out_of_memory(error):
            raise CliExit(EXIT_MEMORY, f"error: out of memory ({one_line(error)[:200]}){kept}") from None
        if write_failure:
            raise CliExit(EXIT_DISK, f"error: cannot write to {str(claim.target)!r}: "
                                     f"{error.strerror or one_line(error)}{kept}") from None
        if isinstance(error, Exception):
            raise internal_error(error, kept) from None
        raise
    else:
        if claim.active:
            claim.abandon()


def _kept(claim: OutputClaim) -> str:
    """"; kept FOLDER (what it holds)" after an abandoned claim kept its folder, else ""."""
    if claim.kept is None:
        return ""
    text = f"; kept {printable_path(claim.kept)}"
    contents = describe_folder(claim.kept)
    if contents:
        text += f" (holding {contents})"
    if claim.kept != claim.target:
        text += f"; {printable_path(claim.target)} is unchanged"
    return text


def describe_folder(folder: Path, limit: int = 6) -> str:
    """What a kept folder holds, briefly: its files, and its folders with a count, e.g.
    ``checkpoint-000040.eqx, histories/ (3 files)``; the marker and temporaries are left out."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: (entry.is_dir(follow_symlinks=False), entry.name))
    except OSError:
        return ""
    parts = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            try:
                count = sum(1 for inner in os.scandir(entry.path) if not inner.name.startswith("."))
            except OSError:
                count = 0
            parts.append(f"{entry.name}/ ({count} file{'s' if count != 1 else ''})")
        else:
            parts.append(entry.name)
    if len(parts) > limit:
        parts = parts[:limit] + [f"{len(parts) - limit} more"]
    return one_line(", ".join(parts))


def write_or_exit(write: Callable[[], object], claim: OutputClaim, *, finished: str = "",
                  keep: Iterable[str] | None = None) -> None:
    """Call ``write`` (a command's final write into ``claim.folder``); a failed write (disk full, file-size limit,
    ...) becomes exit 3 with one line that says where it was writing and, in ``finished``, the run's outcome
    that could not be saved.

    After any failure (an interrupt, a figure that cannot be drawn, ...), what the write left in a new folder is
    removed (no incomplete set of results stays; the folder itself goes too when nothing else is in it), except
    entries matching ``keep`` (e.g. checkpoints). ``keep=None`` leaves everything in place (a write that adds to
    what is already there, such as a checkpoint).
    """
    try:
        write()
    except BaseException as error:
        if keep is not None:
            claim.clear(keep=keep)
        if not isinstance(error, OSError):
            raise
        reason = error.strerror or one_line(error)
        tail = f"; {finished}" if finished else ""
        raise CliExit(EXIT_DISK, f"error: cannot write to {str(claim.target)!r}: {reason}{tail}") from None
