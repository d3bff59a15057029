"""Removing an old output that pinnkit owns, even where its folders were made read-only or unreadable."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

__all__ = ["remove_tree"]


def remove_tree(folder: Path) -> bool:
    """Delete ``folder``, an old output pinnkit owns, even where its folders were made read-only (``chmod -R a-w``
    stops the removal of their entries for anyone but root); True when it is gone.

    Symbolic links are removed, never followed: ``shutil.rmtree`` does not follow them, and the folders made
    writable are opened with ``O_NOFOLLOW`` from their parent's descriptor.

    Example:
        >>> import tempfile
        >>> old = Path(tempfile.mkdtemp()) / "old"
        >>> (old / "sub").mkdir(parents=True); os.chmod(old / "sub", 0o555)
        >>> remove_tree(old), old.exists()
        (True, False)
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
