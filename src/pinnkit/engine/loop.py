"""The outer loop: stages of a plan, chunks of steps between history rows, divergence, callbacks, checkpoints.

:func:`fit_stacked` trains K models of one architecture together (vmapped: several seeds in one program) through
the stages of a plan; :func:`fit` is its one-model case. Each stage compiles two programs once (a chunk of steps
whose length is an argument, and the row probe) and reuses them for every row.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from pinnkit import columns, diagnostics, reweight
from pinnkit.engine.probes import Probes, information, probe
from pinnkit.engine.result import Outcome, TrainResult
from pinnkit.engine.schedule import MAX_ROWS, MAX_STEPS, LogSchedule
from pinnkit.engine.steps import CompiledFunctions, Steps, forget_loss
from pinnkit.history import History
from pinnkit.plans import Plan, as_plan
from pinnkit.problems.base import Points, Problem

__all__ = ["Outcome", "TrainResult", "Trainer", "fit", "fit_stacked"]


class Trainer:
    """The compiled pieces of one stage: a problem, a model structure, an optimizer, the points.

    Args:
        problem: the PDE problem.
        model: a model (its structure; parameters come in separately).
        optimizer: any optax transformation.
        points: the problem's points (``problem.sample(...)``).
        probes: what each history row records.
        snr_key: key of the fixed random SNR batch split (default ``jax.random.key(0)``).
        error_fn: ``model -> relative L2`` (default: against ``problem.reference()``).
        mesh: a device mesh (``pinnkit.distributed.data_mesh(n)``) to split the collocation points over.

    Example:
        >>> import jax, optax, pinnkit
        >>> problem = pinnkit.problems.get("helmholtz", grid_size=21)
        >>> points = problem.sample(jax.random.key(0), 100)
        >>> model = pinnkit.nn.MLP(2, 1, width=8, depth=1, key=jax.random.key(1))
        >>> trainer = Trainer(problem, model, optax.adam(1e-3), points, probes=Probes(snr_batches=10))
        >>> trainer.steps.line_search
        False
    """

    def __init__(self, problem: Problem, model, optimizer, points: Points, *, probes: Probes = Probes(),
                 snr_key: jax.Array | None = None, error_fn: Callable | None = None, mesh=None):
        self.problem = problem
        self.probes = probes
        params, static = eqx.partition(model, eqx.is_inexact_array)
        num_points = _check_points(problem, points)
        if probes.snr_batches > num_points:
            raise ValueError(f"snr_batches={probes.snr_batches} exceeds the {num_points} collocation points")
        self.mesh = mesh
        if mesh is not None:
            from pinnkit.distributed import shard_points

            points = shard_points(points, mesh, problem.collocation_terms)
        self.points = points
        batches = None
        if probes.snr_batches:
            key = snr_key if snr_key is not None else jax.random.key(0)
            batches = diagnostics.make_batches(key, num_points, probes.snr_batches)
        self.optimizer = optimizer
        self.steps = Steps(problem, static, optimizer, jax.eval_shape(optimizer.init, params),
                           num_points=num_points, batches=batches, batch_constraints=probes.batch_constraints)
        self.error_fn = error_fn if error_fn is not None else problem.relative_l2_fn()
        self.compiled = CompiledFunctions(mesh)

    @property
    def compile_time_s(self) -> float:
        return self.compiled.compile_time_s

    def set_points(self, points: Points) -> None:
        """Train on other points of the same shapes (the compiled programs take the points as an argument)."""
        if self.mesh is not None:
            from pinnkit.distributed import shard_points

            points = shard_points(points, self.mesh, self.problem.collocation_terms)
        self.points = points

    def model_of(self, params):
        return self.steps.model_of(params)

    def init(self, params):
        """A fresh optimizer state for ``params`` (stacked params: a stacked state)."""
        return self.steps.optimizer.init(params)

    def place(self, tree):
        """``tree`` replicated over the trainer's mesh (unchanged without one)."""
        if self.mesh is None:
            return tree
        from pinnkit.distributed import replicate

        return replicate(tree, self.mesh)

    # Both programs are vmapped over a leading model axis and compiled once.
    def chunk(self, params, opt_state, pending):
        steps = self.steps
        function = jax.vmap(
            lambda p, s, points, e, start, length: steps.chunk(p, s, points, e, start, length),
            in_axes=(0, 0, None, 0 if pending is not None else None, None, None))
        example = (params, opt_state, self.points, pending, np.int32(0), np.int32(1))
        return self.compiled.get("chunk", function, example, point_argument=2)

    def probe(self, params, opt_state):
        bins = self.probes.homogeneity_bins
        function = jax.vmap(lambda p, s, points: probe(self.steps, self.error_fn, bins, p, s, points),
                            in_axes=(0, 0, None))
        return self.compiled.get("probe", function, (params, opt_state, self.points), point_argument=2)


