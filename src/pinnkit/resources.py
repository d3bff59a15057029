"""Will a run fit in memory? A size estimate made before anything is allocated.

Runs whose sizes are typos (``--width 100000000``, ``--points 10000000000``, a reference grid of 10^12 points)
are refused up front with a clear message instead of crashing the machine. The estimate is deliberately rough
(upper-bound flavoured): the working set of one training step (values and derivative rows of every hidden layer
at every point, forward and backward), the points, the reference grid, the parameters and optimizer state, and
the dense inverse Hessian of the BFGS family.
"""

from __future__ import annotations

import os

__all__ = ["available_memory", "check_fits", "estimate_run_memory"]

# Value, first and second derivatives along each input (the problems here need at most third order).
_ROWS_PER_POINT = 8
# Forward values kept for the backward pass, gradients, and XLA's temporaries.
_WORKING_FACTOR = 4
_FRACTION = 0.8  # of the available memory a run may plan to use


def available_memory() -> int:
    """Bytes of memory available to a new allocation (``MemAvailable``; the physical total as a fallback).

    Example:
        >>> available_memory() > 0
        True
    """
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 2**40


def estimate_run_memory(config, *, models: int = 1) -> int:
    """Rough bytes a run of ``config`` needs at its peak (see the module docstring).

    Args:
        config: a :class:`pinnkit.RunConfig`.
        models: models trained together (seeds vmapped).

    Example:
        >>> from pinnkit import RunConfig
        >>> estimate_run_memory(RunConfig(width=16, depth=2, points=100)) < 10**9
        True
    """
    from pinnkit import problems
    from pinnkit.optimizers import LINE_SEARCH_OPTIMIZERS

    problem = problems.get(config.problem, **dict(config.problem_params))
    size = 8 if config.double_precision else 4
    inputs, outputs = len(problem.input_names), len(problem.output_names)
    width, depth = config.width, config.depth
    features = 2 * config.fourier_features if config.fourier_features else inputs
    parameters = (features * width + width) + (depth - 1) * (width * width + width) + (width * outputs + outputs)
    if config.architecture != "mlp":
        parameters += 2 * (features * width + width)
    points = config.points + sum(problem.constraint_counts().values())
    working = points * width * depth * _ROWS_PER_POINT * size * _WORKING_FACTOR
    reference = problem.reference_size()
    evaluation = reference * (width * depth + inputs + outputs) * size * 2
    state = parameters * size * 8  # params, gradients, moments, line-search copies
    dense = 0
    if any(name in LINE_SEARCH_OPTIMIZERS and name != "lbfgs" for name in config.plan_spec().names):
        dense = parameters * parameters * size * 3
    per_model = working + state + dense
    return int(models * per_model + evaluation + points * inputs * size + reference * 8 * 4)


def check_fits(config, *, models: int = 1) -> None:
    """Raise ValueError when a run of ``config`` would not fit in the memory available now.

    Example:
        >>> from pinnkit import RunConfig
        >>> check_fits(RunConfig(width=16, depth=2, points=100))
        >>> check_fits(RunConfig(width=100_000_000, depth=2, points=100))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: this run needs about ... of memory; ... are available ...
    """
    need = estimate_run_memory(config, models=models)
    have = available_memory()
    if need > _FRACTION * have:
        raise ValueError(f"this run needs about {_bytes(need)} of memory; {_bytes(have)} are available (reduce "
                         "--width, --depth, --points or the problem's grid and point counts)")


def _bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.3g} {unit}" if unit != "PiB" or value < 1e6 else f"{value:.2e} {unit}"
        value /= 1024
    return f"{value:.3g} EiB"  # pragma: no cover
