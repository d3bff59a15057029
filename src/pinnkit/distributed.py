"""Data parallelism over collocation points with ``jax.sharding``: one code path for 1 GPU, N GPUs or N hosts.

The collocation points are split along their first axis over a one-dimensional device mesh (axis ``"data"``);
constraint points (boundary, initial), parameters and optimizer state are replicated. The training step itself
is unchanged: ``jax.jit`` sees sharded inputs and XLA inserts the all-reduce that sums the per-device parts of the
loss and gradient. Several processes (hosts) run the same program after :func:`initialize`; ``jax.devices()``
then lists every process's devices and the mesh spans them all (see docs/scaling.md and :mod:`pinnkit.multiprocess`).
On such a mesh every process holds the same whole arrays (one seed, one draw) and fills its own devices' parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from pinnkit.multiprocess import initialize, is_main_process, process_count
from pinnkit.validation import is_integer, positive_int

__all__ = [
    "DATA_AXIS", "data_mesh", "initialize", "is_main_process", "mesh_size", "place", "process_count", "replicate",
    "replicated", "shard_points",
]

DATA_AXIS = "data"


def data_mesh(devices: int | Sequence[jax.Device] | None = None) -> Mesh:
    """A one-dimensional mesh (axis ``"data"``) over the first ``devices`` devices, or over the given devices.

    Args:
        devices: a device count (``None``: all devices) or an explicit list of devices.

    Returns:
        A ``jax.sharding.Mesh``.

    Raises:
        ValueError: when the count is not a positive integer or exceeds ``len(jax.devices())``.

    Example:
        >>> dict(data_mesh(1).shape)
        {'data': 1}
    """
    available = jax.devices()
    if devices is None:
        chosen = list(available)
    elif is_integer(devices):
        positive_int("devices", devices)
        if devices > len(available):
            raise ValueError(
                f"devices={devices} exceeds the {len(available)} {available[0].platform} device(s) present "
                "(on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N fakes N devices)"
            )
        chosen = list(available[:devices])
    elif isinstance(devices, Sequence) and devices and all(isinstance(d, jax.Device) for d in devices):
        chosen = list(devices)
    else:
        raise TypeError(f"devices must be a device count or a list of devices, got {devices!r}")
    processes = jax.process_count()
    if processes > 1 and len({device.process_index for device in chosen}) != processes:
        # A process with no device in the mesh would hold no part of the points and could not take part.
        raise ValueError(f"a mesh of {len(chosen)} device(s) leaves out some of the {processes} processes; across "
                         f"processes the points are split over all {len(available)} devices")
    return Mesh(np.array(chosen), (DATA_AXIS,))


def mesh_size(mesh: Mesh) -> int:
    """The number of devices in ``mesh``.

    Example:
        >>> mesh_size(data_mesh(1))
        1
    """
    return int(mesh.devices.size)


def shard_points(points: dict[str, jax.Array], mesh: Mesh, collocation_terms: Iterable[str]) -> dict[str, jax.Array]:
    """Split the collocation points over ``mesh`` along their first axis; replicate every other term.

    Args:
        points: the problem's points (``problem.sample(...)``).
        mesh: a mesh from :func:`data_mesh`.
        collocation_terms: the terms whose points are split (``problem.collocation_terms``).

    Returns:
        The same dictionary of points, placed on the mesh.

    Raises:
        ValueError: when the number of collocation points is not a multiple of the number of devices.

    Example:
        >>> import jax.numpy as jnp
        >>> placed = shard_points({"pde": jnp.zeros((8, 2)), "bc": jnp.zeros((3, 2))}, data_mesh(1), ["pde"])
        >>> placed["pde"].shape
        (8, 2)
    """
    count = mesh_size(mesh)
    split = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    collocation_terms = set(collocation_terms)
    missing = collocation_terms - set(points)
    if missing:
        raise ValueError(f"points lack the collocation term(s) {sorted(missing)}")
    placed = {}
    for term, value in points.items():
        if term in collocation_terms:
            if value.shape[0] % count:
                raise ValueError(
                    f"{value.shape[0]} collocation points ({term!r}) cannot be split evenly over {count} devices; "
                    f"choose a number of points divisible by {count}"
                )
            placed[term] = place(value, split)
        else:
            placed[term] = place(value, replicated(mesh))
    return placed


def place(value, sharding: NamedSharding) -> jax.Array:
    """``value`` laid out as ``sharding`` says: ``jax.device_put`` within one process; across processes, from
    the whole value that every process holds (each process fills the parts on its own devices).

    Across processes ``device_put`` would compare the value between processes (an all-gather) at every call;
    here nothing crosses between processes: the caller vouches that the value is the same everywhere.

    Example:
        >>> import jax.numpy as jnp
        >>> place(jnp.arange(4.0), replicated(data_mesh(1))).shape
        (4,)
    """
    if sharding.is_fully_addressable:
        return jax.device_put(value, sharding)
    if isinstance(value, jax.Array) and not value.is_fully_addressable:
        return value if value.sharding == sharding else jax.device_put(value, sharding)
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(place(jax.random.key_data(value), sharding), impl=jax.random.key_impl(value))
    whole = np.asarray(value)
    return jax.make_array_from_callback(whole.shape, sharding, lambda index: whole[index])


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding that places a whole array on every device of ``mesh``.

    Example:
        >>> replicated(data_mesh(1)).is_fully_replicated
        True
    """
    return NamedSharding(mesh, PartitionSpec())


def replicate(tree, mesh: Mesh):
    """Place every array of ``tree`` on all devices of ``mesh`` (parameters, optimizer state).

    Example:
        >>> import jax.numpy as jnp
        >>> replicate({"w": jnp.ones(3)}, data_mesh(1))["w"].sharding.is_fully_replicated
        True
    """
    everywhere = replicated(mesh)
    return jax.tree_util.tree_map(
        lambda leaf: place(leaf, everywhere) if isinstance(leaf, jax.Array | np.ndarray) else leaf, tree
    )
