"""Training steps: the loss, one optimizer step, and a chunk of steps as one compiled loop.

A step evaluates the residuals once, with ``value_and_grad(..., has_aux=True)``: the loss, its gradient, the
per-term losses and the residuals that the reweighting transform advances its weights from all come from one
forward and one backward pass. Two kinds of step:

- **first order** (Adam, SGD, ...): ``grads -> optimizer.update(grads, state, params, residuals=...)``;
- **line search** (optax's L-BFGS, pinnkit's BFGS family: any optimizer whose state holds an optax line search):
  ``value_fn`` is the loss with the reweighting weights of the state frozen for the step. When the weights are
  held for the whole stage (``pinnkit.reweight.hold_weights``), or there are none, the value and gradient at the
  iterate come from the line search's cache (``optax.value_and_grad_from_state``): one evaluation saved per
  iteration. When they move, the cached value belongs to another loss and is recomputed.

A chunk runs ``length`` steps in one ``lax.fori_loop`` whose trip count is an argument, so one compiled program
serves every chunk length. The first step of a first-order chunk takes its gradient from ``pending``, the
evaluation that the previous history row already made at the same parameters (see
:mod:`pinnkit.engine.probes`): recording a row costs no extra gradient.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from pinnkit import diagnostics
from pinnkit.curvature import forget_loss, has_adam, is_line_search, line_search_failures, restart_curvature
from pinnkit.problems.base import Points, Problem
from pinnkit.reweight import EXTRA_ARG_NAMES, required_extra_args, sample_weights, weighted_mse

# The optimizer-state questions live beside the optimizers (pinnkit.curvature); re-exported here for the engine.
__all__ = ["Evaluation", "Steps", "forget_loss", "has_adam", "is_line_search", "line_search_failures",
           "restart_curvature"]


class Evaluation(NamedTuple):
    """The loss and what it was made of at one point of parameter space.

    Attributes:
        loss: the objective (weighted when reweighting).
        terms: the objective's terms, by name.
        residuals: the residual vectors, by term (at all points).
        grads: the gradient of ``loss`` (None where not computed).
        snr: the batch-gradient statistics (None where not recorded).
    """

    loss: jax.Array
    terms: dict[str, jax.Array]
    residuals: dict[str, jax.Array]
    grads: Any = None
    snr: diagnostics.GradientSNR | None = None


class Steps:
    """The step functions of one set-up: a problem, a model structure, an optimizer and the points.

    Args:
        problem: the PDE problem.
        static: the non-parameter part of the model (``eqx.partition(model, eqx.is_inexact_array)[1]``).
        optimizer: any optax transformation (wrapped with ``optax.with_extra_args_support``).
        opt_state: an example optimizer state (its structure decides the kind of step).
        num_points: the number of collocation points.
        batches: ``(B, N // B)`` indices of the SNR batches, or None.
        batch_constraints: every batch loss carries the whole constraint terms (the paper's choice).
        weights_first: first-order steps advance the reweighting weights from the residuals at the current
            parameters *before* the gradient, which then uses the advanced weights (the paper code's order: step
            k descends with lambda^(k+1)). Default: the gradient uses the state's weights (lambda^k) and the
            transform advances them after it, the order of an optax chain. Same cost: one forward, one backward.
    """

    def __init__(self, problem: Problem, static, optimizer, opt_state, *, num_points: int,
                 batches: jax.Array | None, batch_constraints: bool = True, weights_first: bool = False):
        self.problem = problem
        self.static = static
        self.optimizer = optax.with_extra_args_support(optimizer)
        self.collocation_terms = tuple(problem.collocation_terms)
        self.num_points = num_points
        self.batches = batches
        self.batch_constraints = batch_constraints
        self.line_search = is_line_search(opt_state)
        self.has_adam = has_adam(opt_state)
        self.needs = required_extra_args(opt_state)
        # Without weights there is nothing to advance first: the two orders are the same step.
        self.weights_first = bool(weights_first) and not self.line_search and "residuals" in self.needs
        # The mean of the batch gradients is the full gradient only when the batches cover every point once and
        # each carries the whole constraint term.
        self.fused_snr = (batches is not None and num_points % batches.shape[0] == 0 and batch_constraints)
        self.gradient_key = jax.random.key(1)

    # ----- the loss ---------------------------------------------------------------------------------------------
    def model_of(self, params):
        return eqx.combine(params, self.static)

    def weights(self, opt_state) -> dict[str, jax.Array]:
        """The reweighting weights by term (empty without reweighting)."""
        raw = sample_weights(opt_state)
        if raw is None:
            return {}
        if isinstance(raw, dict):
            return raw
        return {term: raw for term in self.collocation_terms}

    def objective(self, params, points: Points, weights: dict[str, jax.Array]):
        """``(loss, (terms, residuals))``: the sum over terms of mean((w r)^2)."""
        residuals = self.problem.residuals(self.model_of(params), points)
        terms = {term: weighted_mse(value, weights.get(term)) for term, value in residuals.items()}
        return sum(terms.values()), (terms, residuals)

    def evaluate(self, params, opt_state, points: Points, *, gradient: bool = True) -> Evaluation:
        """Loss, terms, residuals (and gradient) at ``params`` with the weights of ``opt_state``."""
        weights = self.weights(opt_state)
        if not gradient:
            loss, (terms, residuals) = self.objective(params, points, weights)
            return Evaluation(loss, terms, residuals)
        (loss, (terms, residuals)), grads = jax.value_and_grad(self.objective, has_aux=True)(
            params, points, weights)
        return Evaluation(loss, terms, residuals, grads)

    def evaluate_batches(self, params, opt_state, points: Points, *, gradient: bool = True) -> Evaluation:
        """As :meth:`evaluate`, plus the batch-gradient SNR from the B batch gradients in one vmapped pass.

        When the batches partition the points (and each carries the constraint terms) the full gradient is the mean
        of the batch gradients and the loss the mean of the batch losses: nothing is computed twice.
        """
        weights = self.weights(opt_state)

        def batch_objective(p, indices):
            batch_points = dict(points)
            batch_weights = dict(weights)
            for term in self.collocation_terms:
                batch_points[term] = points[term][indices]
                if term in batch_weights:
                    batch_weights[term] = batch_weights[term][indices]
            total, (terms, residuals) = self.objective(p, batch_points, batch_weights)
            if not self.batch_constraints:
                total = sum(terms[term] for term in self.collocation_terms)
            return total, (terms, residuals)

        (_, (batch_terms, batch_residuals)), batch_grads = jax.vmap(
            jax.value_and_grad(batch_objective, has_aux=True), in_axes=(None, 0))(params, self.batches)
        snr = diagnostics.batch_gradient_snr(batch_grads)
        if not self.fused_snr:
            evaluation = self.evaluate(params, opt_state, points, gradient=gradient)
            return evaluation._replace(snr=snr)
        flat = self.batches.reshape(-1)
        residuals = {}
        for term, value in batch_residuals.items():
            if term in self.collocation_terms:
                residuals[term] = jnp.zeros(self.num_points, value.dtype).at[flat].set(value.reshape(-1))
            else:
                residuals[term] = value[0]
        terms = {term: (jnp.mean(value) if term in self.collocation_terms else value[0])
                 for term, value in batch_terms.items()}
        grads = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), batch_grads) if gradient else None
        return Evaluation(sum(terms.values()), terms, residuals, grads, snr)

    # ----- what the reweighting transform is handed -------------------------------------------------------------
    def _weighted_residuals(self, opt_state, residuals):
        """The residuals in the structure of the weights."""
        raw = sample_weights(opt_state)
        if isinstance(raw, dict):
            return {term: residuals[term] for term in raw}
        if len(self.collocation_terms) == 1:
            return residuals[self.collocation_terms[0]]
        # Several equations at the same points share one weight (the paper's cavity: |f_x| + |f_y|).
        return sum(jnp.abs(residuals[term]) for term in self.collocation_terms)

    def extras(self, params, opt_state, points: Points, evaluation: Evaluation, step) -> dict[str, Any]:
        """The keyword arguments of ``optimizer.update`` besides the gradient."""
        extras: dict[str, Any] = {}
        if "residuals" in self.needs:
            extras["residuals"] = jax.lax.stop_gradient(self._weighted_residuals(opt_state, evaluation.residuals))
        if "sample_gradient_norms" in self.needs:
            extras["sample_gradient_norms"] = self._sample_gradient_norms(params, opt_state, points, step)
        if evaluation.snr is not None and self.needs:
            extras["snr"] = jax.lax.stop_gradient(evaluation.snr.snr)
        return extras

    def _sample_gradient_norms(self, params, opt_state, points, step):
        # Fresh random projections every step; all terms in one set of JVPs.
        key = jax.random.fold_in(self.gradient_key, step)
        raw = sample_weights(opt_state)
        if isinstance(raw, dict):
            names = list(raw)
            sizes = [raw[name].shape[0] for name in names]

            def stacked(p):
                residuals = self.problem.residuals(self.model_of(p), points)
                return jnp.concatenate([residuals[name] for name in names])

            norms = diagnostics.sample_gradient_norms(stacked, params, key, num_projections=4)
            parts = jnp.split(norms, np.cumsum(sizes)[:-1])
            return dict(zip(names, parts, strict=True))

        def weighted(p):
            return self._weighted_residuals(opt_state, self.problem.residuals(self.model_of(p), points))

        return diagnostics.sample_gradient_norms(weighted, params, key, num_projections=4)

    # ----- steps -------------------------------------------------------------------------------------------------
    def apply(self, params, opt_state, points: Points, evaluation: Evaluation, step):
        """A first-order step from an evaluation made at ``params``."""
        extras = self.extras(params, opt_state, points, evaluation, step)
        updates, opt_state = self.optimizer.update(evaluation.grads, opt_state, params, **extras)
        return optax.apply_updates(params, updates), opt_state

    def first_order_step(self, params, opt_state, points: Points, step):
        if self.weights_first:
            return self.apply(params, opt_state, points, self.evaluate_weights_first(params, opt_state, points, step),
                              step)
        return self.apply(params, opt_state, points, self.evaluate(params, opt_state, points), step)

    def evaluate_weights_first(self, params, opt_state, points: Points, step, snr=None) -> Evaluation:
        """Loss, terms, residuals and gradient at ``params`` with the weights advanced from these residuals.

        One forward pass gives the residuals and their VJP; the advanced weights come from running the
        optimizer's update on a zero gradient and reading them out of the state it returns (that state is then
        dropped: :meth:`apply` advances the real one from the same residuals, to the same weights); the gradient of
        ``sum_t mean((w_t r_t)^2)`` is the VJP of ``2 w_t^2 r_t / n_t``.
        """
        residuals, pullback = jax.vjp(lambda p: self.problem.residuals(self.model_of(p), points), params)
        partial = Evaluation(jnp.zeros(()), {}, residuals, snr=snr)
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        _, advanced_state = self.optimizer.update(zeros, opt_state, params,
                                                  **self.extras(params, opt_state, points, partial, step))
        weights = jax.lax.stop_gradient(self.weights(advanced_state))
        terms = {term: weighted_mse(value, weights.get(term)) for term, value in residuals.items()}
        # d mean((w r)^2) / dr = 2 w^2 r / n, pulled back through the residuals' VJP.
        cotangents = {term: (2.0 / value.shape[0]) * (weights[term] ** 2 * value if term in weights else value)
                      for term, value in residuals.items()}
        (grads,) = pullback(cotangents)
        return Evaluation(sum(terms.values()), terms, residuals, grads, snr)

    def line_search_step(self, params, opt_state, points: Points, step):
        """One iteration of a line-search optimizer with the weights frozen for the iteration."""
        weights = self.weights(opt_state)

        # optax's line searches forward every extra argument of ``update`` to ``value_fn`` and reject the ones
        # it does not name, so it names all of them.
        def value_fn(p, **unused):
            return self.objective(p, points, weights)[0]

        value_fn.__signature__ = _value_fn_signature()
        if not self.needs:
            # The loss is the same in every iteration: reuse the line search's value and gradient at the iterate.
            value, grads = optax.value_and_grad_from_state(value_fn)(params, state=opt_state)
            extras = {}
        else:
            evaluation = self.evaluate(params, opt_state, points)
            value, grads = evaluation.loss, evaluation.grads
            extras = self.extras(params, opt_state, points, evaluation, step)
        updates, new_state = self.optimizer.update(grads, opt_state, params, value=value, grad=grads,
                                                   value_fn=value_fn, **extras)
        # A line search that found no step with sufficient decrease hands back its last trial step, which may
        # raise the loss by orders of magnitude: reject it and start the curvature model afresh.
        rejected = line_search_failures(new_state) > 0
        new_params = optax.apply_updates(params, updates)
        keep = lambda old, new: jnp.where(rejected, old, new)  # noqa: E731
        params = jax.tree_util.tree_map(keep, params, new_params)
        new_state = jax.tree_util.tree_map(keep, restart_curvature(new_state), new_state)
        return params, new_state

    def chunk(self, params, opt_state, points: Points, pending: Evaluation | None, start, length):
        """``length`` steps from step ``start`` (both int32 scalars; ``length >= 1``).

        Returns ``(params, opt_state, line_search_failures)``.
        """
        failures = jnp.zeros((), jnp.int32)
        if self.line_search:
            def body(index, carry):
                params, opt_state, failures = carry
                params, opt_state = self.line_search_step(params, opt_state, points, start + index)
                return params, opt_state, failures + line_search_failures(opt_state)

            return jax.lax.fori_loop(0, length, body, (params, opt_state, failures))
        if self.weights_first:
            # The row's gradient is not this step's (the weights move before it); its SNR still reaches the
            # reweighting, as in the other order.
            evaluation = self.evaluate_weights_first(params, opt_state, points, start,
                                                     snr=pending.snr if pending is not None else None)
        else:
            evaluation = pending  # the row's evaluation is this step's gradient
        params, opt_state = self.apply(params, opt_state, points, evaluation, start)

        def body(index, carry):
            params, opt_state = carry
            return self.first_order_step(params, opt_state, points, start + index)

        params, opt_state = jax.lax.fori_loop(1, length, body, (params, opt_state))
        return params, opt_state, failures


def _value_fn_signature():
    import inspect

    parameters = [inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in EXTRA_ARG_NAMES]
    return inspect.Signature(parameters)


class CompiledFunctions:
    """Functions compiled ahead of time, once each, with the time it took.

    Args:
        mesh: a device mesh to split the collocation points over (None: the default device).
    """

    def __init__(self, mesh=None):
        self.mesh = mesh
        self.compile_time_s = 0.0
        self._compiled: dict[str, Callable] = {}

    def get(self, name: str, function: Callable, example: tuple, *, point_argument: int | None = None):
        if name not in self._compiled:
            start = time.perf_counter()
            self._compiled[name] = self._jit(function, example, point_argument).lower(*example).compile()
            self.compile_time_s += time.perf_counter() - start
        return self._compiled[name]

    def _jit(self, function, example, point_argument):
        if self.mesh is None:
            return jax.jit(function)
        # Pin the shardings: a compiled program accepts only the layouts it was built for, and what it returns
        # must go straight back in. Points stay split; everything else is replicated.
        from pinnkit.distributed import replicated

        everywhere = replicated(self.mesh)
        shardings = []
        for index, argument in enumerate(example):
            if index == point_argument:
                shardings.append(jax.tree_util.tree_map(lambda leaf: leaf.sharding, argument))
            else:
                shardings.append(jax.tree_util.tree_map(lambda _: everywhere, argument))
        return jax.jit(function, in_shardings=tuple(shardings), out_shardings=everywhere)
