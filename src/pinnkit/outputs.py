"""Output folders that pinnkit owns: claimed before writing, then committed or abandoned, never anyone else's.

A folder pinnkit writes holds a marker file, ``.pinnkit-output``: JSON with ``pinnkit_output`` (the marker
format, 1), ``kind`` ("train" or "compare"), ``pinnkit_version``, ``created`` and ``updated`` (local ISO 8601
times), the writer's ``pid`` and ``host``, and ``state`` ("running", "complete" or "interrupted"), padded with
spaces as it is rewritten in place. While a run writes into a folder it holds an exclusive ``flock`` on the
marker, so a second run can tell that the folder is in use; a run that was killed releases it with its process.

Rules (see :func:`claim_output`):

* pinnkit never claims as a new or replaced output the current folder, one of its ancestors, the root or the
  home folder (resuming in place with :func:`claim_existing` removes nothing but the temporaries of writes cut
  short, and may use any pinnkit output).
* A folder that exists is only replaced when asked (``overwrite``) and when it is a pinnkit output of the same
  kind that holds nothing but the files pinnkit writes there (:data:`KNOWN_ENTRIES`), that no other run holds
  locked, and (with ``protect``) that holds nothing an unfinished run needs (checkpoints, say).
* A replacement is written beside the old folder (in its real parent, never inside it) and swapped in by
  :meth:`OutputClaim.commit`: the new content is complete before the old is removed, and a failure before the
  commit leaves the old folder as it was. A staging folder that holds what an unfinished run needs (``protect``:
  checkpoints, say) when the claim is abandoned is kept under a visible name beside the target,
  ``<name>.interrupted`` (``-2``, ``-3``, ... if taken), so that the run can be continued.
* Folders are created with mode ``0o777 & ~umask``, files ``0o666 & ~umask``.

Example:
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> with claim_output(os.path.join(root, "run"), kind="train") as claim:
    ...     _ = (claim.folder / "history.csv").write_text("step,loss\\n")
    ...     _ = claim.commit()
    >>> read_marker(os.path.join(root, "run"))["state"]
    'complete'
    >>> with claim_output(os.path.join(root, "run"), kind="train", overwrite=True) as claim:
    ...     claim.folder != claim.target  # the replacement is staged beside the old folder
    ...     _ = (claim.folder / "result.json").write_text("{}")
    ...     _ = claim.commit()
    True
    >>> sorted(os.listdir(os.path.join(root, "run")))
    ['.pinnkit-output', 'result.json']
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import json
import logging
import os
import shutil
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from pinnkit.atomic import current_umask

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: folders are not locked
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "KNOWN_ENTRIES",
    "MARKER",
    "OutputClaim",
    "OutputInUseError",
    "UnfinishedOutputError",
    "claim_existing",
    "claim_output",
    "read_marker",
]

# Warnings of this module: without a logging configuration, Python prints them as one line on stderr.
_LOG = logging.getLogger(__name__)

MARKER = ".pinnkit-output"
"""The name of the marker file of a pinnkit output folder."""

KNOWN_ENTRIES: dict[str, tuple[str, ...]] = {
    "train": ("history.csv", "result.json", "checkpoint-*.eqx", ".*.tmp"),
    "compare": (
        "results.csv", "summary.json", ".*.tmp",
        "histories/", "histories/*.csv", "histories/*.json", "histories/.*.tmp",
        "arrays/", "arrays/*.npz", "arrays/.*.tmp",
        "figures/", "figures/*.png", "figures/.*.tmp",
    ),
}
"""What each kind of output folder may hold besides its marker, as patterns (:mod:`fnmatch`, matched one path
component at a time; a pattern ending in ``/`` names a folder, whose entries need patterns of their own)."""

_TEMPORARY = ".*.tmp"
# How a message says to replace a folder: the keyword argument, and the CLI flag that sets it.
_PASS_OVERWRITE = "pass overwrite=True (--overwrite) to replace it"
_MARKER_VERSION = 1
_MARKER_BLOCK = 1024  # the marker is rewritten in place, padded to a whole number of blocks


class OutputInUseError(ValueError):
    """The folder is locked by another pinnkit run (its ``pid``, when the marker says)."""

    def __init__(self, message: str, pid: Any = None):
        super().__init__(message)
        self.pid = pid


class UnfinishedOutputError(ValueError):
    """The folder holds an entry (``entry``) that only an unfinished run can use; its marker's ``state``."""

    def __init__(self, message: str, entry: str, state: Any):
        super().__init__(message)
        self.entry = entry
        self.state = state


