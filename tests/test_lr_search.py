"""The learning-rate search: K candidates are one vmapped program, compiled once whatever K, and each candidate
trains exactly as a run with that learning rate would."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

import pinnkit
from pinnkit.engine import LogSchedule, Probes, fit
from pinnkit.lr_search import search_learning_rate


@pytest.fixture(scope="module")
def small():
    problem = pinnkit.problems.get("helmholtz", grid_size=11, boundary_points_per_side=8)
    points = problem.sample(jax.random.key(0), 64)
    model = pinnkit.nn.MLP(2, 1, width=8, depth=1, domain=problem.domain, key=jax.random.key(1))
    return problem, points, model


@pytest.mark.parametrize("candidates", [(1e-2, 1e-3), (1e-1, 3e-2, 1e-2, 3e-3, 1e-3)])
@pytest.mark.slow
def test_a_search_compiles_one_program_of_each_kind_whatever_the_number_of_candidates(small, compiled_programs,
                                                                                      candidates):
    problem, points, model = small
    built = compiled_programs
    found = search_learning_rate(problem, model, points, candidates=candidates, steps=6)
    assert len(found.losses) == len(candidates)
    assert len(built) == len(set(built)) == 2, built  # the chunk of steps and the row probe, once each


@pytest.mark.slow
def test_each_candidate_trains_as_a_run_with_its_rate(small):
    problem, points, model = small
    candidates = (3e-2, 1e-3)
    found = search_learning_rate(problem, model, points, candidates=candidates, steps=6, schedule="constant")
    for rate in candidates:
        alone = fit(problem, model, optax.adam(rate), points, steps=6, log=LogSchedule(6),
                    probes=Probes(snr_batches=0))
        np.testing.assert_allclose(found.losses[rate], alone.history.last("mse"), rtol=1e-5)
    assert found.learning_rate == min(found.losses, key=found.losses.get)
