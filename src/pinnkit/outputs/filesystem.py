"""The file-system steps a claim needs beyond :mod:`os`: durable renames, short names, a swap in one step."""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from pathlib import Path

__all__ = ["exchange", "stem", "sync"]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def stem(name: str) -> str:
    """A short form of a folder name for the names of its staging and old folders (within NAME_MAX).

    Example:
        >>> stem("run"), len(stem("x" * 200))
        ('run', 24)
    """
    return name if len(os.fsencode(name)) <= 100 else name[:24]


def sync(folder: Path) -> None:
    """``fsync`` a folder, so that the entries just created or renamed in it survive a crash; errors are ignored.

    Example:
        >>> import tempfile
        >>> sync(Path(tempfile.mkdtemp()))
    """
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


def exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is unavailable.

    Raises:
        OSError: the system supports the swap and it failed (a missing path, say).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "a").mkdir(); _ = (root / "b").write_text("b")
        >>> if exchange(root / "a", root / "b"):
        ...     assert (root / "a").is_file() and (root / "b").is_dir()
    """
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
