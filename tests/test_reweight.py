"""Tests of pinnkit.reweight: the paper's RBA rule, its invariants, optax use, the gradient-aware variant."""

from __future__ import annotations

from typing import NamedTuple

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinnkit.reweight import RBAState, gradient_aware_rba, rba, sample_weights, weighted_mse

FAST = settings(max_examples=25, deadline=None)

residual_vectors = hnp.arrays(
    np.float32,
    6,
    elements=st.one_of(st.just(0.0), st.floats(-1e3, 1e3, width=32, allow_subnormal=False)),
)


def _run(transform, residual_sequence, **extra):
    state = transform.init(None)
    for residuals in residual_sequence:
        _, state = transform.update(None, state, residuals=jnp.asarray(residuals), **extra)
    return state


# ------------------------------------------------------------------------------------------------------------
# The paper's rule on hand-computed cases


def test_two_steps_by_hand_max():
    state = _run(rba(3, eta=0.1, gamma=0.5), [[1.0, -2.0, 4.0]])
    # q = |r| / 4 = [0.25, 0.5, 1]; w = 0.1 q
    np.testing.assert_allclose(state.weights, [0.025, 0.05, 0.1], rtol=1e-6)
    state = _run(rba(3, eta=0.1, gamma=0.5), [[1.0, -2.0, 4.0], [2.0, 0.0, -1.0]])
    # q = [1, 0, 0.5]; w = 0.5 [0.025, 0.05, 0.1] + 0.1 q
    np.testing.assert_allclose(state.weights, [0.1125, 0.025, 0.1], rtol=1e-6)
    assert int(state.count) == 2


def test_minmax_by_hand():
    state = _run(rba(3, eta=0.1, gamma=0.5, normalize="minmax"), [[1.0, -2.0, 4.0], [3.0, 1.0, -2.0]])
    # step 1: |r| in [1, 4]: q = [0, 1/3, 1]; step 2: |r| = [3, 1, 2] in [1, 3]: q = [1, 0, 1/2]
    np.testing.assert_allclose(state.weights, [0.1, 0.1 / 6, 0.1], rtol=1e-6)


def test_init_residual_sets_normalized_residual_first():
    transform = rba(3, init="residual")  # defaults: eta / (1 - gamma) = 1
    state = _run(transform, [[1.0, -2.0, 4.0]])
    np.testing.assert_allclose(state.weights, [0.25, 0.5, 1.0], rtol=1e-6)
    state = _run(transform, [[1.0, -2.0, 4.0], [2.0, 0.0, -1.0]])
    np.testing.assert_allclose(
        state.weights, 0.999 * np.array([0.25, 0.5, 1.0]) + 1e-3 * np.array([1.0, 0.0, 0.5]), rtol=1e-6
    )


def test_init_residual_respects_a_cap_below_one():
    state = _run(rba(2, eta=0.01, gamma=0.5, init="residual"), [[1.0, 2.0]])  # cap 0.02
    np.testing.assert_allclose(state.weights, [0.01, 0.02], rtol=1e-6)


def test_closed_form_ramp_from_zero():
    # Constant residuals from w = 0: w_k = eta (1 - gamma^k) / (1 - gamma) q.
    eta, gamma, k = 0.05, 0.9, 20
    residuals = np.array([3.0, -1.0, 0.5, 6.0], np.float32)
    state = _run(rba(4, eta=eta, gamma=gamma), [residuals] * k)
    expected = eta * (1 - gamma**k) / (1 - gamma) * np.abs(residuals) / 6.0
    np.testing.assert_allclose(state.weights, expected, rtol=1e-5)


@FAST
@given(residual_vectors.filter(lambda r: np.abs(r).max() > 0))
def test_fixed_point(residuals):
    eta, gamma = 0.05, 0.8  # cap 0.25; gamma^200 ~ 4e-20
    step = jax.jit(lambda s: rba(6, eta=eta, gamma=gamma).update(None, s, residuals=residuals)[1])
    state = rba(6, eta=eta, gamma=gamma).init(None)
    for _ in range(200):
        state = step(state)
    expected = eta / (1 - gamma) * np.abs(residuals) / np.abs(residuals).max()
    np.testing.assert_allclose(state.weights, expected, rtol=1e-5, atol=1e-7)