PATH_LIMIT = 160
"""The longest path a message shows whole (characters); a longer one is shown by its head and tail."""


def show_path(path: Any, limit: int = PATH_LIMIT) -> str:
    """A user's path for a one-line message: quoted, with control characters, NUL bytes and undecodable bytes
    escaped (``repr``); one longer than ``limit`` characters is cut to its head and tail, its length stated (a
    5,000-character path would bury the message).

    Example:
        >>> print(show_path("runs/a\\nb"))
        'runs/a\\nb'
        >>> print(show_path("/x" * 200, limit=20))
        '/x/x/x/x/x\u2026x/x/x/x/x' (400 characters)
    """
    text = os.fsdecode(path) if isinstance(path, bytes | os.PathLike) else str(path)
    if len(text) <= limit:
        return repr(text)
    head = limit // 2
    return f"{text[:head] + chr(0x2026) + text[head - limit + 1:]!r} ({len(text)} characters)"


def _show(path: Any) -> str:
    """A path for a message (see :func:`show_path`)."""
    return show_path(path)


class OutputClaim:
    """A claim on an output folder: where to write, and how to finish (:meth:`commit` or :meth:`abandon`).

    Made by :func:`claim_output` or :func:`claim_existing`; usable as a context manager. Leaving the ``with``
    block with an exception abandons the claim. Leaving it without one requires that :meth:`commit` (or
    :meth:`abandon`) was called: otherwise the claim is abandoned (nothing half-written replaces an old output)
    and a ``RuntimeError`` says so.

    Attributes:
        path: the path as given.
        target: the folder's absolute path, symbolic links resolved.
        kind: "train", "compare", ...
        mode: "fresh" (the folder was created), "overwrite" (a replacement is staged) or "existing" (resumed in
            place).
        folder: where to write now: ``target``, or the staging folder of an overwrite.
        state: "running", then "complete" after :meth:`commit` or "interrupted"/"removed" after :meth:`abandon`.
        leftover: after an overwrite commit, the old folder if it could not be removed completely (a warning on
            the ``pinnkit.outputs`` logger names it), else None.
        kept: after :meth:`abandon`, the folder that holds what the claim kept (the target, or the renamed
            staging folder of an overwrite), else None.
    """

    def __init__(self, *, path: Path, target: Path, kind: str, mode: str, folder: Path, marker: _Marker,
                 created_parents: Sequence[Path] = (), old_marker: _Marker | None = None,
                 known: Sequence[str] = (), protect: Sequence[str] = ()):
        self.path = path
        self.target = target
        self.kind = kind
        self.mode = mode
        self.folder = folder
        self.state = "running"
        self.leftover: Path | None = None
        self.kept: Path | None = None
        self._marker: _Marker | None = marker
        self._old_marker = old_marker
        self._created_parents = list(created_parents)
        self._known = tuple(known)
        self._protect = tuple(protect)
        self._preserve: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"OutputClaim({_show(self.target)}, kind={self.kind!r}, mode={self.mode!r}, state={self.state!r})"

    @property
    def active(self) -> bool:
        """Whether the claim is still open (neither committed nor abandoned)."""
        return self._marker is not None

    def commit(self) -> Path:
        """Finish: mark the folder complete and, for an overwrite, swap the new content in.

        The swap exchanges the staging folder and the target in one step where the system can (Linux
        ``renameat2``), else renames the old folder aside and the staging folder into place; only then is the
        old content deleted. Calling it again is a no-op.

        Returns:
            The target folder.

        Raises:
            ValueError: a file pinnkit did not write appeared in the old folder meanwhile (the claim stays open:
                nothing was swapped) or the swap failed.
            RuntimeError: the claim was abandoned.

        Example:
            >>> import os, tempfile
            >>> claim = claim_output(os.path.join(tempfile.mkdtemp(), "out"), kind="compare")
            >>> claim.commit() == claim.target, claim.state
            (True, 'complete')
        """
        if self.state == "complete":
            return self.target
        if self._marker is None:
            raise RuntimeError(f"the claim on {_show(self.target)} was abandoned; it cannot be committed")
        if self.mode == "overwrite":
            foreign = _first_foreign(self.target, self._known)
            if foreign is not None:
                raise ValueError(
                    f"output folder {_show(self.target)} now holds {_show(foreign)}, which pinnkit did not write; "
                    "it was not replaced"
                )
            self._marker.update(state="complete")
            _sync(self.folder)
            old = self._swap()
            self.folder = self.target
            if not _remove_tree(old):
                # The new output is in place and complete: a failure now is no reason to fail the run, but the
                # old content is still taking space under a hidden name, so say where (one line, see _LOG).
                self.leftover = old
                _LOG.warning("warning: the old content of %s could not be removed completely; it is in %s (remove "
                             "it yourself)", _show(self.target), _show(old))
        else:
            self._marker.update(state="complete")
        self.state = "complete"
        self._release()
        return self.target

    def preserve(self, *patterns: str) -> None:
        """Keep finished results when the claim is abandoned: a staging folder with a top-level entry matching
        one of ``patterns`` is kept as ``protect`` entries are (see :meth:`abandon`), without making an old
        folder that holds them irreplaceable (e.g. ``preserve("histories")``: a comparison's finished runs)."""
        self._preserve = (*self._preserve, *patterns)

    def abandon(self) -> None:
        """Give up after a failure or an interrupt; releases the lock. Calling it again is a no-op.

        * fresh: a folder holding nothing but the marker (and temporaries ``.*.tmp``) is removed, with the
          parents the claim created if they are empty (state "removed"); one holding more (checkpoints, say)
          is kept with state "interrupted".
        * overwrite: the old folder is left as it was. The staging folder is removed (state "removed") unless
          it holds an entry matching ``protect`` (see :func:`claim_output`): then it is kept as
          ``<target>.interrupted`` (state "interrupted", :attr:`kept`).
        * existing: the folder is kept, with state "interrupted".

        A kept folder loses its temporaries (``.*.tmp``, at any depth): writes cut short.

        Returns:
            None.

        Example:
            >>> import os, tempfile
            >>> root = tempfile.mkdtemp()
            >>> claim = claim_output(os.path.join(root, "a", "b"), kind="train")
            >>> claim.abandon()
            >>> os.listdir(root), claim.state
            ([], 'removed')
        """
        if self._marker is None:
            return
        try:
            if self.mode == "overwrite":
                if not _holds(self.folder, self._protect + self._preserve):
                    shutil.rmtree(self.folder, ignore_errors=True)
                    self.state = "removed"
                else:
                    self._marker.update(state="interrupted")
                    self.state = "interrupted"
                    self.kept = self._keep_staging()
            elif self.mode == "fresh" and _disposable(self.folder) is not None:
                self.state = "removed" if self._remove_fresh() else "interrupted"
            else:
                self._marker.update(state="interrupted")
                self.state = "interrupted"
            if self.state == "interrupted" and self.kept is None:
                self.kept = self.folder
            if self.state == "interrupted":
                # An interrupt between the creation of a temporary file and the code that removes it on failure
                # leaves it behind: no write of this claim goes on, so none of them is anything but debris.
                _remove_temporaries(self.kept)
        finally:
            self._release()

    def clear(self, keep: Iterable[str] = ()) -> None:
        """Remove what the claim wrote so far, before :meth:`abandon` after a failed final write: so that no
        incomplete set of results is left behind (and an otherwise empty new folder is then removed).

        Only entries of a new folder or of a staging folder that match the kind's patterns are removed, except
        those matching ``keep`` (top-level names, e.g. ``("checkpoint-*.eqx",)``); a folder resumed in place
        (mode "existing") is left as it is. Errors are ignored (this runs after a failure).

        Example:
            >>> import os, tempfile
            >>> claim = claim_output(os.path.join(tempfile.mkdtemp(), "run"), kind="train")
            >>> _ = (claim.folder / "history.csv").write_text("step\\n")
            >>> claim.clear(); claim.abandon(); claim.state
            'removed'
        """
        if self._marker is None or self.mode == "existing":
            return
        keep = tuple(keep)
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return
        foreign = _first_foreign(self.folder, self._known) or ""
        for entry in entries:
            if entry.name == MARKER or any(fnmatch.fnmatchcase(entry.name, pattern) for pattern in keep):
                continue
            is_folder = entry.is_dir(follow_symlinks=False)
            if not _matches((entry.name,), is_folder, self._known):
                continue
            try:
                if is_folder:
                    if foreign.startswith(entry.name + "/"):
                        continue  # something pinnkit did not write is in there: leave the folder
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass

    def __enter__(self) -> OutputClaim:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if error is not None:
            self.abandon()
            return
        if self._marker is not None:
            self.abandon()
            raise RuntimeError(
                f"the claim on {_show(self.target)} was left without commit() or abandon(); it was abandoned"
            )

    # ----- internals -----

    def _remove_fresh(self) -> bool:
        files, folders = _disposable(self.folder) or ([], [])
        try:
            for file in files:
                os.unlink(file)
            for folder in folders:  # deepest first
                os.rmdir(folder)
            os.unlink(self.folder / MARKER)
            os.rmdir(self.folder)
        except OSError:
            # Something appeared meanwhile: keep the folder, marked.
            self._marker = _Marker.create(self.folder, self.kind, state="interrupted")
            return False
        for parent in reversed(self._created_parents):
            try:
                os.rmdir(parent)
            except OSError:
                break
        return True

    def _keep_staging(self) -> Path:
        """Move an abandoned staging folder to a visible name beside the target; returns where it now is."""
        parent, name = self.target.parent, _stem(self.target.name)
        for index in range(1, 1000):
            candidate = parent / (f"{name}.interrupted" + (f"-{index}" if index > 1 else ""))
            try:
                os.mkdir(candidate, 0o700)  # reserve the name, then rename onto the empty folder
            except FileExistsError:
                continue
            except OSError:
                break
            try:
                os.rename(self.folder, candidate)
            except OSError:
                os.rmdir(candidate)
                break
            self.folder = candidate
            _sync(parent)
            return candidate
        return self.folder  # it stays under its staging name

    def _swap(self) -> Path:
        """Put the staging folder in place of the target; returns where the old content now is."""
        staging, target = self.folder, self.target
        try:
            if _exchange(staging, target):
                _sync(target.parent)
                return staging
        except OSError as error:
            raise ValueError(f"cannot replace {_show(target)}: {error.strerror or error}") from None
        # Two renames: the old folder onto a fresh empty folder beside it (so the name is ours), then the new in.
        aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{_stem(target.name)}.pinnkit-old-"))
        try:
            os.rename(target, aside)
        except OSError as error:
            os.rmdir(aside)
            raise ValueError(f"cannot move {_show(target)} aside: {error.strerror or error}") from None
        try:
            os.rename(staging, target)
        except OSError as error:
            try:
                os.rename(aside, target)
            except OSError:
                self.state = "interrupted"
                self._release()  # abandon() must not delete the new content: it is all there is now
                raise ValueError(
                    f"cannot put the new output in place of {_show(target)} ({error.strerror or error}); the old "
                    f"one is in {_show(aside)}, the new one in {_show(staging)}"
                ) from None
            raise ValueError(f"cannot replace {_show(target)}: {error.strerror or error}") from None
        _sync(target.parent)
        return aside

    def _release(self) -> None:
        for marker in (self._marker, self._old_marker):
            if marker is not None:
                marker.close()
        self._marker = self._old_marker = None


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
        kind: "train" or "compare" (another name needs ``known``).
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
    given, target = _checked_target(path)
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
    given, target = _checked_target(path, removable=False)
    if not os.path.isdir(target):
        raise ValueError(f"output folder {_show(given)} does not exist or is not a folder")
    marker = _Marker.lock_existing(target, kind, given, writable=True)
    try:
        marker.update(state="running", pid=os.getpid(), host=socket.gethostname())
    except BaseException:
        marker.close()
        raise
    # The lock is ours: no write of another run goes on here, so any temporary is a write cut short by a kill.
    _remove_temporaries(target)
    return OutputClaim(path=given, target=target, kind=kind, mode="existing", folder=target, marker=marker)


