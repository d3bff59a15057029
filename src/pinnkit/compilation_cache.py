"""JAX's persistent compilation cache, kept in the user's cache folder, so a second identical run compiles fast.

The folder is ``$PINNKIT_COMPILATION_CACHE`` when set (``off`` or ``0`` disables the cache), else
``$XDG_CACHE_HOME/pinnkit/jax`` (``~/.cache/pinnkit/jax`` without ``XDG_CACHE_HOME``). The CLI turns it on; a
library user calls :func:`enable_compilation_cache` when they want it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "compilation_cache_dir", "enable_compilation_cache", "user_cache_dir"]

ENV_VAR = "PINNKIT_COMPILATION_CACHE"
_OFF = ("", "0", "off", "false", "no", "none")


def user_cache_dir() -> Path:
    """pinnkit's folder in the user's cache: ``$XDG_CACHE_HOME/pinnkit`` or ``~/.cache/pinnkit``.

    Example:
        >>> user_cache_dir().name
        'pinnkit'
    """
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base).expanduser() if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "pinnkit"


def compilation_cache_dir() -> Path | None:
    """Where compiled programs are cached, or None when ``$PINNKIT_COMPILATION_CACHE`` turns the cache off.

    Example:
        >>> import os
        >>> os.environ[ENV_VAR] = "off"
        >>> compilation_cache_dir() is None
        True
        >>> del os.environ[ENV_VAR]
    """
    value = os.environ.get(ENV_VAR)
    if value is not None:
        if value.strip().lower() in _OFF:
            return None
        return Path(value).expanduser()
    return user_cache_dir() / "jax"


def enable_compilation_cache() -> Path | None:
    """Turn JAX's persistent compilation cache on in :func:`compilation_cache_dir` (every program is cached,
    however fast it compiled). Returns the folder, or None when the cache is off or the folder cannot be made.

    Example:
        >>> import os
        >>> os.environ[ENV_VAR] = "0"
        >>> enable_compilation_cache() is None
        True
        >>> del os.environ[ENV_VAR]
    """
    folder = compilation_cache_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a cache we cannot write is no reason to fail a run
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder
