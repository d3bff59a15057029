"""The test error of every problem against truths that need no solver: a zero model is off by exactly 1, a model
that returns the reference on its grid by exactly 0."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit import problems
from pinnkit.compare import PRESETS, CompareConfig, preset

SMALL = {"helmholtz": {"grid_size": 21}, "allen-cahn": {"num_x": 64, "num_t": 21},
         "burgers": {"num_x": 64, "num_t": 20}, "cavity": {"grid_size": 33}}


class Zero:
    def __init__(self, outputs):
        self.outputs = outputs

    def __call__(self, point):
        return jnp.zeros(self.outputs) * point[0]


class OnGrid:
    """Returns the reference's value at the nearest grid node (exact on the grid)."""

    def __init__(self, reference):
        self.axes = [jnp.asarray(axis) for axis in reference.axes]
        self.values = jnp.asarray(reference.values)

    def __call__(self, point):
        index = tuple(jnp.argmin(jnp.abs(axis - point[i])) for i, axis in enumerate(self.axes))
        return jnp.atleast_1d(self.values[index])


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_zero_model_has_relative_error_one(name):
    problem = problems.get(name, **SMALL[name])
    with jax.enable_x64(True):
        error = problem.relative_l2_fn()(Zero(len(problem.output_names)))
    assert float(error) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", ["helmholtz", "allen-cahn", "burgers"])
def test_the_reference_itself_has_relative_error_zero(name):
    problem = problems.get(name, **SMALL[name])
    reference = problem.reference()
    with jax.enable_x64(True):
        error = problem.relative_l2_fn(reference)(OnGrid(reference))
    assert float(error) < 1e-12


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_comparison(name):
    config = preset(name)
    assert isinstance(config, CompareConfig) and config.steps > 0
    assert np.all([config.run_config(plan, reweight).steps == config.steps_of(plan) for plan in config.optimizers
                   for reweight in config.reweights])
