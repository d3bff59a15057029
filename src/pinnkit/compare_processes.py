"""A comparison grid shared by the processes of a multi-process run: each runs whole cells, process 0 gathers.

The grid's cells (one plan x one reweighting, its seeds vmapped together) are independent: process ``p`` of ``P``
runs the cells ``p, p + P, p + 2P, ...`` in grid order on its own devices, with no collective while it trains.
At the end every process sends its finished runs to process 0 (one all-gather of their bytes), where they are put
back together in grid order: the same runs, with the same numbers, as one process running the whole grid (only
the times differ).

What travels is plain data: each run's summary, history and learning-rate search, and the arrays of its final
model and optimizer state, which process 0 puts back into the structures it builds itself for that cell (an
Equinox model holds functions, which do not travel).
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pinnkit.compare import CompareConfig, CompareRun, compare
from pinnkit.engine import TrainResult

__all__ = ["cells_of", "compare_across_processes"]


def cells_of(config: CompareConfig, index: int, count: int) -> list[tuple[str, str]]:
    """The (plan, reweighting) cells that process ``index`` of ``count`` runs, in grid order: every ``count``-th
    stack of variants (a plan's "none" and its first reweighting train as one program, :mod:`pinnkit.variants`;
    dealt whole, each process runs the very programs one process would, so the results agree bit for bit).

    Example:
        >>> grid = CompareConfig(optimizers=("adam", "sgd"), reweights=("none", "rba"), steps=10)
        >>> cells_of(grid, 1, 2)
        [('sgd', 'none'), ('sgd', 'rba')]
    """
    from pinnkit.variants import variant_groups

    stacks = [[(plan, reweight) for reweight in group] for plan in config.optimizers
              for group in variant_groups(config.reweights)]
    mine = {cell for stack in stacks[index::count] for cell in stack}
    return [(plan, reweight) for plan in config.optimizers for reweight in config.reweights if (plan, reweight) in mine]


def compare_across_processes(config: CompareConfig, *, callback: Callable[[str, int, int], Any] | None = None,
                             on_run: Callable[[CompareRun], Any] | None = None) -> list[CompareRun]:
    """Run this process's share of the grid; return every run of the grid in process 0, and [] in the others.

    Every process of the run must call it. ``callback`` and ``on_run`` see this process's own runs (as
    :func:`pinnkit.compare.compare` calls them); a single process runs the whole grid.
    """
    import jax

    index, count = jax.process_index(), jax.process_count()
    mine = compare(config, callback=callback, on_run=on_run, cells=cells_of(config, index, count))
    if count == 1:
        return mine
    parcels = _gather(pickle.dumps([_parcel(run) for run in mine]))
    if index != 0:
        return []
    by_name = {run.name: run for run in mine}
    for process, data in enumerate(parcels):
        if process == 0:
            continue
        for parcel in pickle.loads(data):
            by_name[parcel["name"]] = _rebuilt(config, parcel, cells_of(config, process, count))
    order = [run_name for plan, reweight in cells_of(config, 0, 1) for run_name in _names(config, plan, reweight)]
    missing = [name for name in order if name not in by_name]
    if missing:
        raise RuntimeError(f"the processes returned no run {missing[0]!r}")
    return [by_name[name] for name in order]


def _names(config: CompareConfig, plan: str, reweight: str) -> list[str]:
    from pinnkit.compare import run_name

    return [run_name(config.problem, plan, reweight, seed) for seed in range(config.seeds)]


def _arrays(tree) -> list[Any]:
    import jax

    return [np.asarray(leaf) if isinstance(leaf, jax.Array | np.ndarray) else leaf
            for leaf in jax.tree_util.tree_leaves(tree)]


def _parcel(run: CompareRun) -> dict[str, Any]:
    """A finished run as plain data (what pickles without the model's functions)."""
    result = run.result
    return {
        "name": run.name, "summary": run.summary, "history": run.history, "search": run.learning_rate_search,
        "model": _arrays(result.model), "opt_state": _arrays(result.opt_state), "outcome": result.outcome,
        "steps": result.steps, "wall_time_s": result.wall_time_s, "compile_time_s": result.compile_time_s,
        "points": {term: np.asarray(value) for term, value in (result.points or {}).items()},
        "stage_starts": tuple(result.stage_starts), "message": result.message,
    }


def _rebuilt(config: CompareConfig, parcel: dict[str, Any], cells) -> CompareRun:
    """The run of a parcel, its model and optimizer state back in the structures of its stack of variants (the
    cells its process ran: "none" trained beside the plan's first reweighting there, see pinnkit.variants)."""
    import jax

    from pinnkit.experiment import init_models, plan_for
    from pinnkit.variants import variant_groups

    summary = parcel["summary"]
    ran = [reweight for reweight in config.reweights if (summary.optimizer, reweight) in cells]
    group = next(group for group in variant_groups(ran) if summary.reweight in group)
    scheme = next((name for name in group if name != "none"), "none")
    run_config = config.run_config(summary.optimizer, scheme, summary.seed)
    if run_config.learning_rate == "auto":
        # Only the structure is wanted here; the learning rate it trained with is in the summary.
        run_config = dataclasses.replace(run_config, learning_rate=summary.learning_rate)
    import equinox as eqx

    with jax.enable_x64(run_config.double_precision):  # float64 arrays stay float64
        model, _ = init_models(run_config, run_config.make_problem(), [summary.seed], run_config.dtype)
        stage = plan_for(run_config, per_model=True).stages[len(parcel["stage_starts"]) - 1]
        like_state = jax.eval_shape(stage.optimizer.init, eqx.filter(model, eqx.is_inexact_array))
        trained = _unflatten(model, parcel["model"], parcel["name"], "model")
        state = _unflatten(like_state, parcel["opt_state"], parcel["name"], "optimizer state")
    result = TrainResult(trained, state, parcel["history"], parcel["outcome"], parcel["steps"], parcel["wall_time_s"],
                         parcel["compile_time_s"], parcel["points"], parcel["stage_starts"], parcel["message"])
    return CompareRun(parcel["name"], summary, parcel["history"], result, parcel["search"])


def _unflatten(like, leaves: Sequence[Any], name: str, what: str):
    import jax

    treedef = jax.tree_util.tree_structure(like)
    if treedef.num_leaves != len(leaves):
        raise RuntimeError(f"run {name}: its {what} has {len(leaves)} arrays, its cell's {treedef.num_leaves}")
    for expected, found in zip(jax.tree_util.tree_leaves(like), leaves, strict=True):
        if getattr(expected, "shape", None) != getattr(found, "shape", None):
            raise RuntimeError(f"run {name}: an array of its {what} has shape {getattr(found, 'shape', None)}, "
                               f"its cell's {getattr(expected, 'shape', None)}")
    return jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(leaf) if isinstance(leaf, np.ndarray) else leaf
                                                   for leaf in leaves])


def _gather(data: bytes) -> list[bytes]:
    """Every process's ``data``, in process order (two all-gathers: the lengths, then the padded bytes)."""
    from jax.experimental import multihost_utils

    lengths = np.asarray(multihost_utils.process_allgather(np.array([len(data)], np.int32))).reshape(-1)
    padded = np.zeros(int(lengths.max()), np.uint8)
    padded[: len(data)] = np.frombuffer(data, np.uint8)
    gathered = np.asarray(multihost_utils.process_allgather(padded)).reshape(len(lengths), -1)
    return [gathered[process, : int(length)].tobytes() for process, length in enumerate(lengths)]