def _check_points(problem: Problem, points: Points) -> int:
    if not isinstance(points, dict):
        raise TypeError(f"points must be a dict term -> (n, d) array (problem.sample(...)), "
                        f"got {type(points).__name__}")
    dimension = len(problem.input_names)
    sizes = set()
    for term in problem.collocation_terms:
        if term not in points:
            raise ValueError(f"points lack the term {term!r}; use problem.sample(key, n)")
        shape = getattr(points[term], "shape", ())
        if len(shape) != 2 or shape[1] != dimension or shape[0] == 0:
            raise ValueError(f"points[{term!r}] must have shape (n, {dimension}) with n > 0, got {shape}")
        sizes.add(shape[0])
    if len(sizes) != 1:
        raise ValueError(f"the collocation terms {problem.collocation_terms} must share their points")
    return sizes.pop()


def _check_count(name: str, value, *, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}, got {value:,}")


def _finite_per_model(params) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(leaf.reshape(leaf.shape[0], -1)), axis=1)
              for leaf in jax.tree_util.tree_leaves(params)]
    return jnp.all(jnp.stack(leaves), axis=0)


def _select(keep: np.ndarray, old, new):
    """Per model: ``old`` where ``keep``, else ``new`` (leaves carry a leading model axis)."""
    if old is None:
        return new
    mask = jnp.asarray(keep)
    return jax.tree_util.tree_map(
        lambda a, b: jnp.where(mask.reshape((-1,) + (1,) * (b.ndim - 1)), a, b), old, new)


def _unstack(tree, index: int):
    return jax.tree_util.tree_map(lambda leaf: leaf[index], tree)


