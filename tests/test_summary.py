"""A run's summary is a typed record whose JSON object is the one pinnkit has always written; a run's result says
how it ended with an Outcome."""

import math

import jax
import optax
import pytest

import pinnkit
from pinnkit import jsonio
from pinnkit.engine import LogSchedule, Outcome, Probes, TrainResult, fit
from pinnkit.experiment import RunConfig, run, summarize
from pinnkit.history import History
from pinnkit.summary import RunSummary

# The keys of the dict summarize returned before it returned a RunSummary, in that order (recorded from that code):
# line_search_failures only after a line-search stage.
KEYS = ["problem", "optimizer", "plan", "reweight", "learning_rate", "seed", "precision", "steps", "rel_l2",
        "best_rel_l2", "final_loss", "final_mse", "wall_time_s", "compile_time_s", "steps_per_s", "status",
        "stage_starts"]
TRANSITIONS = ["diffusion_start", "equilibrium_start"]
TINY = dict(points=200, width=8, depth=1, log=LogSchedule(5), probes=Probes(snr_batches=10))


@pytest.fixture(scope="module")
def adam_run():
    config = RunConfig(steps=20, **TINY)
    return config, run(config)


@pytest.fixture(scope="module")
def two_stage_run():
    config = RunConfig(optimizer="adam+lbfgs", steps=20, **TINY)
    return config, run(config)


def as_json(summary: RunSummary) -> str:
    return jsonio.dumps(summary.to_dict())


@pytest.mark.slow
def test_the_summary_dict_has_the_keys_in_the_order_summarize_gave(adam_run, two_stage_run):
    config, result = adam_run
    summary = summarize(config, result)
    assert isinstance(summary, RunSummary)
    data = summary.to_dict()
    assert list(data) == KEYS + TRANSITIONS
    assert data["status"] == "completed" and data["stage_starts"] == [0] and data["steps"] == 20
    assert data["rel_l2"] == result.history.last("rel_l2") and data["plan"] == config.plan_spec().describe()
    assert data["precision"] == "float32" and data["seed"] == 0 and data["learning_rate"] is None
    two = summarize(*two_stage_run).to_dict()
    assert list(two) == KEYS + ["line_search_failures"] + TRANSITIONS
    assert two["stage_starts"] == [0, 10] and two["precision"] == "float64"
    assert isinstance(two["line_search_failures"], int)


def test_the_summary_round_trips_through_json(adam_run, two_stage_run):
    for config, result in (adam_run, two_stage_run):
        summary = summarize(config, result)
        written = as_json(summary)
        back = RunSummary.from_dict(jsonio.loads(written))
        assert as_json(back) == written
        assert back.outcome is Outcome.COMPLETED and back.stage_starts == summary.stage_starts
        # Keys that are not fields (what `pinnkit train` adds to result.json) are ignored.
        extended = dict(jsonio.loads(written), config=config.to_dict(), learning_rate_search=None, name="x")
        assert as_json(RunSummary.from_dict(extended)) == written


def test_from_dict_reads_null_as_nan_and_refuses_what_is_not_a_summary(adam_run):
    data = summarize(*adam_run).to_dict()
    data["rel_l2"] = None
    assert math.isnan(RunSummary.from_dict(data).rel_l2)
    with pytest.raises(ValueError, match="status"):
        RunSummary.from_dict({key: value for key, value in data.items() if key != "status"})
    with pytest.raises(ValueError, match="unknown run status"):
        RunSummary.from_dict(dict(data, status="finished"))


def test_summarize_stays_importable_from_experiment():
    assert pinnkit.experiment.summarize is summarize


@pytest.mark.slow
def test_a_finished_run_completes_and_a_diverging_one_says_why():
    problem = pinnkit.problems.get("helmholtz", grid_size=21)
    points = problem.sample(jax.random.key(0), 100)
    model = pinnkit.nn.MLP(2, 1, width=8, depth=1, domain=problem.domain, key=jax.random.key(1))
    done = fit(problem, model, optax.adam(1e-3), points, steps=5, log=LogSchedule(5), probes=Probes(snr_batches=0))
    assert done.outcome is Outcome.COMPLETED and done.message == "" and done.status == "completed"
    diverged = fit(problem, model, optax.sgd(1e8), points, steps=50, log=LogSchedule(1),
                   probes=Probes(snr_batches=0))
    assert diverged.outcome is Outcome.DIVERGED
    assert "became non-finite within steps" in diverged.message
    assert diverged.status == f"diverged: {diverged.message}"
    assert Outcome.parse(diverged.status) == (Outcome.DIVERGED, diverged.message)


def test_a_train_result_is_still_a_named_tuple_with_a_status():
    result = TrainResult(None, None, History(), Outcome.COMPLETED, 3, 0.5, 0.1)
    assert result.status == "completed" and result.message == "" and result.stage_starts == (0,)
    assert result._replace(outcome=Outcome.DIVERGED, message="why").status == "diverged: why"
