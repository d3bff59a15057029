"""What an output folder may hold, and the questions a claim asks of what it does hold.

Patterns are :mod:`fnmatch` patterns matched one path component at a time; one ending in ``/`` names a folder,
whose entries need patterns of their own.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "history.csv").write_text("step\\n"); _ = (folder / "notes.txt").write_text("mine")
    >>> first_foreign(folder, KNOWN_ENTRIES["train"])
    'notes.txt'
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path

from pinnkit.outputs.marker import MARKER
from pinnkit.outputs.states import OutputKind

__all__ = ["KNOWN_ENTRIES", "TEMPORARY", "disposable", "first_foreign", "holds", "matches", "remove_temporaries"]

KNOWN_ENTRIES: dict[str, tuple[str, ...]] = {
    OutputKind.TRAIN.value: ("history.csv", "result.json", "checkpoint-*.eqx", ".*.tmp"),
    OutputKind.COMPARE.value: (
        "results.csv", "summary.json", ".*.tmp",
        "histories/", "histories/*.csv", "histories/*.json", "histories/.*.tmp",
        "arrays/", "arrays/*.npz", "arrays/.*.tmp",
        "figures/", "figures/*.png", "figures/.*.tmp",
    ),
}
"""What each kind of output folder may hold besides its marker, as patterns (:mod:`fnmatch`, matched one path
component at a time; a pattern ending in ``/`` names a folder, whose entries need patterns of their own). Keyed
by plain strings (``.value``), so that messages listing the kinds read as before."""

TEMPORARY = ".*.tmp"
"""The pattern of the temporaries of atomic writes (:mod:`pinnkit.atomic`): debris once their writer is gone."""


def matches(relative: tuple[str, ...], is_folder: bool, patterns: Sequence[str]) -> bool:
    """Whether the entry at ``relative`` (path components) is allowed by one of ``patterns``.

    Example:
        >>> matches(("histories", "a.csv"), False, KNOWN_ENTRIES["compare"]), matches(("a.csv",), False, ["*/"])
        (True, False)
    """
    for pattern in patterns:
        if pattern.endswith("/") != is_folder:
            continue
        parts = tuple(pattern.rstrip("/").split("/"))
        if len(parts) == len(relative) and all(
            fnmatch.fnmatchcase(name, part) for name, part in zip(relative, parts, strict=True)
        ):
            return True
    return False


def first_foreign(folder: Path, patterns: Sequence[str]) -> str | None:
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
            if not matches(relative, is_folder, patterns):
                return "/".join(relative) + ("/" if is_folder else "")
            if is_folder:
                found = walk(Path(entry.path), relative)
                if found is not None:
                    return found
        return None

    return walk(folder, ())


def remove_temporaries(folder: Path) -> None:
    """Delete the temporaries (``.*.tmp`` files) anywhere in ``folder``; errors are ignored."""
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not os.path.islink(os.path.join(root, name))]
        for name in files:
            path = os.path.join(root, name)
            if fnmatch.fnmatchcase(name, TEMPORARY) and not os.path.islink(path):
                try:
                    os.unlink(path)
                except OSError:
                    pass


def holds(folder: Path, patterns: Sequence[str]) -> bool:
    """Whether ``folder`` has a top-level entry matching one of ``patterns``."""
    if not patterns:
        return False
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    return any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in patterns)


def disposable(folder: Path) -> tuple[list[Path], list[Path]] | None:
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
            elif fnmatch.fnmatchcase(entry.name, TEMPORARY) and entry.is_file(follow_symlinks=False):
                files.append(Path(entry.path))
            else:
                return False
        return True

    return (files, folders) if walk(folder, True) else None
