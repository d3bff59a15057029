"""Tests of vRBA, the stored-SNR coupling, hold_weights and the stage helpers of pinnkit.reweight.

The expected numbers come from numpy re-derivations written out here (float64, the direct formula
``exp(|r| / eps) / max exp(|r| / eps)`` rather than the module's shifted form) or from hand arithmetic in comments.
"""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinnkit.reweight import (
    EXTRA_ARG_NAMES,
    FrozenWeightsState,
    GradientAwareRBAState,
    HeldWeightsState,
    RBAState,
    gradient_aware_rba,
    hold_weights,
    rba,
    required_extra_args,
    sample_weights,
    transfer_reweighting,
    vrba,
    vrba_target,
    weights_frozen,
)

FAST = settings(max_examples=25, deadline=None)


def _run(transform, residual_sequence, state=None, **extra):
    state = transform.init(None) if state is None else state
    for residuals in residual_sequence:
        _, state = transform.update(None, state, residuals=jnp.asarray(residuals, jnp.float32), **extra)
    return state


def _reference(sequence, *, potential, eta, gamma, c=1.0, phi=1.0, normalize="max", init=0.0, temperature=None):
    """vRBA in float64 numpy, straight from the formulas: q ∝ Phi'(|r| / eps), eps_n = c max|r| / log(n + 2)."""
    weights = np.full(len(sequence[0]), init, np.float64)
    for n, residuals in enumerate(sequence, start=1):
        a = np.abs(np.asarray(residuals, np.float64))
        if potential == "exponential":
            eps = c * a.max() / np.log(n + 2) if temperature is None else temperature
            q = np.exp(a / eps)  # Phi(u) = exp(u), Phi'(u) = exp(u)
        else:
            q = a / a.max()  # Phi(u) = u^2 / 2, Phi'(u) = u; eps cancels in the normalisation
        q = q / q.max() if normalize == "max" else q / q.mean()
        weights = gamma * weights + eta * (phi * q + (1 - phi))
    return weights


SEQUENCE = [[1.0, -2.0, 4.0, 0.5], [3.0, 1.0, -1.0, 2.0], [0.2, 0.4, 0.1, -0.8]]


# ------------------------------------------------------------------------------------------------------------
# vRBA against hand computations


def test_exponential_first_step_by_hand():
    state = _run(vrba(3, eta=0.1, gamma=0.5), [[1.0, -2.0, 4.0]])
    # n = 1: eps = max|r| / log 3 = 4 / log 3, so q / max q = exp((|r| - 4) / eps) = 3 ** (|r| / 4 - 1)
    expected = 0.1 * np.array([3**-0.75, 3**-0.5, 1.0])
    np.testing.assert_allclose(state.weights, expected, rtol=1e-6)
    assert int(state.count) == 1


def test_linear_two_steps_by_hand():
    state = _run(vrba(3, potential="linear", eta=0.1, gamma=0.5), [[1.0, -2.0, 4.0], [2.0, 0.0, -1.0]])
    # q = |r| / max|r|: [0.25, 0.5, 1] then [1, 0, 0.5]; w = 0.5 * 0.1 * q1 + 0.1 * q2
    np.testing.assert_allclose(state.weights, [0.1125, 0.025, 0.1], rtol=1e-6)


@pytest.mark.parametrize("potential", ["exponential", "linear"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"normalize": "mean"},
        {"phi": 0.7, "c": 0.5},
        {"phi": 0.3, "c": 2.0, "normalize": "mean", "init": 0.05},
    ],
    ids=["default", "mean", "phi-c", "all"],
)
def test_matches_numpy_reference(potential, options):
    options = dict(options)
    c = options.pop("c", 1.0)
    eta, gamma = 0.02, 0.9
    transform = vrba(4, potential=potential, eta=eta, gamma=gamma, temperature_scale=c, **options)
    state = _run(transform, SEQUENCE)
    init = options.pop("init", 0.0)
    expected = _reference(SEQUENCE, potential=potential, eta=eta, gamma=gamma, c=c, init=init, **options)
    np.testing.assert_allclose(state.weights, expected, rtol=2e-6)
    assert int(state.count) == len(SEQUENCE)


def test_fixed_temperature_matches_numpy_reference():
    transform = vrba(4, eta=0.02, gamma=0.9, temperature=1.5)
    state = _run(transform, SEQUENCE)
    expected = _reference(SEQUENCE, potential="exponential", eta=0.02, gamma=0.9, temperature=1.5)
    np.testing.assert_allclose(state.weights, expected, rtol=2e-6)