def read_marker(path: str | os.PathLike) -> dict[str, Any] | None:
    """The marker of an output folder, or None when it has none (or an unreadable one).

    Args:
        path: the folder.

    Returns:
        The marker's fields (``kind``, ``state``, ``pid``, ``created`` ...) or None.

    Example:
        >>> import tempfile
        >>> read_marker(tempfile.mkdtemp()) is None
        True
    """
    try:
        with open(Path(path) / MARKER, "rb") as stream:
            return _parse_marker(stream.read())
    except OSError:
        return None


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


def _checked_target(path: str | os.PathLike, removable: bool = True) -> tuple[Path, Path]:
    """(the path as given, its real absolute path), after the checks that touch nothing.

    ``removable``: the folder may be created, replaced or removed, so the current folder, the root, the home
    folder and their ancestors are refused.
    """
    try:
        raw = os.fspath(path)
    except TypeError:
        raise ValueError(f"output folder must be a path, got {path!r}") from None
    raw = os.fsdecode(raw)
    if raw == "":
        raise ValueError("output folder is an empty path")
    if "\0" in raw:
        raise ValueError(f"output folder {_show(raw)} contains a NUL byte")
    given = Path(raw)
    absolute = Path(os.path.abspath(raw))
    limit = _name_max(absolute)
    for part in given.parts:
        if len(os.fsencode(part)) > limit:
            shown = _show(part[:40] + "...")
            raise ValueError(
                f"output folder {_show(raw[:60] + '...' if len(raw) > 60 else raw)}: the name {shown} is "
                f"{len(os.fsencode(part))} bytes long; the file system allows {limit}"
            )
    target = Path(os.path.realpath(absolute))
    if not removable:
        return given, target
    if target == Path(target.anchor) or absolute == Path(absolute.anchor):
        raise ValueError(f"output folder {_show(raw)} is the root of the file system")
    try:
        cwd = Path(os.path.realpath(os.getcwd()))
    except OSError:
        cwd = None
    if cwd is not None and target == cwd:
        raise ValueError(f"output folder {_show(raw)} is the current folder; choose a new folder for the output")
    if cwd is not None and cwd.is_relative_to(target):
        raise ValueError(f"output folder {_show(raw)} contains the current folder; choose a new folder")
    try:
        home = Path(os.path.realpath(Path.home()))
    except (RuntimeError, KeyError, OSError):
        home = None
    if home is not None and home.is_relative_to(target):
        what = "is the home folder" if home == target else "contains the home folder"
        raise ValueError(f"output folder {_show(raw)} {what}; choose a new folder for the output")
    if os.path.lexists(absolute) and not os.path.isdir(absolute):
        raise ValueError(f"output path {_show(raw)} exists and is not a folder")
    return given, target


