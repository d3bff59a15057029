"""The training engine: jit-compiled chunks of steps with any optax optimizer, and the history they record.

One call of :func:`fit` trains a model on a problem's points. Steps run inside a ``lax.scan`` over a chunk; between
chunks the engine records the loss per term, the relative L2 error against the reference, the batch-gradient SNR,
Adam's SNR, residual homogeneity and (on a coarser schedule) the information measures. Each distinct chunk shape is
compiled once, ahead of time, and its compile time is reported apart from the training time.

First-order optimizers (Adam, SGD, ...) and optax's L-BFGS (any optimizer whose state holds an optax line search)
take different step functions: L-BFGS needs ``value_fn``, built here with the reweighting weights frozen for the
step, and naming the ``residuals``/``indices`` arguments that optax's line search otherwise rejects.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from pinnkit import diagnostics
from pinnkit.history import History
from pinnkit.optimizers import is_line_search
from pinnkit.problems.base import Points, Problem
from pinnkit.reweight import RBAState, sample_weights, weighted_mse

__all__ = ["TrainResult", "fit", "fit_stacked", "log_steps", "Trainer"]


class TrainResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
        model: the trained model.
        opt_state: the final optimizer state (RBA weights inside).
        history: the recorded history.
        status: ``"completed"`` or a sentence saying why training stopped early.
        steps: the number of steps taken in total (including ``start_step``).
        wall_time_s: training time, compilation excluded.
        compile_time_s: time spent compiling the step functions.
    """

    model: Any
    opt_state: Any
    history: History
    status: str
    steps: int
    wall_time_s: float
    compile_time_s: float


def log_steps(steps: int, *, log_every: int, dense_until: int = 0, dense_every: int = 2, start: int = 0) -> list[int]:
    """The steps after which the history records a row: every ``dense_every`` until ``dense_until``, then every
    ``log_every``, and always the last step.

    Example:
        >>> log_steps(10, log_every=4, dense_until=4, dense_every=2)
        [2, 4, 8, 10]
    """
    if steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    if log_every <= 0 or dense_every <= 0:
        raise ValueError(f"log_every and dense_every must be positive, got {log_every} and {dense_every}")
    if dense_until < 0 or start < 0:
        raise ValueError(f"dense_until and start must be non-negative, got {dense_until} and {start}")
    marks = set(range(dense_every, min(dense_until, steps) + 1, dense_every))
    marks |= set(range(log_every, steps + 1, log_every))
    marks.add(steps)
    return sorted(mark for mark in marks if mark > start)


def _find(tree, kind):
    nodes = jax.tree_util.tree_leaves(tree, is_leaf=lambda node: isinstance(node, kind))
    return [node for node in nodes if isinstance(node, kind)]