@FAST
@given(
    st.lists(residual_vectors, min_size=1, max_size=6),
    st.floats(1e-4, 1.0),
    st.floats(0.05, 0.999),
    st.sampled_from(["max", "minmax"]),
    st.sampled_from(["zeros", "residual"]),
)
def test_weights_stay_in_bounds(sequence, eta, gamma, normalize, init):
    cap = eta / (1 - gamma)
    state = rba(6, eta=eta, gamma=gamma, normalize=normalize, init=init).init(None)
    transform = rba(6, eta=eta, gamma=gamma, normalize=normalize, init=init)
    expected = np.zeros(6)
    for step, residuals in enumerate(sequence):
        _, state = transform.update(None, state, residuals=residuals)
        weights = np.asarray(state.weights)
        assert np.all(np.isfinite(weights))
        assert np.all(weights >= 0)
        assert np.all(weights <= cap * (1 + 1e-6))
        # And they are the paper's rule, in float64: lambda <- gamma lambda + eta q (init="residual": the first
        # update sets lambda = min(1, cap) q, eta = 1 capped to keep the bound).
        target = _numpy_target(residuals, normalize)
        expected = min(1.0, cap) * target if init == "residual" and step == 0 else gamma * expected + eta * target
        np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6 * cap)


def _numpy_target(residuals, normalize):
    """The paper's q = |r| / max|r| (or (|r| - min|r|) / (max|r| - min|r|)), 0 for a batch without a span."""
    magnitude = np.abs(np.asarray(residuals, np.float64))
    offset = 0.0 if normalize == "max" else magnitude.min()
    # XLA on CPU flushes subnormal floats to zero: so does this truth, for the differences it divides.
    shifted = np.where(magnitude - offset >= np.finfo(np.float32).tiny, magnitude - offset, 0.0)
    span = shifted.max()
    return shifted / span if span > 0 else np.zeros_like(magnitude)


@pytest.mark.parametrize("normalize, residuals", [("max", [0.0, 0.0, 0.0]), ("minmax", [2.0, -2.0, 2.0])])
def test_degenerate_batch_gives_zero_target(normalize, residuals):
    transform = rba(3, eta=0.1, gamma=0.5, normalize=normalize)
    state = _run(transform, [[1.0, 2.0, 4.0], residuals])
    first = _run(transform, [[1.0, 2.0, 4.0]]).weights
    # q = 0 for the degenerate batch: the weights only decay.
    np.testing.assert_allclose(state.weights, 0.5 * first, rtol=1e-6)
    assert np.all(np.isfinite(state.weights))


def test_residuals_are_stop_gradiented():
    transform = rba(3, eta=0.1, gamma=0.5, init="residual")

    def total_weight(residuals):
        return jnp.sum(transform.update(None, transform.init(None), residuals=residuals)[1].weights)

    np.testing.assert_array_equal(jax.grad(total_weight)(jnp.array([1.0, 2.0, 3.0])), 0.0)


# ------------------------------------------------------------------------------------------------------------
# Mini-batches and dict-valued weights


def test_indices_scatter_by_hand():
    transform = rba(6, eta=0.1, gamma=0.5)
    state = _run(transform, [np.arange(1.0, 7.0)])
    before = np.asarray(state.weights)
    _, state = transform.update(None, state, residuals=jnp.array([1.0, -2.0]), indices=jnp.array([1, 4]))
    expected = before.copy()
    expected[[1, 4]] = 0.5 * before[[1, 4]] + 0.1 * np.array([0.5, 1.0])  # batch max is 2
    np.testing.assert_allclose(state.weights, expected, rtol=1e-6)


@FAST
@given(st.data())
@pytest.mark.slow
def test_indices_touch_only_their_entries(data):
    size = 8
    indices = data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=size, unique=True))
    # XLA on CPU flushes subnormal floats to zero; the numpy truth below would not, so draw normal floats only.
    batch = data.draw(hnp.arrays(np.float32, len(indices),
                                 elements=st.floats(-10, 10, width=32, allow_subnormal=False)))
    transform = rba(size, eta=0.1, gamma=0.5)
    state = _run(transform, [np.linspace(1.0, 2.0, size)])
    before = np.asarray(state.weights)
    _, state = transform.update(None, state, residuals=batch, indices=jnp.array(indices))
    after = np.asarray(state.weights)
    untouched = np.setdiff1d(np.arange(size), indices)
    np.testing.assert_array_equal(after[untouched], before[untouched])
    scale = np.abs(batch).max()
    target = np.abs(batch) / scale if scale > 0 else np.zeros_like(batch)
    np.testing.assert_allclose(after[indices], 0.5 * before[indices] + 0.1 * target, rtol=1e-5, atol=1e-7)


