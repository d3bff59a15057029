"""RAD resampling and the learning-rate search, against what they promise."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnkit import nn, problems
from pinnkit.engine import LogSchedule, Probes, fit
from pinnkit.engine.steps import forget_loss
from pinnkit.lr_search import search_learning_rate
from pinnkit.sampling import Resampling


class StepModel:
    """u(x, t) = tanh(50 x): the Burgers residual is large near x = 0 and tiny elsewhere."""

    def __call__(self, point):
        return jnp.tanh(50.0 * point[:1])


def test_rad_puts_the_points_where_the_residual_is_large():
    problem = problems.get("burgers")
    points = problem.sample(jax.random.key(0), 2000)
    flat = Resampling(every=1, candidates=20_000, power=1.0, constant=0.0)
    drawn = flat.draw(jax.random.key(1), problem, StepModel(), points)["pde"]
    near = float(jnp.mean(jnp.abs(drawn[:, 0]) < 0.1))
    assert near > 0.8  # the uniform share of |x| < 0.1 is 0.1
    uniform = Resampling(every=1, candidates=20_000, power=0.0, constant=1.0)
    spread = uniform.draw(jax.random.key(1), problem, StepModel(), points)["pde"]
    assert 0.07 < float(jnp.mean(jnp.abs(spread[:, 0]) < 0.1)) < 0.13
    assert len(np.unique(np.asarray(drawn), axis=0)) == 2000  # without replacement
    with pytest.raises(ValueError, match="candidates"):
        Resampling(every=1, candidates=100).draw(jax.random.key(1), problem, StepModel(), points)
    for bad in ({"every": 0}, {"every": 1, "power": -1.0}, {"every": 1, "power": 0.0, "constant": 0.0}):
        with pytest.raises(ValueError):
            Resampling(**bad)


class SlopeModel:
    """u(x, t) = tanh(5 x): the Burgers residual peaks at 0.08 < |x| < 0.2 and varies smoothly elsewhere."""

    def __call__(self, point):
        return jnp.tanh(5.0 * point[:1])


def _in_band(x):
    return (np.abs(x[:, 0]) > 0.08) & (np.abs(x[:, 0]) < 0.2)


@pytest.mark.parametrize(("redraw", "phi"), [(1, 1.0), (1000, 1.0), (1000, 0.5)])
def test_the_vrba_density_draws_as_the_annealed_exponential_target_predicts(redraw, phi):
    # Predicted share of the band: E[t 1_band] / E[t] under uniform points, t = phi (n + 2)^(|r| / max|r| - 1)
    # + 1 - phi, from an independent uniform sample (1000 of 100k candidates drawn: close to with replacement).
    problem = problems.get("burgers")
    points = problem.sample(jax.random.key(0), 1000)
    lower, upper = (np.asarray(bound) for bound in problem.domain)
    uniform = np.asarray(jax.random.uniform(jax.random.key(7), (100_000, 2), minval=lower, maxval=upper))
    batch = dict(points, pde=jnp.asarray(uniform))
    magnitude = np.abs(np.asarray(problem.residuals(SlopeModel(), batch)["pde"], np.float64))
    target = phi * (redraw + 2.0) ** (magnitude / magnitude.max() - 1) + 1 - phi
    predicted = float(np.sum(target * _in_band(uniform)) / np.sum(target))
    sampler = Resampling(every=1, candidates=100_000, constant=0.0, potential="exponential", phi=phi)
    drawn = np.asarray(sampler.draw(jax.random.key(3), problem, SlopeModel(), points, redraw=redraw)["pde"])
    assert abs(float(np.mean(_in_band(drawn))) - predicted) < 0.05  # binomial sd <= 0.016
    # The cases differ by far more than the tolerance (0.24, 0.83, 0.19), and from RAD's |r| (0.44).
    linear = float(np.sum(magnitude * _in_band(uniform)) / np.sum(magnitude))
    assert abs(predicted - linear) > 0.15


class RecordingResampling(Resampling):
    def draw(self, key, problem, model, points, *, redraw=1):
        jax.debug.callback(lambda n: CLOCK.append(int(n)), redraw)
        return super().draw(key, problem, model, points, redraw=redraw)


CLOCK: list[int] = []


def test_the_engine_hands_each_redraw_its_number():
    CLOCK.clear()
    problem = problems.get("burgers")
    points = problem.sample(jax.random.key(0), 200)
    model = nn.MLP(2, 1, width=8, depth=1, domain=problem.domain, key=jax.random.key(1))
    sampler = RecordingResampling(every=5, candidates=2000, potential="exponential", constant=0.0)
    result = fit(problem, model, optax.adam(1e-3), points, steps=20, log=LogSchedule(10),
                 probes=Probes(snr_batches=0), resampling=sampler)
    assert result.status == "completed"
    jax.effects_barrier()
    assert CLOCK == [1, 2, 3]  # redraws at steps 5, 10, 15 (none at the end)


@pytest.mark.parametrize("bad", [{"potential": "cubic"}, {"phi": 1.5}, {"phi": -0.1}, {"temperature_scale": 0.0},
                                 {"temperature_scale": True}])
def test_resampling_rejects_bad_vrba_options_naming_them(bad):
    name, value = next(iter(bad.items()))
    with pytest.raises(ValueError, match=name) as error:
        Resampling(every=1, **bad)
    assert repr(value) in str(error.value)


@pytest.mark.slow
def test_training_with_resampling_moves_the_points_and_keeps_going():
    problem = problems.get("burgers")
    points = problem.sample(jax.random.key(0), 300)
    model = nn.MLP(2, 1, width=8, depth=2, domain=problem.domain, key=jax.random.key(1))
    result = fit(problem, model, optax.lbfgs(), points, steps=20, log=LogSchedule(10),
                 probes=Probes(snr_batches=0), resampling=Resampling(every=5, candidates=3000))
    assert result.status == "completed"
    assert result.history["step"].tolist() == [0, 5, 10, 15, 20]  # rows at each redraw
    assert not np.array_equal(np.asarray(result.points["pde"]), np.asarray(points["pde"]))
    np.testing.assert_array_equal(result.points["ic"], points["ic"])
    assert np.all(np.isfinite(result.history["loss"]))


def test_forgetting_the_loss_resets_the_line_search_cache_and_the_secant_pair():
    from pinnkit.quasi_newton import ssbroyden

    params = {"w": jnp.ones(3)}
    optimizer = ssbroyden()
    state = optimizer.init(params)
    value_fn = lambda p: jnp.sum(p["w"] ** 2)  # noqa: E731
    value, grad = optax.value_and_grad_from_state(value_fn)(params, state=state)
    _, state = optimizer.update(grad, state, params, value=value, grad=grad, value_fn=value_fn)
    assert bool(optax.tree.get(state, "has_prev")) and np.isfinite(float(optax.tree.get(state, "value")))
    forgotten = forget_loss(state)
    assert not bool(optax.tree.get(forgotten, "has_prev"))
    assert float(optax.tree.get(forgotten, "value")) == np.inf
    np.testing.assert_array_equal(optax.tree.get(forgotten, "inverse_hessian"),
                                  optax.tree.get(state, "inverse_hessian"))


@pytest.mark.slow
def test_the_learning_rate_search_picks_the_lowest_training_loss():
    problem = problems.get("helmholtz", grid_size=11)
    points = problem.sample(jax.random.key(0), 200)
    model = nn.MLP(2, 1, width=8, depth=1, domain=problem.domain, key=jax.random.key(1))
    found = search_learning_rate(problem, model, points, optimizer="adam", candidates=(1e-1, 1e-3, 1e-6), steps=30,
                                 schedule="constant")
    # Independent check: each candidate trained alone with plain optax.adam.
    alone = {}
    for rate in (1e-1, 1e-3, 1e-6):
        result = fit(problem, model, optax.adam(rate), points, steps=30, log=LogSchedule(30),
                     probes=Probes(snr_batches=0))
        alone[rate] = result.history["mse"][-1]
    for rate, loss in found.losses.items():
        assert loss == pytest.approx(alone[rate], rel=1e-3)
    assert found.learning_rate == min(alone, key=alone.get)
    with pytest.raises(ValueError, match="first-order"):
        search_learning_rate(problem, model, points, optimizer="lbfgs")