class Trainer:
    """The compiled pieces of one training set-up (problem, model structure, optimizer, points).

    :func:`fit` is the usual entry point; a ``Trainer`` is useful to reuse compiled functions across runs (several
    seeds of one configuration) or to vmap them.

    Args:
        problem: the PDE problem.
        model: a model (only its structure and non-array parts are kept; arrays come in as parameters).
        optimizer: any optax transformation.
        points: the problem's points (``problem.sample(...)``).
        snr_batches: number of SNR batches B (0 disables the batch-gradient SNR).
        snr_key: key of the fixed random batch split.
        batch_constraints: include the full constraint terms in every batch loss (the paper's choice).
        mesh: a device mesh (``pinnkit.distributed.data_mesh(n)``) to split the collocation points over; the
            parameters and optimizer state are replicated on it. None: the default device.
    """

    def __init__(
        self,
        problem: Problem,
        model,
        optimizer: optax.GradientTransformation,
        points: Points,
        *,
        snr_batches: int = 100,
        snr_key: jax.Array | None = None,
        batch_constraints: bool = True,
        mesh=None,
    ):
        self.problem = problem
        self.optimizer = optax.with_extra_args_support(optimizer)
        self.points = points
        params, self.static = eqx.partition(model, eqx.is_inexact_array)
        self.collocation_terms = tuple(problem.collocation_terms)
        for term in self.collocation_terms:
            if term not in points:
                raise ValueError(f"points lack the term {term!r}; use problem.sample(key, n)")
            shape = getattr(points[term], "shape", ())
            if len(shape) != 2 or shape[1] != len(problem.input_names) or shape[0] == 0:
                raise ValueError(f"points[{term!r}] must have shape (n, {len(problem.input_names)}) with n > 0, "
                                 f"got {shape}")
        num_points = points[self.collocation_terms[0]].shape[0]
        self.num_points = num_points
        self.mesh = mesh
        if mesh is not None:
            from pinnkit.distributed import shard_points

            self.points = shard_points(points, mesh, self.collocation_terms)
        self.batch_constraints = batch_constraints
        self.batches = None
        if snr_batches:
            if snr_batches > num_points:
                raise ValueError(f"snr_batches={snr_batches} exceeds the {num_points} collocation points")
            key = snr_key if snr_key is not None else jax.random.key(0)
            self.batches = diagnostics.make_batches(key, num_points, snr_batches)
        # The mean of the batch gradients is the full gradient only when the batches cover every point once and
        # each carries the whole constraint term; otherwise a step that records the SNR pays for both.
        self.fused_snr = bool(snr_batches) and num_points % snr_batches == 0 and batch_constraints
        opt_state = self.optimizer.init(params)
        self.line_search = is_line_search(opt_state)
        self.has_adam = bool(_find(opt_state, optax.ScaleByAdamState))
        self.gradient_aware = _needs_gradient_norms(self.optimizer, params, opt_state)
        self.gradient_key = jax.random.key(1)
        self._compiled: dict[tuple, Callable] = {}
        self.compile_time_s = 0.0

    # ----- pure pieces -------------------------------------------------------------------------------------
    def model_of(self, params):
        return eqx.combine(params, self.static)

    def init(self, model):
        """Parameters and a fresh optimizer state for ``model``."""
        params = eqx.filter(model, eqx.is_inexact_array)
        return params, self.optimizer.init(params)

    def place(self, tree):
        """``tree`` replicated over the trainer's mesh (unchanged without one)."""
        if self.mesh is None:
            return tree
        from pinnkit.distributed import replicate

        return replicate(tree, self.mesh)

    def _term_weights(self, raw) -> dict[str, jax.Array]:
        if raw is None:
            return {}
        if isinstance(raw, dict):
            return raw
        return {term: raw for term in self.collocation_terms}

    def _weight_residuals(self, raw, residuals):
        """The residuals handed to the reweighting transform, in the structure of its weights."""
        if isinstance(raw, dict):
            return {term: residuals[term] for term in raw}
        if len(self.collocation_terms) == 1:
            return residuals[self.collocation_terms[0]]
        # Several equations at the same points share one weight (the paper's cavity: |f_x| + |f_y|).
        return sum(jnp.abs(residuals[term]) for term in self.collocation_terms)

    def loss(self, params, points, weights):
        residuals = self.problem.residuals(self.model_of(params), points)
        terms = {term: weighted_mse(value, weights.get(term)) for term, value in residuals.items()}
        return sum(terms.values()), (terms, residuals)

    def _reweight_extras(self, params, opt_state, residuals, raw, points, snr=None):
        if raw is None:
            return {}
        extras = {"residuals": jax.lax.stop_gradient(self._weight_residuals(raw, residuals))}
        if self.gradient_aware:
            extras["sample_gradient_norms"] = self._sample_gradient_norms(params, opt_state, raw, points)
            if snr is not None:
                extras["snr"] = snr
        return extras

    def _sample_gradient_norms(self, params, opt_state, raw, points):
        # Fresh random projections every step (keyed by the reweighting state's step count).
        count = _find(opt_state, RBAState)[0].count
        key = jax.random.fold_in(self.gradient_key, count)

        def weighted_residuals(p):
            return self._weight_residuals(raw, self.problem.residuals(self.model_of(p), points))

        if isinstance(raw, dict):
            return {
                term: diagnostics.sample_gradient_norms(
                    lambda p, term=term: weighted_residuals(p)[term], params, key,
                    num_projections=4,
                )
                for term in raw
            }
        return diagnostics.sample_gradient_norms(weighted_residuals, params, key, num_projections=4)

    def plain_step(self, params, opt_state, points):
        raw = sample_weights(opt_state)
        (loss, (terms, residuals)), grads = jax.value_and_grad(self.loss, has_aux=True)(
            params, points, self._term_weights(raw)
        )
        extras = self._reweight_extras(params, opt_state, residuals, raw, points)
        updates, opt_state = self.optimizer.update(grads, opt_state, params, **extras)
        return optax.apply_updates(params, updates), opt_state, loss, terms, residuals

    def batch_gradients(self, params, opt_state, points):
        """Loss, per-term losses, residuals at all points and the B batch gradients, in one vmapped pass."""
        raw = sample_weights(opt_state)
        weights = self._term_weights(raw)
        indices = self.batches

        def batch_loss(p, batch_indices):
            batch_points = dict(points)
            for term in self.collocation_terms:
                batch_points[term] = points[term][batch_indices]
            batch_weights = {
                term: (value[batch_indices] if term in self.collocation_terms else value)
                for term, value in weights.items()
            }
            total, (terms, residuals) = self.loss(p, batch_points, batch_weights)
            if not self.batch_constraints:
                total = sum(terms[term] for term in self.collocation_terms)
            return total, (terms, residuals)

        (losses, (terms, residuals)), grads = jax.vmap(
            jax.value_and_grad(batch_loss, has_aux=True), in_axes=(None, 0)
        )(params, indices)
        flat = indices.reshape(-1)
        full_residuals = {}
        for term, value in residuals.items():
            if term in self.collocation_terms:
                full_residuals[term] = jnp.zeros(self.num_points, value.dtype).at[flat].set(value.reshape(-1))
            else:
                full_residuals[term] = value[0]
        mean_terms = {
            term: (jnp.mean(value) if term in self.collocation_terms else value[0]) for term, value in terms.items()
        }
        return jnp.mean(losses), mean_terms, full_residuals, grads

    def snr_step(self, params, opt_state, points):
        """A step whose gradient is the mean of the B batch gradients, recording their SNR on the way."""
        loss, terms, residuals, batch_grads = self.batch_gradients(params, opt_state, points)
        stats = diagnostics.batch_gradient_snr(batch_grads)
        if self.fused_snr:
            grads = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), batch_grads)
            raw = sample_weights(opt_state)
        else:
            raw = sample_weights(opt_state)
            (loss, (terms, residuals)), grads = jax.value_and_grad(self.loss, has_aux=True)(
                params, points, self._term_weights(raw)
            )
        extras = self._reweight_extras(params, opt_state, residuals, raw, points, snr=stats.snr)
        updates, opt_state = self.optimizer.update(grads, opt_state, params, **extras)
        return optax.apply_updates(params, updates), opt_state, loss, terms, residuals, stats

    def line_search_step(self, params, opt_state, points):
        raw = sample_weights(opt_state)
        weights = self._term_weights(raw)

        # The weights are frozen for the whole step; the names below must match the extra arguments passed to
        # ``update`` because optax's line searches reject any they cannot hand to ``value_fn``.
        def value_fn(p, residuals=None, indices=None, sample_gradient_norms=None, snr=None):
            return self.loss(p, points, weights)[0]

        if raw is None:
            # Fixed loss: reuse the value and gradient the line search computed at the accepted point.
            value, grads = optax.value_and_grad_from_state(value_fn)(params, state=opt_state)
        else:
            # The weights moved since the last line search, so its cached value belongs to another loss; reusing
            # it stalls the search. Pay for a fresh evaluation instead.
            value, grads = jax.value_and_grad(value_fn)(params)
        _, (terms, residuals) = self.loss(params, points, weights)
        extras = self._reweight_extras(params, opt_state, residuals, raw, points)
        updates, opt_state = self.optimizer.update(
            grads, opt_state, params, value=value, grad=grads, value_fn=value_fn, **extras
        )
        return optax.apply_updates(params, updates), opt_state, value, terms, residuals

    def chunk(self, params, opt_state, points, length: int, record_snr: bool):
        """``length`` steps; the last one records the batch-gradient SNR when ``record_snr``."""
        step = self.line_search_step if self.line_search else self.plain_step
        fused = record_snr and not self.line_search
        scan_length = length - 1 if fused else length

        def body(carry, _):
            params, opt_state = carry
            params, opt_state, loss, terms, _ = step(params, opt_state, points)
            failed = jnp.zeros((), jnp.int32)
            if self.line_search:
                failed = _line_search_failed(opt_state)
            return (params, opt_state), (loss, terms, failed)

        zero_terms = jax.eval_shape(lambda: self.loss(params, points, self._term_weights(
            sample_weights(opt_state)))[1][0])
        if scan_length > 0:
            (params, opt_state), (losses, terms, failures) = jax.lax.scan(
                body, (params, opt_state), None, length=scan_length
            )
            loss = losses[-1]
            terms = {term: value[-1] for term, value in terms.items()}
            failures = jnp.sum(failures)
        else:
            loss = jnp.zeros(())
            terms = {term: jnp.zeros(shape.shape, shape.dtype) for term, shape in zero_terms.items()}
            failures = jnp.zeros((), jnp.int32)
        stats = None
        if fused:
            params, opt_state, loss, terms, residuals, stats = self.snr_step(params, opt_state, points)
        elif record_snr:
            _, _, residuals, batch_grads = self.batch_gradients(params, opt_state, points)
            stats = diagnostics.batch_gradient_snr(batch_grads)
        return params, opt_state, {"loss": loss, "terms": terms, "snr": stats, "line_search_failures": failures}

    def evaluate(self, params, opt_state, points):
        """Quantities recorded at a log step that come from the state alone: Adam SNR and homogeneity."""
        out = {}
        if self.has_adam:
            adam = diagnostics.adam_snr(opt_state)
            out["adam_snr"] = adam.snr
            out["adam_mean_step"] = adam.mean_step
        raw = sample_weights(opt_state)
        term = self.collocation_terms[0]
        if raw is None:
            residuals = self.problem.residuals(self.model_of(params), points)
            values = self._weight_residuals(None, residuals) if len(self.collocation_terms) > 1 else residuals[term]
            values = jnp.abs(values)
        else:
            values = raw[term] if isinstance(raw, dict) else raw
        lower, upper = self.problem.domain
        out["homogeneity"] = diagnostics.residual_homogeneity(points[term], values, lower, upper)
        return out

    def compiled(self, name: str, *static_args, example=()):
        """``chunk`` or ``evaluate`` vmapped over a leading model axis, compiled once per static arguments."""
        key = (name, *static_args)
        if key not in self._compiled:
            function = {"chunk": self.chunk, "evaluate": self.evaluate}[name]
            batched = jax.vmap(lambda params, opt_state, points: function(params, opt_state, points, *static_args),
                               in_axes=(0, 0, None))
            start = time.perf_counter()
            self._compiled[key] = self._jit(batched).lower(*example).compile()
            self.compile_time_s += time.perf_counter() - start
        return self._compiled[key]


    def _jit(self, function):
        if self.mesh is None:
            return jax.jit(function)
        # Pin the shardings: a compiled program accepts only the layouts it was built for, and the state it
        # returns must go straight back in. Points stay split; everything else is replicated.
        from pinnkit.distributed import replicated

        everywhere = replicated(self.mesh)
        points = jax.tree_util.tree_map(lambda leaf: leaf.sharding, self.points)
        return jax.jit(function, in_shardings=(everywhere, everywhere, points), out_shardings=everywhere)


