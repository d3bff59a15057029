"""The marker file of a pinnkit output folder: what it says, and the lock a run holds on it while it writes.

The marker, ``.pinnkit-output``, is JSON with ``pinnkit_output`` (the marker format, 1), ``kind``,
``pinnkit_version``, ``created`` and ``updated`` (local ISO 8601 times), the writer's ``pid`` and ``host``, and
``state`` (an :class:`~pinnkit.outputs.states.OutputState`: "running", "complete" or "interrupted"), padded with
spaces as it is rewritten in place. A run holds an exclusive ``flock`` on it while it writes into the folder.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> marker = MarkerFile.create(folder, "train")
    >>> marker.update(state=OutputState.COMPLETE); marker.close()
    >>> read_marker(folder)["state"]
    'complete'
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from pinnkit.outputs.display import show_path
from pinnkit.outputs.errors import OutputInUseError
from pinnkit.outputs.states import OutputState

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: folders are not locked
    fcntl = None  # type: ignore[assignment]

__all__ = ["MARKER", "MarkerFile", "read_marker"]

MARKER = ".pinnkit-output"
"""The name of the marker file of a pinnkit output folder."""

_MARKER_VERSION = 1
_MARKER_BLOCK = 1024  # the marker is rewritten in place, padded to a whole number of blocks


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


class MarkerFile:
    """An open, locked marker file; rewritten in place (so that the lock stays on the same file).

    Made by :meth:`create` (a new folder's marker, locked) or :meth:`lock_existing` (an existing folder's);
    :meth:`close` releases the lock.
    """

    def __init__(self, descriptor: int, path: Path, data: dict[str, Any]):
        self.descriptor: int | None = descriptor
        self.path = path
        self.data = data

    @classmethod
    def create(cls, folder: Path, kind: str, state: OutputState = OutputState.RUNNING) -> MarkerFile:
        """Write and lock the marker of ``folder`` (which must not have one)."""
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
    def lock_existing(cls, folder: Path, kind: str, given: Path, *, writable: bool) -> MarkerFile:
        """Open and lock the marker of ``folder``, a pinnkit output of this ``kind`` (``given``: the path as the
        user gave it, for messages).

        Raises:
            OutputInUseError: another run holds the lock.
            ValueError: no marker, an unreadable one, or another kind.
        """
        path = folder / MARKER
        flags = (os.O_RDWR if writable else os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            descriptor = os.open(path, flags)
        except FileNotFoundError:
            raise ValueError(
                f"output folder {show_path(given)} is not a pinnkit output (it has no {MARKER} file); pinnkit only "
                "replaces folders it wrote"
            ) from None
        except OSError as error:
            raise ValueError(f"cannot open the marker of {show_path(given)}: {error.strerror or error}") from None
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
                        f"output folder {show_path(given)} is in use by another pinnkit run (pid {pid})", pid=pid
                    ) from None
            data = _parse_marker(_read_all(descriptor))
            if data is None:
                raise ValueError(f"output folder {show_path(given)} is not a pinnkit output (its {MARKER} file is "
                                 "unreadable)")
            if data.get("kind") != kind:
                raise ValueError(f"output folder {show_path(given)} holds a pinnkit {data.get('kind')!r} output, "
                                 f"not a {kind!r} one")
        except BaseException:
            os.close(descriptor)
            raise
        return cls(descriptor, path, data)

    @property
    def state(self) -> Any:
        """The marker's ``state`` field as read or last written (a plain string when read from disk)."""
        return self.data.get("state")

    def update(self, **changes: Any) -> None:
        """Rewrite the marker with ``changes`` (and a new ``updated`` time); a no-op once closed."""
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
        """Close the file, which releases the lock; calling it again is a no-op."""
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
