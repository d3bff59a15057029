"""Which paths a claim may use: the checks made before anything on disk is touched.

pinnkit never creates, replaces or removes the current folder, one of its ancestors, the root or the home
folder; a path with a NUL byte or a component longer than the file system allows is refused first.

Example:
    >>> checked_target("/")
    Traceback (most recent call last):
    ...
    ValueError: output folder '/' is the root of the file system
"""

from __future__ import annotations

import os
from pathlib import Path

from pinnkit.outputs.display import show_path

__all__ = ["checked_target", "writable_parent"]


def checked_target(path: str | os.PathLike, removable: bool = True) -> tuple[Path, Path]:
    """(the path as given, its real absolute path), after the checks that touch nothing.

    ``removable``: the folder may be created, replaced or removed, so the current folder, the root, the home
    folder and their ancestors are refused.

    Raises:
        ValueError: the path may not be used (the message names it and says why).
    """
    try:
        raw = os.fspath(path)
    except TypeError:
        raise ValueError(f"output folder must be a path, got {path!r}") from None
    raw = os.fsdecode(raw)
    if raw == "":
        raise ValueError("output folder is an empty path")
    if "\0" in raw:
        raise ValueError(f"output folder {show_path(raw)} contains a NUL byte")
    given = Path(raw)
    absolute = Path(os.path.abspath(raw))
    limit = _name_max(absolute)
    for part in given.parts:
        if len(os.fsencode(part)) > limit:
            shown = show_path(part[:40] + "...")
            raise ValueError(
                f"output folder {show_path(raw[:60] + '...' if len(raw) > 60 else raw)}: the name {shown} is "
                f"{len(os.fsencode(part))} bytes long; the file system allows {limit}"
            )
    target = Path(os.path.realpath(absolute))
    if not removable:
        return given, target
    if target == Path(target.anchor) or absolute == Path(absolute.anchor):
        raise ValueError(f"output folder {show_path(raw)} is the root of the file system")
    try:
        cwd = Path(os.path.realpath(os.getcwd()))
    except OSError:
        cwd = None
    if cwd is not None and target == cwd:
        raise ValueError(f"output folder {show_path(raw)} is the current folder; choose a new folder for the output")
    if cwd is not None and cwd.is_relative_to(target):
        raise ValueError(f"output folder {show_path(raw)} contains the current folder; choose a new folder")
    try:
        home = Path(os.path.realpath(Path.home()))
    except (RuntimeError, KeyError, OSError):
        home = None
    if home is not None and home.is_relative_to(target):
        what = "is the home folder" if home == target else "contains the home folder"
        raise ValueError(f"output folder {show_path(raw)} {what}; choose a new folder for the output")
    if os.path.lexists(absolute) and not os.path.isdir(absolute):
        raise ValueError(f"output path {show_path(raw)} exists and is not a folder")
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


def writable_parent(given: Path, target: Path) -> tuple[Path, list[Path]]:
    """The nearest existing ancestor (checked to be a writable folder) and the missing ones below it, top first.

    Raises:
        ValueError: that ancestor is not a folder, or not writable.
    """
    missing: list[Path] = []
    parent = target.parent
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = parent.parent
    if not os.path.isdir(parent):
        raise ValueError(f"output folder {show_path(given)} cannot be created: {show_path(parent)} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"output folder {show_path(given)} cannot be created: {show_path(parent)} is not writable")
    return parent, missing[::-1]