def _needs_gradient_norms(optimizer, params, opt_state) -> bool:
    """Whether the optimizer's reweighting asks for per-sample gradient norms (found by a trial trace)."""
    raw = sample_weights(opt_state)
    if raw is None:
        return False
    residuals = jax.tree_util.tree_map(jnp.zeros_like, raw)
    try:
        jax.eval_shape(lambda: optimizer.update(params, opt_state, params, residuals=residuals))
    except TypeError as error:
        # Other missing arguments (a line search's value_fn, ...) say nothing about the reweighting.
        return "sample_gradient_norms" in str(error)
    return False


def _line_search_failed(opt_state) -> jax.Array:
    kinds = (optax.ScaleByZoomLinesearchState, optax.ScaleByBacktrackingLinesearchState)
    failed = jnp.zeros((), jnp.int32)
    for state in _find(opt_state, kinds):
        failed = failed + (state.info.decrease_error > 0).astype(jnp.int32)
    return failed


def _layer_names(params) -> list[str]:
    return diagnostics.gradient_leaf_names(params)


def fit(
    problem: Problem,
    model,
    optimizer: optax.GradientTransformation,
    points: Points,
    *,
    steps: int,
    log_every: int = 100,
    dense_until: int = 0,
    dense_every: int = 2,
    snr_batches: int = 100,
    snr_key: jax.Array | None = None,
    batch_constraints: bool = True,
    information_every: int = 0,
    information_points: int = 2048,
    opt_state=None,
    start_step: int = 0,
    history: History | None = None,
    reference=None,
    callback: Callable[[int, dict], Any] | None = None,
    trainer: Trainer | None = None,
    checkpoint: Callable[[int, Any, Any, History], Any] | None = None,
    devices: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``problem`` with ``optimizer`` and record a history.

    Args:
        problem: the PDE problem (``pinnkit.problems.get(...)``).
        model: an Equinox model mapping one point to the problem's outputs.
        optimizer: any optax transformation; chain ``pinnkit.rba(...)`` in front to reweight samples.
        points: ``problem.sample(key, n)``.
        steps: number of steps to take (from ``start_step``).
        log_every: record a history row every this many steps.
        dense_until, dense_every: also record every ``dense_every`` steps until step ``dense_until`` (the paper
            logs every 2 steps below 300).
        snr_batches: B, the number of fixed batches for the batch-gradient SNR (0: do not record it). When B
            divides the number of collocation points, the step that records the SNR takes the mean of the batch
            gradients as its gradient, so recording costs little more than a plain step.
        snr_key: key of the random batch split.
        batch_constraints: include the full constraint terms in each batch loss (the paper's choice).
        information_every: record the entropy and saturation of each hidden layer every this many history rows
            (0: never).
        information_points: collocation points used for the information measures.
        opt_state: resume from this optimizer state (with ``start_step`` and ``history``).
        start_step: the step count already done.
        history: a history to append to.
        reference: the reference solution (default: ``problem.reference()``).
        callback: called as ``callback(step, row)`` after each history row (progress bars).
        trainer: reuse the compiled functions of an earlier :class:`Trainer` with the same set-up.
        checkpoint: called as ``checkpoint(step, model, opt_state, history)`` after each history row, with the
            state after ``step`` steps (``pinnkit.checkpoint.save_checkpoint`` fits here). Resuming from that
            state with ``start_step=step`` takes the same chunks as one uninterrupted run.
        devices: split the collocation points over this many devices (``pinnkit.distributed``); None: one
            device. Ignored when ``trainer`` is given (its own mesh counts).

    Returns:
        A :class:`TrainResult`. Training stops early, with a status saying where, when the loss or the
        parameters become non-finite; the history and state are those of the last finite row.

    Example:
        >>> import jax, optax, pinnkit
        >>> problem = pinnkit.problems.get("helmholtz")
        >>> points = problem.sample(jax.random.key(0), 200)
        >>> model = pinnkit.nn.MLP(2, 1, width=16, depth=2, domain=problem.domain, key=jax.random.key(1))
        >>> result = fit(problem, model, optax.adam(1e-3), points, steps=20, log_every=10, snr_batches=10)
        >>> result.history["step"].tolist()
        [10.0, 20.0]
    """
    if trainer is None:
        mesh = None
        if devices is not None:
            from pinnkit.distributed import data_mesh

            mesh = data_mesh(devices)
        trainer = Trainer(problem, model, optimizer, points, snr_batches=snr_batches, snr_key=snr_key,
                          batch_constraints=batch_constraints, mesh=mesh)
    unstack = lambda tree: jax.tree_util.tree_map(lambda leaf: leaf[0], tree)
    stacked_checkpoint = None
    if checkpoint is not None:
        def stacked_checkpoint(step, params, opt_state, histories):
            return checkpoint(step, trainer.model_of(unstack(params)), unstack(opt_state), histories[0])

    stack = lambda tree: jax.tree_util.tree_map(lambda leaf: leaf[None], tree)
    params = eqx.filter(model, eqx.is_inexact_array)
    opt_state = trainer.optimizer.init(params) if opt_state is None else opt_state
    (result,) = fit_stacked(
        trainer, stack(params), stack(opt_state), steps=steps, log_every=log_every, dense_until=dense_until,
        dense_every=dense_every, information_every=information_every, information_points=information_points,
        start_step=start_step, histories=[history] if history is not None else None, reference=reference,
        callback=callback, checkpoint=stacked_checkpoint,
    )
    return result


def fit_stacked(
    trainer: Trainer,
    params,
    opt_state,
    *,
    steps: int,
    log_every: int = 100,
    dense_until: int = 0,
    dense_every: int = 2,
    information_every: int = 0,
    information_points: int = 2048,
    start_step: int = 0,
    histories: list[History] | None = None,
    reference=None,
    callback: Callable[[int, dict], Any] | None = None,
    checkpoint: Callable[[int, Any, Any, list[History]], Any] | None = None,
) -> list[TrainResult]:
    """Train several models of one set-up together, vmapped in one program (several seeds at once).

    ``params`` and ``opt_state`` carry a leading axis of size K (e.g. from ``eqx.filter_vmap`` over K keys and
    ``jax.vmap(optimizer.init)``); all K share the trainer's points and SNR batches. Returns one
    :class:`TrainResult` per model; a model whose loss becomes non-finite stops recording while the others go on.
    ``checkpoint`` is called as ``checkpoint(step, params, opt_state, histories)`` after each history row, with
    the stacked state. See :func:`fit` for the other arguments.

    Example:
        >>> import equinox as eqx, jax, optax, pinnkit
        >>> problem = pinnkit.problems.get("helmholtz")
        >>> points = problem.sample(jax.random.key(0), 200)
        >>> make = lambda key: pinnkit.nn.MLP(2, 1, width=8, depth=1, key=key)
        >>> models = eqx.filter_vmap(make)(jax.random.split(jax.random.key(1), 3))
        >>> trainer = Trainer(problem, make(jax.random.key(0)), optax.adam(1e-3), points, snr_batches=10)
        >>> params = eqx.filter(models, eqx.is_inexact_array)
        >>> results = fit_stacked(trainer, params, jax.vmap(trainer.optimizer.init)(params), steps=10, log_every=5)
        >>> len(results), results[0].history["step"].tolist()
        (3, [5.0, 10.0])
    """
    problem = trainer.problem
    _check_count("steps", steps, minimum=1)
    _check_count("start_step", start_step, minimum=0)
    _check_count("information_every", information_every, minimum=0)
    _check_count("information_points", information_points, minimum=1)
    num_models = jax.tree_util.tree_leaves(params)[0].shape[0]
    params, opt_state = trainer.place(params), trainer.place(opt_state)
    histories = histories if histories is not None else [History() for _ in range(num_models)]
    reference = reference if reference is not None else problem.reference()
    error_of = problem.relative_l2_fn(reference)
    compile_before = trainer.compile_time_s
    tick = time.perf_counter()
    error_fn = jax.jit(jax.vmap(lambda p: error_of(trainer.model_of(p)))).lower(params).compile()
    compile_error = time.perf_counter() - tick
    layer_names = [name for name in _layer_names(jax.tree_util.tree_map(lambda leaf: leaf[0], params))
                   if name.endswith("weight")]
    record_snr = trainer.batches is not None
    statuses = ["completed"] * num_models
    alive = np.ones(num_models, bool)
    good_params, good_state = params, opt_state
    # A continued run (resume, or the L-BFGS stage after Adam) continues the wall clock of its history.
    previous_wall = histories[0].last("wall_time_s") if len(histories[0]) else math.nan
    step, wall = start_step, (previous_wall if math.isfinite(previous_wall) else 0.0)
    last_good = [(start_step, wall)] * num_models
    marks = log_steps(start_step + steps, log_every=log_every, dense_until=dense_until, dense_every=dense_every,
                      start=start_step)
    # Rows recorded before ``start_step`` keep a resumed run's information schedule on the uninterrupted one's.
    rows_before = len(log_steps(start_step, log_every=log_every, dense_until=dense_until,
                                dense_every=dense_every)) if start_step > 0 else 0
    for row_index, mark in enumerate(marks):
        length = mark - step
        chunk = trainer.compiled("chunk", length, record_snr, example=(params, opt_state, trainer.points))
        evaluate = trainer.compiled("evaluate", example=(params, opt_state, trainer.points))
        tick = time.perf_counter()
        params, opt_state, out = chunk(params, opt_state, trainer.points)
        jax.block_until_ready(params)
        wall += time.perf_counter() - tick
        losses = np.asarray(out["loss"])
        finite_params = np.asarray(_finite_per_model(params))
        newly_dead = alive & ~(np.isfinite(losses) & finite_params)
        for index in np.flatnonzero(newly_dead):
            quantity = "loss" if not np.isfinite(losses[index]) else "parameters"
            statuses[index] = f"diverged: {quantity} became non-finite within steps {step + 1}-{mark}"
        alive &= ~newly_dead
        if newly_dead.any():
            keep = jnp.asarray(newly_dead)
            select = lambda good, new, keep=keep: jnp.where(keep.reshape((-1,) + (1,) * (new.ndim - 1)), good, new)
            # Models that just diverged keep their last finite state; the others go on.
            params = trainer.place(jax.tree_util.tree_map(select, good_params, params))
            opt_state = trainer.place(jax.tree_util.tree_map(select, good_state, opt_state))
        step = mark
        if not alive.any():
            break
        good_params, good_state = params, opt_state
        errors = np.asarray(error_fn(params))
        extra = jax.tree_util.tree_map(np.asarray, evaluate(params, opt_state, trainer.points))
        terms = {term: np.asarray(value) for term, value in out["terms"].items()}
        stats = out["snr"]
        for index in np.flatnonzero(alive):
            row: dict[str, float] = {"step": step, "wall_time_s": wall, "loss": float(losses[index])}
            row.update({f"loss_{term}": float(value[index]) for term, value in terms.items()})
            row["rel_l2"] = float(errors[index])
            if stats is not None:
                row.update(
                    snr=float(stats.snr[index]), order=float(stats.order[index]),
                    grad_mean_norm=float(stats.mean_norm[index]), grad_std_norm=float(stats.std_norm[index]),
                    grad_rms_norm=float(stats.rms_norm[index]),
                )
                for name, value in zip(layer_names, np.asarray(stats.layer_snr[index]), strict=False):
                    row[f"snr[{name}]"] = float(value)
            row.update({name: float(value[index]) for name, value in extra.items()})
            if trainer.line_search:
                row["line_search_failures"] = int(np.asarray(out["line_search_failures"])[index])
            if information_every and (rows_before + row_index) % information_every == 0:
                single = jax.tree_util.tree_map(lambda leaf, i=index: leaf[i], params)
                row.update(_information(trainer.model_of(single), trainer.points, trainer.collocation_terms[0],
                                        information_points))
            histories[index].append(row)
            last_good[index] = (step, wall)
        if callback is not None:
            callback(step, histories[int(np.flatnonzero(alive)[0])]._last_row())
        if checkpoint is not None:
            checkpoint(step, params, opt_state, histories)
    compile_time = trainer.compile_time_s - compile_before + compile_error
    results = []
    for index in range(num_models):
        single_params = jax.tree_util.tree_map(lambda leaf, i=index: leaf[i], params)
        single_state = jax.tree_util.tree_map(lambda leaf, i=index: leaf[i], opt_state)
        done_step, done_wall = last_good[index]
        results.append(TrainResult(trainer.model_of(single_params), single_state, histories[index],
                                   statuses[index], done_step, done_wall, compile_time))
    return results


def _check_count(name: str, value, *, minimum: int) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _finite_per_model(params) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(leaf.reshape(leaf.shape[0], -1)), axis=1)
              for leaf in jax.tree_util.tree_leaves(params)]
    return jnp.all(jnp.stack(leaves), axis=0)


def _information(model, points, term, count) -> dict[str, float]:
    x = points[term][:count]
    layers = jax.vmap(model.activations)(x)
    out = {}
    for index, activations in enumerate(layers):
        activations = np.asarray(activations)
        out[f"entropy[{index}]"] = float(diagnostics.binned_entropy(activations))
        out[f"saturation[{index}]"] = float(diagnostics.saturation(activations))
    return out
