"""The outer loop: stages of a plan, chunks of steps between history rows, divergence, callbacks, checkpoints.

:func:`fit_stacked` trains K models of one architecture together (vmapped: several seeds in one program) through
the stages of a plan; :func:`fit` is its one-model case. Each stage compiles two programs once (a chunk of steps
whose length is an argument, and the row probe) and reuses them for every row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np

from pinnkit import columns, diagnostics
from pinnkit.engine.clock import Clock
from pinnkit.engine.liveness import Liveness
from pinnkit.engine.probes import Probes, probe
from pinnkit.engine.recording import Recorder
from pinnkit.engine.resampler import Resampler
from pinnkit.engine.result import Outcome, TrainResult
from pinnkit.engine.schedule import MAX_ROWS, MAX_STEPS, LogSchedule
from pinnkit.engine.stacked import finite_per_model, select, stack, unstack
from pinnkit.engine.steps import CompiledFunctions, Steps
from pinnkit.history import History
from pinnkit.plans import as_plan
from pinnkit.problems.base import Points, Problem
from pinnkit.validation import integer

__all__ = ["Outcome", "TrainResult", "Trainer", "fit", "fit_stacked", "resume_position"]


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
        weights_first: advance the reweighting weights before each first-order gradient (the paper code's order;
            :class:`pinnkit.engine.steps.Steps`).

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
                 snr_key: jax.Array | None = None, error_fn: Callable | None = None, mesh=None,
                 weights_first: bool = False):
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
            if probes.batch_split == "contiguous":
                batches = diagnostics.contiguous_batches(num_points, probes.snr_batches)
            else:
                key = snr_key if snr_key is not None else jax.random.key(0)
                batches = diagnostics.make_batches(key, num_points, probes.snr_batches)
        self.optimizer = optimizer
        self.steps = Steps(problem, static, optimizer, jax.eval_shape(optimizer.init, params),
                           num_points=num_points, batches=batches, batch_constraints=probes.batch_constraints,
                           weights_first=weights_first)
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


class _Run:
    """One stacked run across the stages of a plan, composed of one part per concern: its recorded rows, which
    models are still alive, its clock and its collocation points."""

    def __init__(self, histories: list[History], start_step: int, points: Points, resampling, resampling_key,
                 probes: Probes, callback):
        self.clock = Clock.resumed(histories[0])
        self.liveness = Liveness(len(histories))
        self.recorder = Recorder(histories, start_step, self.clock.wall_s, probes, callback)
        self.resampler = Resampler(resampling, resampling_key, points)

    @property
    def histories(self) -> list[History]:
        return self.recorder.histories

    @property
    def last_good(self) -> list[tuple[int, float]]:
        """Each model's last recorded step and the wall time then (what its result reports)."""
        return self.recorder.last_good

    def outcome(self, index: int) -> tuple[Outcome, str]:
        """How model ``index`` ended and why (an empty message for a completed run)."""
        reason = self.liveness.reasons[index]
        return (Outcome.DIVERGED, reason) if reason else (Outcome.COMPLETED, "")

    def record(self, trainer: Trainer, step: int, stage: int, row: dict, failures, params,
               layer_names: list[str]) -> None:
        self.recorder.record(trainer, step, stage, row, failures, params, alive=self.liveness.alive,
                             wall_s=self.clock.wall_s, layer_names=layer_names)

    def next_mark(self, log: LogSchedule, step: int, end: int) -> int:
        """The step of the next row: the log schedule's, or an earlier redraw of the points."""
        return self.resampler.next_mark(log.next_mark(step, end), step=step)


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
    stage_state: Callable[[int, Any, bool], Any] | None = None,
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
        stage_state: ``stage_state(stage_index, state, first)`` returns the stacked state a stage starts from,
            given the one built for it (``first``: no stage came before, so nothing was carried over). Runs
            stacked as variants set their per-model numbers here (:func:`pinnkit.variants.set_variant_numbers`).
            Not called for a state handed in as ``opt_state``.

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
    integer("start_step", start_step, minimum=0, maximum=MAX_STEPS)
    lengths = plan.lengths(steps)
    total = sum(lengths)
    integer("steps", total, minimum=1, maximum=MAX_STEPS)
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
               resampling_key if resampling_key is not None else jax.random.key(0), probes, callback)
    stage_index, stage_starts = resume_position(lengths, start_step, histories[0])
    step = start_step
    carried_state = None
    trained_points = points
    for index in range(stage_index, len(plan.stages)):
        stage = plan.stages[index]
        if index != stage_index:
            stage_starts.append(step)
        last = index == len(plan.stages) - 1
        end = total if last else min(total, stage_starts[-1] + lengths[index])
        trainer = Trainer(problem, model, stage.optimizer, run.resampler.points, probes=probes, snr_key=snr_key,
                          error_fn=error_fn, mesh=mesh, weights_first=stage.weights_first)
        params = trainer.place(params)
        if opt_state is None or index != stage_index:
            fresh = jax.vmap(trainer.init)(params)
            if carried_state is not None:
                from pinnkit.reweight import transfer_reweighting

                fresh = transfer_reweighting(carried_state, fresh)
            if stage_state is not None:
                fresh = stage_state(index, fresh, carried_state is None)
            opt_state = fresh
        opt_state = trainer.place(opt_state)
        params, opt_state, step = _run_stage(trainer, run, params, opt_state, start=step, end=end, stage=index,
                                             log=log, checkpoint=checkpoint, switch_when=stage.switch_when)
        run.clock.add_compile(trainer.compile_time_s)
        carried_state = opt_state
        trained_points = trainer.points
        if not run.liveness.any() or step >= total:
            break
    compile_time = run.clock.compile_s

    results = []
    for index in range(num_models):
        done_step, done_wall = run.last_good[index]
        outcome, message = run.outcome(index)
        results.append(TrainResult(
            eqx.combine(unstack(params, index), eqx.filter(model, eqx.is_inexact_array, inverse=True)),
            unstack(opt_state, index), histories[index], outcome, done_step, done_wall,
            compile_time, trained_points, tuple(stage_starts), message))
    return results