@pytest.mark.parametrize("c", [1.0, 0.25])
def test_temperature_anneals_as_log_of_the_update_number(c):
    # Constant residuals: update n's target t_n = (w_n - gamma w_{n-1}) / eta is (n + 2) ** ((a / max a - 1) / c).
    eta, gamma, steps = 0.01, 0.5, 6
    residuals = np.array([0.5, 1.0, 2.0, 4.0])
    transform = vrba(4, eta=eta, gamma=gamma, temperature_scale=c)
    state = transform.init(None)
    for n in range(1, steps + 1):
        before = np.asarray(state.weights, np.float64)
        _, state = transform.update(None, state, residuals=jnp.asarray(residuals))
        target = (np.asarray(state.weights, np.float64) - gamma * before) / eta
        expected = (n + 2.0) ** ((residuals / 4.0 - 1) / c)
        np.testing.assert_allclose(target, expected, rtol=1e-4)
    # Colder with n: the smallest sample's share falls from 3 ** (-7/8 / c) toward 0.
    assert expected[0] < 3.0 ** (-0.875 / c)


@pytest.mark.parametrize("options", [{}, {"phi": 0.4, "temperature_scale": 0.5}, {"potential": "linear"},
                                     {"normalize": "mean", "phi": 0.7}], ids=["default", "phi-c", "linear", "mean"])
def test_vrba_target_is_what_vrba_moves_toward(options):
    # From zero weights with gamma -> the one-step weights are eta * t_1; after updates on the same residuals,
    # the n-th target is (w_n - gamma w_{n-1}) / eta: the public function must give both.
    residuals = np.array([0.3, 1.0, 2.5, 4.0])
    eta, gamma = 0.01, 0.5
    transform = vrba(4, eta=eta, gamma=gamma, **options)
    state = transform.init(None)
    for n in range(1, 5):
        before = np.asarray(state.weights, np.float64)
        _, state = transform.update(None, state, residuals=jnp.asarray(residuals))
        moved_toward = (np.asarray(state.weights, np.float64) - gamma * before) / eta
        np.testing.assert_allclose(vrba_target(jnp.asarray(residuals), n, **options), moved_toward, rtol=1e-4)
    # And against the formula by hand (n = 4, default options): 6 ** (|r| / 4 - 1).
    np.testing.assert_allclose(vrba_target(jnp.asarray(residuals), 4), 6.0 ** (residuals / 4 - 1), rtol=1e-6)


def test_vrba_target_rejects_bad_arguments():
    residuals = jnp.ones(3)
    for bad, match in (({"update": 0}, "update"), ({"update": 1, "phi": 1.5}, "phi"),
                       ({"update": 1, "potential": "cubic"}, "cubic"),
                       ({"update": 1, "temperature_scale": 0.0}, "temperature_scale")):
        update = bad.pop("update")
        with pytest.raises(ValueError, match=match):
            vrba_target(residuals, update, **bad)
    # Traced clock (inside jit) is accepted and gives the same values.
    jitted = jax.jit(lambda r, n: vrba_target(r, n))
    np.testing.assert_allclose(jitted(jnp.array([1.0, 2.0]), 3), vrba_target(jnp.array([1.0, 2.0]), 3), rtol=1e-6)


def test_linear_max_is_rba():
    sequence = [np.array([1.0, -3.0, 0.5]), np.array([2.0, 2.0, -6.0])]
    plain = _run(rba(3, eta=0.05, gamma=0.8), sequence)
    linear = _run(vrba(3, potential="linear", eta=0.05, gamma=0.8), sequence)
    np.testing.assert_array_equal(linear.weights, plain.weights)


def test_all_zero_batch_exponential_uniform_linear_decays():
    first = [[1.0, 2.0, 4.0]]
    for potential, target in [("exponential", 1.0), ("linear", 0.0)]:
        transform = vrba(3, potential=potential, eta=0.1, gamma=0.5)
        before = np.asarray(_run(transform, first).weights)
        after = np.asarray(_run(transform, first + [[0.0, 0.0, 0.0]]).weights)
        # Exponential: every sample ties with the (zero) maximum, q = 1; linear: q = 0, the weights only decay.
        np.testing.assert_allclose(after, 0.5 * before + 0.1 * target, rtol=1e-6)


def test_ties_share_the_top_weight():
    state = _run(vrba(4, eta=0.1, gamma=0.5), [[3.0, -3.0, 1.0, 3.0]])
    weights = np.asarray(state.weights)
    np.testing.assert_array_equal(weights[[0, 1, 3]], np.float32(0.1))  # exp(0) = 1 exactly
    assert weights[2] < 0.1


