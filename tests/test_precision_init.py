"""One seed, one start: a float32 and a float64 run of one config begin from one network and one point set (the
float64 draw, cast), so that a comparison of precisions compares precisions, not initialisations."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit import diagnostics
from pinnkit.engine import LogSchedule, Probes
from pinnkit.experiment import RunConfig, init_models, setup

SMALL = dict(steps=10, points=64, width=8, depth=2, log=LogSchedule(10), probes=Probes(snr_batches=4),
             problem_params={"grid_size": 21, "boundary_points_per_side": 16})
CONFIGS = {
    "mlp": RunConfig(**SMALL),
    "modified-mlp-fourier": RunConfig(**SMALL, architecture="modified-mlp", fourier_features=6),
    "burgers-uniform": RunConfig(**{**SMALL, "problem_params": {"initial_points": 16, "boundary_points": 16,
                                                                "num_x": 32, "num_t": 11}},
                                 problem="burgers", sampling="uniform"),
}


def built(config: RunConfig, double: bool):
    """(set-up, stacked initial params, model, SNR batches) of ``config`` in one precision."""
    config = RunConfig.from_dict({**config.to_dict(), "float64": double})
    with jax.enable_x64(double):
        made = setup(config)
        # Two seeds stacked, except with Fourier features: their frequencies are module constants, which
        # differ between seeds and so cannot be stacked.
        seeds = [config.seed] if config.fourier_features else [config.seed, config.seed + 1]
        model, params = init_models(config, made.problem, seeds, made.dtype)
        batches = diagnostics.make_batches(made.snr_key, config.points, config.probes.snr_batches)
        return made, params, model, np.asarray(batches)


def as_float32(tree):
    return [np.asarray(leaf).astype(np.float32) for leaf in jax.tree_util.tree_leaves(tree)]


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.slow
def test_float32_and_float64_setups_of_one_seed_hold_one_draw(name):
    config = CONFIGS[name]
    single, single_params, single_model, single_batches = built(config, False)
    double, double_params, double_model, double_batches = built(config, True)
    assert single.dtype == jnp.float32 and double.dtype == jnp.float64
    # Every parameter and every point (interior and constraint terms) is the float64 draw rounded to float32.
    single_leaves = jax.tree_util.tree_leaves(eqx.filter(single_params, eqx.is_inexact_array))
    double_leaves = jax.tree_util.tree_leaves(eqx.filter(double_params, eqx.is_inexact_array))
    assert len(single_leaves) == len(double_leaves) > 0
    for low, high in zip(single_leaves, double_leaves, strict=True):
        assert low.dtype == np.float32 and high.dtype == np.float64
        np.testing.assert_array_equal(np.asarray(low), np.asarray(high).astype(np.float32))
    assert sorted(single.points) == sorted(double.points)
    for term in single.points:
        assert single.points[term].dtype == np.float32 and double.points[term].dtype == np.float64
        np.testing.assert_array_equal(np.asarray(single.points[term]),
                                      np.asarray(double.points[term]).astype(np.float32))
    np.testing.assert_array_equal(single_batches, double_batches)
    if config.fourier_features:
        # The Fourier frequencies are constants of the module (not leaves): one draw for both precisions too.
        low = np.asarray(single_model.input_map.fourier.frequencies, np.float32)
        high = np.asarray(double_model.input_map.fourier.frequencies, np.float32)
        np.testing.assert_array_equal(low, high)


def test_a_float32_network_is_a_float64_random_draw_rounded():
    # The truth: the first layer's Xavier-normal weight drawn straight from jax.random in float64, then rounded.
    config = CONFIGS["mlp"]
    _, params, _, _ = built(config, False)
    model_key = jax.random.split(jax.random.key(config.seed), 3)[0]
    layer_key = jax.random.split(model_key, config.depth + 2)[1]
    bias_key, weight_key = jax.random.split(layer_key)
    with jax.enable_x64(True):
        draw = np.asarray(jax.random.normal(weight_key, (config.width, 2), jnp.float64))
        bias = np.asarray(eqx.nn.Linear(2, config.width, key=bias_key, dtype=jnp.float64).bias)
    expected = (np.sqrt(2.0 / (2 + config.width)) * draw).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(params.layers[0].weight[0]), expected)
    np.testing.assert_array_equal(np.asarray(params.layers[0].bias[0]), bias.astype(np.float32))


def test_the_initial_error_of_both_precisions_agrees_to_float32_rounding():
    config = CONFIGS["modified-mlp-fourier"]
    errors = {}
    for double in (False, True):
        made, params, model, _ = built(config, double)
        with jax.enable_x64(double):
            first = eqx.combine(jax.tree_util.tree_map(lambda leaf: leaf[0], params),
                                eqx.filter(model, eqx.is_inexact_array, inverse=True))
            errors[double] = float(made.problem.relative_l2_fn(made.reference)(first))
    assert errors[False] == pytest.approx(errors[True], rel=1e-5)
