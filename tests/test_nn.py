import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit import nn


def test_mlp_shapes_and_activations():
    model = nn.MLP(2, 3, width=32, depth=4, key=jax.random.key(0))
    x = jnp.array([0.1, -0.2])
    assert model(x).shape == (3,)
    hidden = model.activations(x)
    assert [h.shape for h in hidden] == [(32,)] * 4
    # tanh activations lie in (-1, 1) and the output is the last linear layer of the last activation.
    assert all(bool(jnp.all(jnp.abs(h) < 1)) for h in hidden)
    np.testing.assert_allclose(model.layers[-1](hidden[-1]), model(x), rtol=1e-6)


def test_xavier_normal_weights_have_the_right_spread():
    model = nn.MLP(2, 1, width=256, depth=3, key=jax.random.key(3))
    hidden = model.layers[1].weight  # 256 x 256
    expected = np.sqrt(2.0 / (256 + 256))
    assert abs(float(jnp.std(hidden)) / expected - 1) < 0.02
    assert abs(float(jnp.mean(hidden))) < 3 * expected / 256
    bias = model.layers[1].bias
    assert float(jnp.max(jnp.abs(bias))) <= 1 / np.sqrt(256)


def test_input_normalisation_maps_the_domain_onto_the_unit_box():
    lower, upper = (0.0, -2.0), (4.0, 2.0)
    model = nn.MLP(2, 1, width=8, depth=1, domain=(lower, upper), key=jax.random.key(0))
    np.testing.assert_allclose(model.input_map(jnp.array(lower)), [-1, -1])
    np.testing.assert_allclose(model.input_map(jnp.array(upper)), [1, 1])
    with pytest.raises(ValueError, match="exceed"):
        nn.MLP(2, 1, domain=((0.0, 0.0), (1.0, 0.0)), key=jax.random.key(0))
    with pytest.raises(ValueError, match="finite"):
        nn.MLP(2, 1, domain=((0.0, 0.0), (1.0, float("inf"))), key=jax.random.key(0))


def test_domain_bounds_and_fourier_frequencies_are_constants_not_parameters():
    model = nn.MLP(2, 1, width=8, depth=2, domain=((0.0, -2.0), (4.0, 2.0)), fourier_features=16,
                   key=jax.random.key(0))
    params = eqx.filter(model, eqx.is_inexact_array)
    # Only the linear layers carry parameters: 2 * (depth + 1) leaves (weights and biases).
    assert len(jax.tree_util.tree_leaves(params)) == 2 * 3
    leaf_paths = [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    assert all(".layers[" in path for path in leaf_paths), leaf_paths
    # A gradient step on everything the optimizer sees cannot move the map.
    grads = eqx.filter_grad(lambda m: jnp.sum(m(jnp.array([0.3, 0.4])) ** 2))(model)
    stepped = eqx.apply_updates(model, jax.tree_util.tree_map(lambda g: -0.1 * g, grads))
    assert stepped.input_map == model.input_map
    assert float(jnp.max(jnp.abs(grads.layers[0].weight))) > 0.0


def test_modified_mlp_gating_is_a_convex_combination_of_the_gates():
    model = nn.ModifiedMLP(2, 1, width=16, depth=3, key=jax.random.key(0))
    x = jnp.array([0.2, 0.5])
    features = model.input_map(x)
    u = jnp.tanh(model.gate_u(features))
    v = jnp.tanh(model.gate_v(features))
    first = model.activations(x)[0]
    z = jnp.tanh(model.layers[0](features))
    np.testing.assert_allclose(first, z * u + (1 - z) * v, rtol=1e-6)
    assert model(x).shape == (1,)


@pytest.mark.parametrize("bad", [{"width": 0}, {"depth": -1}, {"activation": "relu6"}])
def test_bad_sizes_raise(bad):
    with pytest.raises(ValueError):
        nn.MLP(2, 1, key=jax.random.key(0), **bad)


@pytest.mark.slow
def test_a_periodic_axis_makes_the_network_exactly_periodic_and_keeps_fast_derivatives():
    from pinnkit.derivatives import axis_derivatives, batch_axis_derivatives

    with jax.enable_x64(True):
        model = nn.MLP(2, 1, width=16, depth=3, domain=((-1.0, 0.0), (1.0, 1.0)), periodic=(0,),
                       key=jax.random.key(0), dtype=jnp.float64)
        t = jnp.linspace(0.0, 1.0, 5)
        left = jax.vmap(model)(jnp.stack([-jnp.ones(5), t], axis=1))
        right = jax.vmap(model)(jnp.stack([jnp.ones(5), t], axis=1))
        np.testing.assert_allclose(left, right, rtol=0, atol=1e-14)
        x = jax.random.uniform(jax.random.key(1), (7, 2), jnp.float64, minval=jnp.array([-1.0, 0.0]),
                               maxval=jnp.array([1.0, 1.0]))
        fast = batch_axis_derivatives(model, x, {0: 3, 1: 2})
        for axis, order in {0: 3, 1: 2}.items():
            slow = jax.vmap(lambda p, axis=axis, order=order: jnp.stack(axis_derivatives(model, p, axis, order)))(x)
            np.testing.assert_allclose(np.stack(fast[axis]), np.moveaxis(np.asarray(slow), 1, 0), rtol=1e-10,
                                       atol=1e-10)
    with pytest.raises(ValueError, match="domain"):
        nn.MLP(2, 1, periodic=(0,), key=jax.random.key(0))
    with pytest.raises(ValueError, match="periodic axes"):
        nn.MLP(2, 1, periodic=(2,), domain=((0.0, 0.0), (1.0, 1.0)), key=jax.random.key(0))
