"""A short learning-rate search for first-order optimizers: every candidate trained side by side, one program.

``--lr auto`` picks the base learning rate of a run's first-order stage by training the same initial network
with each candidate for a few hundred steps and keeping the one with the lowest final (unweighted) training loss.
The test error is never looked at. The candidates run together, vmapped, as K copies of the model whose optimizer
states differ only in their step size (``optax.inject_hyperparams``), so the search compiles once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from pinnkit.engine import LogSchedule, Outcome, Probes, columns, fit_stacked
from pinnkit.optimizer_registry import FIRST_ORDER_OPTIMIZERS, BuildOptions, optimizer_spec
from pinnkit.optimizers import make_reweighting, paper_schedule
from pinnkit.validation import real

__all__ = ["CANDIDATES", "LearningRateSearch", "search_learning_rate"]

CANDIDATES = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5, 1e-6)


@dataclasses.dataclass(frozen=True)
class LearningRateSearch:
    """The outcome of a search.

    Attributes:
        learning_rate: the pick (the candidate with the lowest final training loss).
        losses: final unweighted training loss of each candidate (NaN: diverged).
        steps: steps each candidate trained.
    """

    learning_rate: float
    losses: dict[float, float]
    steps: int

    def as_dict(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "steps": self.steps,
                "losses": {f"{rate:g}": loss for rate, loss in self.losses.items()}}


def _sweepable(name: str, schedule: str, momentum: float, reweight: str, num_samples,
               reweight_options: Mapping[str, Any] | None):
    """The named first-order optimizer with its base learning rate as a state leaf (``step_size``): its registry
    entry's step-size-free ``direction``, then the schedule's decay, then the rate."""
    decay = paper_schedule(1.0) if schedule == "paper" else (lambda count: jnp.ones(()))
    direction = optimizer_spec(name).direction(BuildOptions(momentum=momentum))
    base = optax.chain(direction, optax.scale_by_schedule(decay),
                       optax.inject_hyperparams(optax.scale)(step_size=-1.0))
    if reweight == "none":
        return optax.with_extra_args_support(base)
    return optax.chain(make_reweighting(reweight, num_samples, **dict(reweight_options or {})), base)


def search_learning_rate(problem, model, points, *, optimizer: str = "adam", candidates: Sequence[float] = CANDIDATES,
                         steps: int = 300, schedule: str = "paper", momentum: float = 0.9, reweight: str = "none",
                         num_samples=None, reweight_options: Mapping[str, Any] | None = None,
                         reference=None) -> LearningRateSearch:
    """Train ``model`` with each candidate learning rate for ``steps`` steps; pick the lowest final training loss.

    Args:
        problem: the problem.
        model: the initial network (every candidate starts from it).
        points: the training points.
        optimizer: a first-order optimizer of the registry with a ``direction`` (``"adam"``, ``"sgd"``: heavy-ball
            ``momentum``).
        candidates: the learning rates to try.
        steps: steps per candidate.
        schedule: ``"paper"`` or ``"constant"``.
        momentum: SGD momentum.
        reweight: the run's reweighting (the candidates train as the run will).
        num_samples: reweighted samples.
        reweight_options: reweighting options.
        reference: the reference solution (only to build the history rows; not used to choose).

    Returns:
        A :class:`LearningRateSearch`.

    Raises:
        ValueError: unknown optimizer, no candidate, or every candidate diverged.

    Example:
        >>> import jax, pinnkit
        >>> problem = pinnkit.problems.get("helmholtz", grid_size=11)
        >>> points = problem.sample(jax.random.key(0), 100)
        >>> model = pinnkit.nn.MLP(2, 1, width=8, depth=1, key=jax.random.key(1))
        >>> found = search_learning_rate(problem, model, points, candidates=(1e-2, 1e-3), steps=5)
        >>> found.learning_rate in (1e-2, 1e-3)
        True
    """
    if optimizer not in FIRST_ORDER_OPTIMIZERS or optimizer_spec(optimizer).direction is None:
        searchable = [name for name in FIRST_ORDER_OPTIMIZERS if optimizer_spec(name).direction is not None]
        raise ValueError(f"a learning-rate search needs a first-order optimizer {searchable}, got {optimizer!r}")
    candidates = [real("candidate learning rate", rate, low=0, low_open=True) for rate in candidates]
    if not candidates:
        raise ValueError("candidates must hold at least one learning rate")
    transform = _sweepable(optimizer, schedule, momentum, reweight, num_samples, reweight_options)
    params = eqx.filter(model, eqx.is_inexact_array)
    stacked = jax.tree_util.tree_map(lambda leaf: jnp.stack([leaf] * len(candidates)), params)
    state = jax.vmap(transform.init)(stacked)
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    state = optax.tree.set(state, step_size=-jnp.asarray(candidates, dtype))
    results = fit_stacked(problem, model, transform, points, stacked, steps=steps, opt_state=state,
                          log=LogSchedule(steps), probes=Probes(snr_batches=0), reference=reference)
    losses = {}
    for rate, result in zip(candidates, results, strict=True):
        loss = result.history.last(columns.MSE)
        losses[rate] = loss if result.outcome is Outcome.COMPLETED and math.isfinite(loss) else math.nan
    finite = {rate: loss for rate, loss in losses.items() if not math.isnan(loss)}
    if not finite:
        raise ValueError(f"every candidate learning rate {candidates} diverged within {steps} steps")
    best = min(finite, key=lambda rate: (finite[rate], rate))
    return LearningRateSearch(best, losses, steps)