def test_indices_normalise_by_the_batch():
    transform = vrba(6, eta=0.1, gamma=0.5)
    state = _run(transform, [np.arange(1.0, 7.0)])
    before = np.asarray(state.weights)
    _, state = transform.update(None, state, residuals=jnp.array([1.0, -2.0]), indices=jnp.array([1, 4]))
    expected = before.copy()
    # n = 2, batch max 2: q = 4 ** (|r| / 2 - 1) = [0.5, 1]
    expected[[1, 4]] = 0.5 * before[[1, 4]] + 0.1 * np.array([0.5, 1.0])
    np.testing.assert_allclose(state.weights, expected, rtol=1e-6)


def test_per_term_weights():
    transform = vrba({"pde": 3, "bc": 2}, eta=0.1, gamma=0.5, potential="linear")
    _, state = transform.update(
        None,
        transform.init(None),
        residuals={"pde": jnp.array([1.0, 2.0, 4.0]), "bc": jnp.array([3.0, 1.0]), "ic": jnp.ones(7)},
    )
    np.testing.assert_allclose(state.weights["pde"], [0.025, 0.05, 0.1], rtol=1e-6)
    np.testing.assert_allclose(state.weights["bc"], [0.1, 0.1 / 3], rtol=1e-6)


def test_init_residual_and_constant():
    state = _run(vrba(3, init="residual"), [[1.0, -2.0, 4.0]])  # defaults: eta / (1 - gamma) = 1
    np.testing.assert_allclose(state.weights, [3**-0.75, 3**-0.5, 1.0], rtol=1e-6)
    constant = vrba(3, eta=0.01, gamma=0.999, init=0.1)  # the public code's start (its bound is 10)
    np.testing.assert_allclose(constant.init(None).weights, [0.1, 0.1, 0.1])



def test_init_at_the_bound_itself_is_accepted():
    # With the defaults eta / (1 - gamma) rounds to 0.9999999999999991; init=1.0 is the bound as written.
    state = _run(vrba(3, init=1.0), [[1.0, -2.0, 4.0]])
    assert np.all(np.asarray(state.weights) <= 1.0)
    with pytest.raises(ValueError, match="init=1.001 exceeds"):
        vrba(3, init=1.001)


# ------------------------------------------------------------------------------------------------------------
# Scale (in)variance


@pytest.mark.parametrize("potential", ["exponential", "linear"])
@pytest.mark.parametrize("normalize", ["max", "mean"])
def test_annealed_weights_ignore_the_residual_scale(potential, normalize):
    transform = vrba(4, potential=potential, normalize=normalize, eta=0.05, gamma=0.7, phi=0.8)
    reference = np.asarray(_run(transform, SEQUENCE).weights)
    for scale in [1e-20, 1e-3, 7.0, 1e20]:
        scaled = [np.asarray(r) * scale for r in SEQUENCE]
        np.testing.assert_allclose(_run(transform, scaled).weights, reference, rtol=1e-5)


def test_fixed_temperature_depends_on_the_scale_linear_does_not():
    exponential = vrba(4, eta=0.05, gamma=0.7, temperature=1.0)
    linear = vrba(4, potential="linear", eta=0.05, gamma=0.7, temperature=1.0)
    scaled = [np.asarray(r) * 10 for r in SEQUENCE]
    base, big = _run(exponential, SEQUENCE).weights, _run(exponential, scaled).weights
    # With eps fixed, 10x larger residuals make the target far sharper: the small samples lose weight.
    assert float(jnp.min(big)) < 0.5 * float(jnp.min(base))
    np.testing.assert_allclose(
        big, _reference(scaled, potential="exponential", eta=0.05, gamma=0.7, temperature=1.0), rtol=2e-6
    )
    np.testing.assert_allclose(_run(linear, scaled).weights, _run(linear, SEQUENCE).weights, rtol=1e-6)


# ------------------------------------------------------------------------------------------------------------
# Bounds and finiteness

_BIG, _TINY = float(np.float32(1e30)), float(np.float32(1e-30))
extreme = st.sampled_from([0.0, 0.0, _TINY, -_TINY, _BIG, -_BIG, 1.0, -1.0, 3.5])
residual_vectors = hnp.arrays(
    np.float32,
    5,
    elements=st.one_of(extreme, st.floats(-_BIG, _BIG, width=32, allow_subnormal=False)),
)