def _name_max(absolute: Path) -> int:
    """The longest file name the file system of the nearest existing ancestor allows (255 if unknown)."""
    existing = absolute
    while not os.path.isdir(existing) and existing != existing.parent:
        existing = existing.parent
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255
    return limit if isinstance(limit, int) and limit > 0 else 255


def _writable_parent(given: Path, target: Path) -> tuple[Path, list[Path]]:
    """The nearest existing ancestor (checked to be a writable folder) and the missing ones below it."""
    missing: list[Path] = []
    parent = target.parent
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = parent.parent
    if not os.path.isdir(parent):
        raise ValueError(f"output folder {_show(given)} cannot be created: {_show(parent)} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"output folder {_show(given)} cannot be created: {_show(parent)} is not writable")
    return parent, missing[::-1]


def _claim_fresh(given: Path, target: Path, kind: str, patterns: tuple[str, ...]) -> OutputClaim:
    _, missing = _writable_parent(given, target)
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
                    raise ValueError(f"output folder {_show(given)} cannot be created: {_show(parent)} is not a "
                                     "folder") from None
        try:
            os.mkdir(target, 0o777)
        except FileExistsError:
            raise ValueError(f"output folder {_show(given)} exists (another process created it just now); "
                             f"{_PASS_OVERWRITE}") from None
    except OSError as error:
        undo()
        raise ValueError(f"cannot create output folder {_show(given)}: {error.strerror or error}") from None
    except BaseException:
        undo()
        raise
    try:
        marker = _Marker.create(target, kind)
    except BaseException as error:
        try:
            os.rmdir(target)
        except OSError:
            pass
        else:
            undo()
        if isinstance(error, OSError):
            raise ValueError(f"cannot write the marker of {_show(given)}: {error.strerror or error}") from None
        raise
    try:
        _sync(target.parent)
        return OutputClaim(path=given, target=target, kind=kind, mode="fresh", folder=target, marker=marker,
                           created_parents=created, known=patterns)
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
        marker = _Marker.lock_existing(target, kind, given, writable=False)
    except OutputInUseError as error:
        raise OutputInUseError(f"output folder {_show(given)} exists and is in use by another pinnkit run (pid "
                               f"{error.pid})", pid=error.pid) from None
    except ValueError:
        data = read_marker(target)
        if data is None:
            raise ValueError(f"output folder {_show(given)} exists and is not a pinnkit output (pinnkit only "
                             "replaces folders it wrote); choose another folder") from None
        if data.get("kind") != kind:
            raise ValueError(f"output folder {_show(given)} exists and holds a pinnkit {data.get('kind')!r} "
                             "output; choose another folder") from None
        raise ValueError(f"output folder {_show(given)} exists; {_PASS_OVERWRITE}") from None
    try:
        _check_finished(marker, target, given, protect)
    finally:
        marker.close()
    raise ValueError(f"output folder {_show(given)} exists; {_PASS_OVERWRITE}")


def _check_finished(marker: _Marker, target: Path, given: Path, protect: tuple[str, ...]) -> None:
    """Raise UnfinishedOutputError when ``target`` holds a ``protect`` entry and its run did not complete."""
    state = marker.data.get("state")
    if not protect or state == "complete":
        return
    try:
        names = sorted(os.listdir(target))
    except OSError as error:
        raise ValueError(f"cannot read output folder {_show(given)}: {error.strerror or error}") from None
    for name in names:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in protect):
            raise UnfinishedOutputError(
                f"output folder {_show(given)} holds {_show(name)} of an unfinished run (state {state!r}); it "
                "is not replaced (continue that run or choose another folder)", entry=name, state=state)


