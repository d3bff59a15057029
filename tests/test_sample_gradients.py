"""Tests of the per-sample gradient-norm estimator against exact Jacobians and Gaussian-projection theory."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from pinnkit.diagnostics.sample_gradients import sample_gradient_norms

NUM_POINTS = 12


@pytest.fixture(scope="module")
def mlp_problem():
    model = eqx.nn.MLP(2, "scalar", width_size=16, depth=2, activation=jnp.tanh, key=jax.random.key(0))
    points = jax.random.uniform(jax.random.key(1), (NUM_POINTS, 2), minval=-1.0, maxval=1.0)

    def residual_fn(net):
        # r_i = u(x_i) - sin(pi x_i0) cos(x_i1): a fitting residual of the MLP
        target = jnp.sin(jnp.pi * points[:, 0]) * jnp.cos(points[:, 1])
        return jax.vmap(net)(points) - target

    return model, residual_fn


def _exact_by_hand(model, residual_fn):
    """Per-sample norms from the flattened (N, P) Jacobian: an independent assembly of the same quantity."""
    theta, fixed = eqx.partition(model, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(theta)
    jacobian = jax.jacfwd(lambda f: residual_fn(eqx.combine(unravel(f), fixed)))(flat)
    return np.linalg.norm(np.asarray(jacobian, np.float64), axis=1)


def test_exact_matches_a_linear_model_by_hand():
    x = jnp.array([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]])
    params = {"w": jnp.array([0.3, -0.7]), "b": jnp.array(1.5), "step": 3}  # the int leaf is held fixed
    norms = sample_gradient_norms(lambda p: x @ p["w"] + p["b"] * p["step"], params, None, exact=True)
    # d r_i / d(w, b) = (x_i, step)
    np.testing.assert_allclose(norms, np.sqrt(np.sum(np.asarray(x) ** 2, axis=1) + 9.0), rtol=1e-6)


@pytest.mark.slow
def test_exact_matches_flattened_jacobian(mlp_problem):
    model, residual_fn = mlp_problem
    norms = sample_gradient_norms(residual_fn, model, None, exact=True)
    assert norms.shape == (NUM_POINTS,)
    np.testing.assert_allclose(norms, _exact_by_hand(model, residual_fn), rtol=1e-5)


@pytest.mark.slow
def test_squared_estimate_is_unbiased(mlp_problem):
    model, residual_fn = mlp_problem
    exact_squared = _exact_by_hand(model, residual_fn) ** 2
    keys = jax.random.split(jax.random.key(2), 400)
    estimate = jax.jit(jax.vmap(lambda k: sample_gradient_norms(residual_fn, model, k, num_projections=8)))
    squared = np.asarray(estimate(keys), np.float64) ** 2  # (keys, N)
    standard_error = squared.std(axis=0, ddof=1) / np.sqrt(len(keys))
    z_scores = (squared.mean(axis=0) - exact_squared) / standard_error
    assert np.max(np.abs(z_scores)) < 4.5, z_scores
    # The spread itself matches chi^2 theory: relative std of one K-projection estimate is sqrt(2 / K) = 0.5.
    relative_std = squared.std(axis=0, ddof=1) / exact_squared
    np.testing.assert_allclose(relative_std.mean(), 0.5, rtol=0.15)


@pytest.mark.slow
def test_relative_error_shrinks_like_one_over_sqrt_projections(mlp_problem):
    model, residual_fn = mlp_problem
    exact_squared = _exact_by_hand(model, residual_fn) ** 2
    keys = jax.random.split(jax.random.key(3), 500)
    rms_errors = {}
    for num_projections in (2, 32):
        estimate = jax.jit(
            jax.vmap(lambda k: sample_gradient_norms(residual_fn, model, k, num_projections=num_projections))
        )
        squared = np.asarray(estimate(keys), np.float64) ** 2
        rms_errors[num_projections] = np.sqrt(np.mean(((squared - exact_squared) / exact_squared) ** 2))
        # Each projection gives ||J_i||^2 chi^2_1, so the mean of K has relative rms error sqrt(2 / K).
        np.testing.assert_allclose(rms_errors[num_projections], np.sqrt(2 / num_projections), rtol=0.2)
    assert 3.0 < rms_errors[2] / rms_errors[32] < 5.0


def test_same_key_same_estimate_and_keys_differ(mlp_problem):
    model, residual_fn = mlp_problem
    first = sample_gradient_norms(residual_fn, model, jax.random.key(4))
    np.testing.assert_array_equal(first, sample_gradient_norms(residual_fn, model, jax.random.key(4)))
    assert not np.allclose(first, sample_gradient_norms(residual_fn, model, jax.random.key(5)))


@pytest.mark.parametrize("num_projections", [0, -3, 2.5, True])
def test_rejects_bad_num_projections(num_projections):
    with pytest.raises(ValueError, match="num_projections"):
        sample_gradient_norms(
            lambda p: p * jnp.ones(3), jnp.array(1.0), jax.random.key(0), num_projections=num_projections
        )


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="1-D"):
        sample_gradient_norms(lambda p: p * jnp.ones((3, 1)), jnp.array(1.0), jax.random.key(0))
    with pytest.raises(ValueError, match="key"):
        sample_gradient_norms(lambda p: p * jnp.ones(3), jnp.array(1.0), None)
    with pytest.raises(ValueError, match="floating-point"):
        sample_gradient_norms(lambda p: jnp.ones(3) * p["n"], {"n": 2}, jax.random.key(0))
