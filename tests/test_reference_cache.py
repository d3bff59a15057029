"""The Reference container and the on-disk cache."""

from __future__ import annotations

import numpy as np
import pytest

import pinnkit.reference.cache as cache_module
from pinnkit.reference import Reference, cache_dir, cached_reference
from pinnkit.reference.cache import cache_path


def _reference(scale: float = 1.0) -> Reference:
    x, t = np.linspace(-1.0, 1.0, 5), np.linspace(0.0, 1.0, 3)
    return Reference(axes=(x, t), values=scale * np.add.outer(x, 10.0 * t), output_names=("u",))


class CountingCompute:
    def __init__(self, scale: float = 1.0):
        self.calls = 0
        self.scale = scale

    def __call__(self) -> Reference:
        self.calls += 1
        return _reference(self.scale)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PINNKIT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ----- Reference -----------------------------------------------------------------------------------------


def test_grid_points_row_k_matches_flattened_values_row_k():
    x, y = np.array([0.0, 1.0, 2.0]), np.array([10.0, 20.0])
    values = np.stack([np.add.outer(x, y), np.multiply.outer(x, y)], axis=-1)
    ref = Reference(axes=(x, y), values=values, output_names=("sum", "product"))
    points = ref.grid_points()
    assert points.shape == (6, 2)
    flat = ref.values.reshape(len(points), -1)
    np.testing.assert_array_equal(flat[:, 0], points[:, 0] + points[:, 1])
    np.testing.assert_array_equal(flat[:, 1], points[:, 0] * points[:, 1])
    np.testing.assert_array_equal(ref.output("product"), np.multiply.outer(x, y))


def test_reference_converts_inputs_to_float64_numpy():
    ref = Reference(axes=[[0, 1], [0, 1, 2]], values=np.zeros((2, 3), np.float32), output_names=["u"])
    assert isinstance(ref.axes, tuple) and ref.output_names == ("u",)
    assert ref.values.dtype == np.float64 and all(a.dtype == np.float64 for a in ref.axes)


@pytest.mark.parametrize(
    "axes, values, names, message",
    [
        ((np.zeros(2), np.zeros(3)), np.zeros((3, 2)), ("u",), "shape"),
        ((np.zeros(2), np.zeros(3)), np.zeros((2, 3)), ("u", "v"), "shape"),
        ((np.zeros(2), np.zeros(3)), np.zeros((2, 3, 1)), ("u",), "shape"),
        ((np.zeros((2, 2)),), np.zeros((2, 2)), ("u",), "axes\\[0\\]"),
        ((np.zeros(2),), np.zeros((2, 2)), ("u", "u"), "distinct"),
        ((), np.zeros(()), ("u",), "at least one"),
    ],
)
def test_reference_rejects_inconsistent_shapes(axes, values, names, message):
    with pytest.raises(ValueError, match=message):
        Reference(axes=axes, values=values, output_names=names)


def test_reference_rejects_a_string_as_output_names():
    with pytest.raises(TypeError, match="output_names"):
        Reference(axes=(np.zeros(2),), values=np.zeros(2), output_names="u")


def test_unknown_output_name_is_a_value_error():
    with pytest.raises(ValueError, match="'w'"):
        _reference().output("w")


# ----- cache ---------------------------------------------------------------------------------------------


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PINNKIT_CACHE_DIR", str(tmp_path / "here"))
    assert cache_dir() == tmp_path / "here"
    monkeypatch.delenv("PINNKIT_CACHE_DIR")
    assert cache_dir().parts[-3:] == (".cache", "pinnkit", "references")


def test_second_call_reads_the_file_without_recomputing(isolated_cache):
    compute = CountingCompute()
    params = {"viscosity": 0.01, "num_x": 5, "scheme": "spectral"}
    first = cached_reference("toy", params, compute)
    path = cache_path("toy", params)
    assert path.exists() and path.parent == isolated_cache
    second = cached_reference("toy", dict(reversed(params.items())), compute)  # key order is irrelevant
    assert compute.calls == 1
    for a, b in zip(first.axes, second.axes, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.values, second.values)
    assert second.output_names == first.output_names
    # Atomic writes leave no temporary files behind.
    assert [p.name for p in isolated_cache.iterdir()] == [path.name]


def test_different_params_names_or_solver_version_miss_the_cache(isolated_cache, monkeypatch):
    compute = CountingCompute()
    cached_reference("toy", {"a": 1.0}, compute)
    cached_reference("toy", {"a": 2.0}, compute)
    cached_reference("other", {"a": 1.0}, compute)
    assert compute.calls == 3
    monkeypatch.setattr(cache_module, "SOLVER_VERSION", "changed")
    cached_reference("toy", {"a": 1.0}, compute)
    assert compute.calls == 4


def test_numpy_and_python_scalars_share_a_key(isolated_cache):
    numpy_scalars = {"a": np.float64(0.5), "n": np.int64(3)}
    assert cache_path("toy", numpy_scalars) == cache_path("toy", {"a": 0.5, "n": 3})


@pytest.mark.parametrize(
    "corruption",
    [b"", b"not a zip file at all", "truncate"],
)
def test_corrupt_file_is_recomputed_and_replaced(isolated_cache, corruption):
    compute = CountingCompute(scale=3.0)
    params = {"n": 5}
    cached_reference("toy", params, compute)
    path = cache_path("toy", params)
    if corruption == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_bytes(corruption)
    again = cached_reference("toy", params, compute)
    assert compute.calls == 2
    np.testing.assert_array_equal(again.values, _reference(3.0).values)
    # The repaired file is trusted again.
    cached_reference("toy", params, compute)
    assert compute.calls == 2


def test_file_holding_another_key_is_not_trusted(isolated_cache):
    compute = CountingCompute()
    cached_reference("toy", {"n": 1}, compute)
    # Simulate a hash collision: the file of {"n": 2} holds the result stored for {"n": 1}.
    cache_path("toy", {"n": 1}).rename(cache_path("toy", {"n": 2}))
    cached_reference("toy", {"n": 2}, compute)
    assert compute.calls == 2


def test_bad_inputs_are_rejected(isolated_cache):
    with pytest.raises(TypeError, match="'grid'"):
        cached_reference("toy", {"grid": [1, 2]}, CountingCompute())
    with pytest.raises(TypeError, match="Reference"):
        cached_reference("toy", {"n": 1}, lambda: np.zeros(3))
    with pytest.raises(ValueError, match="name"):
        cached_reference("", {"n": 1}, CountingCompute())
    # Nothing half-made was stored.
    assert not isolated_cache.exists() or not list(isolated_cache.iterdir())
