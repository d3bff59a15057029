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


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # References computed by tests go to one cache per test session, never the user's cache.
    if "PINNKIT_CACHE_DIR" not in os.environ or os.environ.get("PINNKIT_TEST_CACHE"):
        path = tmp_path_factory.getbasetemp() / "reference-cache"
        monkeypatch.setenv("PINNKIT_CACHE_DIR", str(path))
        monkeypatch.setenv("PINNKIT_TEST_CACHE", "1")
