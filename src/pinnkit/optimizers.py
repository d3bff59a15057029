"""Named optimizers for plans, the CLI and comparisons: optax transforms with the paper's schedule, behind an
optional reweighting transform.

========== ============================================================================================
name       transform
========== ============================================================================================
adam       ``optax.adam`` (the paper: 1e-3, x0.9 every 5000 steps)
sgd        ``optax.sgd`` with heavy-ball momentum
lbfgs      ``optax.lbfgs`` (memory 10, zoom line search; one step = one iteration, line search included)
bfgs       :func:`pinnkit.quasi_newton.bfgs` (dense inverse Hessian, zoom line search)
ssbfgs     :func:`pinnkit.quasi_newton.ssbfgs` (self-scaled BFGS)
ssbroyden  :func:`pinnkit.quasi_newton.ssbroyden` (self-scaled Broyden)
========== ============================================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optax

# The reweighting schemes by name live in their registry; re-exported here, where plans and the CLI have always
# found them.
from pinnkit.reweight.registry import REWEIGHTINGS, check_reweighting_options, make_reweighting, reweighting_options

__all__ = [
    "DEFAULT_LEARNING_RATES", "FIRST_ORDER_OPTIMIZERS", "LINE_SEARCH_OPTIMIZERS", "MAX_LEARNING_RATE", "OPTIMIZERS",
    "REWEIGHTINGS", "SCHEDULES", "check_reweighting_options", "make_optimizer", "make_reweighting", "paper_schedule",
    "reweighting_options",
]

FIRST_ORDER_OPTIMIZERS = ("adam", "sgd")
LINE_SEARCH_OPTIMIZERS = ("lbfgs", "bfgs", "ssbfgs", "ssbroyden")
OPTIMIZERS = FIRST_ORDER_OPTIMIZERS + LINE_SEARCH_OPTIMIZERS
SCHEDULES = ("paper", "constant")
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "sgd": 1e-3}
# A step size beyond this is not a learning rate of a PINN optimizer but a typo; it only produces overflow.
MAX_LEARNING_RATE = 100.0


def paper_schedule(learning_rate: float = 1e-3, *, decay_rate: float = 0.9, every: int = 5000) -> optax.Schedule:
    """The paper's learning rate: ``learning_rate * decay_rate ** floor(step / every)``.

    Example:
        >>> schedule = paper_schedule(1e-3)
        >>> float(schedule(0)), round(float(schedule(10_000)), 10)
        (0.001, 0.00081)
    """
    _check_learning_rate(learning_rate)
    if not 0 < decay_rate <= 1:
        raise ValueError(f"decay_rate must lie in (0, 1], got {decay_rate}")
    if not isinstance(every, int) or every <= 0:
        raise ValueError(f"every must be a positive int, got {every!r}")
    return optax.exponential_decay(learning_rate, every, decay_rate, staircase=True)


def _check_learning_rate(learning_rate: Any) -> None:
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float) or not (
            math.isfinite(learning_rate) and 0 < learning_rate <= MAX_LEARNING_RATE):
        raise ValueError(f"learning rate must be a number in (0, {MAX_LEARNING_RATE:g}], got {learning_rate!r}")


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
) -> optax.GradientTransformationExtraArgs:
    """An optax optimizer by name (see the module table), optionally behind a sample-reweighting transform.

    Args:
        name: one of :data:`OPTIMIZERS`.
        learning_rate: base learning rate of first-order methods (default 1e-3); for line-search methods it
            scales the step the line search starts from (default: none, the line search alone decides).
        schedule: ``"paper"`` (x0.9 every 5000 steps) or ``"constant"``; first-order methods only.
        reweight: one of :data:`REWEIGHTINGS`.
        num_samples: number of reweighted samples (required with reweighting).
        reweight_options: options of the reweighting transform (``eta``, ``gamma``, ...).
        hold_every: advance the reweighting weights once every this many updates (None: never: they stay as they
            come into the stage; see ``pinnkit.reweight.hold_weights``). 1: every update.
        momentum: SGD's heavy-ball momentum.
        memory_size: L-BFGS memory.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> import jax.numpy as jnp
        >>> optimizer = make_optimizer("adam", reweight="rba", num_samples=100)
        >>> len(optimizer.init({"w": jnp.zeros(3)}))
        2
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}")
    if reweight not in REWEIGHTINGS:
        raise ValueError(f"unknown reweighting {reweight!r}; choose one of {list(REWEIGHTINGS)}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {list(SCHEDULES)}")
    if learning_rate is not None:
        _check_learning_rate(learning_rate)
    if isinstance(momentum, bool) or not isinstance(momentum, int | float) or not 0 <= momentum < 1:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
    if isinstance(memory_size, bool) or not isinstance(memory_size, int) or memory_size <= 0:
        raise ValueError(f"memory_size must be a positive int, got {memory_size!r}")
    if name == "lbfgs":
        base = optax.lbfgs(learning_rate=learning_rate, memory_size=memory_size)
    elif name in LINE_SEARCH_OPTIMIZERS:
        from pinnkit import quasi_newton

        base = getattr(quasi_newton, name)(learning_rate=learning_rate)
    else:
        rate = learning_rate if learning_rate is not None else DEFAULT_LEARNING_RATES[name]
        rate = paper_schedule(rate) if schedule == "paper" else rate
        base = optax.adam(rate) if name == "adam" else optax.sgd(rate, momentum=momentum or None)
    if reweight == "none":
        return optax.with_extra_args_support(base)
    if num_samples is None:
        raise ValueError(f"reweight={reweight!r} needs num_samples")
    transform = make_reweighting(reweight, num_samples, **dict(reweight_options or {}))
    if hold_every != 1:
        from pinnkit.reweight import hold_weights

        transform = hold_weights(transform, every=hold_every)
    return optax.chain(transform, base)