@FAST
@given(
    st.lists(residual_vectors, min_size=1, max_size=4),
    st.sampled_from(["exponential", "linear"]),
    st.sampled_from(["max", "mean"]),
    st.sampled_from([None, 1e-3, 1.0, 1e25]),
    st.floats(0.0, 1.0),
    st.sampled_from(["zeros", "residual"]),
)
def test_weights_finite_and_bounded(sequence, potential, normalize, temperature, phi, init):
    eta, gamma = 0.05, 0.8
    transform = vrba(
        5, potential=potential, normalize=normalize, temperature=temperature, phi=phi, eta=eta, gamma=gamma, init=init
    )
    bound = eta / (1 - gamma) * (5 if normalize == "mean" else 1)
    state = transform.init(None)
    for residuals in sequence:
        _, state = transform.update(None, state, residuals=residuals)
        weights = np.asarray(state.weights)
        assert np.all(np.isfinite(weights))
        assert np.all(weights >= 0)
        assert np.all(weights <= bound * (1 + 1e-6))
        if normalize == "max" and potential == "exponential" and np.abs(residuals).max() > 0:
            # Nothing underflows for the samples at the maximum: they all hold the largest weight.
            top = np.abs(residuals) == np.abs(residuals).max()
            assert np.all(weights[top] > 0)


@FAST
@given(hnp.arrays(np.float32, 6, elements=st.floats(_TINY, 1e3, width=32)), st.floats(1e-20, 1e20))
def test_mean_normalisation_has_mean_one(residuals, scale):
    # One step from zero with eta = 1: w = qn, whose mean is 1 (the paper's density normalisation).
    transform = vrba(6, normalize="mean", eta=1.0, gamma=0.5)
    state = _run(transform, [residuals * np.float32(scale)])
    assert np.all(np.isfinite(state.weights))
    np.testing.assert_allclose(float(jnp.mean(state.weights)), 1.0, rtol=1e-5)


# ------------------------------------------------------------------------------------------------------------
# optax integration


def test_chain_with_adam_leaves_updates_unchanged():
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    adam = optax.adam(1e-2)
    chained = optax.chain(vrba(3, eta=0.1, gamma=0.5, snr_coupling=1.0, snr_warmup=0), adam)
    chained_state, plain_state = chained.init(params), adam.init(params)
    for k in range(3):
        grads = jax.tree.map(lambda p: jnp.cos(p * (k + 1)), params)
        chained_updates, chained_state = chained.update(
            grads, chained_state, params, residuals=jnp.array([1.0, 2.0, 3.0]) * (k + 1), snr=2.0
        )
        plain_updates, plain_state = adam.update(grads, plain_state, params)
        jax.tree.map(np.testing.assert_array_equal, chained_updates, plain_updates)
        params = optax.apply_updates(params, plain_updates)
    assert float(jnp.max(sample_weights(chained_state))) > 0


def test_sample_weights_found_in_chain_inject_and_hold_wrappers():
    params = jnp.zeros(2)
    residuals = jnp.array([1.0, 2.0, 4.0])
    expected = 0.1 * np.array([3**-0.75, 3**-0.5, 1.0])
    inject = optax.inject_hyperparams(vrba, static_args="num_samples")
    optimizers = [
        optax.chain(vrba(3, eta=0.1, gamma=0.5), optax.adam(1e-3)),
        inject(3, eta=0.1, gamma=0.5),
        optax.chain(optax.clip(1.0), optax.chain(optax.sgd(0.1), inject(3, eta=0.1, gamma=0.5))),
        optax.chain(hold_weights(vrba(3, eta=0.1, gamma=0.5), every=1), optax.adam(1e-3)),
        hold_weights(inject(3, eta=0.1, gamma=0.5), every=1),
    ]
    for optimizer in optimizers:
        state = optimizer.init(params)
        _, state = jax.jit(lambda s, o=optimizer: o.update(jnp.ones(2), s, params, residuals=residuals))(state)
        np.testing.assert_allclose(sample_weights(state), expected, rtol=1e-6)
    frozen = optax.chain(hold_weights(vrba(3, init=0.25)), optax.lbfgs()).init(params)
    np.testing.assert_array_equal(sample_weights(frozen), [0.25, 0.25, 0.25])


def test_vrba_hyperparameters_can_be_scheduled():
    optimizer = optax.inject_hyperparams(vrba, static_args="num_samples")(
        2, eta=optax.linear_schedule(0.1, 0.2, 1), gamma=0.5, potential="linear"
    )
    state = optimizer.init(jnp.zeros(1))
    step = jax.jit(lambda s: optimizer.update(jnp.ones(1), s, jnp.zeros(1), residuals=jnp.array([1.0, 2.0]))[1])
    state = step(step(state))
    # eta = 0.1 then 0.2: w = 0.5 * 0.1 q + 0.2 q with q = [0.5, 1]
    np.testing.assert_allclose(sample_weights(state), 0.25 * np.array([0.5, 1.0]), rtol=1e-6)


# ------------------------------------------------------------------------------------------------------------
# The stored SNR


def test_initial_snr_is_nan_float32():
    for factory in (rba, vrba, gradient_aware_rba):
        snr = factory(3).init(None).snr
        assert snr.dtype == jnp.float32 and snr.shape == () and np.isnan(snr)


