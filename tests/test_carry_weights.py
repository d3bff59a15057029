"""Sample weights carried onto redrawn collocation points: nearest old point, against a brute-force truth."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinnkit import nn, problems
from pinnkit.engine import LogSchedule, Probes, fit
from pinnkit.reweight import carry_weights, hold_weights, nearest_points, rba, sample_weights, vrba
from pinnkit.sampling import Resampling


def brute_force_nearest(old, new, scale):
    old, new = np.asarray(old, float) / scale, np.asarray(new, float) / scale
    distances = ((new[:, None, :] - old[None, :, :]) ** 2).sum(-1)
    return distances.argmin(axis=1), np.sqrt(distances.min(axis=1))


@settings(deadline=None, max_examples=25)
@given(old=st.integers(1, 60), new=st.integers(1, 70), chunk=st.integers(1, 16), seed=st.integers(0, 10_000))
@pytest.mark.slow
def test_nearest_points_matches_brute_force(old, new, chunk, seed):
    rng = np.random.default_rng(seed)
    old_points = rng.uniform([0.0, -1.0], [1.0, 1.0], (old, 2))
    new_points = rng.uniform([0.0, -1.0], [1.0, 1.0], (new, 2))
    scale = np.array([1.0, 2.0])
    found = np.asarray(nearest_points(jnp.asarray(old_points), jnp.asarray(new_points), scale=scale, chunk=chunk))
    truth, best = brute_force_nearest(old_points, new_points, scale)
    # Equal indices, or an equally near point (a tie within rounding).
    chosen = np.sqrt(((new_points / scale - old_points[found] / scale) ** 2).sum(-1))
    assert np.all((found == truth) | (np.abs(chosen - best) < 1e-6))


def test_a_permutation_of_the_old_points_permutes_the_weights_exactly():
    rng = np.random.default_rng(0)
    points = jnp.asarray(rng.uniform(-1, 1, (50, 2)))
    transform = rba(50, eta=0.1, gamma=0.9)
    state = transform.update(None, transform.init(None), residuals=jnp.asarray(rng.normal(size=50)))[1]
    order = rng.permutation(50)
    carried = carry_weights(state, points, points[order])
    np.testing.assert_array_equal(carried.weights, state.weights[order])
    assert int(carried.count) == int(state.count)  # the annealing clock and the stored SNR are kept
    np.testing.assert_array_equal(carried.snr, state.snr)


def test_a_smooth_weight_field_is_carried_to_within_its_lipschitz_bound():
    # Weights that are a function of place, f(x, t) = sin(3x) t: on new points the carried weight is within
    # L * (distance to the nearest old point) of f there (L = 3 bounds the gradient of f on the domain).
    rng = np.random.default_rng(1)
    old = rng.uniform([-1.0, 0.0], [1.0, 1.0], (2000, 2))
    new = rng.uniform([-1.0, 0.0], [1.0, 1.0], (500, 2))
    field = lambda p: np.sin(3 * p[:, 0]) * p[:, 1]  # noqa: E731
    state = hold_weights(rba(2000)).init(None)
    state = state._replace(inner=state.inner._replace(weights=jnp.asarray(field(old))))
    carried = sample_weights(carry_weights(state, jnp.asarray(old), jnp.asarray(new)))
    _, distance = brute_force_nearest(old, new, np.ones(2))
    error = np.abs(np.asarray(carried) - field(new))
    assert np.all(error <= 3 * np.sqrt(2) * distance + 1e-12)
    assert error.max() < 0.2  # the index-attached weights of before are off by O(1)
    assert np.abs(field(old[:500]) - field(new)).max() > 0.5


def test_chained_stacked_and_per_term_states():
    rng = np.random.default_rng(2)
    old, new = jnp.asarray(rng.uniform(size=(8, 1))), jnp.asarray(rng.uniform(size=(8, 1)))
    index = np.asarray(nearest_points(old, new))
    chain = optax.chain(vrba(8), optax.adam(1e-3))
    stacked = jax.vmap(chain.init)(jnp.zeros((3, 2)))  # three models
    weights = jnp.asarray(rng.uniform(size=(3, 8)))
    stacked = jax.tree_util.tree_map(lambda node: node._replace(weights=weights) if hasattr(node, "weights")
                                     else node, stacked, is_leaf=lambda node: hasattr(node, "weights"))
    np.testing.assert_array_equal(sample_weights(carry_weights(stacked, old, new)), np.asarray(weights)[:, index])
    per_term = rba({"pde": 8, "bc": 2}).init(None)
    per_term = per_term._replace(weights={"pde": jnp.arange(8.0), "bc": jnp.array([5.0, 6.0])})
    carried = carry_weights(per_term, old, new, term="pde")
    np.testing.assert_array_equal(carried.weights["pde"], np.arange(8.0)[index])
    np.testing.assert_array_equal(carried.weights["bc"], [5.0, 6.0])
    plain = optax.adam(1e-3).init(jnp.zeros(2))
    assert carry_weights(plain, old, new) is plain  # no family state: the very same state back


@pytest.mark.parametrize("call, fragment", [
    (lambda old, new: carry_weights(rba(5).init(None), old, new), "6 samples|has 5|5 samples"),
    (lambda old, new: carry_weights(rba({"pde": 6}).init(None), old, new), "pass term"),
    (lambda old, new: carry_weights(rba(6).init(None), old, new, term="pde"), "one array"),
    (lambda old, new: nearest_points(old, new[:, :1]), "shapes"),
    (lambda old, new: nearest_points(old, new, chunk=0), "chunk"),
    (lambda old, new: nearest_points(old, new, scale=jnp.ones(3)), "scale"),
])
def test_bad_arguments_raise_value_error_naming_the_value(call, fragment):
    old = jnp.zeros((6, 2))
    with pytest.raises(ValueError, match=fragment):
        call(old, jnp.ones((4, 2)))


@pytest.mark.slow
def test_training_with_resampling_carries_frozen_weights_by_place():
    # Frozen weights set to a smooth field of place, f(x, t) = 1 + sin(3x) t: after the engine's redraw they
    # follow the field on the new points, within its Lipschitz bound times the distance to the nearest old point
    # (index-attached weights would not). The engine measures distance in units of the domain's extent.
    problem = problems.get("burgers")
    points = problem.sample(jax.random.key(0), 400)
    model = nn.MLP(2, 1, width=8, depth=1, domain=problem.domain, key=jax.random.key(1))
    optimizer = optax.chain(hold_weights(rba(400)), optax.adam(1e-3))
    field = lambda p: 1.0 + np.sin(3 * p[:, 0]) * p[:, 1]  # noqa: E731
    state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    old = np.asarray(points["pde"])
    weights = jnp.asarray(field(old), jnp.result_type(float))
    state = jax.tree_util.tree_map(lambda node: node._replace(weights=weights) if hasattr(node, "weights")
                                   else node, state, is_leaf=lambda node: hasattr(node, "weights"))
    # One redraw, at step 4 (none at the last step).
    result = fit(problem, model, optimizer, points, steps=8, opt_state=state, log=LogSchedule(4),
                 probes=Probes(snr_batches=0), resampling=Resampling(every=4, candidates=4000))
    new = np.asarray(result.points["pde"])
    assert not np.array_equal(new, old)
    carried = np.asarray(sample_weights(result.opt_state))
    _, distance = brute_force_nearest(old, new, np.array([2.0, 1.0]))
    # In units of the extent (u = x / 2, t): f = 1 + sin(6u) t, gradient norm at most sqrt(6^2 + 1).
    assert np.all(np.abs(carried - field(new)) <= np.sqrt(37.0) * distance + 1e-9)
    assert np.abs(np.asarray(weights) - field(new)).max() > 0.5  # what staying at the old indices would give
