"""Shared test helpers: where the external reference data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_data_dir() -> Path:
    override = os.environ.get("PINNKIT_SHARED_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"external reference data not found at {path} (set PINNKIT_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _compilation_cache(tmp_path_factory):
    # One persistent compilation cache per test session: tests that build the same programs compile them once,
    # and nothing reaches the user's cache (CLI subprocesses inherit the variable).
    import jax

    path = tmp_path_factory.mktemp("compilation-cache")
    os.environ["PINNKIT_COMPILATION_CACHE"] = str(path)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # References computed by tests go to one cache per test session, never the user's cache.
    if "PINNKIT_CACHE_DIR" not in os.environ or os.environ.get("PINNKIT_TEST_CACHE"):
        path = tmp_path_factory.getbasetemp() / "reference-cache"
        monkeypatch.setenv("PINNKIT_CACHE_DIR", str(path))
        monkeypatch.setenv("PINNKIT_TEST_CACHE", "1")


def run_cli(*args) -> tuple[int, str, str]:
    """Run a ``pinnkit`` command line in this process as the console script would: ``(exit code, stdout, stderr)``."""
    import contextlib
    import io

    from pinnkit_cli.app import run_command

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_command([str(arg) for arg in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli():
    """``cli(*args) -> (exit code, stdout, stderr)``: the ``pinnkit`` command line run in this process."""
    return run_cli


@pytest.fixture
def compiled_programs(monkeypatch) -> list[str]:
    """The names of the programs the engine builds from now on in this test (``chunk``, ``probe``), in order."""
    from pinnkit.engine.steps import CompiledFunctions

    built: list[str] = []
    original = CompiledFunctions.get

    def counting(self, name, function, example, **kwargs):
        if name not in self._compiled:
            built.append(name)
        return original(self, name, function, example, **kwargs)

    monkeypatch.setattr(CompiledFunctions, "get", counting)
    return built
