"""Data parallelism: 4 fake CPU devices give the 1-device answer; bad device counts are refused."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit.distributed import data_mesh, mesh_size, replicate, shard_points
from pinnkit.experiment import RunConfig

# Run in a fresh interpreter: the device count is fixed when JAX initialises its CPU backend.
SCRIPT = textwrap.dedent("""
    import json
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from pinnkit.distributed import data_mesh, shard_points
    from pinnkit.engine import LogSchedule, Probes
    from pinnkit.experiment import RunConfig, run

    assert len(jax.devices()) == 4, jax.devices()
    params = lambda model: jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))
    errors = []
    for attempt in (lambda: data_mesh(5), lambda: shard_points({"pde": jnp.ones((6, 2))}, data_mesh(4), ["pde"])):
        try:
            attempt()
        except ValueError as error:
            errors.append(str(error))
    out = {"errors": errors}
    for devices in (1, 4):
        config = RunConfig(steps=40, points=400, width=16, depth=2, log=LogSchedule(10), probes=Probes(snr_batches=20),
                           reweight="rba", learning_rate=3e-3, devices=devices)
        result = run(config)
        pde = result.points["pde"]
        out[devices] = {
            "status": result.status,
            "devices_holding_points": len(pde.sharding.device_set),
            "shard_rows": sorted({shard.data.shape[0] for shard in pde.addressable_shards}),
            "params_on_devices": sorted({len(leaf.sharding.device_set) for leaf in params(result.model)}),
            "params_replicated": all(leaf.sharding.is_fully_replicated for leaf in params(result.model)),
            **{column: result.history[column].tolist() for column in ("step", "loss", "rel_l2", "snr")},
        }
    print("RESULT " + json.dumps(out))
""")


@pytest.fixture(scope="module")
def four_device_runs():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return {(int(key) if key.isdigit() else key): value
            for key, value in json.loads(line[len("RESULT "):]).items()}


@pytest.mark.slow
def test_four_devices_split_the_points_and_match_one_device(four_device_runs):
    one, four = four_device_runs[1], four_device_runs[4]
    assert one["status"] == four["status"] == "completed"
    assert one["devices_holding_points"] == 1 and one["shard_rows"] == [400]
    assert four["devices_holding_points"] == 4 and four["shard_rows"] == [100]
    assert four["params_on_devices"] == [4] and four["params_replicated"]
    assert four["step"] == one["step"] == [0, 10, 20, 30, 40]
    # The same sums taken in another order: equal to float32 rounding, not bitwise.
    for column in ("loss", "rel_l2", "snr"):
        np.testing.assert_allclose(four[column], one[column], rtol=2e-5, err_msg=column)
    assert len(set(one["loss"])) == 5  # the state moved between rows: the comparison is not of constants


@pytest.mark.slow
def test_bad_splits_are_refused_with_four_devices(four_device_runs):
    exceeds, uneven = four_device_runs["errors"]
    assert "devices=5 exceeds the 4 cpu device(s)" in exceeds
    assert "6 collocation points ('pde') cannot be split evenly over 4 devices" in uneven


def test_device_counts_beyond_the_devices_present_are_refused():
    present = len(jax.devices())
    assert mesh_size(data_mesh(present)) == present
    with pytest.raises(ValueError, match=f"devices={present + 1} exceeds the {present}"):
        data_mesh(present + 1)
    for bad in (0, -2):
        with pytest.raises(ValueError, match="positive"):
            data_mesh(bad)
    for bad in ("2", 1.5, True, []):
        with pytest.raises(TypeError, match="devices"):
            data_mesh(bad)


def test_points_that_do_not_split_evenly_are_refused():
    mesh = data_mesh(1)
    placed = shard_points({"pde": jnp.ones((6, 2)), "bc": jnp.ones((5, 2))}, mesh, ["pde"])
    np.testing.assert_array_equal(placed["bc"], np.ones((5, 2)))
    assert replicate({"w": jnp.arange(3.0), "n": 3}, mesh)["n"] == 3
    with pytest.raises(ValueError, match="collocation term"):
        shard_points({"bc": jnp.ones((5, 2))}, mesh, ["pde"])
    with pytest.raises(ValueError, match="points=402 cannot be split evenly over devices=4"):
        RunConfig(points=402, devices=4)
    for bad in (0, -1, 2.0):
        with pytest.raises(ValueError, match="devices"):
            RunConfig(devices=bad)
