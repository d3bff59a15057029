"""Atomic file writes: a reader, or a crash at any moment, sees the old file or the new one, never half of one.

Files are created with the permissions of an ordinary ``open``: ``0o666`` less the process umask.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_open", "atomic_write_text", "current_umask"]

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system allows.

    On Linux it is read from ``/proc/self/status``. Elsewhere it is read by setting it (to the restrictive
    ``0o077``, so that a file another thread creates meanwhile is never too open) and restoring it at once,
    under a lock.

    Returns:
        The umask, e.g. ``0o022``.

    Example:
        >>> import os
        >>> previous = os.umask(0o027)
        >>> oct(current_umask())
        '0o27'
        >>> _ = os.umask(previous)
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8) & 0o777
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit flush, fsync and rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was. The file gets the mode
    ``0o666 & ~umask`` (the umask is read once per call, see :func:`current_umask`), as ``open`` would give it.

    Args:
        path: the destination.
        mode: ``"wb"`` or ``"w"`` (text is written as UTF-8, newlines untranslated).

    Returns:
        A context manager yielding the open temporary file.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.bin"
        >>> with atomic_open(target) as stream:
        ...     _ = stream.write(b"data")
        >>> target.read_bytes()
        b'data'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    permissions = 0o666 & ~current_umask()
    # A name near the file system's limit leaves no room around it: the temporary then takes its first characters.
    stem = path.name if len(os.fsencode(path.name)) <= 200 else path.name[:50]
    temporary = None
    try:
        # Inside the try: an interrupt right after the file was created still removes it.
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{stem}.", suffix=".tmp")
        os.fchmod(handle, permissions)  # mkstemp creates 0600 whatever the umask
        text = {"newline": "", "encoding": "utf-8"} if mode == "w" else {}
        with os.fdopen(handle, mode, **text) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically, as UTF-8 (see :func:`atomic_open`).

    Args:
        path: the destination.
        text: the whole content.

    Returns:
        None.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
        >>> atomic_write_text(target, "hello")
        >>> target.read_text()
        'hello'
    """
    with atomic_open(path, "w") as stream:
        stream.write(text)


def _sync_folder(folder: Path) -> None:
    # Make the rename itself durable (POSIX); harmless where folders cannot be opened.
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