def test_stored_snr_keeps_modulating_rba():
    transform = rba(3, eta=0.1, gamma=0.5, snr_coupling=1.0, snr_warmup=0)
    r = jnp.array([1.0, 2.0, 4.0])
    q = np.array([0.25, 0.5, 1.0])
    _, state = transform.update(None, transform.init(None), residuals=r, snr=4.0)
    assert float(state.snr) == 4.0
    w1 = 0.25 * 0.1 * q  # s = min(1, 1 / 4) = 1/4 from w = 0
    np.testing.assert_allclose(state.weights, w1, rtol=1e-6)
    _, state = transform.update(None, state, residuals=r)  # no snr: the stored 4 still gives s = 1/4
    w2 = (1 - 0.25 * 0.5) * w1 + 0.25 * 0.1 * q
    np.testing.assert_allclose(state.weights, w2, rtol=1e-6)
    _, state = transform.update(None, state, residuals=r, snr=jnp.nan)  # not finite: not stored
    w3 = 0.875 * w2 + 0.025 * q
    np.testing.assert_allclose(state.weights, w3, rtol=1e-6)
    assert float(state.snr) == 4.0
    _, state = transform.update(None, state, residuals=r, snr=0.5)  # s = min(1, 2) = 1: the plain rule
    np.testing.assert_allclose(state.weights, 0.5 * w3 + 0.1 * q, rtol=1e-6)
    assert float(state.snr) == 0.5


def test_stored_snr_keeps_modulating_vrba_and_gradient_aware():
    r = jnp.array([1.0, 2.0, 4.0])
    q = np.array([3**-0.75, 3**-0.5, 1.0])
    transform = vrba(3, eta=0.1, gamma=0.5, snr_coupling=2.0, snr_warmup=0)
    state = _run(transform, [r], snr=8.0)  # s = 1/4
    np.testing.assert_allclose(state.weights, 0.025 * q, rtol=1e-6)
    state = _run(transform, [r, r], state=state)  # n = 2, 3 without snr: s stays 1/4
    q2, q3 = 4.0 ** (np.array([1, 2, 4]) / 4 - 1), 5.0 ** (np.array([1, 2, 4]) / 4 - 1)
    w = 0.875 * (0.875 * 0.025 * q + 0.025 * q2) + 0.025 * q3
    np.testing.assert_allclose(state.weights, w, rtol=1e-6)

    aware = gradient_aware_rba(3, eta=0.1, gamma=0.5, snr_coupling=1.0, snr_warmup=0)
    norms = jnp.ones(3)
    state = _run(aware, [r], snr=4.0, sample_gradient_norms=norms)
    state = _run(aware, [r], state=state, sample_gradient_norms=norms)
    q = np.array([0.25, 0.5, 1.0])
    np.testing.assert_allclose(state.weights, 0.875 * 0.025 * q + 0.025 * q, rtol=1e-6)


def test_snr_without_coupling_is_stored_but_ignored():
    r = jnp.array([1.0, 2.0, 4.0])
    plain = _run(vrba(3, eta=0.1, gamma=0.5), [r, r])
    with_snr = _run(vrba(3, eta=0.1, gamma=0.5), [r, r], snr=100.0)
    np.testing.assert_array_equal(with_snr.weights, plain.weights)
    assert float(with_snr.snr) == 100.0


def test_snr_under_jit_and_vmap():
    transform = vrba(3, eta=0.1, gamma=0.5, snr_coupling=1.0, snr_warmup=0)
    step = jax.jit(lambda s, r, x: transform.update(None, s, residuals=r, snr=x)[1])
    stacked = jax.vmap(lambda _: transform.init(None))(jnp.arange(2))
    stacked = jax.vmap(step)(stacked, jnp.ones((2, 3)), jnp.array([4.0, jnp.inf]))
    np.testing.assert_array_equal(np.isnan(stacked.snr), [False, True])
    np.testing.assert_allclose(stacked.weights, [[0.025] * 3, [0.1] * 3], rtol=1e-6)


def test_snr_must_be_a_scalar():
    transform = rba(3, snr_coupling=1.0, snr_warmup=0)
    with pytest.raises(ValueError, match=r"snr must be a scalar.*\(2,\)"):
        transform.update(None, transform.init(None), residuals=jnp.ones(3), snr=jnp.ones(2))


# ------------------------------------------------------------------------------------------------------------
# hold_weights


