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

from pinnkit.engine import LogSchedule, Outcome, Probes, columns, fit_stacked
from pinnkit.optimizer_registry import FIRST_ORDER_OPTIMIZERS, optimizer_spec
from pinnkit.optimizers import make_optimizer
from pinnkit.validation import real
from pinnkit.variants import set_variant_numbers

__all__ = [
    "CANDIDATES", "SEARCH_STEPS", "LearningRateSearch", "search_learning_rate", "search_learning_rates",
]

CANDIDATES = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5, 1e-6)
#: The longest search a run makes (fewer steps when its first-order stage is shorter).
SEARCH_STEPS = 300


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
    return search_learning_rates(problem, model, points, optimizer=optimizer, candidates=candidates, steps=steps,
                                 schedule=schedule, momentum=momentum, reweights=(reweight,),
                                 num_samples=num_samples, reweight_options=reweight_options,
                                 reference=reference)[reweight]


def search_learning_rates(problem, model, points, *, optimizer: str = "adam",
                          candidates: Sequence[float] = CANDIDATES, steps: int = 300, schedule: str = "paper",
                          momentum: float = 0.9, reweights: Sequence[str] = ("none",), num_samples=None,
                          reweight_options: Mapping[str, Any] | None = None,
                          reference=None) -> dict[str, LearningRateSearch]:
    """:func:`search_learning_rate` for the variants of one run at once: with and without reweighting.

    The ``len(candidates) * len(reweights)`` trainings are one vmapped program (:mod:`pinnkit.variants`: the
    "none" variants hold their weights at 1). ``reweights`` holds ``"none"`` and at most one other reweighting.

    Returns:
        The search of each reweighting, by name.

    Raises:
        ValueError: as :func:`search_learning_rate`; two reweightings besides "none", or a repeated one.

    Example:
        >>> import jax, pinnkit
        >>> problem = pinnkit.problems.get("helmholtz", grid_size=11)
        >>> points = problem.sample(jax.random.key(0), 100)
        >>> model = pinnkit.nn.MLP(2, 1, width=8, depth=1, key=jax.random.key(1))
        >>> found = search_learning_rates(problem, model, points, candidates=(1e-2, 1e-3), steps=5,
        ...                               reweights=("none", "rba"), num_samples=100)
        >>> sorted(found), found["rba"].learning_rate in (1e-2, 1e-3)
        (['none', 'rba'], True)
    """
    if optimizer not in FIRST_ORDER_OPTIMIZERS or optimizer_spec(optimizer).direction is None:
        searchable = [name for name in FIRST_ORDER_OPTIMIZERS if optimizer_spec(name).direction is not None]
        raise ValueError(f"a learning-rate search needs a first-order optimizer {searchable}, got {optimizer!r}")
    candidates = [real("candidate learning rate", rate, low=0, low_open=True) for rate in candidates]
    if not candidates:
        raise ValueError("candidates must hold at least one learning rate")
    reweights = list(reweights)
    schemes = sorted({name for name in reweights if name != "none"})
    if len(schemes) > 1 or len(set(reweights)) != len(reweights) or not reweights:
        raise ValueError(f"reweights must hold 'none' and at most one other reweighting, once each; got {reweights}")
    scheme = schemes[0] if schemes else "none"
    transform = make_optimizer(optimizer, learning_rate=1.0, schedule=schedule, momentum=momentum,
                               reweight=scheme, num_samples=num_samples, reweight_options=reweight_options,
                               per_model=True)
    variants = [(reweight, rate) for reweight in reweights for rate in candidates]
    params = eqx.filter(model, eqx.is_inexact_array)
    stacked = jax.tree_util.tree_map(lambda leaf: jnp.stack([leaf] * len(variants)), params)
    state = set_variant_numbers(
        jax.vmap(transform.init)(stacked), learning_rates=[rate for _, rate in variants], fresh=True,
        reweighting=None if scheme == "none" else [reweight != "none" for reweight, _ in variants])
    results = fit_stacked(problem, model, transform, points, stacked, steps=steps, opt_state=state,
                          log=LogSchedule(steps), probes=Probes(snr_batches=0), reference=reference)
    found = {}
    for reweight in reweights:
        losses = {}
        for (name, rate), result in zip(variants, results, strict=True):
            if name != reweight:
                continue
            loss = result.history.last(columns.MSE)
            losses[rate] = loss if result.outcome is Outcome.COMPLETED and math.isfinite(loss) else math.nan
        finite = {rate: loss for rate, loss in losses.items() if not math.isnan(loss)}
        if not finite:
            raise ValueError(f"every candidate learning rate {candidates} diverged within {steps} steps "
                             f"(reweighting {reweight!r})")
        best = min(finite, key=lambda rate: (finite[rate], rate))
        found[reweight] = LearningRateSearch(best, losses, steps)
    return found
