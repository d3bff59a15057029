"""Optimizer plans: parsed and validated once, built into optax stages, switched by the engine."""

import jax
import optax
import pytest

from pinnkit.experiment import RunConfig
from pinnkit.history import History
from pinnkit.plans import Plan, PlanSpec, Stage, as_plan, build_plan, parse_plan
from pinnkit.reweight import FrozenWeightsState, weights_frozen


def test_plan_strings_give_the_stage_lengths():
    assert parse_plan("adam", steps=10) == PlanSpec((("adam", 10),))
    assert parse_plan("adam+lbfgs", steps=300, switch_step=100).stages == (("adam", 100), ("lbfgs", 200))
    assert parse_plan("adam+ssbroyden", steps=301).stages == (("adam", 150), ("ssbroyden", 151))
    assert parse_plan("adam:2000,lbfgs:3000").stages == (("adam", 2000), ("lbfgs", 3000))
    assert parse_plan("adam:2000,bfgs", steps=5000).stages == (("adam", 2000), ("bfgs", 3000))
    equilibrium = parse_plan("adam+ssbfgs", steps=100, switch_at="equilibrium")
    assert equilibrium.switch_at == "equilibrium" and equilibrium.stages[0] == ("adam", 99)


@pytest.mark.parametrize("text,kwargs,needle", [
    ("", {"steps": 10}, "non-empty"),
    ("rmsprop", {"steps": 10}, "rmsprop"),
    ("adam+lbfgs+bfgs", {"steps": 10}, "3 stages"),
    ("adam+lbfgs", {"steps": 10, "switch_step": 10}, "switch_step"),
    ("adam+lbfgs", {"steps": 10, "switch_step": 0}, "switch_step"),
    ("adam", {"steps": 10, "switch_step": 5}, "two stages"),
    ("adam:10,lbfgs:10", {"steps": 30}, "adds up to 20"),
    ("adam,lbfgs:10", {"steps": 30}, "only the last"),
    ("adam:x,lbfgs", {"steps": 30}, "positive integer"),
    ("adam+lbfgs", {"steps": 10, "switch_at": "boredom"}, "boredom"),
    ("adam+lbfgs,sgd", {"steps": 10}, "mixes"),
])
def test_bad_plans_name_the_bad_part(text, kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        parse_plan(text, **kwargs)


def test_built_plans_hold_the_weights_in_a_line_search_stage_after_a_switch():
    plan = build_plan(parse_plan("adam+ssbroyden", steps=10), reweight="rba", num_samples=5)
    params = {"w": jax.numpy.zeros(3)}
    first, second = (stage.optimizer.init(params) for stage in plan.stages)
    assert not weights_frozen(first) and weights_frozen(second)
    leaves = jax.tree_util.tree_leaves(second, is_leaf=lambda node: isinstance(node, FrozenWeightsState))
    assert any(isinstance(leaf, FrozenWeightsState) for leaf in leaves)
    # A line-search stage that starts the plan advances its weights (they would stay at zero otherwise).
    alone = build_plan(parse_plan("lbfgs", steps=10), reweight="rba", num_samples=5)
    assert not weights_frozen(alone.stages[0].optimizer.init(params))


def test_plans_of_optax_transforms():
    plan = Plan((Stage(optax.adam(1e-3), 5, "adam"), Stage(optax.lbfgs(), None, "lbfgs")))
    assert plan.lengths(12) == [5, 7] and plan.describe(12) == "adam:5,lbfgs:7"
    with pytest.raises(ValueError, match="nothing for the last stage"):
        plan.lengths(5)
    with pytest.raises(ValueError, match="only the last stage"):
        Plan((Stage(optax.adam(1e-3), None), Stage(optax.sgd(1e-3), 5)))
    with pytest.raises(TypeError, match="optax transformation"):
        Stage("adam", 5)
    assert as_plan(optax.adam(1e-3)).lengths(7) == [7]


def test_run_configs_validate_their_plan_once():
    assert RunConfig(optimizer="adam+ssbroyden", steps=100, switch_step=40).double_precision
    assert not RunConfig(optimizer="adam", steps=100).double_precision
    assert not RunConfig(optimizer="adam+lbfgs", steps=100, float64=False).double_precision
    with pytest.raises(ValueError, match="rmsprop"):
        RunConfig(optimizer="adam+rmsprop")
    with pytest.raises(ValueError, match="first-order"):
        RunConfig(optimizer="ssbroyden", learning_rate="auto")


def test_switching_at_equilibrium_waits_for_the_detector():
    from pinnkit.plans import equilibrium_confirmed

    # A history whose SNR drops into diffusion and stays there: no switch.
    rows = [{"step": step, "snr": 30.0 if step < 100 else 0.01} for step in range(0, 5000, 10)]
    assert not equilibrium_confirmed(History(rows))


def test_switching_at_equilibrium_never_reads_the_test_error():
    import numpy as np

    from pinnkit.plans import equilibrium_confirmed

    steps = np.concatenate([np.arange(2, 300, 2), np.arange(300, 80_001, 100)]).astype(float)
    rng = np.random.default_rng(0)
    rise = lambda at, width: 0.5 * (1 + np.tanh((np.log10(steps) - np.log10(at)) / width))  # noqa: E731
    # Diffusion from 150, then a re-alignment at 20k to order ~0.8 (below the SNR-only bar of 0.9).
    snr = 10.0 ** (1.7 - 3.7 * rise(150, 0.05) + 2.1 * rise(20_000, 0.04) + rng.normal(0, 0.15, steps.size))
    falls = 0.9 - 0.85 * rise(25_000, 0.03)
    flat = np.full(steps.size, 0.5)

    def history(rel_l2, mse):
        return History([{"step": s, "snr": v, "rel_l2": e, "mse": m}
                        for s, v, e, m in zip(steps, snr, rel_l2, mse, strict=True)])

    # The test error falls with the re-alignment but the training MSE does not: the rule does not switch.
    assert not equilibrium_confirmed(history(falls, flat))
    # The training MSE falls with it: the rule switches.
    assert equilibrium_confirmed(history(flat, falls))


def test_line_search_stages_take_their_own_reweighting_options():
    # RBA: w <- gamma w + eta |r| / max|r|. Adam stage (eta 0.1, gamma 0.5), then an L-BFGS stage that advances
    # every iteration with its own (eta 0.8, gamma 0.2): the second update must use the second pair.
    from pinnkit.reweight import sample_weights, transfer_reweighting

    plan = build_plan(parse_plan("adam:1,lbfgs:1"), reweight="rba", num_samples=2,
                      reweight_options={"eta": 0.1, "gamma": 0.5}, hold_every=1,
                      line_search_reweight_options={"eta": 0.8, "gamma": 0.2})
    params = {"w": jax.numpy.ones(2)}
    first, second = (stage.optimizer for stage in plan.stages)
    _, state = first.update(params, first.init(params), params, residuals=jax.numpy.array([1.0, 2.0]))
    state = transfer_reweighting(state, second.init(params))

    def value_fn(p, residuals=None, indices=None, snr=None, sample_gradient_norms=None):
        return jax.numpy.sum(p["w"] ** 2)

    value, grad = optax.value_and_grad_from_state(value_fn)(params, state=state)
    _, state = second.update(grad, state, params, value=value, grad=grad, value_fn=value_fn,
                             residuals=jax.numpy.array([4.0, 1.0]))
    expected = 0.2 * (0.1 * jax.numpy.array([0.5, 1.0])) + 0.8 * jax.numpy.array([1.0, 0.25])
    assert jax.numpy.allclose(sample_weights(state), expected)
    with pytest.raises(ValueError, match=r"line_search_reweight_options \(--line-search-reweight-option\): gamma"):
        RunConfig(reweight="rba", optimizer="adam+lbfgs", line_search_reweight_options={"gamma": 1.5})
    with pytest.raises(ValueError, match="line_search_reweight_options given without"):
        RunConfig(line_search_reweight_options={"gamma": 0.5})
