"""Named optimizers for the CLI and comparisons: optax transforms with the paper's schedule and optional reweighting."""

from __future__ import annotations

import math
from collections.abc import Mapping

import optax

__all__ = ["OPTIMIZERS", "REWEIGHTINGS", "paper_schedule", "make_optimizer", "is_line_search"]

OPTIMIZERS = ("adam", "sgd", "lbfgs")
REWEIGHTINGS = ("none", "rba", "gradient-aware")
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "sgd": 1e-3, "lbfgs": None}


def paper_schedule(learning_rate: float = 1e-3, *, decay_rate: float = 0.9, every: int = 5000) -> optax.Schedule:
    """The paper's learning rate: ``learning_rate * decay_rate ** floor(step / every)``.

    Example:
        >>> schedule = paper_schedule(1e-3)
        >>> float(schedule(0)), round(float(schedule(10_000)), 10)
        (0.001, 0.00081)
    """
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be positive and finite, got {learning_rate}")
    if not 0 < decay_rate <= 1:
        raise ValueError(f"decay_rate must lie in (0, 1], got {decay_rate}")
    if not isinstance(every, int) or every <= 0:
        raise ValueError(f"every must be a positive int, got {every!r}")
    return optax.exponential_decay(learning_rate, every, decay_rate, staircase=True)


def make_optimizer(
    name: str,
    *,
    learning_rate: float | None = None,
    schedule: str = "paper",
    reweight: str = "none",
    num_samples: int | Mapping[str, int] | None = None,
    momentum: float = 0.9,
    memory_size: int = 10,
    **reweight_options,
) -> optax.GradientTransformationExtraArgs:
    """An optax optimizer by name, optionally behind a sample-reweighting transform.

    Args:
        name: ``"adam"``, ``"sgd"`` (heavy-ball momentum ``momentum``) or ``"lbfgs"`` (``optax.lbfgs`` with its zoom
            line search; one step is one L-BFGS iteration, line search included).
        learning_rate: base learning rate of first-order methods (default 1e-3); ignored for L-BFGS unless given,
            in which case it scales the line-search step.
        schedule: ``"paper"`` (x0.9 every 5000 steps) or ``"constant"``; first-order methods only.
        reweight: ``"none"``, ``"rba"`` or ``"gradient-aware"``.
        num_samples: number of reweighted samples (required when ``reweight`` is not ``"none"``).
        momentum: SGD momentum.
        memory_size: L-BFGS memory.
        **reweight_options: passed to the reweighting transform (``eta``, ``gamma``, ...).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Example:
        >>> optimizer = make_optimizer("adam", reweight="rba", num_samples=100)
        >>> state = optimizer.init({"w": jax.numpy.zeros(3)})  # doctest: +SKIP
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}")
    if reweight not in REWEIGHTINGS:
        raise ValueError(f"unknown reweighting {reweight!r}; choose one of {list(REWEIGHTINGS)}")
    if schedule not in ("paper", "constant"):
        raise ValueError(f"unknown schedule {schedule!r}; choose 'paper' or 'constant'")
    if learning_rate is not None and not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be positive and finite, got {learning_rate}")
    if not (math.isfinite(momentum) and 0 <= momentum < 1):
        raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
    if not isinstance(memory_size, int) or memory_size <= 0:
        raise ValueError(f"memory_size must be a positive int, got {memory_size!r}")
    if name == "lbfgs":
        base = optax.lbfgs(learning_rate=learning_rate, memory_size=memory_size)
    else:
        rate = learning_rate if learning_rate is not None else DEFAULT_LEARNING_RATES[name]
        rate = paper_schedule(rate) if schedule == "paper" else rate
        base = optax.adam(rate) if name == "adam" else optax.sgd(rate, momentum=momentum or None)
    if reweight == "none":
        return optax.with_extra_args_support(base)
    if num_samples is None:
        raise ValueError(f"reweight={reweight!r} needs num_samples")
    from pinnkit.reweight import gradient_aware_rba, rba

    transform = rba if reweight == "rba" else gradient_aware_rba
    return optax.chain(transform(num_samples, **reweight_options), base)


def is_line_search(opt_state) -> bool:
    """Whether an optimizer state contains an optax line search (L-BFGS style steps need ``value_fn``)."""
    import jax

    kinds = (optax.ScaleByZoomLinesearchState, optax.ScaleByBacktrackingLinesearchState)
    leaves = jax.tree_util.tree_leaves(opt_state, is_leaf=lambda node: isinstance(node, kinds))
    return any(isinstance(leaf, kinds) for leaf in leaves)
