"""An on-disk cache of reference solutions, one ``.npz`` file per (solver, parameters).

Reference solves take seconds; a training run asks for its reference every time it starts. The file
name holds the solver name and a hash of its parameters and of :data:`SOLVER_VERSION`, so new
parameters or a changed solver never read a stale file. Files are written atomically (temporary file in
the same folder, then ``os.replace``); a file that cannot be read back, or whose recorded key differs,
is recomputed rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from pinnkit.atomic import atomic_open
from pinnkit.reference.base import Reference

__all__ = ["SOLVER_VERSION", "cache_dir", "cache_path", "cached_reference"]

# Bump when any solver's output changes: every cached file then misses and is recomputed.
SOLVER_VERSION = "1"
CACHE_ENV_VAR = "PINNKIT_CACHE_DIR"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def cache_dir() -> Path:
    """The folder of cached references: ``$PINNKIT_CACHE_DIR`` if set, else ``~/.cache/pinnkit/references``.

    Returns:
        The path (not created here).

    Example:
        >>> cache_dir().name != ""
        True
    """
    override = os.environ.get(CACHE_ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "pinnkit" / "references"


def _plain(key: str, value: object) -> bool | int | float | str:
    # NumPy scalars become Python ones so that 5.0 and np.float64(5.0) hash alike.
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cache parameter {key!r} must be a float, int, bool or str, got {type(value).__name__}")


def _key_text(name: str, params: Mapping[str, object]) -> str:
    plain = {str(key): _plain(str(key), params[key]) for key in params}
    return json.dumps({"name": name, "params": plain, "version": SOLVER_VERSION}, sort_keys=True)


def cache_path(name: str, params: Mapping[str, object]) -> Path:
    """The file that caches the reference of ``name`` with ``params``.

    Args:
        name: the solver or problem name.
        params: its parameters (floats, ints, bools, strings); order does not matter.

    Returns:
        ``cache_dir() / "<name>-<hash>.npz"``.

    Example:
        >>> cache_path("burgers", {"a": 1, "b": 2.0}) == cache_path("burgers", {"b": 2.0, "a": 1})
        True
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    digest = hashlib.sha256(_key_text(name, params).encode()).hexdigest()[:20]
    return cache_dir() / f"{_SAFE_NAME.sub('_', name)}-{digest}.npz"


def _save(path: Path, reference: Reference, key_text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"axis_{index}": axis for index, axis in enumerate(reference.axes)}
    arrays["values"] = reference.values
    arrays["output_names"] = np.array(reference.output_names)
    arrays["key"] = np.array(key_text)
    with atomic_open(path, "wb") as stream:
        np.savez(stream, **arrays)


def _load(path: Path, key_text: str) -> Reference | None:
    """The cached reference, or None if the file is missing, unreadable or holds another key."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key_text:
                return None
            num_axes = sum(1 for name in data.files if name.startswith("axis_"))
            axes = tuple(data[f"axis_{index}"] for index in range(num_axes))
            names = tuple(data["output_names"].tolist())
            return Reference(axes=axes, values=data["values"], output_names=names)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile):
        # Truncated or corrupt file (e.g. a crash of an old, non-atomic writer): recompute.
        return None


def cached_reference(
    name: str, params: Mapping[str, float | int | str], compute: Callable[[], Reference]
) -> Reference:
    """The reference of ``name`` with ``params``: read from the cache, or computed by ``compute`` and stored.

    Args:
        name: the solver or problem name (part of the file name).
        params: every parameter the result depends on (floats, ints, bools, strings).
        compute: a function of no arguments that solves for the reference; called only on a cache miss.

    Returns:
        The reference (identical arrays on a hit and on the miss that wrote it).

    Example:
        >>> import numpy as np
        >>> make = lambda: Reference((np.linspace(0, 1, 3),), np.ones(3), ("u",))
        >>> cached_reference("doc-example", {"n": 3}, make).values.tolist()
        [1.0, 1.0, 1.0]
    """
    if not callable(compute):
        raise TypeError(f"compute must be callable, got {type(compute).__name__}")
    path = cache_path(name, params)
    key_text = _key_text(name, params)
    cached = _load(path, key_text)
    if cached is not None:
        return cached
    reference = compute()
    if not isinstance(reference, Reference):
        raise TypeError(f"compute() must return a Reference, got {type(reference).__name__}")
    _save(path, reference, key_text)
    return reference