class _Run:
    """The state of one stacked run across stages: histories, which models are alive, the clock."""

    def __init__(self, histories: list[History], start_step: int, points: Points, resampling, resampling_key):
        self.histories = histories
        self.points = points  # the collocation points now (redrawn by resampling)
        self.resampling = resampling
        self.resampling_key = resampling_key
        self._draw = None
        self._carry = None
        self.num_models = len(histories)
        self.alive = np.ones(self.num_models, bool)
        self.outcomes = [(Outcome.COMPLETED, "")] * self.num_models  # (how each model ended, why)
        previous = histories[0].last(columns.WALL_TIME) if len(histories[0]) else math.nan
        self.wall = previous if math.isfinite(previous) else 0.0
        self.last_good = [(start_step, self.wall)] * self.num_models

    def record(self, trainer: Trainer, step: int, stage: int, row: dict, failures, params, probes: Probes,
               layer_names: list[str], callback) -> None:
        arrays = jax.tree_util.tree_map(np.asarray, row)
        failures = np.asarray(failures) if failures is not None else None
        for index in np.flatnonzero(self.alive):
            entry: dict[str, float] = {columns.STEP: step, columns.STAGE: stage, columns.WALL_TIME: self.wall}
            for name in sorted(arrays, key=columns.order_key):
                value = arrays[name]
                if name == "layer_snr":
                    entry.update({columns.layer_snr(layer): float(v)
                                  for layer, v in zip(layer_names, value[index], strict=True)})
                else:
                    entry[name] = float(value[index])
            if trainer.steps.line_search:
                entry[columns.LINE_SEARCH_FAILURES] = int(failures[index]) if failures is not None else 0
            history = self.histories[index]
            if probes.information_every and len(history) % probes.information_every == 0:
                entry.update(information(trainer.model_of(_unstack(params, index)), trainer.points,
                                         trainer.problem.collocation_terms[0], probes.information_points))
            history.append(entry)
            self.last_good[index] = (step, self.wall)
        if callback is not None and self.alive.any():
            callback(step, self.histories[int(np.flatnonzero(self.alive)[0])].last_row())

    def next_mark(self, log: LogSchedule, step: int, end: int) -> int:
        mark = log.next_mark(step, end)
        if self.resampling is not None:
            mark = min(mark, (step // self.resampling.every + 1) * self.resampling.every)
        return mark

    def resample_due(self, step: int, end: int) -> bool:
        return self.resampling is not None and step % self.resampling.every == 0 and step < end

    def redraw(self, trainer: Trainer, params, step: int) -> Points:
        """New collocation points for the (one) model at ``step``."""
        if self._draw is None:
            problem = trainer.problem
            self._draw = jax.jit(lambda key, p, points, redraw: self.resampling.draw(
                key, problem, trainer.model_of(p), points, redraw=redraw))
        key = jax.random.fold_in(self.resampling_key, step)
        # The redraw's number in the run (1, 2, ...): the clock of an annealed density; traced, so no recompiling.
        redraw = np.asarray(step // self.resampling.every, np.int32)
        self.points = self._draw(key, _unstack(params, 0), self.points, redraw)
        return self.points

    def carry_weights(self, trainer: Trainer, opt_state, old: Points, new: Points):
        """The optimizer state with its sample weights moved onto the redrawn points (nearest old point)."""
        if self._carry is None:
            lower, upper = (np.asarray(bound, float) for bound in trainer.problem.domain)
            self._carry = jax.jit(lambda state, a, b: reweight.carry_weights(state, a, b, scale=upper - lower))
        term = trainer.problem.collocation_terms[0]
        return self._carry(opt_state, old[term], new[term])


def fit_stacked(
    problem: Problem,
    model,
    optimizer,
    points: Points,
    params,
    *,
    steps: int | None = None,
    opt_state=None,
    log: LogSchedule = LogSchedule(),
    probes: Probes = Probes(),
    snr_key: jax.Array | None = None,
    start_step: int = 0,
    histories: Sequence[History] | None = None,
    reference=None,
    callback: Callable[[int, dict], Any] | None = None,
    checkpoint: Callable[[int, Any, Any, list[History]], Any] | None = None,
    mesh=None,
    resampling=None,
    resampling_key: jax.Array | None = None,
) -> list[TrainResult]:
    """Train K models of one architecture together through a plan (vmapped: several seeds in one program).

    Args:
        problem: the PDE problem.
        model: a model of the architecture (its structure; its parameters are not used).
        optimizer: an optax transformation, a :class:`pinnkit.plans.Stage` or a :class:`pinnkit.plans.Plan`.
        points: the points, shared by all K models.
        params: the K models' parameters, stacked along a leading axis (``eqx.filter_vmap`` of a model
            constructor over K keys, then ``eqx.filter(..., eqx.is_inexact_array)``).
        steps: total steps of the run (default: the plan's own total).
        opt_state: resume from this stacked optimizer state (of the stage that ``start_step`` falls in).
        log: when history rows are recorded.
        probes: what a row records.
        snr_key: key of the SNR batch split.
        start_step: steps already done (resume).
        histories: the K histories so far (resume).
        reference: the reference solution (default ``problem.reference()``).
        callback: ``callback(step, row)`` after each row (the row of the first model still training).
        checkpoint: ``checkpoint(step, params, opt_state, histories)`` after each row, with the stacked state
            after ``step`` steps; resuming from it with ``start_step=step`` continues exactly.
        mesh: a device mesh to split the collocation points over.
        resampling: a :class:`pinnkit.sampling.Resampling` (RAD): redraw the collocation points every
            ``resampling.every`` steps (one model only; not with ``checkpoint``: the points are not saved).
        resampling_key: the key of the redraws (default ``jax.random.key(0)``).

    Returns:
        One :class:`TrainResult` per model. A model whose loss or parameters become non-finite stops recording
        (status says where) while the others go on; its state is that of its last finite row.

    Example:
        >>> import equinox as eqx, jax, optax, pinnkit
        >>> problem = pinnkit.problems.get("helmholtz", grid_size=21)
        >>> points = problem.sample(jax.random.key(0), 200)
        >>> make = lambda key: pinnkit.nn.MLP(2, 1, width=8, depth=1, key=key)
        >>> models = eqx.filter_vmap(make)(jax.random.split(jax.random.key(1), 3))
        >>> params = eqx.filter(models, eqx.is_inexact_array)
        >>> results = fit_stacked(problem, make(jax.random.key(0)), optax.adam(1e-3), points, params, steps=10,
        ...                       log=LogSchedule(5), probes=Probes(snr_batches=10))
        >>> len(results), results[0].history["step"].tolist()
        (3, [0.0, 5.0, 10.0])
    """
    plan = as_plan(optimizer)
    if not isinstance(log, LogSchedule):
        raise TypeError(f"log must be a pinnkit.LogSchedule, got {type(log).__name__}")
    if not isinstance(probes, Probes):
        raise TypeError(f"probes must be a pinnkit.Probes, got {type(probes).__name__}")
    _check_count("start_step", start_step, minimum=0, maximum=MAX_STEPS)
    lengths = plan.lengths(steps)
    total = sum(lengths)
    _check_count("steps", total, minimum=1, maximum=MAX_STEPS)
    if start_step >= total and start_step > 0:
        raise ValueError(f"start_step={start_step} is not before the end of the run ({total} steps)")
    rows = log.count(total, start_step)
    if rows > MAX_ROWS:
        raise ValueError(f"the log schedule would record {rows:,} history rows; at most {MAX_ROWS:,} "
                         "(record less often)")
    num_models = jax.tree_util.tree_leaves(params)[0].shape[0]
    if num_models > 1 and any(stage.switch_when is not None for stage in plan.stages):
        raise ValueError("a stage that ends on a condition of its history (switch_when) runs one model at a time; "
                         f"got {num_models} stacked models")
    if resampling is not None:
        if num_models > 1:
            raise ValueError(f"resampling runs one model at a time; got {num_models} stacked models")
        if checkpoint is not None:
            raise ValueError("resampling and checkpoints do not mix: a checkpoint would not hold the redrawn points")
    histories = list(histories) if histories is not None else [History() for _ in range(num_models)]
    if len(histories) != num_models:
        raise ValueError(f"{len(histories)} histories for {num_models} models")
    reference = reference if reference is not None else problem.reference()
    error_fn = problem.relative_l2_fn(reference)
    run = _Run(histories, start_step, points, resampling,
               resampling_key if resampling_key is not None else jax.random.key(0))
    stage_index, stage_starts = _resume_position(plan, lengths, start_step, histories[0])
    step = start_step
    compile_time = 0.0
    carried_state = None
    trained_points = points
    for index in range(stage_index, len(plan.stages)):
        stage = plan.stages[index]
        if index != stage_index:
            stage_starts.append(step)
        last = index == len(plan.stages) - 1
        end = total if last else min(total, stage_starts[-1] + lengths[index])
        trainer = Trainer(problem, model, stage.optimizer, run.points, probes=probes, snr_key=snr_key,
                          error_fn=error_fn, mesh=mesh)
        params = trainer.place(params)
        if opt_state is None or index != stage_index:
            fresh = jax.vmap(trainer.init)(params)
            if carried_state is not None:
                from pinnkit.reweight import transfer_reweighting

                fresh = transfer_reweighting(carried_state, fresh)
            opt_state = fresh
        opt_state = trainer.place(opt_state)
        params, opt_state, step = _run_stage(trainer, run, params, opt_state, start=step, end=end, stage=index,
                                             log=log, probes=probes, callback=callback, checkpoint=checkpoint,
                                             switch_when=stage.switch_when)
        compile_time += trainer.compile_time_s
        carried_state = opt_state
        trained_points = trainer.points
        if not run.alive.any() or step >= total:
            break
    results = []
    for index in range(num_models):
        done_step, done_wall = run.last_good[index]
        outcome, message = run.outcomes[index]
        results.append(TrainResult(
            eqx.combine(_unstack(params, index), eqx.filter(model, eqx.is_inexact_array, inverse=True)),
            _unstack(opt_state, index), histories[index], outcome, done_step, done_wall,
            compile_time, trained_points, tuple(stage_starts), message))
    return results


def _resume_position(plan: Plan, lengths: list[int], start_step: int, history: History) -> tuple[int, list[int]]:
    """The stage that ``start_step`` falls in and the steps at which the stages so far began."""
    if len(history) and columns.STAGE in history and start_step > 0:
        # The recorded stage column says where the stages began (a switch may have been detected, not planned).
        stages = history[columns.STAGE]
        steps = history[columns.STEP]
        starts = [0] + [int(steps[i - 1]) for i in range(1, len(stages)) if stages[i] != stages[i - 1]]
        return int(stages[-1]), starts
    bounds = np.cumsum([0, *lengths])
    index = int(np.searchsorted(bounds, start_step, side="right") - 1)
    index = min(index, len(plan.stages) - 1)
    return index, [int(b) for b in bounds[: index + 1]]


def _run_stage(trainer: Trainer, run: _Run, params, opt_state, *, start: int, end: int, stage: int,
               log: LogSchedule, probes: Probes, callback, checkpoint, switch_when) -> tuple[Any, Any, int]:
    """Chunks of steps between rows from ``start`` to ``end`` (or until ``switch_when``)."""
    if start >= end:
        return params, opt_state, start
    layer_names = [name for name in diagnostics.gradient_leaf_names(_unstack(params, 0))
                   if name.endswith("weight")]
    probe_fn = trainer.probe(params, opt_state)
    row, pending = probe_fn(params, opt_state, trainer.points)
    if start == 0 and len(run.histories[0]) == 0:
        run.record(trainer, 0, stage, row, None, params, probes, layer_names, callback)
    chunk_fn = trainer.chunk(params, opt_state, pending)
    good = (params, opt_state, pending)
    step = start
    while step < end:
        mark = run.next_mark(log, step, end)
        tick = time.perf_counter()
        new_params, new_state, failures = chunk_fn(params, opt_state, trainer.points, pending, np.int32(step),
                                                   np.int32(mark - step))
        row, new_pending = probe_fn(new_params, new_state, trainer.points)
        losses = np.asarray(row[columns.LOSS])
        finite = np.isfinite(losses) & np.asarray(_finite_per_model(new_params))
        run.wall += time.perf_counter() - tick
        newly_dead = run.alive & ~finite
        for index in np.flatnonzero(newly_dead):
            quantity = "loss" if not np.isfinite(losses[index]) else "parameters"
            run.outcomes[index] = (Outcome.DIVERGED, f"{quantity} became non-finite within steps {step + 1}-{mark}")
        run.alive &= ~newly_dead
        if newly_dead.any():
            # Models that just diverged keep their last finite state; the others go on.
            new_params = trainer.place(_select(newly_dead, good[0], new_params))
            new_state = trainer.place(_select(newly_dead, good[1], new_state))
            new_pending = _select(newly_dead, good[2], new_pending) if new_pending is not None else None
        params, opt_state, pending = new_params, new_state, new_pending
        step = mark
        if not run.alive.any():
            break
        good = (params, opt_state, pending)
        run.record(trainer, step, stage, row, failures, params, probes, layer_names, callback)
        if checkpoint is not None:
            checkpoint(step, params, opt_state, run.histories)
        if switch_when is not None and len(run.histories) == 1 and switch_when(run.histories[0]):
            break
        if run.resample_due(step, end):
            tick = time.perf_counter()
            old_points = trainer.points
            trainer.set_points(run.redraw(trainer, params, step))
            # A weight belongs to a place in the domain: the new points take their nearest old point's weight.
            opt_state = trainer.place(forget_loss(run.carry_weights(trainer, opt_state, old_points, trainer.points)))
            _, pending = probe_fn(params, opt_state, trainer.points)
            good = (params, opt_state, pending)
            run.wall += time.perf_counter() - tick
    return params, opt_state, step


def fit(
    problem: Problem,
    model,
    optimizer,
    points: Points,
    *,
    steps: int | None = None,
    log: LogSchedule = LogSchedule(),
    probes: Probes = Probes(),
    snr_key: jax.Array | None = None,
    opt_state=None,
    start_step: int = 0,
    history: History | None = None,
    reference=None,
    callback: Callable[[int, dict], Any] | None = None,
    checkpoint: Callable[[int, Any, Any, History], Any] | None = None,
    devices: int | None = None,
    resampling=None,
    resampling_key: jax.Array | None = None,
) -> TrainResult:
    """Train ``model`` on ``problem`` and record a history.

    Args:
        problem: the PDE problem (``pinnkit.problems.get(...)``).
        model: an Equinox model mapping one point to the problem's outputs.
        optimizer: any optax transformation (chain ``pinnkit.rba(...)`` in front to reweight samples), or a
            :class:`pinnkit.Plan` of several stages.
        points: ``problem.sample(key, n)``.
        steps: total number of steps (default: the plan's own total).
        log: when history rows are recorded (:class:`pinnkit.LogSchedule`); row 0 is the initial state.
        probes: what each row records (:class:`pinnkit.Probes`: SNR batches, information, ...).
        snr_key: key of the random SNR batch split.
        opt_state: resume from this optimizer state (with ``start_step`` and ``history``).
        start_step: the steps already done.
        history: the history so far.
        reference: the reference solution (default: ``problem.reference()``).
        callback: ``callback(step, row)`` after each history row (progress bars).
        checkpoint: ``checkpoint(step, model, opt_state, history)`` after each row, with the state after ``step``
            steps (``pinnkit.checkpoint.Checkpointer`` fits here).
        devices: split the collocation points over this many devices (``pinnkit.distributed``); None: one device.
        resampling: redraw the collocation points by their residual (:class:`pinnkit.sampling.Resampling`).
        resampling_key: the key of the redraws.

    Returns:
        A :class:`TrainResult`. Training stops early, with a status saying where, when the loss or the parameters
        become non-finite; the history and state are those of the last finite row.

    Example:
        >>> import jax, optax, pinnkit
        >>> problem = pinnkit.problems.get("helmholtz", grid_size=21)
        >>> points = problem.sample(jax.random.key(0), 200)
        >>> model = pinnkit.nn.MLP(2, 1, width=16, depth=2, domain=problem.domain, key=jax.random.key(1))
        >>> result = fit(problem, model, optax.adam(1e-3), points, steps=20, log=pinnkit.LogSchedule(10),
        ...              probes=pinnkit.Probes(snr_batches=10))
        >>> result.history["step"].tolist(), result.status
        ([0.0, 10.0, 20.0], 'completed')
    """
    mesh = None
    if devices is not None:
        from pinnkit.distributed import data_mesh

        mesh = data_mesh(devices)
    stack = lambda tree: jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[None], tree)
    stacked_checkpoint = None
    if checkpoint is not None:
        def stacked_checkpoint(step, params, state, histories):
            whole = eqx.combine(_unstack(params, 0), eqx.filter(model, eqx.is_inexact_array, inverse=True))
            return checkpoint(step, whole, _unstack(state, 0), histories[0])

    params = eqx.filter(model, eqx.is_inexact_array)
    (result,) = fit_stacked(
        problem, model, optimizer, points, stack(params), steps=steps,
        opt_state=stack(opt_state) if opt_state is not None else None, log=log, probes=probes, snr_key=snr_key,
        start_step=start_step, histories=[history] if history is not None else None, reference=reference,
        callback=callback, checkpoint=stacked_checkpoint, mesh=mesh, resampling=resampling,
        resampling_key=resampling_key)
    return result