def _claim_overwrite(given: Path, target: Path, kind: str, patterns: tuple[str, ...],
                     protect: tuple[str, ...] = ()) -> OutputClaim:
    old = _Marker.lock_existing(target, kind, given, writable=False)
    staging: Path | None = None
    try:
        _check_finished(old, target, given, protect)
        foreign = _first_foreign(target, patterns)
        if foreign is not None:
            raise ValueError(
                f"output folder {_show(given)} holds {_show(foreign)}, which pinnkit does not write there; "
                "it was not replaced (remove the folder yourself or choose another)"
            )
        parent = target.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ValueError(f"output folder {_show(given)} cannot be replaced: {_show(parent)} is not writable")
        if os.path.ismount(target):
            raise ValueError(f"output folder {_show(given)} is a mount point; it cannot be replaced (write into a "
                             "new folder inside it)")
        try:
            staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{_stem(target.name)}.pinnkit-staging-"))
            os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp creates 0700
            marker = _Marker.create(staging, kind)
        except OSError as error:
            raise ValueError(f"cannot stage the replacement of {_show(given)} in {_show(parent)}: "
                             f"{error.strerror or error}") from None
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        old.close()
        raise
    return OutputClaim(path=given, target=target, kind=kind, mode="overwrite", folder=staging, marker=marker,
                       old_marker=old, known=patterns, protect=protect)