def test_frozen_weights_never_move():
    transform = vrba(4, eta=0.1, gamma=0.5, init="residual")
    state = _run(transform, SEQUENCE[:1])
    held = hold_weights(transform)
    frozen = transfer_reweighting(state, held.init(None))
    assert isinstance(frozen, FrozenWeightsState)
    before = jax.tree.map(np.asarray, frozen)
    for k in range(6):
        _, frozen = held.update(None, frozen, residuals=jnp.asarray(SEQUENCE[k % 3]) * (k + 1), snr=float(k + 1))
    _, frozen = held.update(None, frozen, residuals=None)
    _, frozen = held.update(None, frozen)
    jax.tree.map(np.testing.assert_array_equal, frozen, before)
    np.testing.assert_array_equal(sample_weights(frozen), state.weights)


def test_held_weights_advance_on_every_kth_update():
    transform = vrba(4, eta=0.1, gamma=0.5)
    held = hold_weights(transform, every=3)
    step = jax.jit(lambda s, r: held.update(None, s, residuals=r)[1])
    rng = np.random.default_rng(0)
    sequence = rng.normal(size=(9, 4)).astype(np.float32)
    state, plain = held.init(None), transform.init(None)
    for k, residuals in enumerate(sequence, start=1):
        state = step(state, residuals)
        if k % 3 == 0:
            _, plain = transform.update(None, plain, residuals=jnp.asarray(residuals))
        assert int(state.count) == k
        jax.tree.map(np.testing.assert_array_equal, state.inner, plain)
    assert int(state.inner.count) == 3
    assert isinstance(state, HeldWeightsState)


def test_every_one_is_the_plain_transform():
    transform = gradient_aware_rba(4, eta=0.1, gamma=0.5)
    held = hold_weights(transform, every=1)
    state, plain = held.init(None), transform.init(None)
    for residuals in SEQUENCE:
        extra = {"residuals": jnp.asarray(residuals), "sample_gradient_norms": jnp.arange(1.0, 5.0)}
        _, state = held.update(None, state, **extra)
        _, plain = transform.update(None, plain, **extra)
    jax.tree.map(np.testing.assert_array_equal, state.inner, plain)


def test_hold_weights_passes_updates_through_in_a_chain():
    params = jnp.array([1.0, -1.0])
    for every in (None, 2):
        chained = optax.chain(hold_weights(vrba(3), every=every), optax.adam(1e-2))
        adam = optax.adam(1e-2)
        chained_state, adam_state = chained.init(params), adam.init(params)
        extra = {} if every is None else {"residuals": jnp.ones(3)}
        for _ in range(2):
            got, chained_state = chained.update(jnp.array([0.3, -0.7]), chained_state, params, **extra)
            want, adam_state = adam.update(jnp.array([0.3, -0.7]), adam_state, params)
            np.testing.assert_array_equal(got, want)


def test_frozen_stage_runs_lbfgs_without_residuals():
    # The L-BFGS stage of a reweighted run: frozen weights, value_fn that names none of EXTRA_ARG_NAMES.
    x = jnp.linspace(-1.0, 1.0, 8)
    linesearch = optax.scale_by_backtracking_linesearch(max_backtracking_steps=10, store_grad=True)  # cheap to trace
    solver = optax.chain(hold_weights(vrba(8, init=0.5)), optax.lbfgs(linesearch=linesearch))
    params = jnp.array([2.0, 1.0])
    state = solver.init(params)
    weights = sample_weights(state)
    assert required_extra_args(state) == frozenset()

    def value_fn(p):
        return jnp.mean((weights * (p[0] * x + p[1] - 0.3 * x)) ** 2)

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(value_fn)(params)
        updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=value_fn)
        return optax.apply_updates(params, updates), state

    start = float(value_fn(params))
    for _ in range(3):
        params, state = step(params, state)
    assert float(value_fn(params)) < 1e-3 * start
    np.testing.assert_array_equal(sample_weights(state), weights)


def test_extra_arg_names_are_the_family_keywords():
    assert EXTRA_ARG_NAMES == ("residuals", "indices", "snr", "sample_gradient_norms")
    transform = gradient_aware_rba(3)
    extra = {
        "residuals": jnp.ones(2),
        "indices": jnp.array([0, 2]),
        "snr": 1.0,
        "sample_gradient_norms": jnp.ones(2),
    }
    assert set(extra) == set(EXTRA_ARG_NAMES)
    _, state = transform.update(None, transform.init(None), **extra)
    assert int(state.count) == 1


# ------------------------------------------------------------------------------------------------------------
# Declared needs