def resume_position(lengths: Sequence[int], start_step: int, history: History) -> tuple[int, list[int]]:
    """The stage that ``start_step`` falls in and the steps at which the stages so far began.

    Args:
        lengths: the planned steps of each stage (``plan.lengths(total)``).
        start_step: the steps already done.
        history: the history so far: its stage column, where there is one, says where the stages began (a switch
            may have been detected, not planned).

    Example:
        >>> resume_position([10, 20], 15, History())
        (1, [0, 10])
    """
    if len(history) and columns.STAGE in history and start_step > 0:
        stages = history[columns.STAGE]
        steps = history[columns.STEP]
        starts = [0] + [int(steps[i - 1]) for i in range(1, len(stages)) if stages[i] != stages[i - 1]]
        return int(stages[-1]), starts
    bounds = np.cumsum([0, *lengths])
    index = int(np.searchsorted(bounds, start_step, side="right") - 1)
    index = min(index, len(lengths) - 1)
    return index, [int(b) for b in bounds[: index + 1]]


def _run_stage(trainer: Trainer, run: _Run, params, opt_state, *, start: int, end: int, stage: int,
               log: LogSchedule, checkpoint, switch_when) -> tuple[Any, Any, int]:
    """Chunks of steps between rows from ``start`` to ``end`` (or until ``switch_when``)."""
    if start >= end:
        return params, opt_state, start
    layer_names = [name for name in diagnostics.gradient_leaf_names(unstack(params, 0))
                   if name.endswith("weight")]
    probe_fn = trainer.probe(params, opt_state)
    row, pending = probe_fn(params, opt_state, trainer.points)
    if start == 0 and len(run.histories[0]) == 0:
        run.record(trainer, 0, stage, row, None, params, layer_names)
    chunk_fn = trainer.chunk(params, opt_state, pending)
    good = (params, opt_state, pending)
    step = start
    while step < end:
        mark = run.next_mark(log, step, end)
        with run.clock.timing():
            new_params, new_state, failures = chunk_fn(params, opt_state, trainer.points, pending, np.int32(step),
                                                       np.int32(mark - step))
            row, new_pending = probe_fn(new_params, new_state, trainer.points)
            losses = np.asarray(row[columns.LOSS])
            finite_params = np.asarray(finite_per_model(new_params))
        newly_dead = run.liveness.update(losses, finite_params, first_step=step + 1, last_step=mark)
        if newly_dead.any():
            # Models that just diverged keep their last finite state; the others go on.
            new_params = trainer.place(select(newly_dead, good[0], new_params))
            new_state = trainer.place(select(newly_dead, good[1], new_state))
            new_pending = select(newly_dead, good[2], new_pending) if new_pending is not None else None
        params, opt_state, pending = new_params, new_state, new_pending
        step = mark
        if not run.liveness.any():
            break
        good = (params, opt_state, pending)
        run.record(trainer, step, stage, row, failures, params, layer_names)
        if checkpoint is not None:
            checkpoint(step, params, opt_state, run.histories)
        if switch_when is not None and len(run.histories) == 1 and switch_when(run.histories[0]):
            break
        if run.resampler.due(step, end=end):
            with run.clock.timing():
                opt_state = run.resampler.resample(trainer, params, opt_state, step)
                _, pending = probe_fn(params, opt_state, trainer.points)
            good = (params, opt_state, pending)
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
    stacked_checkpoint = None
    if checkpoint is not None:
        def stacked_checkpoint(step, params, state, histories):
            whole = eqx.combine(unstack(params, 0), eqx.filter(model, eqx.is_inexact_array, inverse=True))
            return checkpoint(step, whole, unstack(state, 0), histories[0])

    params = eqx.filter(model, eqx.is_inexact_array)
    (result,) = fit_stacked(
        problem, model, optimizer, points, stack(params), steps=steps,
        opt_state=stack(opt_state) if opt_state is not None else None, log=log, probes=probes, snr_key=snr_key,
        start_step=start_step, histories=[history] if history is not None else None, reference=reference,
        callback=callback, checkpoint=stacked_checkpoint, mesh=mesh, resampling=resampling,
        resampling_key=resampling_key)
    return result
