"""Batch-gradient SNR: batches, vmapped batch gradients and statistics, against numpy hand computations."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinnkit.diagnostics import (
    batch_gradient_snr,
    batch_gradients,
    gradient_leaf_names,
    make_batches,
    order_from_snr,
    snr_from_order,
)


def test_batches_are_disjoint_equal_and_leave_out_only_the_remainder():
    batches = np.asarray(make_batches(jax.random.key(3), 1003, 10))
    assert batches.shape == (10, 100)
    flat = batches.ravel()
    assert np.unique(flat).size == flat.size  # disjoint
    assert flat.min() >= 0 and flat.max() < 1003
    assert 1003 - flat.size == 1003 % 10


def test_batches_are_a_random_fixed_partition():
    key = jax.random.key(0)
    first = np.asarray(make_batches(key, 100, 4))
    assert np.array_equal(first, np.asarray(make_batches(key, 100, 4)))  # same key, same batches
    assert not np.array_equal(first.ravel(), np.arange(100))  # shuffled, not contiguous slices
    assert np.array_equal(np.sort(first.ravel()), np.arange(100))


@pytest.mark.parametrize("points, batches", [(5, 10), (0, 1), (10, 0), (10, 2.5), (True, 1)])
def test_bad_batch_arguments_raise(points, batches):
    with pytest.raises(ValueError, match="num_"):
        make_batches(jax.random.key(0), points, batches)


def _mlp():
    return eqx.nn.MLP(2, 1, width_size=8, depth=2, activation=jnp.tanh, key=jax.random.key(0))


def _per_batch_grads_by_loop(model, inputs, targets):
    """One backward pass per batch, as the paper does: the reference for the vmapped pass."""

    def loss(m, x, y):
        return jnp.mean((jax.vmap(m)(x)[:, 0] - y) ** 2)

    grads = [eqx.filter_grad(loss)(model, x, y) for x, y in zip(inputs, targets, strict=True)]
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *grads)


def test_vmapped_batch_gradients_equal_a_loop_of_backward_passes():
    model = _mlp()
    params, static = eqx.partition(model, eqx.is_inexact_array)
    x = jax.random.uniform(jax.random.key(1), (6, 5, 2))
    y = jnp.sin(x[..., 0])

    def batch_loss(p, batch):
        inputs, targets = batch
        return jnp.mean((jax.vmap(eqx.combine(p, static))(inputs)[:, 0] - targets) ** 2)

    vmapped = batch_gradients(batch_loss, params, (x, y))
    looped = _per_batch_grads_by_loop(model, x, y)
    for a, b in zip(jax.tree_util.tree_leaves(vmapped), jax.tree_util.tree_leaves(looped), strict=True):
        assert a.shape[0] == 6
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def _numpy_stats(grads: list[np.ndarray]):
    """The paper's numpy recipe: elementwise mean / std (ddof 0) / rms over batches, then norms."""
    flat = np.concatenate([g.reshape(g.shape[0], -1) for g in grads], axis=1).astype(np.float64)
    mean, std, rms = flat.mean(0), flat.std(0), np.sqrt((flat**2).mean(0))
    return np.linalg.norm(mean), np.linalg.norm(std), np.linalg.norm(rms)


def test_snr_uses_weights_only_and_matches_numpy():
    model = _mlp()
    params = eqx.filter(model, eqx.is_inexact_array)
    rng = np.random.default_rng(0)
    # Random "batch gradients" shaped like the parameters, B = 7.
    grads = jax.tree_util.tree_map(lambda p: jnp.asarray(rng.normal(size=(7, *p.shape)), jnp.float32), params)
    stats = batch_gradient_snr(grads)
    weights = [np.asarray(layer.weight) for layer in grads.layers]
    mean, std, rms = _numpy_stats(weights)
    np.testing.assert_allclose(stats.mean_norm, mean, rtol=1e-5)
    np.testing.assert_allclose(stats.std_norm, std, rtol=1e-5)
    np.testing.assert_allclose(stats.rms_norm, rms, rtol=1e-5)
    np.testing.assert_allclose(stats.snr, mean / std, rtol=1e-5)
    np.testing.assert_allclose(stats.order, mean / rms, rtol=1e-5)
    per_layer = [np.divide(*_numpy_stats([w])[:2]) for w in weights]
    np.testing.assert_allclose(stats.layer_snr, per_layer, rtol=1e-5)
    assert gradient_leaf_names(params) == [f"layers[{i}].weight" for i in range(3)]

    with_biases = batch_gradient_snr(grads, include_biases=True)
    every_leaf = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(grads)]
    np.testing.assert_allclose(with_biases.mean_norm, _numpy_stats(every_leaf)[0], rtol=1e-5)
    assert with_biases.layer_snr.shape == (6,)
    assert len(gradient_leaf_names(params, include_biases=True)) == 6


def test_identical_batches_have_infinite_snr_and_unit_order():
    grads = {"weight": jnp.ones((4, 3, 2))}
    stats = batch_gradient_snr(grads, include_biases=True)
    assert float(stats.std_norm) == 0.0
    assert np.isinf(float(stats.snr))
    assert float(stats.order) == pytest.approx(1.0)


def test_zero_mean_batches_have_zero_snr():
    grads = {"weight": jnp.array([[1.0, -2.0], [-1.0, 2.0]])}  # opposite gradients cancel
    stats = batch_gradient_snr(grads, include_biases=True)
    assert float(stats.snr) == 0.0 and float(stats.order) == 0.0


def test_no_weight_leaves_is_an_error():
    with pytest.raises(ValueError, match="weight"):
        batch_gradient_snr({"bias": jnp.ones((2, 3))})


def test_snr_is_jit_and_vmap_safe():
    rng = np.random.default_rng(1)
    grads = {"weight": jnp.asarray(rng.normal(size=(3, 5, 4, 2)), jnp.float32)}  # 3 models x 5 batches
    batched = jax.jit(jax.vmap(lambda g: batch_gradient_snr(g, include_biases=True)))(grads)
    for model in range(3):
        single = batch_gradient_snr({"weight": grads["weight"][model]}, include_biases=True)
        np.testing.assert_allclose(batched.snr[model], single.snr, rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.floats(min_value=0.0, max_value=1e4, allow_nan=False))
def test_order_and_snr_are_inverse(snr):
    order = float(order_from_snr(snr))
    assert 0.0 <= order <= 1.0
    if order < 0.999:  # float32 cannot invert the identity closer to 1
        assert float(snr_from_order(order)) == pytest.approx(snr, rel=1e-3, abs=1e-6)


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=2, max_value=6), st.integers(min_value=0, max_value=10_000))
def test_order_identity_holds_for_random_gradients(batches, seed):
    # ||rho||^2 = ||mu||^2 + ||sigma||^2 (ddof 0), hence order = snr / sqrt(1 + snr^2).
    rng = np.random.default_rng(seed)
    grads = {"weight": jnp.asarray(rng.normal(loc=rng.normal(), size=(batches, 4, 3)), jnp.float32)}
    stats = batch_gradient_snr(grads, include_biases=True)
    assert float(stats.order) == pytest.approx(float(order_from_snr(stats.snr)), rel=1e-4)