def test_required_extra_args_and_weights_frozen_by_type():
    params = jnp.zeros(2)
    inject = optax.inject_hyperparams(vrba, static_args="num_samples")
    cases = [
        (optax.adam(1e-3), frozenset(), False),
        (optax.chain(rba(3), optax.adam(1e-3)), {"residuals"}, False),
        (optax.chain(vrba(3), optax.adam(1e-3)), {"residuals"}, False),
        (optax.chain(inject(3), optax.adam(1e-3)), {"residuals"}, False),
        (gradient_aware_rba(3), {"residuals", "sample_gradient_norms"}, False),
        (hold_weights(gradient_aware_rba(3), every=4), {"residuals", "sample_gradient_norms"}, False),
        (optax.chain(hold_weights(vrba(3), every=2), optax.lbfgs()), {"residuals"}, False),
        (optax.chain(hold_weights(gradient_aware_rba(3)), optax.lbfgs()), frozenset(), True),
        (optax.chain(hold_weights(inject(3)), optax.lbfgs()), frozenset(), True),
    ]
    for optimizer, needs, frozen in cases:
        state = optimizer.init(params)
        assert required_extra_args(state) == frozenset(needs)
        assert weights_frozen(state) is frozen
        stacked = jax.vmap(lambda _, o=optimizer: o.init(params))(jnp.arange(2))
        assert required_extra_args(stacked) == frozenset(needs)
        assert weights_frozen(stacked) is frozen
    assert isinstance(gradient_aware_rba(3).init(None), GradientAwareRBAState)
    assert isinstance(gradient_aware_rba(3).init(None), RBAState)  # one family: isinstance(state, RBAState)
    assert type(vrba(3).init(None)) is RBAState


def test_required_extra_args_is_static_under_jit():
    optimizer = optax.chain(gradient_aware_rba(3), optax.sgd(0.1))
    seen = []

    @jax.jit
    def probe(state):
        seen.append(required_extra_args(state))
        return state

    probe(optimizer.init(jnp.zeros(1)))
    assert seen == [frozenset({"residuals", "sample_gradient_norms"})]


# ------------------------------------------------------------------------------------------------------------
# Carrying the family state across stages


def _trained(transform, residuals=(1.0, 2.0, 4.0), snr=3.0):
    return _run(transform, [list(residuals)] * 2, snr=snr)


def test_transfer_into_chain_inject_and_hold_targets():
    source = optax.chain(vrba(3, eta=0.1, gamma=0.5), optax.adam(1e-3)).init(jnp.zeros(2))
    _, source = optax.chain(vrba(3, eta=0.1, gamma=0.5), optax.adam(1e-3)).update(
        jnp.ones(2), source, jnp.zeros(2), residuals=jnp.array([1.0, 2.0, 4.0]), snr=3.0
    )
    family = source[0]
    inject = optax.inject_hyperparams(vrba, static_args="num_samples")
    targets = [
        optax.chain(vrba(3), optax.lbfgs()),
        optax.chain(hold_weights(vrba(3)), optax.lbfgs()),
        optax.chain(hold_weights(vrba(3), every=5), optax.sgd(0.1)),
        inject(3),
        hold_weights(inject(3)),
        gradient_aware_rba(3),
    ]
    for target in targets:
        target_state = target.init(jnp.zeros(2))
        moved = transfer_reweighting(source, target_state)
        assert jax.tree.structure(moved) == jax.tree.structure(target_state)
        np.testing.assert_array_equal(sample_weights(moved), family.weights)
        (found, _), = [(s, f) for s, f in _family(moved)]
        assert int(found.count) == 1 and float(found.snr) == 3.0
        assert type(found) is type(_family(target_state)[0][0])


def _family(state):
    from pinnkit.reweight import family_states

    return family_states(state)


def test_transfer_leaves_the_target_when_either_has_none():
    adam_state = optax.adam(1e-3).init(jnp.zeros(2))
    target = rba(3).init(None)
    assert transfer_reweighting(adam_state, target) is target
    assert transfer_reweighting(_trained(rba(3)), adam_state) is adam_state


def test_transfer_stacked_states_and_dtypes():
    transform = vrba(3, eta=0.1, gamma=0.5)
    stacked = jax.vmap(lambda r: _run(transform, [r]))(jnp.array([[1.0, 2.0, 4.0], [4.0, 2.0, 1.0]]))
    target = jax.vmap(lambda _: optax.chain(hold_weights(transform), optax.lbfgs()).init(jnp.zeros(2)))(
        jnp.arange(2)
    )
    moved = transfer_reweighting(stacked, target)
    np.testing.assert_array_equal(sample_weights(moved), stacked.weights)
    np.testing.assert_array_equal(moved[0].inner.count, [1, 1])
    with pytest.raises(ValueError, match=r"source shape \(2, 3\), target shape \(3,\)"):
        transfer_reweighting(stacked, transform.init(None))
    with pytest.raises(ValueError, match=r"source shape \(3,\), target shape \(2, 3\)"):
        transfer_reweighting(transform.init(None), stacked)
    # The target's dtypes win (a float64 stage, say).
    wide = transform.init(None)._replace(weights=jnp.zeros(3, jnp.float16))
    assert transfer_reweighting(_trained(transform), wide).weights.dtype == jnp.float16


