import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit import nn
from pinnkit.derivatives import axis_derivatives, mixed_derivative, partial_derivatives


def wave(point):
    x, t = point[0], point[1]
    return jnp.sin(3.0 * x) * jnp.exp(-0.5 * t)


@pytest.mark.parametrize("x,t", [(0.3, 0.2), (-1.1, 0.9), (0.0, 0.0)])
def test_axis_derivatives_match_closed_forms(x, t):
    point = jnp.array([x, t])
    u, u_x, u_xx, u_xxx = axis_derivatives(wave, point, 0, 3)
    decay = np.exp(-0.5 * t)
    np.testing.assert_allclose(u, np.sin(3 * x) * decay, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(u_x, 3 * np.cos(3 * x) * decay, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(u_xx, -9 * np.sin(3 * x) * decay, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(u_xxx, -27 * np.cos(3 * x) * decay, rtol=1e-5, atol=1e-5)
    _, u_t, u_tt = axis_derivatives(wave, point, 1, 2)
    np.testing.assert_allclose(u_t, -0.5 * np.sin(3 * x) * decay, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(u_tt, 0.25 * np.sin(3 * x) * decay, rtol=1e-5, atol=1e-6)


def test_mixed_derivatives_match_closed_forms():
    point = jnp.array([0.4, 0.7])
    f = lambda p: p[0] ** 3 * jnp.sin(p[1])
    x, y = 0.4, 0.7
    np.testing.assert_allclose(mixed_derivative(f, point, (0, 1)), 3 * x**2 * np.cos(y), rtol=1e-5)
    np.testing.assert_allclose(mixed_derivative(f, point, (0, 0, 1)), 6 * x * np.cos(y), rtol=1e-5)
    np.testing.assert_allclose(mixed_derivative(f, point, (0, 1, 1)), -3 * x**2 * np.sin(y), rtol=1e-5)
    np.testing.assert_allclose(mixed_derivative(f, point, (1, 1, 1)), -(x**3) * np.cos(y), rtol=1e-5)


def test_partial_derivatives_collects_each_kind():
    point = jnp.array([0.4, 0.7])
    f = lambda p: p[0] ** 3 * jnp.sin(p[1])
    x, y = 0.4, 0.7
    got = partial_derivatives(f, point, [(), (0,), (0, 0), (1, 1), (0, 1)])
    expected = {
        (): x**3 * np.sin(y),
        (0,): 3 * x**2 * np.sin(y),
        (0, 0): 6 * x * np.sin(y),
        (1, 1): -(x**3) * np.sin(y),
        (0, 1): 3 * x**2 * np.cos(y),
    }
    for index, value in expected.items():
        np.testing.assert_allclose(got[index], value, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_taylor_mode_agrees_with_nested_reverse_mode_on_a_network():
    model = nn.MLP(2, 1, width=16, depth=3, key=jax.random.key(0))
    u = lambda p: model(p)[0]
    points = jax.random.uniform(jax.random.key(1), (7, 2), minval=-1, maxval=1)
    taylor = jax.vmap(lambda p: jnp.stack(axis_derivatives(u, p, 0, 3)))(points)
    d1 = jax.grad(u)
    d2 = lambda p: jax.grad(lambda q: d1(q)[0])(p)
    d3 = lambda p: jax.grad(lambda q: d2(q)[0])(p)
    reverse = jax.vmap(lambda p: jnp.stack([u(p), d1(p)[0], d2(p)[0], d3(p)[0]]))(points)
    np.testing.assert_allclose(taylor, reverse, rtol=2e-4, atol=2e-5)


def test_bad_axis_and_order_raise():
    with pytest.raises(ValueError, match="axis 2"):
        axis_derivatives(wave, jnp.zeros(2), 2, 1)
    with pytest.raises(ValueError, match="order"):
        axis_derivatives(wave, jnp.zeros(2), 0, 0)


@pytest.mark.parametrize("activation", ["tanh", "sin"])
@pytest.mark.slow
def test_batched_mlp_series_match_per_point_taylor_mode(activation):
    from pinnkit.derivatives import batch_axis_derivatives

    model = nn.MLP(2, 2, width=16, depth=3, activation=activation, domain=((-1.0, 0.0), (1.0, 2.0)),
                   key=jax.random.key(3))
    points = jax.random.uniform(jax.random.key(4), (9, 2))
    fast = batch_axis_derivatives(model, points, {0: 3, 1: 2})
    # A plain function is not an MLP, so this takes the generic per-point path.
    generic = batch_axis_derivatives(lambda p: model(p), points, {0: 3, 1: 2})
    for axis in (0, 1):
        assert len(fast[axis]) == len(generic[axis])
        for got, expected in zip(fast[axis], generic[axis]):
            assert got.shape == (9, 2)
            np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)
