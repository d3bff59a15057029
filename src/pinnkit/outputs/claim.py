"""A claim on an output folder, once made: where to write, and how it ends (committed or abandoned).

The claims are made by :func:`pinnkit.outputs.claim_output` and :func:`pinnkit.outputs.claim_existing`.

Example:
    >>> import os, tempfile
    >>> from pinnkit.outputs import claim_output
    >>> claim = claim_output(os.path.join(tempfile.mkdtemp(), "run"), kind="train")
    >>> claim.mode, claim.state
    (<OutputMode.FRESH: 'fresh'>, <OutputState.RUNNING: 'running'>)
    >>> claim.abandon(); claim.state == "removed"
    True
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

from pinnkit.outputs import filesystem
from pinnkit.outputs.contents import disposable, first_foreign, holds, matches, remove_temporaries
from pinnkit.outputs.display import show_path
from pinnkit.outputs.marker import MARKER, MarkerFile
from pinnkit.outputs.removal import remove_tree
from pinnkit.outputs.states import OutputMode, OutputState

__all__ = ["OutputClaim"]

# Warnings of the output folders (one logger for the package): without a logging configuration, Python prints
# them as one line on stderr.
_LOG = logging.getLogger("pinnkit.outputs")


class OutputClaim:
    """A claim on an output folder: where to write, and how to finish (:meth:`commit` or :meth:`abandon`).

    Made by :func:`~pinnkit.outputs.claim_output` or :func:`~pinnkit.outputs.claim_existing`; usable as a
    context manager. Leaving the ``with`` block with an exception abandons the claim. Leaving it without one
    requires that :meth:`commit` (or :meth:`abandon`) was called: otherwise the claim is abandoned (nothing
    half-written replaces an old output) and a ``RuntimeError`` says so.

    Attributes:
        path: the path as given.
        target: the folder's absolute path, symbolic links resolved.
        kind: "train", "compare", ...
        mode: an :class:`~pinnkit.outputs.OutputMode`: "fresh" (the folder was created), "overwrite" (a
            replacement is staged) or "existing" (resumed in place).
        folder: where to write now: ``target``, or the staging folder of an overwrite.
        state: an :class:`~pinnkit.outputs.OutputState`: "running", then "complete" after :meth:`commit` or
            "interrupted"/"removed" after :meth:`abandon`.
        leftover: after an overwrite commit, the old folder if it could not be removed completely (a warning on
            the ``pinnkit.outputs`` logger names it), else None.
        kept: after :meth:`abandon`, the folder that holds what the claim kept (the target, or the renamed
            staging folder of an overwrite), else None.
    """

    def __init__(self, *, path: Path, target: Path, kind: str, mode: OutputMode, folder: Path, marker: MarkerFile,
                 created_parents: Sequence[Path] = (), old_marker: MarkerFile | None = None,
                 known: Sequence[str] = (), protect: Sequence[str] = ()):
        self.path = path
        self.target = target
        self.kind = kind
        self.mode = OutputMode(mode)
        self.folder = folder
        self.state = OutputState.RUNNING
        self.leftover: Path | None = None
        self.kept: Path | None = None
        self._marker: MarkerFile | None = marker
        self._old_marker = old_marker
        self._created_parents = list(created_parents)
        self._known = tuple(known)
        self._protect = tuple(protect)
        self._preserve: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (f"OutputClaim({show_path(self.target)}, kind={self.kind!r}, mode={str(self.mode)!r}, "
                f"state={str(self.state)!r})")

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
            >>> from pinnkit.outputs import claim_output
            >>> claim = claim_output(os.path.join(tempfile.mkdtemp(), "out"), kind="compare")
            >>> claim.commit() == claim.target, str(claim.state)
            (True, 'complete')
        """
        if self.state == OutputState.COMPLETE:
            return self.target
        if self._marker is None:
            raise RuntimeError(f"the claim on {show_path(self.target)} was abandoned; it cannot be committed")
        if self.mode == OutputMode.OVERWRITE:
            foreign = first_foreign(self.target, self._known)
            if foreign is not None:
                raise ValueError(
                    f"output folder {show_path(self.target)} now holds {show_path(foreign)}, which pinnkit did not "
                    "write; it was not replaced"
                )
            self._marker.update(state=OutputState.COMPLETE)
            filesystem.sync(self.folder)
            old = self._swap()
            self.folder = self.target
            if not remove_tree(old):
                # The new output is in place and complete: a failure now is no reason to fail the run, but the
                # old content is still taking space under a hidden name, so say where (one line, see _LOG).
                self.leftover = old
                _LOG.warning("warning: the old content of %s could not be removed completely; it is in %s (remove "
                             "it yourself)", show_path(self.target), show_path(old))
        else:
            self._marker.update(state=OutputState.COMPLETE)
        self.state = OutputState.COMPLETE
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
          it holds an entry matching ``protect`` (see :func:`~pinnkit.outputs.claim_output`): then it is kept as
          ``<target>.interrupted`` (state "interrupted", :attr:`kept`).
        * existing: the folder is kept, with state "interrupted".

        A kept folder loses its temporaries (``.*.tmp``, at any depth): writes cut short.

        Returns:
            None.

        Example:
            >>> import os, tempfile
            >>> from pinnkit.outputs import claim_output
            >>> root = tempfile.mkdtemp()
            >>> claim = claim_output(os.path.join(root, "a", "b"), kind="train")
            >>> claim.abandon()
            >>> os.listdir(root), str(claim.state)
            ([], 'removed')
        """
        if self._marker is None:
            return
        try:
            if self.mode == OutputMode.OVERWRITE:
                if not holds(self.folder, self._protect + self._preserve):
                    shutil.rmtree(self.folder, ignore_errors=True)
                    self.state = OutputState.REMOVED
                else:
                    self._marker.update(state=OutputState.INTERRUPTED)
                    self.state = OutputState.INTERRUPTED
                    self.kept = self._keep_staging()
            elif self.mode == OutputMode.FRESH and disposable(self.folder) is not None:
                self.state = OutputState.REMOVED if self._remove_fresh() else OutputState.INTERRUPTED
            else:
                self._marker.update(state=OutputState.INTERRUPTED)
                self.state = OutputState.INTERRUPTED
            if self.state == OutputState.INTERRUPTED and self.kept is None:
                self.kept = self.folder
            if self.state == OutputState.INTERRUPTED:
                # An interrupt between the creation of a temporary file and the code that removes it on failure
                # leaves it behind: no write of this claim goes on, so none of them is anything but debris.
                remove_temporaries(self.kept)
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
            >>> from pinnkit.outputs import claim_output
            >>> claim = claim_output(os.path.join(tempfile.mkdtemp(), "run"), kind="train")
            >>> _ = (claim.folder / "history.csv").write_text("step\\n")
            >>> claim.clear(); claim.abandon(); str(claim.state)
            'removed'
        """
        if self._marker is None or self.mode == OutputMode.EXISTING:
            return
        keep = tuple(keep)
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return
        foreign = first_foreign(self.folder, self._known) or ""
        for entry in entries:
            if entry.name == MARKER or any(fnmatch.fnmatchcase(entry.name, pattern) for pattern in keep):
                continue
            is_folder = entry.is_dir(follow_symlinks=False)
            if not matches((entry.name,), is_folder, self._known):
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
                f"the claim on {show_path(self.target)} was left without commit() or abandon(); it was abandoned"
            )

    # ----- internals -----

    def _remove_fresh(self) -> bool:
        files, folders = disposable(self.folder) or ([], [])
        try:
            for file in files:
                os.unlink(file)
            for folder in folders:  # deepest first
                os.rmdir(folder)
            os.unlink(self.folder / MARKER)
            os.rmdir(self.folder)
        except OSError:
            # Something appeared meanwhile: keep the folder, marked.
            self._marker = MarkerFile.create(self.folder, self.kind, state=OutputState.INTERRUPTED)
            return False
        for parent in reversed(self._created_parents):
            try:
                os.rmdir(parent)
            except OSError:
                break
        return True

    def _keep_staging(self) -> Path:
        """Move an abandoned staging folder to a visible name beside the target; returns where it now is."""
        parent, name = self.target.parent, filesystem.stem(self.target.name)
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
            filesystem.sync(parent)
            return candidate
        return self.folder  # it stays under its staging name

    def _swap(self) -> Path:
        """Put the staging folder in place of the target; returns where the old content now is."""
        staging, target = self.folder, self.target
        try:
            # Looked up on the module at each call, so that a test can make the system lack the one-step swap.
            if filesystem.exchange(staging, target):
                filesystem.sync(target.parent)
                return staging
        except OSError as error:
            raise ValueError(f"cannot replace {show_path(target)}: {error.strerror or error}") from None
        # Two renames: the old folder onto a fresh empty folder beside it (so the name is ours), then the new in.
        aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{filesystem.stem(target.name)}.pinnkit-old-"))
        try:
            os.rename(target, aside)
        except OSError as error:
            os.rmdir(aside)
            raise ValueError(f"cannot move {show_path(target)} aside: {error.strerror or error}") from None
        try:
            os.rename(staging, target)
        except OSError as error:
            try:
                os.rename(aside, target)
            except OSError:
                self.state = OutputState.INTERRUPTED
                self._release()  # abandon() must not delete the new content: it is all there is now
                raise ValueError(
                    f"cannot put the new output in place of {show_path(target)} ({error.strerror or error}); the "
                    f"old one is in {show_path(aside)}, the new one in {show_path(staging)}"
                ) from None
            raise ValueError(f"cannot replace {show_path(target)}: {error.strerror or error}") from None
        filesystem.sync(target.parent)
        return aside

    def _release(self) -> None:
        for marker in (self._marker, self._old_marker):
            if marker is not None:
                marker.close()
        self._marker = self._old_marker = None
