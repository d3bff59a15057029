"""The optimizer registry: a quasi-Newton method defined only in this module (a scaling rule) and registered here
appears in the name lists, in `pinnkit train --help` and `pinnkit compare --help`, and in plans, without an edit
elsewhere; its memory rule sizes the run and its curvature rule is what the engine's forget/restart apply."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import run_cli

from pinnkit.curvature import CurvatureRule, forget_loss, restart_curvature
from pinnkit.engine import LogSchedule, Probes
from pinnkit.engine.steps import restart_curvature as engine_restart_curvature
from pinnkit.experiment import RunConfig, run
from pinnkit.optimizer_registry import (
    OptimizerSpec,
    optimizer_spec,
    quasi_newton_spec,
    register_optimizer,
    temporarily_registered,
    unregister_optimizer,
)
from pinnkit.optimizers import (
    DEFAULT_LEARNING_RATES,
    FIRST_ORDER_OPTIMIZERS,
    LINE_SEARCH_OPTIMIZERS,
    OPTIMIZERS,
    make_optimizer,
)
from pinnkit.plans import build_plan, parse_plan
from pinnkit.quasi_newton import QuasiNewtonState
from pinnkit.resources import estimate_run_memory
from pinnkit.scaling_rules import ScalingRule

BUILT_IN = ("adam", "sgd", "lbfgs", "bfgs", "ssbfgs", "ssbroyden")

# Plain BFGS scalars under another name: a quasi-Newton method that exists only in this test module.
FAKE = ScalingRule("fakeqn", tau=lambda scalars, theta: jnp.ones_like(scalars.a), description="a test's BFGS")


@pytest.fixture
def fakeqn():
    with temporarily_registered(quasi_newton_spec(FAKE, help="the registry test's quasi-Newton method")) as spec:
        yield spec
    assert "fakeqn" not in OPTIMIZERS


def nodes_of(tree, kind) -> list:
    leaves = jax.tree_util.tree_leaves(tree, is_leaf=lambda node: isinstance(node, kind))
    return [node for node in leaves if isinstance(node, kind)]


def small_config(plan: str, **changes) -> RunConfig:
    fields = dict(optimizer=plan, steps=10, points=32, width=8, depth=1, log=LogSchedule(5),
                  probes=Probes(snr_batches=0), problem_params={"grid_size": 11, "boundary_points_per_side": 8})
    return RunConfig(**{**fields, **changes})


def test_the_name_lists_are_views_of_the_registry(fakeqn):
    assert OPTIMIZERS == BUILT_IN + ("fakeqn",)
    assert "fakeqn" in LINE_SEARCH_OPTIMIZERS and "fakeqn" not in FIRST_ORDER_OPTIMIZERS
    assert FIRST_ORDER_OPTIMIZERS + LINE_SEARCH_OPTIMIZERS == OPTIMIZERS
    assert DEFAULT_LEARNING_RATES == {"adam": 1e-3, "sgd": 1e-3}
    assert optimizer_spec("fakeqn") is fakeqn


def test_registering_is_undone_and_names_are_checked():
    with temporarily_registered(quasi_newton_spec(FAKE)):
        assert parse_plan("adam+fakeqn", steps=10).names == ("adam", "fakeqn")
    assert OPTIMIZERS == BUILT_IN
    with pytest.raises(ValueError, match="fakeqn"):
        parse_plan("adam+fakeqn", steps=10)
    spec = register_optimizer(quasi_newton_spec(FAKE))
    try:
        with pytest.raises(ValueError, match="registered already"):
            register_optimizer(quasi_newton_spec(FAKE))
    finally:
        assert unregister_optimizer("fakeqn") is spec
    with pytest.raises(ValueError, match="name"):
        OptimizerSpec("adam+sgd", lambda options: optax.sgd(1e-3), "not a plan name", default_learning_rate=1e-3)


@pytest.mark.parametrize(("command", "before"), [("train", "ssbroyden (self-"), ("compare", "ssbroyden")])
def test_the_help_of_both_commands_lists_a_method_registered_after_the_cli_was_built(command, before):
    import pinnkit_cli.commands  # noqa: F401 - the typer application exists before the registration

    code, out, _ = run_cli(command, "--help")
    assert code == 0 and before in out and "fakeqn" not in out
    with temporarily_registered(quasi_newton_spec(FAKE, help="the registry test's quasi-Newton method")):
        code, out, _ = run_cli(command, "--help")
        assert code == 0 and "fakeqn" in out
        if command == "train":  # its line of help too
            assert "registry test's" in " ".join(out.split())
    code, out, _ = run_cli(command, "--help")
    assert "fakeqn" not in out


@pytest.mark.slow
def test_a_plan_with_it_builds_and_trains_as_a_line_search_stage(fakeqn):
    plan = build_plan(parse_plan("adam:5,fakeqn", steps=8), reweight="rba", num_samples=5)
    assert [stage.name for stage in plan.stages] == ["adam", "fakeqn"] and plan.lengths() == [5, 3]
    assert len(nodes_of(make_optimizer("fakeqn").init(jnp.zeros(3)), QuasiNewtonState)) == 1

    config = small_config("adam:5,fakeqn")
    assert config.double_precision  # a line-search stage: float64 by default
    result = run(config)
    assert result.steps == 10 and result.stage_starts == (0, 5)
    assert int(nodes_of(result.opt_state, QuasiNewtonState)[0].count) == 5
    loss = result.history["loss"]
    assert np.all(np.isfinite(loss)) and loss[-1] < loss[0]
    # BFGS's scalars under another name: the run is BFGS's, bit for bit.
    bfgs = run(small_config("adam:5,bfgs"))
    np.testing.assert_array_equal(loss, bfgs.history["loss"])
    for left, right in zip(jax.tree_util.tree_leaves(result.opt_state), jax.tree_util.tree_leaves(bfgs.opt_state),
                           strict=True):
        np.testing.assert_array_equal(np.asarray(left), np.asarray(right))


def test_its_curvature_rule_is_what_the_engine_restarts_and_forgets_with(fakeqn):
    optimizer = build_plan(parse_plan("adam:5,fakeqn", steps=8)).stages[1].optimizer
    target = jnp.arange(4.0)

    def loss(params):
        return jnp.sum((params - target) ** 2 * jnp.array([1.0, 3.0, 10.0, 30.0]))

    params, state = jnp.zeros(4), optimizer.init(jnp.zeros(4))
    value_and_grad = optax.value_and_grad_from_state(loss)
    for _ in range(3):
        value, grad = value_and_grad(params, state=state)
        updates, state = optimizer.update(grad, state, params, value=value, grad=grad, value_fn=loss)
        params = optax.apply_updates(params, updates)
    (trained,) = nodes_of(state, QuasiNewtonState)
    assert int(trained.num_updates) >= 1 and not np.array_equal(trained.inverse_hessian, np.eye(4))

    # The engine's restart (also re-exported by engine.steps) uses the curvature rule of the method's entry.
    for restart in (restart_curvature, engine_restart_curvature):
        (restarted,) = nodes_of(restart(state), QuasiNewtonState)
        np.testing.assert_array_equal(restarted.inverse_hessian, np.eye(4))
        assert int(restarted.num_resets) == int(trained.num_resets) + 1 and int(restarted.num_updates) == 0
        assert not bool(restarted.has_prev)
    (forgotten,) = nodes_of(forget_loss(state), QuasiNewtonState)
    np.testing.assert_array_equal(forgotten.inverse_hessian, trained.inverse_hessian)
    assert bool(trained.has_prev) and not bool(forgotten.has_prev)


def test_its_memory_rule_sizes_the_run(fakeqn):
    def estimate(plan: str) -> int:
        return estimate_run_memory(RunConfig(optimizer=plan, steps=10, width=16, depth=2, points=100))

    assert estimate("adam:5,fakeqn") == estimate("adam:5,bfgs") > estimate("adam:5,lbfgs")
    heavy = dataclasses.replace(fakeqn, name="heavyqn", memory=lambda parameters, itemsize: 10**9)
    with temporarily_registered(heavy):
        assert estimate("adam:5,heavyqn") - estimate("adam:5,lbfgs") == 10**9


class CountState(NamedTuple):
    count: jax.Array
    last_loss: jax.Array


def counting_sgd(learning_rate: float) -> optax.GradientTransformation:
    """SGD with a state of its own: the only place that knows its fields is its curvature rule below."""

    def init(params):
        return CountState(jnp.zeros((), jnp.int32), jnp.zeros(()))

    def update(updates, state, params=None):
        return jax.tree_util.tree_map(lambda g: -learning_rate * g, updates), state._replace(count=state.count + 1)

    return optax.GradientTransformation(init, update)


def test_the_curvature_rule_of_a_registered_entry_is_applied():
    rule = CurvatureRule((CountState,), forget=lambda node: node._replace(last_loss=node.last_loss + jnp.inf),
                         restart=lambda node: node._replace(count=jnp.zeros_like(node.count)))
    spec = OptimizerSpec("countingsgd", lambda options: counting_sgd(options.learning_rate), "SGD that counts",
                         default_learning_rate=1e-2, curvature=(rule,))
    with temporarily_registered(spec):
        optimizer = make_optimizer("countingsgd", schedule="constant")
        state = optimizer.init({"w": jnp.zeros(2)})
        _, state = optimizer.update({"w": jnp.ones(2)}, state, {"w": jnp.zeros(2)})
        (counted,) = nodes_of(state, CountState)
        assert int(counted.count) == 1
        (restarted,) = nodes_of(restart_curvature(state), CountState)
        assert int(restarted.count) == 0 and float(restarted.last_loss) == np.inf
        (forgotten,) = nodes_of(forget_loss(state), CountState)
        assert int(forgotten.count) == 1 and float(forgotten.last_loss) == np.inf
    # Unregistered, nothing knows the state any more: it is left alone.
    (untouched,) = nodes_of(restart_curvature(state), CountState)
    assert int(untouched.count) == 1
