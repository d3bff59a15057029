"""The paper's cases: the settings the authors' logs show (docs/paper.md, sections 4.1-4.2), the batches and the
boundary sampling of the authors' code, and `--preset` on both commands."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import run_cli

from pinnkit import diagnostics, problems
from pinnkit.compare import PRESETS, preset
from pinnkit.engine import LogSchedule, Probes
from pinnkit.paper_cases import PAPER_CASES, paper_case

# The paper's sections 4.1-4.2: points, collocation points per SNR batch, RBA normalisation.
PAPER = {"allen-cahn": (25_600, 256, "max"), "helmholtz": (25_600, 256, "minmax"), "cavity": (10_000, 100, "max")}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_each_case_has_the_papers_settings(name):
    points, per_batch, normalize = PAPER[name]
    config = PAPER_CASES[name].run_config(steps=300_000)
    assert (config.width, config.depth, config.activation, config.normalize_inputs) == (128, 6, "tanh", False)
    assert config.points == points and config.points // config.probes.snr_batches == per_batch
    assert config.sampling == "lhs" and config.optimizer == "adam" and config.schedule == "paper"
    assert config.learning_rate == 1e-3 and config.dtype == np.float32
    assert dict(config.reweight_options) == {"eta": 1e-3, "gamma": 0.999, "init": "zeros", "normalize": normalize}
    assert config.weights_first and config.probes.batch_constraints
    # Rows every 2 steps below 300, every 100 after (the released logs).
    assert list(config.log.marks(500))[:3] == [2, 4, 6] and list(config.log.marks(500))[-3:] == [300, 400, 500]
    assert PAPER_CASES[name].run_config(reweight="none").reweight == "none"


def test_the_cases_are_the_compare_presets():
    for name, case in PAPER_CASES.items():
        config = preset(f"paper-{name}", steps=10)
        run = config.run_config("adam", "rba")
        expected = case.run_config(steps=10)
        for field in ("problem", "problem_params", "width", "depth", "points", "normalize_inputs", "probes",
                      "weights_first", "reweight_options", "log", "learning_rate"):
            assert getattr(run, field) == getattr(expected, field), field
    assert PRESETS["paper"] == PRESETS["paper-allen-cahn"]


def test_paper_case_names_the_choices():
    assert paper_case("cavity") is paper_case("paper-cavity")
    with pytest.raises(ValueError, match="allen-cahn"):
        paper_case("burgers")
    with pytest.raises(ValueError, match="'none'"):
        PAPER_CASES["cavity"].run_config(reweight="vrba")


def test_contiguous_batches_are_consecutive_slices():
    batches = np.asarray(diagnostics.contiguous_batches(25_600, 100))
    assert batches.shape == (100, 256)
    np.testing.assert_array_equal(batches.reshape(-1), np.arange(25_600))
    with pytest.raises(ValueError, match="fewer"):
        diagnostics.contiguous_batches(5, 10)
    with pytest.raises(ValueError, match="batch_split"):
        Probes(batch_split="sorted")


@pytest.mark.slow
def test_a_contiguous_split_reaches_the_snr():
    """The SNR of a run with contiguous batches equals the SNR computed here from the slices' gradients."""
    import equinox as eqx
    import jax.numpy as jnp

    from pinnkit.experiment import RunConfig, init_models, run, setup

    config = RunConfig(problem_params={"grid_size": 11}, steps=1, width=8, depth=1, points=40,
                       log=LogSchedule(every=1), probes=Probes(snr_batches=4, batch_split="contiguous"))
    result = run(config)
    built = setup(config)
    model, stacked = init_models(config, built.problem, [0], built.dtype)
    params = jax.tree_util.tree_map(lambda leaf: leaf[0], stacked)
    static = eqx.filter(model, eqx.is_inexact_array, inverse=True)

    def batch_loss(p, start):
        batch = dict(built.points, pde=built.points["pde"][start:start + 10])
        residuals = built.problem.residuals(eqx.combine(p, static), batch)
        return jnp.mean(residuals["pde"] ** 2) + jnp.mean(residuals["bc"] ** 2)

    grads = [jax.grad(batch_loss)(params, start) for start in (0, 10, 20, 30)]
    # Weight matrices only, as the paper does.
    weights = [np.stack([np.asarray(g.layers[i].weight).ravel() for g in grads]) for i in range(len(params.layers))]
    stacked_weights = np.concatenate(weights, axis=1)
    mean, std = stacked_weights.mean(axis=0), stacked_weights.std(axis=0)
    assert result.history["snr"][0] == pytest.approx(np.linalg.norm(mean) / np.linalg.norm(std), rel=1e-4)


def test_the_helmholtz_boundary_can_come_from_a_grid_as_in_the_papers_code():
    problem = problems.get("helmholtz", boundary_grid=1001)
    sides = np.asarray(problem.constraint_points(jax.random.key(3))["bc"]).reshape(4, 100, 2)
    free = [sides[0, :, 1], sides[1, :, 1], sides[2, :, 0], sides[3, :, 0]]  # x = -1, x = 1, y = -1, y = 1
    for side in free:
        index = (side + 1.0) * 500.0
        np.testing.assert_allclose(index, np.round(index), atol=2e-3)
        assert len(np.unique(np.round(index))) == 100  # without replacement
    with pytest.raises(ValueError, match="boundary_grid"):
        problems.get("helmholtz", boundary_grid=40)


def test_train_preset_refuses_what_the_case_fixes():
    code, _, stderr = run_cli("train", "--preset", "paper-helmholtz", "--width", "8")
    assert code == 2 and "--width cannot be combined with --preset" in stderr
    code, _, stderr = run_cli("train", "--preset", "paper-burgers")
    assert code == 2 and "paper-allen-cahn" in stderr
    code, _, stderr = run_cli("train", "--preset", "paper-cavity", "--reweight", "vrba", "--steps", "10")
    assert code == 2 and "'none'" in stderr


@pytest.mark.slow
def test_train_preset_runs_the_case(tmp_path):
    import json

    code, _, stderr = run_cli("train", "--preset", "paper-helmholtz", "--steps", "2", "--out", str(tmp_path / "r"))
    assert code == 0, stderr
    config = json.loads((tmp_path / "r" / "result.json").read_text())["config"]
    assert config["width"] == 128 and config["points"] == 25_600 and config["weights_first"] is True