def test_dict_weights_per_term_with_extra_keys_and_partial_indices():
    transform = rba({"pde": 4, "bc": 2}, eta=0.1, gamma=0.5)
    state = transform.init(None)
    assert set(state.weights) == {"pde", "bc"}
    residuals = {"pde": jnp.array([1.0, 2.0, 4.0, 0.0]), "bc": jnp.array([3.0, 1.0]), "ic": jnp.ones(5)}
    _, state = transform.update(None, state, residuals=residuals)
    np.testing.assert_allclose(state.weights["pde"], 0.1 * np.array([0.25, 0.5, 1.0, 0.0]), rtol=1e-6)
    np.testing.assert_allclose(state.weights["bc"], 0.1 * np.array([1.0, 1 / 3]), rtol=1e-6)
    # Only "pde" is mini-batched; "bc" is updated in full.
    _, state2 = transform.update(
        None,
        state,
        residuals={"pde": jnp.array([5.0]), "bc": jnp.array([1.0, 1.0])},
        indices={"pde": jnp.array([3])},
    )
    np.testing.assert_allclose(state2.weights["pde"], [0.025, 0.05, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(state2.weights["bc"], 0.5 * state.weights["bc"] + 0.1, rtol=1e-6)


# ------------------------------------------------------------------------------------------------------------
# jit, vmap, chains


def test_jit_matches_eager():
    transform = rba(5, eta=0.01, gamma=0.9, init="residual")
    sequence = jax.random.normal(jax.random.key(0), (4, 5))
    jitted = jax.jit(lambda s, r: transform.update(None, s, residuals=r)[1])
    eager_state = jit_state = transform.init(None)
    for residuals in sequence:
        eager_state = transform.update(None, eager_state, residuals=residuals)[1]
        jit_state = jitted(jit_state, residuals)
    np.testing.assert_allclose(jit_state.weights, eager_state.weights, rtol=1e-6)
    assert int(jit_state.count) == 4


@pytest.mark.parametrize("factory", [rba, gradient_aware_rba])
def test_vmap_over_seeds_equals_separate_runs(factory):
    transform = factory(5, eta=0.01, gamma=0.9, init="residual")
    seeds, steps = 3, 4
    residuals = jax.random.normal(jax.random.key(1), (steps, seeds, 5))
    norms = jnp.abs(jax.random.normal(jax.random.key(2), (steps, seeds, 5)))
    extra = (lambda n: {"sample_gradient_norms": n}) if factory is gradient_aware_rba else (lambda n: {})

    def step(state, r, n):
        return transform.update(None, state, residuals=r, **extra(n))[1]

    stacked = jax.vmap(lambda _: transform.init(None))(jnp.arange(seeds))
    for k in range(steps):
        stacked = jax.vmap(step)(stacked, residuals[k], norms[k])
    for seed in range(seeds):
        state = transform.init(None)
        for k in range(steps):
            state = step(state, residuals[k, seed], norms[k, seed])
        np.testing.assert_allclose(stacked.weights[seed], state.weights, rtol=1e-6)
    np.testing.assert_allclose(sample_weights(stacked), stacked.weights)


@pytest.mark.parametrize("optimizer", [optax.adam(1e-2), optax.sgd(1e-2, momentum=0.9)], ids=["adam", "sgd"])
def test_chain_leaves_updates_unchanged(optimizer):
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    chained = optax.chain(rba(3, eta=0.1, gamma=0.5), optimizer)
    chained_state, plain_state = chained.init(params), optimizer.init(params)
    for k in range(3):
        grads = jax.tree.map(lambda p: jnp.sin(p + k), params)
        residuals = jnp.array([1.0, 2.0, 3.0]) * (k + 1)
        chained_updates, chained_state = chained.update(grads, chained_state, params, residuals=residuals)
        plain_updates, plain_state = optimizer.update(grads, plain_state, params)
        jax.tree.map(np.testing.assert_array_equal, chained_updates, plain_updates)
        params = optax.apply_updates(params, plain_updates)
    assert float(jnp.max(sample_weights(chained_state))) > 0


# ------------------------------------------------------------------------------------------------------------
# L-BFGS: frozen weights in value_fn, which names residuals and indices

_X = jnp.linspace(-1.0, 1.0, 16)


def _pde_residuals(params):
    return jnp.tanh(params[0] * _X + params[1]) - jnp.tanh(0.8 * _X - 0.2)


def _loss(params, weights):
    # The paper's form: weighted residual loss + an unweighted data term.
    return weighted_mse(_pde_residuals(params), weights) + (params[0] - 0.8) ** 2


def _lbfgs_run(steps, *, cached):
    """chain(rba, lbfgs) with the weights frozen into value_fn per step; returns plain mse before, after."""
    solver = optax.chain(rba(16, eta=0.1, gamma=0.9, init="residual"), optax.lbfgs())
    params = jnp.array([2.0, 1.0])
    state = solver.init(params)

    @jax.jit
    def step(params, state):
        frozen = sample_weights(state)

        def value_fn(p, residuals=None, indices=None):
            del residuals, indices
            return _loss(p, frozen)

        if cached:
            value, grad = optax.value_and_grad_from_state(value_fn)(params, state=state)
        else:
            value, grad = jax.value_and_grad(value_fn)(params)
        updates, state = solver.update(
            grad, state, params, value=value, grad=grad, value_fn=value_fn, residuals=_pde_residuals(params)
        )
        return optax.apply_updates(params, updates), state

    start = float(weighted_mse(_pde_residuals(params)))
    for _ in range(steps):
        params, state = step(params, state)
    assert float(jnp.max(sample_weights(state))) > 0
    return start, float(weighted_mse(_pde_residuals(params)))


def test_lbfgs_with_frozen_weights_decreases_the_loss():
    start, end = _lbfgs_run(15, cached=False)
    assert end < 1e-6 * start


def test_lbfgs_cached_value_goes_stale_when_the_weights_move():
    # value_and_grad_from_state returns the value the line search cached under the previous step's weights;
    # while RBA moves the weights, the zoom line search compares against that stale value and stalls.
    # The docs warn about this; this test keeps the warning true.
    start, end = _lbfgs_run(15, cached=True)
    assert end > 0.5 * start


@pytest.mark.parametrize("style", ["positional_only", "var_keyword"])
def test_lbfgs_rejects_value_fn_that_does_not_name_the_extra_args(style):
    solver = optax.chain(rba(16), optax.lbfgs())
    params = jnp.array([2.0, 1.0])
    state = solver.init(params)
    frozen = sample_weights(state)
    if style == "positional_only":
        value_fn = lambda p: _loss(p, frozen)
    else:
        value_fn = lambda p, **kwargs: _loss(p, frozen)  # **kwargs does not count as naming them
    value, grad = jax.value_and_grad(value_fn)(params)
    with pytest.raises(TypeError, match="residuals"):
        solver.update(grad, state, params, value=value, grad=grad, value_fn=value_fn, residuals=jnp.ones(16))


# ------------------------------------------------------------------------------------------------------------
# sample_weights


class _OtherState(NamedTuple):
    weights: jnp.ndarray


def test_sample_weights_found_in_chain_and_inject_hyperparams():
    params = jnp.zeros(2)
    residuals = jnp.array([1.0, 2.0, 4.0])
    expected = 0.1 * residuals / 4.0
    optimizers = [
        optax.chain(rba(3, eta=0.1, gamma=0.5), optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)),
        optax.inject_hyperparams(rba, static_args="num_samples")(3, eta=0.1, gamma=0.5),
        optax.chain(optax.clip(1.0), optax.chain(optax.sgd(0.1), rba(3, eta=0.1, gamma=0.5))),
    ]
    for optimizer in optimizers:
        state = optimizer.init(params)
        _, state = jax.jit(lambda s: optimizer.update(jnp.ones(2), s, params, residuals=residuals))(state)
        np.testing.assert_allclose(sample_weights(state), expected, rtol=1e-6)


def test_sample_weights_none_when_absent_and_ignores_other_weights_fields():
    assert sample_weights(optax.adam(1e-3).init(jnp.zeros(2))) is None
    assert sample_weights((_OtherState(weights=jnp.ones(3)), {"weights": jnp.ones(2)})) is None
    rba_state = rba(4).init(None)
    found = sample_weights((_OtherState(weights=jnp.ones(3)), rba_state))
    np.testing.assert_array_equal(found, np.zeros(4))


def test_sample_weights_rejects_two_rba_states():
    state = optax.chain(rba(3), gradient_aware_rba(3)).init(None)
    with pytest.raises(ValueError, match="more than one"):
        sample_weights(state)


# ------------------------------------------------------------------------------------------------------------
# weighted_mse


def test_weighted_mse_weight_inside_the_square():
    residuals, weights = jnp.array([1.0, -2.0, 3.0]), jnp.array([2.0, 0.5, 0.0])
    # ((2*1)^2 + (0.5*-2)^2 + 0) / 3 = 5/3, not mean(w r^2) = (2 + 2) / 3
    np.testing.assert_allclose(weighted_mse(residuals, weights), 5 / 3, rtol=1e-6)
    np.testing.assert_allclose(weighted_mse(residuals), 14 / 3, rtol=1e-6)
    terms = {"pde": residuals, "bc": jnp.array([1.0, 3.0])}
    np.testing.assert_allclose(weighted_mse(terms, {"pde": weights}), 5 / 3 + 5, rtol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        weighted_mse(residuals, jnp.ones(2))
    with pytest.raises(ValueError, match="'ic'"):
        weighted_mse(terms, {"ic": jnp.ones(2)})


# ------------------------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        ({"num_samples": 0}, ValueError, "num_samples"),
        ({"num_samples": 2.5}, TypeError, "num_samples"),
        ({"num_samples": True}, TypeError, "num_samples"),
        ({"num_samples": {"pde": -1}}, ValueError, "pde"),
        ({"num_samples": {}}, ValueError, "num_samples"),
        ({"num_samples": 3, "eta": 0.0}, ValueError, "eta"),
        ({"num_samples": 3, "gamma": 1.0}, ValueError, "gamma"),
        ({"num_samples": 3, "gamma": 0.0}, ValueError, "gamma"),
        ({"num_samples": 3, "gamma": "0.9"}, TypeError, "gamma"),
        ({"num_samples": 3, "normalize": "sum"}, ValueError, "sum"),
        ({"num_samples": 3, "init": "ones"}, ValueError, "ones"),
        ({"num_samples": 3, "init": 0.5}, ValueError, "0.5"),
        ({"num_samples": 3, "snr_coupling": 0.0}, ValueError, "snr_coupling"),
    ],
)
def test_rba_rejects_bad_hyperparameters(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        rba(**kwargs)


def test_update_rejects_mismatched_residuals():
    transform = rba(3)
    state = transform.init(None)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        transform.update(None, state, residuals=jnp.ones(4))
    with pytest.raises(TypeError, match="mapping"):
        transform.update(None, state, residuals={"pde": jnp.ones(3)})
    with pytest.raises(ValueError, match="indices"):
        transform.update(None, state, residuals=jnp.ones(2), indices=jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match="'bc'"):
        rba({"pde": 2, "bc": 2}).update(
            None, rba({"pde": 2, "bc": 2}).init(None), residuals={"pde": jnp.ones(2)}
        )
    with pytest.raises(TypeError, match="residuals"):
        transform.update(None, state)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"gradient_power": -1.0}, "gradient_power"), ({"snr_coupling": 0.0}, "snr_coupling")],
)
def test_gradient_aware_rejects_bad_hyperparameters(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        gradient_aware_rba(3, **kwargs)


# ------------------------------------------------------------------------------------------------------------
# Gradient-aware variant


def test_gradient_aware_by_hand():
    transform = gradient_aware_rba(3, eta=0.1, gamma=0.5, gradient_power=2.0)
    state = transform.update(
        None,
        transform.init(None),
        residuals=jnp.array([2.0, 4.0, 4.0]),
        sample_gradient_norms=jnp.array([1.0, 1.0, 3.0]),
    )[1]
    # a = [0.5, 1, 1]; g_ref = median = 1; h = (1/(g+1))^2 = [1/4, 1/4, 1/16]; a h = [1/8, 1/4, 1/16]
    # q = a h / max = [0.5, 1, 0.25]
    np.testing.assert_allclose(state.weights, 0.1 * np.array([0.5, 1.0, 0.25]), rtol=1e-6)


@FAST
@given(residual_vectors, hnp.arrays(np.float32, 6, elements=st.floats(0, 1e3, width=32)))
def test_gradient_power_zero_is_plain_rba(residuals, norms):
    plain = rba(6, eta=0.1, gamma=0.5).update(None, rba(6).init(None), residuals=residuals)[1]
    aware = gradient_aware_rba(6, eta=0.1, gamma=0.5, gradient_power=0.0)
    state = aware.update(None, aware.init(None), residuals=residuals, sample_gradient_norms=norms)[1]
    # Equal up to rounding: XLA's float32 division is not always correctly rounded (x / x can be 1 - ulp).
    np.testing.assert_allclose(state.weights, plain.weights, rtol=1e-6, atol=1e-9)


@FAST
@given(
    st.lists(
        st.tuples(residual_vectors, hnp.arrays(np.float32, 6, elements=st.floats(0, 1e3, width=32))),
        min_size=1,
        max_size=5,
    ),
    st.floats(0.0, 4.0),
    st.one_of(st.none(), st.floats(1e-3, 1e3)),
    st.floats(1e-4, 100.0),
)
def test_gradient_aware_bounds(sequence, power, snr, snr_coupling):
    eta, gamma = 0.02, 0.95
    transform = gradient_aware_rba(6, eta=eta, gamma=gamma, gradient_power=power, snr_coupling=snr_coupling,
                                   snr_warmup=0)
    state = transform.init(None)
    for residuals, norms in sequence:
        _, state = transform.update(None, state, residuals=residuals, sample_gradient_norms=norms, snr=snr)
        weights = np.asarray(state.weights)
        assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
        assert np.all(weights <= eta / (1 - gamma) * (1 + 1e-6))


@FAST
@given(st.floats(0.1, 10.0), st.floats(0.0, 5.0), st.floats(0.0, 5.0), st.floats(0.1, 3.0))
def test_smaller_gradient_gets_larger_weight(residual, small, extra, power):
    big = small + extra + 1e-2
    transform = gradient_aware_rba(4, eta=0.1, gamma=0.5, gradient_power=power)
    state = transform.update(
        None,
        transform.init(None),
        residuals=jnp.array([residual, residual, 0.5 * residual, 2.0 * residual]),
        sample_gradient_norms=jnp.array([small, big, 1.0, 1.0]),
    )[1]
    assert state.weights[0] > state.weights[1]


def test_snr_modulates_the_rate_not_the_target():
    transform = gradient_aware_rba(3, eta=0.1, gamma=0.5, snr_coupling=1.0, snr_warmup=0)
    residuals, norms = jnp.array([1.0, 2.0, 4.0]), jnp.ones(3)

    def after(snr, steps=1, state=None):
        state = state or transform.init(None)
        for _ in range(steps):
            _, state = transform.update(
                None, state, residuals=residuals, sample_gradient_norms=norms, snr=snr
            )
        return np.asarray(state.weights)

    target = 0.1 / (1 - 0.5) * np.array([0.25, 0.5, 1.0])
    low, high = after(0.5), after(4.0)  # s = 1 and s = 1/4
    np.testing.assert_allclose(low, 0.1 * target / 0.2, rtol=1e-6)  # full RBA rate: gamma w + eta q
    np.testing.assert_allclose(high, 0.25 * low, rtol=1e-6)  # rate scaled by s = 1/4 from w = 0
    assert np.all(np.abs(target - low) < np.abs(target - high))
    np.testing.assert_array_equal(after(None), low)  # snr None: no modulation
    # Same fixed point for any snr: the rate is 1 - s (1 - gamma) = 0.875 for s = 1/4.
    np.testing.assert_allclose(after(4.0, steps=300), target, rtol=1e-5)


def test_gradient_aware_requires_sample_gradient_norms():
    transform = gradient_aware_rba(3)
    with pytest.raises(TypeError, match="sample_gradient_norms"):
        transform.update(None, transform.init(None), residuals=jnp.ones(3))


def test_hyperparameters_can_be_traced_under_inject_hyperparams():
    optimizer = optax.inject_hyperparams(rba, static_args="num_samples")(
        2, eta=optax.linear_schedule(0.1, 0.2, 1), gamma=0.5
    )
    state = optimizer.init(jnp.zeros(1))
    step = jax.jit(
        lambda s: optimizer.update(jnp.ones(1), s, jnp.zeros(1), residuals=jnp.array([1.0, 2.0]))[1]
    )
    state = step(step(state))
    # eta = 0.1 then 0.2: w = 0.5 * 0.1 q + 0.2 q with q = [0.5, 1]
    np.testing.assert_allclose(sample_weights(state), 0.25 * np.array([0.5, 1.0]), rtol=1e-6)
    assert isinstance(optax.tree.get(state, "RBAState"), RBAState)
