import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnkit import nn, problems
from pinnkit.reweight import rba, sample_weights
from pinnkit.train import Trainer, fit, fit_stacked, log_steps


@pytest.fixture(scope="module")
def helmholtz():
    problem = problems.get("helmholtz", grid_size=41)
    points = problem.sample(jax.random.key(0), 400)
    return problem, points


def small_model(problem, seed=1, width=16):
    return nn.MLP(2, 1, width=width, depth=2, domain=problem.domain, key=jax.random.key(seed))


def test_log_steps_schedule():
    assert log_steps(1000, log_every=300, dense_until=20, dense_every=10) == [10, 20, 300, 600, 900, 1000]
    assert log_steps(50, log_every=20, start=20) == [40, 50]
    with pytest.raises(ValueError, match="steps"):
        log_steps(0, log_every=10)


def test_adam_lowers_the_loss_and_the_history_has_the_columns(helmholtz):
    problem, points = helmholtz
    result = fit(problem, small_model(problem), optax.adam(3e-3), points, steps=300, log_every=50, snr_batches=20)
    history = result.history
    assert result.status == "completed" and result.steps == 300
    assert history["step"].tolist() == [50, 100, 150, 200, 250, 300]
    loss = history["loss"]
    assert loss[-1] < 0.5 * loss[0]
    np.testing.assert_allclose(history["loss_pde"] + history["loss_bc"], loss, rtol=1e-5)
    for column in ("rel_l2", "snr", "order", "adam_snr", "homogeneity", "wall_time_s"):
        assert np.all(np.isfinite(history[column])), column
    # order = snr / sqrt(1 + snr^2) holds for what was recorded.
    snr = history["snr"]
    np.testing.assert_allclose(history["order"], snr / np.sqrt(1 + snr**2), rtol=1e-4)


def test_the_same_seed_gives_the_same_history(helmholtz):
    problem, points = helmholtz
    runs = [fit(problem, small_model(problem), optax.adam(1e-3), points, steps=40, log_every=20, snr_batches=20)
            for _ in range(2)]
    for column in ("loss", "rel_l2", "snr"):
        np.testing.assert_array_equal(runs[0].history[column], runs[1].history[column])


def test_mean_of_batch_gradients_is_the_full_gradient(helmholtz):
    problem, points = helmholtz
    model = small_model(problem)
    trainer = Trainer(problem, model, optax.adam(1e-3), points, snr_batches=20)
    params, opt_state = trainer.init(model)
    loss, _, residuals, batch_grads = trainer.batch_gradients(params, opt_state, points)
    full_grads = jax.grad(lambda p: trainer.loss(p, points, {})[0])(params)
    mean_grads = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), batch_grads)
    for mean, full in zip(jax.tree_util.tree_leaves(mean_grads), jax.tree_util.tree_leaves(full_grads)):
        np.testing.assert_allclose(mean, full, rtol=2e-4, atol=1e-5 * float(jnp.max(jnp.abs(full))))
    np.testing.assert_allclose(loss, trainer.loss(params, points, {})[0], rtol=1e-5)
    direct = problem.residuals(model, points)["pde"]
    np.testing.assert_allclose(residuals["pde"], direct, rtol=1e-5, atol=1e-5)


def test_resuming_gives_the_same_result_as_one_run(helmholtz):
    problem, points = helmholtz
    model = small_model(problem)
    optimizer = optax.chain(rba(400), optax.adam(1e-3))
    straight = fit(problem, model, optimizer, points, steps=40, log_every=10, snr_batches=20)
    first = fit(problem, model, optimizer, points, steps=20, log_every=10, snr_batches=20)
    second = fit(problem, first.model, optimizer, points, steps=20, log_every=10, snr_batches=20,
                 opt_state=first.opt_state, start_step=20, history=first.history)
    np.testing.assert_array_equal(second.history["loss"], straight.history["loss"])
    np.testing.assert_array_equal(sample_weights(second.opt_state), sample_weights(straight.opt_state))


def test_rba_weights_advance_and_stay_bounded(helmholtz):
    problem, points = helmholtz
    optimizer = optax.chain(rba(400, eta=0.01, gamma=0.99), optax.adam(1e-3))
    result = fit(problem, small_model(problem), optimizer, points, steps=60, log_every=30, snr_batches=20)
    weights = np.asarray(sample_weights(result.opt_state))
    assert weights.shape == (400,)
    assert weights.max() > 0 and weights.max() <= 0.01 / (1 - 0.99) + 1e-6 and weights.min() >= 0


@pytest.mark.parametrize("reweight", [False, True])
def test_lbfgs_lowers_the_loss_and_reports_line_searches(helmholtz, reweight):
    problem, points = helmholtz
    optimizer = optax.lbfgs()
    if reweight:
        optimizer = optax.chain(rba(400, init="residual"), optimizer)
    result = fit(problem, small_model(problem), optimizer, points, steps=30, log_every=10, snr_batches=20)
    loss = result.history["loss"]
    assert result.status == "completed"
    assert loss[-1] < loss[0]
    assert "line_search_failures" in result.history


def test_divergence_stops_cleanly_and_keeps_the_finite_history(helmholtz):
    problem, points = helmholtz
    result = fit(problem, small_model(problem), optax.sgd(1e8), points, steps=50, log_every=1, snr_batches=20)
    assert result.status.startswith("diverged")
    assert 1 <= result.steps < 50
    assert len(result.history) == result.steps
    assert np.all(np.isfinite(result.history["loss"]))
    leaves = jax.tree_util.tree_leaves(eqx.filter(result.model, eqx.is_inexact_array))
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)


def test_vmapped_seeds_match_separate_runs(helmholtz):
    problem, points = helmholtz
    seeds = [1, 2]
    models = [small_model(problem, seed) for seed in seeds]
    trainer = Trainer(problem, models[0], optax.adam(1e-3), points, snr_batches=20)
    params = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves),
                                    *[eqx.filter(model, eqx.is_inexact_array) for model in models])
    together = fit_stacked(trainer, params, jax.vmap(trainer.optimizer.init)(params), steps=30, log_every=10)
    for model, result in zip(models, together):
        alone = fit(problem, model, optax.adam(1e-3), points, steps=30, log_every=10, snr_batches=20)
        np.testing.assert_allclose(result.history["loss"], alone.history["loss"], rtol=1e-4)
        np.testing.assert_allclose(result.history["rel_l2"], alone.history["rel_l2"], rtol=1e-4)


def test_gradient_aware_reweighting_gets_sample_gradient_norms(helmholtz):
    from pinnkit.reweight import gradient_aware_rba

    problem, points = helmholtz
    optimizer = optax.chain(gradient_aware_rba(400, eta=0.01, gamma=0.99), optax.adam(1e-3))
    trainer = Trainer(problem, small_model(problem), optimizer, points, snr_batches=20)
    assert trainer.gradient_aware
    result = fit(problem, small_model(problem), optimizer, points, steps=20, log_every=10, trainer=trainer)
    weights = np.asarray(sample_weights(result.opt_state))
    assert result.status == "completed"
    assert weights.max() > 0 and weights.max() <= 1.0 + 1e-6
    assert not Trainer(problem, small_model(problem), optax.chain(rba(400), optax.adam(1e-3)), points,
                       snr_batches=20).gradient_aware
