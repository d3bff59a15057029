"""The training engine, checked against what it claims: each test compares with an independent computation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnkit import diagnostics, nn, problems
from pinnkit.engine import LogSchedule, Probes, columns, fit, fit_stacked
from pinnkit.plans import Plan, Stage
from pinnkit.reweight import gradient_aware_rba, rba, sample_weights, weighted_mse

B = 20  # SNR batches; 400 points split evenly


@pytest.fixture(scope="module")
def helmholtz():
    problem = problems.get("helmholtz", grid_size=41)
    points = problem.sample(jax.random.key(0), 400)
    return problem, points


def small_model(problem, seed=1, width=16):
    return nn.MLP(2, 1, width=width, depth=2, domain=problem.domain, key=jax.random.key(seed))


def leaves(model):
    return jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))


def test_log_schedule_is_lazy_and_counts_its_rows():
    schedule = LogSchedule(every=300, dense_until=20, dense_every=10)
    assert list(schedule.marks(1000)) == [10, 20, 300, 600, 900, 1000]
    assert list(LogSchedule(20).marks(50, start=20)) == [40, 50]
    assert schedule.count(1000) == 6
    # A billion steps logged every step: counted without building the list.
    assert LogSchedule(1).count(10**9) == 10**9
    with pytest.raises(ValueError, match="every"):
        LogSchedule(0)


def test_rows_start_at_the_initial_state_and_have_the_schema(helmholtz):
    problem, points = helmholtz
    model = small_model(problem)
    result = fit(problem, model, optax.adam(3e-3), points, steps=300, log=LogSchedule(50),
                 probes=Probes(snr_batches=B))
    history = result.history
    assert result.status == "completed" and result.steps == 300
    assert history["step"].tolist() == [0, 50, 100, 150, 200, 250, 300]
    # Row 0 is the untrained model: its error is the initial model's.
    np.testing.assert_allclose(history["rel_l2"][0], problem.relative_l2_fn()(model), rtol=1e-5)
    loss = history["loss"]
    assert loss[-1] < 0.5 * loss[0]
    np.testing.assert_allclose(history["loss_pde"] + history["loss_bc"], loss, rtol=1e-5)
    # Unweighted run: the objective is the MSE.
    np.testing.assert_allclose(history["mse"], loss, rtol=1e-6)
    snr = history["snr"]
    np.testing.assert_allclose(history["order"], snr / np.sqrt(1 + snr**2), rtol=1e-4)
    for column in history.columns:
        columns.describe(column)  # every column is in the schema


@pytest.mark.slow
def test_logged_quantities_are_those_of_the_returned_state(helmholtz):
    problem, points = helmholtz
    result = fit(problem, small_model(problem), optax.chain(rba(400), optax.adam(3e-3)), points, steps=30,
                 log=LogSchedule(10), probes=Probes(snr_batches=B))
    last = {column: result.history[column][-1] for column in result.history.columns}
    assert last["rel_l2"] == pytest.approx(float(problem.relative_l2_fn()(result.model)), rel=1e-5)
    assert last["adam_snr"] == pytest.approx(float(diagnostics.adam_snr(result.opt_state).snr), rel=1e-5)
    weights = sample_weights(result.opt_state)
    residuals = problem.residuals(result.model, points)
    assert last["loss_pde"] == pytest.approx(float(weighted_mse(residuals["pde"], weights)), rel=1e-4)
    assert last["mse_pde"] == pytest.approx(float(jnp.mean(residuals["pde"] ** 2)), rel=1e-4)
    lower, upper = problem.domain
    homogeneity = diagnostics.residual_homogeneity(points["pde"], weights, lower, upper)
    assert last["homogeneity"] == pytest.approx(float(homogeneity), rel=1e-5)
    # The row's SNR is measured at the returned parameters, with the returned weights.
    batches = diagnostics.make_batches(jax.random.key(0), 400, B)

    def batch_loss(params, indices):
        model = eqx.combine(params, eqx.filter(result.model, eqx.is_inexact_array, inverse=True))
        batch = dict(points, pde=points["pde"][indices])
        r = problem.residuals(model, batch)
        return weighted_mse(r["pde"], weights[indices]) + weighted_mse(r["bc"])

    params = eqx.filter(result.model, eqx.is_inexact_array)
    stats = diagnostics.batch_gradient_snr(jax.vmap(jax.grad(batch_loss), in_axes=(None, 0))(params, batches))
    assert last["snr"] == pytest.approx(float(stats.snr), rel=1e-3)


def test_first_rba_step_sets_the_weights_from_the_initial_residuals(helmholtz):
    problem, points = helmholtz
    model = small_model(problem)
    eta = 0.01
    result = fit(problem, model, optax.chain(rba(400, eta=eta, gamma=0.99), optax.adam(1e-3)), points, steps=1,
                 log=LogSchedule(1), probes=Probes(snr_batches=B))
    r0 = np.abs(np.asarray(problem.residuals(model, points)["pde"]))
    np.testing.assert_allclose(sample_weights(result.opt_state), eta * r0 / r0.max(), rtol=1e-5, atol=1e-9)


@pytest.mark.slow
def test_gradient_aware_step_equals_the_transform_fed_the_same_gradient_norms(helmholtz):
    problem, points = helmholtz
    model = small_model(problem)
    transform = gradient_aware_rba(400, eta=0.01, gamma=0.99)
    result = fit(problem, model, optax.chain(transform, optax.adam(1e-3)), points, steps=1, log=LogSchedule(1),
                 probes=Probes(snr_batches=B))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    # The engine's projections: key(1) folded with the step index, 4 projections (engine.steps).
    norms = diagnostics.sample_gradient_norms(
        lambda p: problem.residuals(eqx.combine(p, static), points)["pde"], params,
        jax.random.fold_in(jax.random.key(1), 0), num_projections=4)
    residuals = problem.residuals(model, points)["pde"]
    _, expected = transform.update(None, transform.init(None), residuals=residuals, sample_gradient_norms=norms)
    np.testing.assert_allclose(sample_weights(result.opt_state), expected.weights, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("points_count,batch_constraints", [(400, True), (390, True), (400, False)])
@pytest.mark.slow
def test_recording_the_snr_does_not_change_the_training(helmholtz, points_count, batch_constraints):
    problem, _ = helmholtz
    points = problem.sample(jax.random.key(0), points_count)
    optimizer = optax.chain(rba(points_count, init="residual", eta=0.01, gamma=0.99), optax.adam(3e-3))
    runs = [fit(problem, small_model(problem), optimizer, points, steps=12, log=LogSchedule(3),
                probes=Probes(snr_batches=b, batch_constraints=batch_constraints)) for b in (B, 0)]
    assert np.max(np.asarray(sample_weights(runs[0].opt_state))) > 0  # the weights matter in these steps
    for with_snr, without in zip(leaves(runs[0].model), leaves(runs[1].model), strict=True):
        np.testing.assert_allclose(with_snr, without, rtol=2e-4, atol=2e-6)
    assert "snr" in runs[0].history and "snr" not in runs[1].history


@pytest.mark.slow
def test_lbfgs_with_held_weights_matches_hand_written_lbfgs_and_records_snr(helmholtz):
    problem, points = helmholtz
    model = small_model(problem)
    weights = jnp.linspace(0.1, 1.0, 400)
    # Frozen reweighting: the weights of the state never move, so the engine may reuse the line search's cache.
    from pinnkit.reweight import hold_weights

    optimizer = optax.chain(hold_weights(rba(400), every=None), optax.lbfgs())
    state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    state = optax.tree.set(state, weights=weights)
    stack = lambda tree: jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[None], tree)  # noqa: E731
    (engine,) = fit_stacked(problem, model, optimizer, points, stack(eqx.filter(model, eqx.is_inexact_array)),
                            steps=2, opt_state=stack(state), log=LogSchedule(1), probes=Probes(snr_batches=B))
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def value_fn(p):
        r = problem.residuals(eqx.combine(p, static), points)
        return weighted_mse(r["pde"], weights) + weighted_mse(r["bc"])

    solver = optax.lbfgs()
    solver_state = solver.init(params)
    for _ in range(2):
        value, grad = optax.value_and_grad_from_state(value_fn)(params, state=solver_state)
        updates, solver_state = solver.update(grad, solver_state, params, value=value, grad=grad, value_fn=value_fn)
        params = optax.apply_updates(params, updates)
    for by_engine, by_hand in zip(leaves(engine.model), jax.tree_util.tree_leaves(params), strict=True):
        np.testing.assert_allclose(by_engine, by_hand, rtol=1e-5, atol=1e-7)
    history = engine.history
    assert np.nansum(history["line_search_failures"]) == 0
    assert history["mse"][-1] < history["mse"][0]
    assert np.all(np.isfinite(history["snr"]))
    np.testing.assert_array_equal(sample_weights(engine.opt_state), weights)


def test_the_same_seed_gives_the_same_history(helmholtz):
    problem, points = helmholtz
    runs = [fit(problem, small_model(problem), optax.adam(1e-3), points, steps=40, log=LogSchedule(20),
                probes=Probes(snr_batches=B)) for _ in range(2)]
    for column in ("loss", "rel_l2", "snr"):
        np.testing.assert_array_equal(runs[0].history[column], runs[1].history[column])


@pytest.mark.slow
def test_resuming_gives_the_same_result_as_one_run(helmholtz):
    problem, points = helmholtz
    model = small_model(problem)
    optimizer = optax.chain(rba(400), optax.adam(1e-3))
    kwargs = dict(log=LogSchedule(10), probes=Probes(snr_batches=B))
    straight = fit(problem, model, optimizer, points, steps=40, **kwargs)
    first = fit(problem, model, optimizer, points, steps=20, **kwargs)
    second = fit(problem, first.model, optimizer, points, steps=40, opt_state=first.opt_state, start_step=20,
                 history=first.history, **kwargs)
    for column in ("loss", "rel_l2", "snr"):
        np.testing.assert_array_equal(second.history[column], straight.history[column])
    np.testing.assert_array_equal(sample_weights(second.opt_state), sample_weights(straight.opt_state))


@pytest.mark.slow
def test_a_plan_switches_optimizer_and_carries_the_weights(helmholtz):
    problem, points = helmholtz
    model = small_model(problem)
    adam = optax.chain(rba(400, eta=0.01, gamma=0.99), optax.adam(3e-3))
    from pinnkit.reweight import hold_weights

    lbfgs = optax.chain(hold_weights(rba(400, eta=0.01, gamma=0.99), every=None), optax.lbfgs())
    plan = Plan((Stage(adam, 20, "adam"), Stage(lbfgs, None, "lbfgs")))
    result = fit(problem, model, plan, points, steps=30, log=LogSchedule(5), probes=Probes(snr_batches=B))
    history = result.history
    assert result.stage_starts == (0, 20)
    np.testing.assert_array_equal(history["stage"], [0, 0, 0, 0, 0, 1, 1])
    assert "adam_snr" in history and np.isnan(history["adam_snr"][-1])  # no Adam in the L-BFGS stage
    assert np.nansum(history["line_search_failures"]) == 0
    # The weights came in from Adam's stage and were held through L-BFGS's.
    first = fit(problem, model, adam, points, steps=20, log=LogSchedule(5), probes=Probes(snr_batches=B))
    np.testing.assert_array_equal(sample_weights(result.opt_state), sample_weights(first.opt_state))
    # L-BFGS minimised the objective with the held weights.
    assert history["loss"][-1] < history["loss"][4]


@pytest.mark.slow
def test_divergence_stops_cleanly_and_keeps_the_finite_history(helmholtz):
    problem, points = helmholtz
    result = fit(problem, small_model(problem), optax.sgd(1e8), points, steps=50, log=LogSchedule(1),
                 probes=Probes(snr_batches=B))
    assert result.status.startswith("diverged")
    assert 1 <= result.steps < 50
    assert len(result.history) == result.steps + 1
    assert np.all(np.isfinite(result.history["loss"]))
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves(result.model))


@pytest.mark.slow
def test_vmapped_seeds_match_separate_runs(helmholtz):
    problem, points = helmholtz
    models = [small_model(problem, seed) for seed in (1, 2)]
    params = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[eqx.filter(m, eqx.is_inexact_array) for m in models])
    kwargs = dict(steps=30, log=LogSchedule(10), probes=Probes(snr_batches=B))
    together = fit_stacked(problem, models[0], optax.adam(1e-3), points, params, **kwargs)
    for model, result in zip(models, together, strict=True):
        alone = fit(problem, model, optax.adam(1e-3), points, **kwargs)
        np.testing.assert_allclose(result.history["loss"], alone.history["loss"], rtol=1e-4)
        np.testing.assert_allclose(result.history["rel_l2"], alone.history["rel_l2"], rtol=1e-4)


def test_information_measures_follow_their_schedule(helmholtz):
    problem, points = helmholtz
    result = fit(problem, small_model(problem), optax.adam(1e-3), points, steps=40, log=LogSchedule(10),
                 probes=Probes(snr_batches=0, information_every=2, information_points=128))
    entropy = result.history["entropy[0]"]
    # Rows 0, 2, 4 (steps 0, 20, 40) carry the measures; the others do not.
    assert np.isfinite(entropy).tolist() == [True, False, True, False, True]
    assert np.all(entropy[np.isfinite(entropy)] <= np.log2(128) + 1e-9)


def test_bad_arguments_name_the_value(helmholtz):
    problem, points = helmholtz
    model = small_model(problem)
    with pytest.raises(ValueError, match="snr_batches"):
        Probes(snr_batches=1)
    with pytest.raises(ValueError, match="rows"):
        fit(problem, model, optax.adam(1e-3), points, steps=10**8, log=LogSchedule(1))
    with pytest.raises(ValueError, match="steps"):
        fit(problem, model, optax.adam(1e-3), points, steps=2 * 10**9)
    with pytest.raises(TypeError, match="log"):
        fit(problem, model, optax.adam(1e-3), points, steps=10, log=10)


@pytest.mark.slow
def test_the_snr_coupling_receives_each_rows_snr(helmholtz):
    problem, points = helmholtz
    optimizer = optax.chain(rba(400, snr_coupling=1.0), optax.adam(1e-3))
    result = fit(problem, small_model(problem), optimizer, points, steps=10, log=LogSchedule(5),
                 probes=Probes(snr_batches=B))
    # The chunk after row 5 started from row 5's evaluation: its SNR (measured at the same parameters) is the one
    # the transform stored and modulates with.
    stored = optax.tree.get(result.opt_state, "snr")
    assert float(stored) == pytest.approx(result.history["snr"][1], rel=1e-6)
    plain = fit(problem, small_model(problem), optax.chain(rba(400), optax.adam(1e-3)), points, steps=10,
                log=LogSchedule(5), probes=Probes(snr_batches=0))
    assert np.isnan(float(optax.tree.get(plain.opt_state, "snr")))  # no SNR measured, none stored


@pytest.mark.slow
def test_a_failed_line_search_step_is_rejected_and_the_curvature_restarted(helmholtz):
    problem, points = helmholtz
    model = small_model(problem)
    # A step 1e6 times too long and one trial allowed: the line search cannot find a decrease and fails.
    reckless = optax.lbfgs(learning_rate=1e6, linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=1))
    result = fit(problem, model, reckless, points, steps=1, log=LogSchedule(1), probes=Probes(snr_batches=0))
    assert result.history["line_search_failures"][-1] == 1
    for before, after in zip(leaves(model), leaves(result.model), strict=True):
        np.testing.assert_array_equal(before, after)  # the step was not taken
    assert result.history["loss"][-1] == result.history["loss"][0]
    assert float(optax.tree.get(result.opt_state, "value")) == np.inf  # the rejected point is not reused
    assert int(optax.tree.get(result.opt_state, "count", filtering=lambda path, value: isinstance(
        path[-1], optax.tree_utils.NamedTupleKey) and path[-1].tuple_name == "ScaleByLBFGSState")) == 0
