"""The paper code's order of a reweighted step (weights advanced first, then the gradient with them), against a
loop written here from the paper's definitions: lambda <- gamma lambda + eta |r| / max|r| from the residuals at
theta_k, then Adam on grad of mean((lambda r)^2) + mean(bc^2) at theta_k."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnkit.engine import LogSchedule, Probes
from pinnkit.experiment import RunConfig, init_models, run, setup

ETA, GAMMA, LR, STEPS = 0.05, 0.9, 1e-2, 7


def _config(weights_first: bool, normalize: str = "max") -> RunConfig:
    return RunConfig(problem="helmholtz", problem_params={"grid_size": 11}, reweight="rba",
                     reweight_options={"eta": ETA, "gamma": GAMMA, "normalize": normalize},
                     weights_first=weights_first, steps=STEPS, learning_rate=LR, schedule="constant", width=8,
                     depth=1, points=64, log=LogSchedule(every=3), probes=Probes(snr_batches=4))


def _normalized(values, normalize):
    if normalize == "max":
        return values / jnp.max(values)
    low = jnp.min(values)
    return (values - low) / (jnp.max(values) - low)


def _by_hand(config: RunConfig, weights_first: bool, normalize: str):
    """The run written out: Adam from optax, the weights by the paper's formula, the loss with jax.grad."""
    built = setup(config)
    model, stacked = init_models(config, built.problem, [config.seed], built.dtype)
    params = jax.tree_util.tree_map(lambda leaf: leaf[0], stacked)
    static = eqx.filter(model, eqx.is_inexact_array, inverse=True)
    residuals_of = lambda p: built.problem.residuals(eqx.combine(p, static), built.points)  # noqa: E731

    def loss(p, weights):
        residuals = residuals_of(p)
        return jnp.mean((weights * residuals["pde"]) ** 2) + jnp.mean(residuals["bc"] ** 2)

    adam = optax.adam(LR)
    state = adam.init(params)
    weights = jnp.zeros(config.points)
    for _ in range(STEPS):
        advanced = GAMMA * weights + ETA * _normalized(jnp.abs(residuals_of(params)["pde"]), normalize)
        grads = jax.grad(loss)(params, advanced if weights_first else weights)
        updates, state = adam.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        weights = advanced
    return params, weights


@pytest.mark.parametrize("weights_first", [True, False])
@pytest.mark.slow
def test_a_run_takes_the_steps_of_its_order(weights_first):
    config = _config(weights_first)
    result = run(config)
    expected, _ = _by_hand(config, weights_first, "max")
    trained = eqx.filter(result.model, eqx.is_inexact_array)
    for got, want in zip(jax.tree_util.tree_leaves(trained), jax.tree_util.tree_leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-5, atol=1e-6)
    # The other order is another trajectory: the check above can tell the two apart.
    other, _ = _by_hand(config, not weights_first, "max")
    gaps = [float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree_util.tree_leaves(trained),
                                                            jax.tree_util.tree_leaves(other), strict=True)]
    assert max(gaps) > 1e-4


@pytest.mark.slow
def test_weights_first_with_minmax_normalisation_and_the_weights_it_leaves():
    from pinnkit.reweight import sample_weights

    config = _config(True, "minmax")
    result = run(config)
    expected, weights = _by_hand(config, True, "minmax")
    np.testing.assert_allclose(np.asarray(sample_weights(result.opt_state)), np.asarray(weights), rtol=2e-5,
                               atol=1e-7)
    leaves = jax.tree_util.tree_leaves(eqx.filter(result.model, eqx.is_inexact_array))
    for got, want in zip(leaves, jax.tree_util.tree_leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-5, atol=1e-6)


def test_without_reweighting_the_order_changes_nothing():
    plain = dict(problem="helmholtz", problem_params={"grid_size": 11}, steps=5, width=8, depth=1, points=64,
                 log=LogSchedule(every=2), probes=Probes(snr_batches=4))
    first = run(RunConfig(**plain, weights_first=True))
    after = run(RunConfig(**plain))
    for a, b in zip(jax.tree_util.tree_leaves(eqx.filter(first.model, eqx.is_inexact_array)),
                    jax.tree_util.tree_leaves(eqx.filter(after.model, eqx.is_inexact_array)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_weights_first_must_be_a_bool():
    with pytest.raises(TypeError, match="weights_first"):
        RunConfig(weights_first="yes")


def test_a_weights_first_run_resumed_from_a_checkpoint_ends_as_one_run(tmp_path):
    from pinnkit.checkpoint import Checkpointer, checkpoint_path

    config = _config(True)
    straight = run(config, checkpoint=Checkpointer(tmp_path, every=3, config=config, keep=None))
    resumed = run(config, resume_from=checkpoint_path(tmp_path, 3))
    for left, right in zip(jax.tree_util.tree_leaves(eqx.filter(resumed.model, eqx.is_inexact_array)),
                           jax.tree_util.tree_leaves(eqx.filter(straight.model, eqx.is_inexact_array)), strict=True):
        np.testing.assert_array_equal(np.asarray(left), np.asarray(right))
    for name in ("loss", "rel_l2", "snr", "homogeneity"):
        np.testing.assert_array_equal(resumed.history[name], straight.history[name], err_msg=name)
