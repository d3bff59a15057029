"""Making a claim on an output folder: a new folder, a staged replacement of an old one, or one resumed in
place; and the reasons a folder is refused.

Example:
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "runs", "one")
    >>> claim = claim_output(target, kind="train")
    >>> str(claim.mode), claim.folder == claim.target
    ('fresh', True)
    >>> claim.abandon()
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pinnkit.atomic import current_umask
from pinnkit.outputs import filesystem
from pinnkit.outputs.claim import OutputClaim
from pinnkit.outputs.contents import KNOWN_ENTRIES, first_foreign, remove_temporaries
from pinnkit.outputs.display import show_path
from pinnkit.outputs.errors import OutputInUseError, UnfinishedOutputError
from pinnkit.outputs.marker import MARKER, MarkerFile, read_marker
from pinnkit.outputs.states import OutputMode, OutputState
from pinnkit.outputs.targets import checked_target, writable_parent

__all__ = ["claim_existing", "claim_output"]

# How a message says to replace a folder: the keyword argument, and the CLI flag that sets it.
_PASS_OVERWRITE = "pass overwrite=True (--overwrite) to replace it"


def claim_output(path: str | os.PathLike, *, kind: str, overwrite: bool = False,
                 known: Iterable[str] | None = None, protect: Iterable[str] = ()) -> OutputClaim:
    """Claim an output folder for writing.

    Refused (ValueError naming the path and the reason), with nothing on disk touched: an empty path, the
    current folder or one of its ancestors, the root, the home folder (or an ancestor of it), a path component
    longer than the file system allows (checked first), a path that exists and is not a folder, a parent that
    is not a writable folder.

    * absent path: the missing parents are created (and removed again by :meth:`OutputClaim.abandon` if still
      empty), then the folder with one ``mkdir`` (if another process creates it first: the "exists" error),
      then its marker, whose lock is held until the claim ends. ``claim.folder`` is the target.
    * existing path, in this order: "exists and is in use by another pinnkit run (pid N)" while another run
      holds its lock (:class:`OutputInUseError`); an unfinished run's files (:class:`UnfinishedOutputError`,
      see ``protect``); without ``overwrite``: "exists; pass overwrite=True (--overwrite)" (or why overwrite
      would not help).
    * existing path with ``overwrite``: only a pinnkit output of the same kind whose entries all match
      ``known`` is replaced. The new content goes to a staging folder created in the target's real parent
      (``claim.folder``); :meth:`OutputClaim.commit` swaps it in.

    Args:
        path: the output folder.
        kind: "train" or "compare" (an :class:`~pinnkit.outputs.OutputKind`; another name needs ``known``).
        overwrite: replace an existing pinnkit output of this kind.
        known: patterns of the entries such a folder may hold besides the marker (default
            ``KNOWN_ENTRIES[kind]``).
        protect: patterns of top-level entries that make an existing folder irreplaceable unless its marker
            says "complete" (e.g. ``("checkpoint-*.eqx",)``: the checkpoints of an interrupted run); an
            abandoned replacement holding such entries is kept (see :meth:`OutputClaim.abandon`).

    Returns:
        An :class:`OutputClaim`, to be committed or abandoned (or used in a ``with`` block).

    Raises:
        ValueError: the folder may not be used (the message names it and says why).

    Example:
        >>> import os, tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "runs", "one")
        >>> claim = claim_output(target, kind="train")
        >>> claim.folder == claim.target, sorted(os.listdir(target))
        (True, ['.pinnkit-output'])
        >>> claim_output(target, kind="train")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        pinnkit.outputs.OutputInUseError: output folder '...one' exists and is in use by another pinnkit run (pid ...)
        >>> _ = claim.commit()
        >>> claim_output(target, kind="train")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: output folder '...one' exists; pass overwrite=True (--overwrite) to replace it
    """
    patterns = _patterns(kind, known)
    if isinstance(protect, str):
        raise ValueError(f"protect must be a sequence of patterns, got the string {protect!r}")
    protect = tuple(protect)
    given, target = checked_target(path)
    if not os.path.lexists(target):
        return _claim_fresh(given, target, kind, patterns)
    if not overwrite:
        _refuse_existing(given, target, kind, protect)
    return _claim_overwrite(given, target, kind, patterns, protect)


def claim_existing(path: str | os.PathLike, *, kind: str) -> OutputClaim:
    """Claim a pinnkit output folder to go on writing in place (e.g. to resume training from its checkpoints).

    Temporaries (``.*.tmp``, at any depth) left by a writer that was killed are removed once the lock is held.

    Args:
        path: the folder; it must hold a marker of this kind.
        kind: "train", "compare", ...

    Returns:
        An :class:`OutputClaim` with ``mode == "existing"`` and ``folder == target``; its marker says
        "running" until :meth:`OutputClaim.commit` ("complete") or :meth:`OutputClaim.abandon` ("interrupted").

    Raises:
        ValueError: not a folder, no marker, another kind, or in use by another pinnkit run.

    Example:
        >>> import os, tempfile
        >>> from pinnkit.outputs import read_marker
        >>> target = os.path.join(tempfile.mkdtemp(), "run")
        >>> claim_output(target, kind="train").abandon()  # removed: it held nothing
        >>> claim = claim_output(target, kind="train")
        >>> _ = open(os.path.join(target, "checkpoint-000010.eqx"), "wb").write(b"...")
        >>> claim.abandon()  # kept: it holds a checkpoint
        >>> with claim_existing(target, kind="train") as resumed:
        ...     _ = resumed.commit()
        >>> read_marker(target)["state"]
        'complete'
    """
    given, target = checked_target(path, removable=False)
    if not os.path.isdir(target):
        raise ValueError(f"output folder {show_path(given)} does not exist or is not a folder")
    marker = MarkerFile.lock_existing(target, kind, given, writable=True)
    try:
        marker.update(state=OutputState.RUNNING, pid=os.getpid(), host=socket.gethostname())
    except BaseException:
        marker.close()
        raise
    # The lock is ours: no write of another run goes on here, so any temporary is a write cut short by a kill.
    remove_temporaries(target)
    return OutputClaim(path=given, target=target, kind=kind, mode=OutputMode.EXISTING, folder=target, marker=marker)


# ----- the steps of a claim -----


def _patterns(kind: str, known: Iterable[str] | None) -> tuple[str, ...]:
    if not isinstance(kind, str) or not kind or not kind.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"kind must be a short name such as 'train', got {kind!r}")
    if known is None:
        if kind not in KNOWN_ENTRIES:
            raise ValueError(f"unknown output kind {kind!r}; give known= or use one of {sorted(KNOWN_ENTRIES)}")
        return KNOWN_ENTRIES[kind]
    if isinstance(known, str):
        raise ValueError(f"known must be a sequence of patterns, got the string {known!r}")
    return tuple(known)


def _claim_fresh(given: Path, target: Path, kind: str, patterns: tuple[str, ...]) -> OutputClaim:
    _, missing = writable_parent(given, target)
    created: list[Path] = []

    def undo() -> None:
        for parent in reversed(created):
            try:
                os.rmdir(parent)
            except OSError:
                break

    try:
        for parent in missing:
            try:
                os.mkdir(parent, 0o777)  # the kernel applies the umask
                created.append(parent)
            except FileExistsError:
                if not os.path.isdir(parent):
                    raise ValueError(f"output folder {show_path(given)} cannot be created: {show_path(parent)} is "
                                     "not a folder") from None
        try:
            os.mkdir(target, 0o777)
        except FileExistsError:
            raise ValueError(f"output folder {show_path(given)} exists (another process created it just now); "
                             f"{_PASS_OVERWRITE}") from None
    except OSError as error:
        undo()
        raise ValueError(f"cannot create output folder {show_path(given)}: {error.strerror or error}") from None
    except BaseException:
        undo()
        raise
    try:
        marker = MarkerFile.create(target, kind)
    except BaseException as error:
        try:
            os.rmdir(target)
        except OSError:
            pass
        else:
            undo()
        if isinstance(error, OSError):
            raise ValueError(f"cannot write the marker of {show_path(given)}: {error.strerror or error}") from None
        raise
    try:
        filesystem.sync(target.parent)
        return OutputClaim(path=given, target=target, kind=kind, mode=OutputMode.FRESH, folder=target,
                           marker=marker, created_parents=created, known=patterns)
    except BaseException:  # an interrupt right now: leave nothing behind
        marker.close()
        try:
            os.unlink(target / MARKER)
            os.rmdir(target)
        except OSError:
            pass
        else:
            undo()
        raise


def _refuse_existing(given: Path, target: Path, kind: str, protect: tuple[str, ...]) -> None:
    """Why an existing folder is not claimed without ``overwrite`` (always raises ValueError)."""
    try:
        marker = MarkerFile.lock_existing(target, kind, given, writable=False)
    except OutputInUseError as error:
        raise OutputInUseError(f"output folder {show_path(given)} exists and is in use by another pinnkit run (pid "
                               f"{error.pid})", pid=error.pid) from None
    except ValueError:
        data = read_marker(target)
        if data is None:
            raise ValueError(f"output folder {show_path(given)} exists and is not a pinnkit output (pinnkit only "
                             "replaces folders it wrote); choose another folder") from None
        if data.get("kind") != kind:
            raise ValueError(f"output folder {show_path(given)} exists and holds a pinnkit {data.get('kind')!r} "
                             "output; choose another folder") from None
        raise ValueError(f"output folder {show_path(given)} exists; {_PASS_OVERWRITE}") from None
    try:
        _check_finished(marker, target, given, protect)
    finally:
        marker.close()
    raise ValueError(f"output folder {show_path(given)} exists; {_PASS_OVERWRITE}")


def _check_finished(marker: MarkerFile, target: Path, given: Path, protect: tuple[str, ...]) -> None:
    """Raise UnfinishedOutputError when ``target`` holds a ``protect`` entry and its run did not complete."""
    state = marker.state
    if not protect or state == OutputState.COMPLETE:
        return
    try:
        names = sorted(os.listdir(target))
    except OSError as error:
        raise ValueError(f"cannot read output folder {show_path(given)}: {error.strerror or error}") from None
    for name in names:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in protect):
            raise UnfinishedOutputError(
                f"output folder {show_path(given)} holds {show_path(name)} of an unfinished run (state {state!r}); "
                "it is not replaced (continue that run or choose another folder)", entry=name, state=state)


def _claim_overwrite(given: Path, target: Path, kind: str, patterns: tuple[str, ...],
                     protect: tuple[str, ...] = ()) -> OutputClaim:
    old = MarkerFile.lock_existing(target, kind, given, writable=False)
    staging: Path | None = None
    try:
        _check_finished(old, target, given, protect)
        foreign = first_foreign(target, patterns)
        if foreign is not None:
            raise ValueError(
                f"output folder {show_path(given)} holds {show_path(foreign)}, which pinnkit does not write there; "
                "it was not replaced (remove the folder yourself or choose another)"
            )
        parent = target.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ValueError(f"output folder {show_path(given)} cannot be replaced: {show_path(parent)} is not "
                             "writable")
        if os.path.ismount(target):
            raise ValueError(f"output folder {show_path(given)} is a mount point; it cannot be replaced (write into "
                             "a new folder inside it)")
        try:
            staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{filesystem.stem(target.name)}.pinnkit-staging-"))
            os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp creates 0700
            marker = MarkerFile.create(staging, kind)
        except OSError as error:
            raise ValueError(f"cannot stage the replacement of {show_path(given)} in {show_path(parent)}: "
                             f"{error.strerror or error}") from None
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        old.close()
        raise
    return OutputClaim(path=given, target=target, kind=kind, mode=OutputMode.OVERWRITE, folder=staging,
                       marker=marker, old_marker=old, known=patterns, protect=protect)
