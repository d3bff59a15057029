"""Runs that differ only in numbers (seed, learning rate, reweighting on or off) train as one vmapped program, and
each trains as it would alone: the truth is the separate run of each variant."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnkit.engine import LogSchedule, Probes
from pinnkit.experiment import RunConfig, run_stacked, run_variants, setup
from pinnkit.lr_search import search_learning_rate, search_learning_rates
from pinnkit.optimizers import make_optimizer
from pinnkit.reweight import SwitchableWeightsState, rba, sample_weights, switchable_weights
from pinnkit.variants import Variant, set_variant_numbers, variant_groups

BASE = dict(steps=12, points=120, width=8, depth=2, log=LogSchedule(6), probes=Probes(snr_batches=10))
SNR_PREFIXES = ("snr", "grad_", "order")
RESIDUALS = jnp.array([1.0, -3.0, 0.5, 2.0])




def test_switched_on_weights_move_as_the_plain_transform_and_switched_off_they_stay():
    plain = rba(4, eta=0.1, gamma=0.5)
    switched = switchable_weights(rba(4, eta=0.1, gamma=0.5))
    state, alone = switched.init(None), plain.init(None)
    assert isinstance(state, SwitchableWeightsState) and bool(state.on)
    for _ in range(3):
        _, state = switched.update(None, state, residuals=RESIDUALS)
        _, alone = plain.update(None, alone, residuals=RESIDUALS)
    np.testing.assert_array_equal(sample_weights(state), sample_weights(alone))
    off = state._replace(on=jnp.zeros((), bool))
    _, after = switched.update(None, off, residuals=RESIDUALS * 7)
    np.testing.assert_array_equal(sample_weights(after), sample_weights(state))
    assert int(after.inner.count) == int(state.inner.count)


def test_switchable_weights_refuses_a_transform_without_weights():
    with pytest.raises(TypeError, match="switchable_weights wraps an RBA-family transform"):
        switchable_weights(optax.adam(1e-3)).init(jnp.zeros(2))


def test_set_variant_numbers_gives_each_model_its_flag_rate_and_starting_weights():
    optimizer = make_optimizer("adam", learning_rate=1e-3, reweight="rba", num_samples=4, per_model=True)
    state = jax.vmap(optimizer.init)(jnp.zeros((3, 2)))
    state = set_variant_numbers(state, reweighting=[True, False, True], learning_rates=[1e-2, 3e-3, None],
                                fresh=True)
    np.testing.assert_array_equal(optax.tree.get(state, "on"), [True, False, True])
    np.testing.assert_allclose(optax.tree.get(state, "step_size"), [-1e-2, -3e-3, -1e-3], rtol=1e-6)
    np.testing.assert_array_equal(sample_weights(state), [[0.0] * 4, [1.0] * 4, [0.0] * 4])
    with pytest.raises(ValueError, match="2 reweighting flags and 2 learning rates for a state of 3 models"):
        set_variant_numbers(state, reweighting=[True, False], learning_rates=[None, None], fresh=False)
    unswitched = jax.vmap(make_optimizer("adam", reweight="rba", num_samples=4).init)(jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="per_model=True"):
        set_variant_numbers(unswitched, reweighting=[True, False], learning_rates=[None, None], fresh=True)


@pytest.mark.parametrize(("groups", "expected"), [
    (["none"], [("none",)]), (["rba"], [("rba",)]), (["none", "rba"], [("none", "rba")]),
    (["rba", "none", "vrba"], [("rba", "none"), ("vrba",)]),
])
def test_none_joins_the_first_reweighting_and_other_schemes_stand_alone(groups, expected):
    assert variant_groups(groups) == expected


def _compared(history) -> list[str]:
    # Every logged quantity but the clocks.
    return [name for name in history.columns if "time" not in name and name != "wall_s"]


def _separate(config: RunConfig, built, variant: Variant):
    alone = dataclasses.replace(config, reweight=variant.reweight, learning_rate=variant.learning_rate,
                                reweight_options=config.reweight_options if variant.reweight != "none" else {})
    return run_stacked(alone, built, [variant.seed])[0]


@pytest.mark.parametrize(("plan", "fast", "slow"), [
    ("adam", 1e-2, 3e-3), pytest.param("sgd", 1e-4, 3e-5, marks=pytest.mark.slow),
    pytest.param("adam:6,lbfgs:6", 1e-2, 3e-3, marks=pytest.mark.slow)])
def test_each_variant_of_a_stack_trains_as_its_separate_run(plan, fast, slow):
    config = RunConfig(optimizer=plan, reweight="rba", reweight_options={"eta": 0.01, "gamma": 0.99}, **BASE)
    variants = [Variant(0, "none", slow), Variant(1, "rba", fast)]
    if plan != "adam":  # the slow tier: each seed with and without reweighting, each at both rates
        variants = [Variant(0, "none", slow), Variant(0, "rba", fast), Variant(1, "rba", slow),
                    Variant(1, "none", fast)]
    with jax.enable_x64(config.double_precision):
        built = setup(config)
        stacked = run_variants(config, built, variants)
        for variant, result in zip(variants, stacked, strict=True):
            alone = _separate(config, built, variant)
            assert result.status == alone.status == "completed"
            assert list(result.history.columns) == list(alone.history.columns)
            for column in _compared(alone.history):
                # The row-0 SNR of zero RBA weights is a ratio of two rounding-level norms: compared from row 1.
                rows = slice(1, None) if column.startswith(SNR_PREFIXES) else slice(None)
                np.testing.assert_allclose(result.history[column][rows], alone.history[column][rows], rtol=2e-4,
                                           atol=1e-6, err_msg=f"{plan} {variant} {column}")
            weights = sample_weights(result.opt_state)
            if variant.reweight == "none":
                np.testing.assert_array_equal(weights, np.ones_like(weights))
            else:
                np.testing.assert_allclose(weights, sample_weights(alone.opt_state), rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def test_a_line_search_stack_trains_each_variant_as_alone():
    config = RunConfig(optimizer="lbfgs", reweight="rba", **dict(BASE, steps=6, log=LogSchedule(3)))
    variants = [Variant(0, "none"), Variant(0, "rba")]
    with jax.enable_x64(True):
        built = setup(config)
        stacked = run_variants(config, built, variants)
        for variant, result in zip(variants, stacked, strict=True):
            alone = _separate(config, built, variant)
            np.testing.assert_allclose(result.history["loss"], alone.history["loss"], rtol=1e-9)


@pytest.mark.parametrize(("plan", "count"), [("adam", 2), ("adam", 5),
                                           pytest.param("adam:6,lbfgs:6", 3, marks=pytest.mark.slow)])
def test_a_stack_compiles_one_program_of_each_kind_per_stage_whatever_its_size(compiled_programs, plan, count):
    config = RunConfig(optimizer=plan, reweight="rba", **BASE)
    with jax.enable_x64(config.double_precision):
        built = setup(config)
        names = compiled_programs
        variants = [Variant(seed, reweight, 1e-3) for seed in range(count) for reweight in ("none", "rba")]
        results = run_variants(config, built, variants)
    assert len(results) == 2 * count
    stages = len(config.plan_spec().stages)
    assert sorted(names) == ["chunk"] * stages + ["probe"] * stages, names  # two programs a stage


def test_variants_refuse_a_foreign_reweighting():
    config = RunConfig(reweight="rba", **BASE)
    with pytest.raises(ValueError, match="reweights with 'rba' or 'none', got 'vrba'"):
        run_variants(config, setup(config), [Variant(0, "vrba")])


@pytest.mark.slow
def test_searching_with_and_without_reweighting_together_is_each_search_alone(compiled_programs):
    config = RunConfig(reweight="rba", **BASE)
    built = setup(config)
    from pinnkit.experiment import init_models

    model, _ = init_models(config, built.problem, [0], built.dtype)
    candidates = (3e-2, 3e-3, 3e-4)
    names = compiled_programs
    together = search_learning_rates(built.problem, model, built.points, candidates=candidates, steps=4,
                                     reweights=("none", "rba"), num_samples=config.points)
    assert len(names) == 2, names  # one chunk, one probe for all 2 x 3 trainings
    for reweight in ("none", "rba"):
        alone = search_learning_rate(built.problem, model, built.points, candidates=candidates, steps=4,
                                     reweight=reweight, num_samples=config.points)
        assert together[reweight].learning_rate == alone.learning_rate
        np.testing.assert_allclose(list(together[reweight].losses.values()), list(alone.losses.values()),
                                   rtol=1e-5)
    with pytest.raises(ValueError, match="at most one other reweighting"):
        search_learning_rates(built.problem, model, built.points, reweights=("rba", "vrba"), num_samples=120)


def test_a_comparison_searches_a_first_order_stage_once_and_returns_its_runs_in_grid_order(monkeypatch):
    import importlib

    compare_module = importlib.import_module("pinnkit.compare")
    searches = []
    original = compare_module.resolve_learning_rates

    def counting(config, built, reweights, seed=None):
        searches.append((config.optimizer, tuple(reweights)))
        return original(config, built, reweights, seed)

    monkeypatch.setattr(compare_module, "resolve_learning_rates", counting)
    monkeypatch.setattr("pinnkit.lr_search.SEARCH_STEPS", 2)  # both Adam stages (6 and 3 steps) search 2 steps
    config = compare_module.CompareConfig(optimizers=("adam", "adam+lbfgs"), reweights=("rba", "none"), steps=6,
                                          points=60, width=8, depth=1, learning_rate="auto",
                                          log=LogSchedule(3), probes=Probes(snr_batches=6))
    runs = compare_module.compare(config)
    assert searches == [("adam", ("rba", "none"))]  # the Adam stage of adam+lbfgs takes the same search
    assert [(run.summary.optimizer, run.summary.reweight) for run in runs] == [
        ("adam", "rba"), ("adam", "none"), ("adam+lbfgs", "rba"), ("adam+lbfgs", "none")]
    rates = {(run.summary.optimizer, run.summary.reweight): run.summary.learning_rate for run in runs}
    assert rates["adam", "rba"] == rates["adam+lbfgs", "rba"] and rates["adam", "none"] == rates["adam+lbfgs", "none"]


def test_learning_rates_given_per_optimizer_reach_the_plans_that_begin_with_it():
    from pinnkit.compare import CompareConfig

    config = CompareConfig(optimizers=("adam", "sgd", "lbfgs", "adam+lbfgs"), learning_rate={"adam": 3e-3},
                           steps=10)
    assert config.run_config("adam", "rba").learning_rate == 3e-3
    assert config.run_config("adam+lbfgs", "none").learning_rate == 3e-3
    assert config.run_config("sgd", "rba").learning_rate is None  # the optimizer's default
    assert config.run_config("lbfgs", "rba").learning_rate is None
    assert config.to_dict()["learning_rate"] == {"adam": 3e-3}
    with pytest.raises(ValueError, match="'lbfgs', not a first-order optimizer"):
        CompareConfig(learning_rate={"lbfgs": 1.0})