def test_transfer_rejects_mismatches():
    with pytest.raises(ValueError, match=r"weights: source shape \(3,\), target shape \(4,\)"):
        transfer_reweighting(_trained(rba(3)), rba(4).init(None))
    dict_source = vrba({"pde": 3}).update(None, vrba({"pde": 3}).init(None), residuals={"pde": jnp.ones(3)})[1]
    with pytest.raises(ValueError, match="weights: source structure"):
        transfer_reweighting(dict_source, vrba({"pde": 3, "bc": 2}).init(None))
    two = optax.chain(rba(3), vrba(3)).init(None)
    with pytest.raises(ValueError, match="2 RBA-family states"):
        transfer_reweighting(two, rba(3).init(None))


def test_transfer_under_jit():
    source = _trained(vrba(3))
    target = optax.chain(hold_weights(vrba(3)), optax.lbfgs()).init(jnp.zeros(1))
    moved = jax.jit(transfer_reweighting)(source, target)
    np.testing.assert_array_equal(sample_weights(moved), source.weights)


# ------------------------------------------------------------------------------------------------------------
# Bad arguments


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        ({"potential": "cubic"}, ValueError, "cubic"),
        ({"normalize": "minmax"}, ValueError, "minmax"),
        ({"phi": 1.5}, ValueError, "phi.*1.5"),
        ({"phi": -0.1}, ValueError, "phi"),
        ({"phi": "half"}, TypeError, "half"),
        ({"temperature": 0.0}, ValueError, "temperature must be > 0"),
        ({"temperature_scale": -1.0}, ValueError, "temperature_scale.*-1.0"),
        ({"eta": 0.0}, ValueError, "eta"),
        ({"gamma": 1.0}, ValueError, "gamma"),
        ({"snr_coupling": -2.0}, ValueError, "snr_coupling.*-2.0"),
        ({"init": "ones"}, ValueError, "ones"),
        ({"init": -0.5}, ValueError, "-0.5"),
        ({"init": 2.0}, ValueError, "init=2.0 exceeds"),
        ({"init": True}, TypeError, "True"),
        ({"init": float("nan")}, ValueError, "nan"),
    ],
)
def test_vrba_rejects_bad_hyperparameters(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        vrba(3, **kwargs)


@pytest.mark.parametrize(
    "every, error, fragment",
    [(0, ValueError, "every.*0"), (-2, ValueError, "-2"), (2.5, TypeError, "2.5"), (True, TypeError, "True")],
)
def test_hold_weights_rejects_bad_every(every, error, fragment):
    with pytest.raises(error, match=fragment):
        hold_weights(rba(3), every=every)


def test_hold_weights_rejects_bad_transforms_and_calls():
    with pytest.raises(TypeError, match="'not a transform'"):
        hold_weights("not a transform")
    with pytest.raises(TypeError, match="RBA-family"):
        hold_weights(optax.adam(1e-3)).init(jnp.zeros(2))
    held = hold_weights(vrba(3), every=2)
    with pytest.raises(TypeError, match="requires residuals"):
        held.update(None, held.init(None))


def test_the_snr_coupling_waits_until_the_weights_have_grown():
    # From zero weights the loss is the constraint terms alone, whose batch gradients agree: the SNR is huge and
    # says nothing about the samples. During the warm-up (ceil(1 / (1 - gamma)) = 4 updates for gamma = 0.75)
    # the weights move at RBA's full rate; afterwards the stored SNR slows them down.
    eta, gamma, residuals = 0.1, 0.75, jnp.array([1.0, 2.0, 4.0])
    coupled, plain = rba(3, eta=eta, gamma=gamma, snr_coupling=1.0), rba(3, eta=eta, gamma=gamma)
    state_coupled, state_plain = coupled.init(None), plain.init(None)
    for update in range(6):
        _, state_coupled = coupled.update(None, state_coupled, residuals=residuals, snr=1e7)
        _, state_plain = plain.update(None, state_plain, residuals=residuals)
        if update < 4:
            np.testing.assert_allclose(state_coupled.weights, state_plain.weights, rtol=1e-6)
    # Updates 5 and 6 at s = 1e-7: the weights barely move from where the warm-up left them.
    q = np.array([0.25, 0.5, 1.0])
    after_warmup = eta * (1 - gamma**4) / (1 - gamma) * q
    np.testing.assert_allclose(state_coupled.weights, after_warmup, rtol=1e-5)
    assert np.all(np.asarray(state_plain.weights) > after_warmup * 1.05)
    with pytest.raises(ValueError, match="snr_warmup"):
        rba(3, snr_coupling=1.0, snr_warmup=-1)
