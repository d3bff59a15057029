"""Resume through a plan: a run checkpointed and continued before a stage switch, at it, or inside an L-BFGS or
SSBroyden stage ends bit for bit as the uninterrupted run (parameters, optimizer state, every history column)."""

import equinox as eqx
import jax
import numpy as np
import pytest

from pinnkit.checkpoint import Checkpointer, checkpoint_path, list_checkpoints
from pinnkit.engine import LogSchedule, Probes, columns
from pinnkit.experiment import RunConfig, run

# Columns that are clocks, not results: a resumed run trains at another speed.
TIMINGS = {columns.WALL_TIME}


def config_of(plan: str, **changes) -> RunConfig:
    fields = dict(optimizer=plan, steps=40, switch_step=20, points=64, width=8, depth=1, log=LogSchedule(10),
                  probes=Probes(snr_batches=4), reweight="rba", float64=True,
                  problem_params={"grid_size": 21, "boundary_points_per_side": 16})
    return RunConfig(**{**fields, **changes})


@pytest.fixture(scope="module", params=["adam+lbfgs", "adam+ssbroyden"])
def straight(request, tmp_path_factory):
    """One uninterrupted run of a two-stage plan with a checkpoint at every row, and its folder."""
    config = config_of(request.param)
    folder = tmp_path_factory.mktemp(request.param.replace("+", "-"))
    result = run(config, checkpoint=Checkpointer(folder, every=10, config=config, keep=None))
    assert [path.name for path in list_checkpoints(folder)] == [checkpoint_path(folder, step).name
                                                                for step in (10, 20, 30, 40)]
    assert result.status == "completed" and result.stage_starts == (0, 20)
    return config, folder, result


def assert_same_run(resumed, straight) -> None:
    assert resumed.status == straight.status == "completed"
    assert resumed.steps == straight.steps == 40
    assert resumed.stage_starts == straight.stage_starts
    for left, right in zip(jax.tree_util.tree_leaves(eqx.filter(resumed.model, eqx.is_array)),
                           jax.tree_util.tree_leaves(eqx.filter(straight.model, eqx.is_array)), strict=True):
        np.testing.assert_array_equal(np.asarray(left), np.asarray(right))
    for left, right in zip(jax.tree_util.tree_leaves(resumed.opt_state),
                           jax.tree_util.tree_leaves(straight.opt_state), strict=True):
        np.testing.assert_array_equal(np.asarray(left), np.asarray(right))
    assert resumed.history.columns == straight.history.columns
    compared = [name for name in straight.history.columns if name not in TIMINGS]
    assert {columns.STEP, columns.STAGE, columns.LOSS, columns.REL_L2, columns.SNR,
            columns.LINE_SEARCH_FAILURES} <= set(compared)
    for name in compared:
        np.testing.assert_array_equal(resumed.history[name], straight.history[name], err_msg=name)


@pytest.mark.parametrize("step", [10, 20], ids=["before-the-switch", "at-the-switch"])
@pytest.mark.slow
def test_resuming_across_the_stage_switch_ends_as_one_run(straight, step):
    config, folder, result = straight
    resumed = run(config, resume_from=checkpoint_path(folder, step))
    assert_same_run(resumed, result)


def test_resuming_inside_the_quasi_newton_stage_ends_as_one_run(straight):
    # Step 30 lies inside the second stage: its memory / inverse Hessian, line-search state and held weights
    # come from the checkpoint.
    config, folder, result = straight
    resumed = run(config, resume_from=checkpoint_path(folder, 30))
    assert_same_run(resumed, result)


def test_resuming_the_final_checkpoint_returns_the_finished_run(straight):
    # Nothing is left to train: the result is the saved run, stage starts included (not just the first stage).
    config, folder, result = straight
    resumed = run(config, resume_from=folder)
    assert_same_run(resumed, result)