# ----- the marker -----


class _Marker:
    """An open, locked marker file; rewritten in place (so that the lock stays on the same file)."""

    def __init__(self, descriptor: int, path: Path, data: dict[str, Any]):
        self.descriptor: int | None = descriptor
        self.path = path
        self.data = data

    @classmethod
    def create(cls, folder: Path, kind: str, state: str = "running") -> _Marker:
        from pinnkit import __version__

        path = folder / MARKER
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        descriptor = os.open(path, flags, 0o666)  # the kernel applies the umask
        try:
            if fcntl is not None:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            data = {"pinnkit_output": _MARKER_VERSION, "kind": kind, "pinnkit_version": __version__,
                    "created": now, "updated": now, "pid": os.getpid(), "host": socket.gethostname(),
                    "state": state}
            marker = cls(descriptor, path, data)
            marker.update()
        except BaseException:
            os.close(descriptor)
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
        return marker

    @classmethod
    def lock_existing(cls, folder: Path, kind: str, given: Path, *, writable: bool) -> _Marker:
        path = folder / MARKER
        flags = (os.O_RDWR if writable else os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            descriptor = os.open(path, flags)
        except FileNotFoundError:
            raise ValueError(
                f"output folder {_show(given)} is not a pinnkit output (it has no {MARKER} file); pinnkit only "
                "replaces folders it wrote"
            ) from None
        except OSError as error:
            raise ValueError(f"cannot open the marker of {_show(given)}: {error.strerror or error}") from None
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    # The holder: from the kernel's lock table where it can be read (the marker names the run
                    # that wrote the folder, which is not the holder while another run replaces it).
                    pid = _lock_holder(descriptor)
                    if pid is None:
                        pid = (_parse_marker(_read_all(descriptor)) or {}).get("pid", "unknown")
                    raise OutputInUseError(
                        f"output folder {_show(given)} is in use by another pinnkit run (pid {pid})", pid=pid
                    ) from None
            data = _parse_marker(_read_all(descriptor))
            if data is None:
                raise ValueError(f"output folder {_show(given)} is not a pinnkit output (its {MARKER} file is "
                                 "unreadable)")
            if data.get("kind") != kind:
                raise ValueError(f"output folder {_show(given)} holds a pinnkit {data.get('kind')!r} output, not "
                                 f"a {kind!r} one")
        except BaseException:
            os.close(descriptor)
            raise
        return cls(descriptor, path, data)

    def update(self, **changes: Any) -> None:
        if self.descriptor is None:
            return
        self.data.update(changes, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        text = json.dumps(self.data, indent=1).encode() + b"\n"
        size = -(-len(text) // _MARKER_BLOCK) * _MARKER_BLOCK
        # One write of a padded block: the length never changes, so a reader never sees an empty file.
        os.pwrite(self.descriptor, text.ljust(size, b" "), 0)
        os.ftruncate(self.descriptor, size)
        os.fsync(self.descriptor)

    def close(self) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)  # releases the lock
            self.descriptor = None


def _lock_holder(descriptor: int) -> int | None:
    """The pid holding a ``flock`` on the file open as ``descriptor`` (Linux ``/proc/locks``), else None."""
    try:
        info = os.fstat(descriptor)
        with open("/proc/locks", encoding="ascii", errors="replace") as stream:
            lines = stream.read().splitlines()
    except OSError:
        return None
    wanted = (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 21116 fe:00:2148717 0 EOF" (a blocked waiter's line has "->" after "1:")
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[4] == "->" or "->" in fields[:2]:
            continue
        try:
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == wanted:
                return int(fields[4])
        except ValueError:
            continue
    return None


def _read_all(descriptor: int) -> bytes:
    chunks, offset = [], 0
    while True:
        chunk = os.pread(descriptor, 65536, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)
        if offset > 1 << 20:
            return b""  # not a marker


def _parse_marker(content: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str) or "pinnkit_output" not in data:
        return None
    return data


# ----- folder contents -----


def _matches(relative: tuple[str, ...], is_folder: bool, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith("/") != is_folder:
            continue
        parts = tuple(pattern.rstrip("/").split("/"))
        if len(parts) == len(relative) and all(
            fnmatch.fnmatchcase(name, part) for name, part in zip(relative, parts, strict=True)
        ):
            return True
    return False


def _first_foreign(folder: Path, patterns: Sequence[str]) -> str | None:
    """The first entry (sorted, depth first) of ``folder`` that no pattern allows (its relative path), or None."""

    def walk(current: Path, prefix: tuple[str, ...]) -> str | None:
        try:
            entries = sorted(os.scandir(current), key=lambda entry: entry.name)
        except OSError:
            return "/".join(prefix) + "/ (unreadable)"
        for entry in entries:
            if not prefix and entry.name == MARKER:
                continue
            relative = (*prefix, entry.name)
            is_folder = entry.is_dir(follow_symlinks=False)
            if not _matches(relative, is_folder, patterns):
                return "/".join(relative) + ("/" if is_folder else "")
            if is_folder:
                found = walk(Path(entry.path), relative)
                if found is not None:
                    return found
        return None

    return walk(folder, ())


def _remove_temporaries(folder: Path) -> None:
    """Delete the temporaries (``.*.tmp`` files) anywhere in ``folder``; errors are ignored."""
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not os.path.islink(os.path.join(root, name))]
        for name in files:
            path = os.path.join(root, name)
            if fnmatch.fnmatchcase(name, _TEMPORARY) and not os.path.islink(path):
                try:
                    os.unlink(path)
                except OSError:
                    pass


def _remove_tree(folder: Path) -> bool:
    """Delete ``folder``, an old output pinnkit owns, even where its folders were made read-only (``chmod -R a-w``
    stops the removal of their entries for anyone but root); True when it is gone.

    Symbolic links are removed, never followed: ``shutil.rmtree`` does not follow them, and the folders made
    writable are opened with ``O_NOFOLLOW`` from their parent's descriptor.
    """
    shutil.rmtree(folder, ignore_errors=True)
    if not os.path.lexists(folder):
        return True
    try:
        top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except PermissionError:
        try:
            parent = os.open(folder.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return False
        try:
            top = _open_unreadable(folder.name, parent)
        finally:
            os.close(parent)
        if top is None:
            return False
    except OSError:
        return False
    try:
        _make_writable(top)
    finally:
        os.close(top)
    shutil.rmtree(folder, ignore_errors=True)
    return not os.path.lexists(folder)


def _make_writable(descriptor: int, depth: int = 0) -> None:
    """Give the owner write and search permission on the folder open as ``descriptor`` and the folders below it;
    errors are ignored (what stays is reported as left over)."""
    try:
        mode = stat.S_IMODE(os.fstat(descriptor).st_mode)
        if mode & stat.S_IRWXU != stat.S_IRWXU:
            os.fchmod(descriptor, mode | stat.S_IRWXU)
        names = [entry.name for entry in os.scandir(descriptor) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return
    if depth > 64:  # deeper than anything pinnkit writes
        return
    for name in names:
        try:
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=descriptor)
        except PermissionError:
            child = _open_unreadable(name, descriptor)
            if child is None:
                continue
        except OSError:
            continue
        try:
            _make_writable(child, depth + 1)
        finally:
            os.close(child)


def _open_unreadable(name: str, parent: int) -> int | None:
    """Open the folder ``name`` (in ``parent``) that its owner made unreadable (``chmod a-rwx``) after giving the
    owner read and search permission again; None where that is not possible. Linux: the folder is opened as a
    path only (``O_PATH``, never following a link) and changed through its ``/proc/self/fd`` entry, so that the
    change reaches that folder and nothing a link points to."""
    flag = getattr(os, "O_PATH", 0)
    if not flag or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        handle = os.open(name, flag | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError:
        return None
    try:
        os.chmod(f"/proc/self/fd/{handle}", stat.S_IMODE(os.fstat(handle).st_mode) | stat.S_IRWXU)
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError:
        return None
    finally:
        os.close(handle)


def _holds(folder: Path, patterns: Sequence[str]) -> bool:
    """Whether ``folder`` has a top-level entry matching one of ``patterns``."""
    if not patterns:
        return False
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    return any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in patterns)


def _disposable(folder: Path) -> tuple[list[Path], list[Path]] | None:
    """(temporaries, sub-folders deepest first) when ``folder`` holds nothing else besides its marker, else None."""
    files: list[Path] = []
    folders: list[Path] = []

    def walk(current: Path, top: bool) -> bool:
        try:
            entries = list(os.scandir(current))
        except OSError:
            return False
        for entry in entries:
            if top and entry.name == MARKER:
                continue
            if entry.is_dir(follow_symlinks=False):
                if not walk(Path(entry.path), False):
                    return False
                folders.append(Path(entry.path))
            elif fnmatch.fnmatchcase(entry.name, _TEMPORARY) and entry.is_file(follow_symlinks=False):
                files.append(Path(entry.path))
            else:
                return False
        return True

    return (files, folders) if walk(folder, True) else None


# ----- file system helpers -----


def _stem(name: str) -> str:
    """A short form of a folder name for the names of its staging and old folders (within NAME_MAX)."""
    return name if len(os.fsencode(name)) <= 100 else name[:24]


def _sync(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    if function(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False  # not supported here (old kernel, some file systems)
    raise OSError(code, os.strerror(code), os.fsdecode(first))
