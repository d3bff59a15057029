"""How a message shows a user's path: quoted, escaped, and cut when it is long."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["PATH_LIMIT", "show_path"]

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
