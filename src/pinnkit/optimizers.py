"""Named optimizers for plans, the CLI and comparisons: optax transforms behind an optional reweighting transform.

The names are the entries of the optimizer registry (:mod:`pinnkit.optimizer_registry`, where a new optimizer is
registered); :data:`OPTIMIZERS`, :data:`FIRST_ORDER_OPTIMIZERS`, :data:`LINE_SEARCH_OPTIMIZERS` and
:data:`DEFAULT_LEARNING_RATES` are views of it. First-order methods get the paper's schedule (1e-3, x0.9 every 5000
steps) unless ``schedule="constant"``; a line-search method's step is one iteration, line search included.

Example:
    >>> OPTIMIZERS
    ('adam', 'sgd', 'lbfgs', 'bfgs', 'ssbfgs', 'ssbroyden')
    >>> describe_optimizers(LINE_SEARCH_OPTIMIZERS[:2])
    'lbfgs (optax L-BFGS, memory 10), bfgs (BFGS, dense inverse Hessian)'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import optax

from pinnkit.optimizer_registry import (
    DEFAULT_LEARNING_RATES,
    FIRST_ORDER_OPTIMIZERS,
    LINE_SEARCH_OPTIMIZERS,
    OPTIMIZERS,
    BuildOptions,
    describe_optimizers,
    optimizer_spec,
)

# The reweighting schemes by name live in their registry; re-exported here, where plans and the CLI have always
# found them.
from pinnkit.reweight.registry import REWEIGHTINGS, check_reweighting_options, make_reweighting, reweighting_options
from pinnkit.validation import choice, positive_int, real

__all__ = [
    "DEFAULT_LEARNING_RATES", "FIRST_ORDER_OPTIMIZERS", "LINE_SEARCH_OPTIMIZERS", "MAX_LEARNING_RATE", "OPTIMIZERS",
    "REWEIGHTINGS", "SCHEDULES", "check_learning_rate", "check_reweighting_options", "describe_optimizers",
    "make_optimizer", "make_reweighting", "paper_schedule", "reweighting_options",
]

SCHEDULES = ("paper", "constant")
# A step size beyond this is not a learning rate of a PINN optimizer but a typo; it only produces overflow.
MAX_LEARNING_RATE = 100.0


def paper_schedule(learning_rate: float = 1e-3, *, decay_rate: float = 0.9, every: int = 5000) -> optax.Schedule:
    """The paper's learning rate: ``learning_rate * decay_rate ** floor(step / every)``.

    Example:
        >>> schedule = paper_schedule(1e-3)
        >>> round(float(schedule(0)), 10), round(float(schedule(10_000)), 10)
        (0.001, 0.00081)
    """
    check_learning_rate(learning_rate)
    real("decay_rate", decay_rate, low=0, low_open=True, high=1)
    every = positive_int("every", every)
    return optax.exponential_decay(learning_rate, every, decay_rate, staircase=True)


def check_learning_rate(learning_rate: Any) -> float:
    """``learning_rate`` as a float if it is a number in ``(0, MAX_LEARNING_RATE]``; ``ValueError`` otherwise.

    Example:
        >>> check_learning_rate(1e-3)
        0.001
        >>> check_learning_rate(0)
        Traceback (most recent call last):
        ...
        ValueError: learning rate must be a number in (0, 100], got 0
    """
    return real("learning rate", learning_rate, low=0, low_open=True, high=MAX_LEARNING_RATE)


def make_optimizer(
    name: str,
    *,
    learning_rate: float | None = None,
    schedule: str = "paper",
    reweight: str = "none",
    num_samples: int | Mapping[str, int] | None = None,
    reweight_options: Mapping[str, Any] | None = None,
    hold_every: int | None = 1,
    momentum: float = 0.9,
    memory_size: int = 10,
    per_model: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """An optax optimizer by name (an entry of the optimizer registry), optionally behind a sample-reweighting
    transform.

    Args:
        name: one of :data:`OPTIMIZERS` (:func:`describe_optimizers` says what each is).
        learning_rate: base learning rate of first-order methods (default: :data:`DEFAULT_LEARNING_RATES`, 1e-3
            for Adam and SGD); for line-search methods it
            scales the step the line search starts from (default: none, the line search alone decides).
        schedule: ``"paper"`` (x0.9 every 5000 steps) or ``"constant"``; first-order methods only.
        reweight: one of :data:`REWEIGHTINGS`.
        num_samples: number of reweighted samples (required with reweighting).
        reweight_options: options of the reweighting transform (``eta``, ``gamma``, ...).
        hold_every: advance the reweighting weights once every this many updates (None: never: they stay as they
            come into the stage; see ``pinnkit.reweight.hold_weights``). 1: every update.
        momentum: SGD's heavy-ball momentum.
        memory_size: L-BFGS memory.
        per_model: build it for a stack of runs that differ only in numbers (:mod:`pinnkit.variants`): a
            first-order method's base learning rate becomes a state leaf ``step_size`` (``-learning_rate``, set per
            model with ``optax.tree.set``), after its registry entry's ``direction`` and the schedule's decay;
            reweighting weights that move become switchable per model (:func:`pinnkit.reweight.switchable_weights`).
            With one model and the flag on it trains as ``per_model=False`` does, up to the rounding of
            ``(u * decay) * rate`` against ``u * (rate * decay)``.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Raises:
        ValueError: a bad name or option; ``per_model`` for a first-order method without a ``direction``.

    Example:
        >>> import jax.numpy as jnp
        >>> optimizer = make_optimizer("adam", reweight="rba", num_samples=100)
        >>> len(optimizer.init({"w": jnp.zeros(3)}))
        2
    """
    spec = optimizer_spec(name)
    choice("reweighting", reweight, REWEIGHTINGS)
    choice("schedule", schedule, SCHEDULES)
    if learning_rate is not None:
        check_learning_rate(learning_rate)
    real("momentum", momentum, low=0, high=1, high_open=True)
    positive_int("memory_size", memory_size)
    rate = learning_rate
    if not spec.line_search:  # the schedule is the first-order methods' (a line search picks its own steps)
        rate = learning_rate if learning_rate is not None else spec.default_learning_rate
        if per_model:
            base = _rate_in_state(name, rate, schedule, momentum)
        else:
            base = spec.build(BuildOptions(learning_rate=paper_schedule(rate) if schedule == "paper" else rate,
                                           momentum=momentum, memory_size=memory_size))
    else:
        base = spec.build(BuildOptions(learning_rate=rate, momentum=momentum, memory_size=memory_size))
    if reweight == "none":
        return optax.with_extra_args_support(base)
    if num_samples is None:
        raise ValueError(f"reweight={reweight!r} needs num_samples")
    transform = make_reweighting(reweight, num_samples, **dict(reweight_options or {}))
    if hold_every != 1:
        from pinnkit.reweight import hold_weights

        transform = hold_weights(transform, every=hold_every)
    if per_model:  # held weights too: the flag then says whether they are a model's (see reweighting_on)
        from pinnkit.reweight import switchable_weights

        transform = switchable_weights(transform)
    return optax.chain(transform, base)


def _rate_in_state(name: str, rate: float, schedule: str, momentum: float) -> optax.GradientTransformation:
    """The first-order method ``name`` with its base learning rate as a state leaf (``step_size = -rate``): its
    registry entry's step-size-free ``direction``, then the schedule's decay, then the rate."""
    direction = optimizer_spec(name).direction
    if direction is None:
        raise ValueError(f"{name} has no step-size-free direction in its registry entry, so its learning rate "
                         "cannot differ per model")
    decay = paper_schedule(1.0) if schedule == "paper" else (lambda count: jnp.ones(()))
    return optax.chain(direction(BuildOptions(momentum=momentum)), optax.scale_by_schedule(decay),
                       optax.inject_hyperparams(optax.scale)(step_size=-rate))
