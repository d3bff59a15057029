"""What an optimizer state remembers of the loss and of its curvature, and how the engine makes it forget.

The engine never reads an optimizer state's fields itself: it asks this module whether a state holds a line search
(its steps need ``value_fn``), or Adam's moments (then the Adam SNR is recorded), how often its line search failed,
and for the state with the previous loss dropped (:func:`forget_loss`, after the collocation points change) or with
the curvature memory cleared (:func:`restart_curvature`, after a rejected step).

Forgetting and restarting are :class:`CurvatureRule` s, one per kind of state node: the line searches' rule lives
here, every other one beside its optimizer in the optimizer registry (:class:`pinnkit.optimizer_registry.
OptimizerSpec`'s ``curvature``): L-BFGS's and the quasi-Newton methods' (``pinnkit.quasi_newton.CURVATURE``).

Example:
    >>> import jax.numpy as jnp, optax
    >>> state = restart_curvature(optax.lbfgs().init(jnp.zeros(2)))
    >>> int(optax.tree.get(state, "count")), float(optax.tree.get(state, "value"))
    (0, inf)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import optax

__all__ = ["LBFGS_MEMORY", "LINE_SEARCH", "LINE_SEARCH_STATES", "CurvatureRule", "curvature_rules", "forget_loss",
           "has_adam", "is_line_search", "line_search_failures", "restart_curvature"]

LINE_SEARCH_STATES = (optax.ScaleByZoomLinesearchState, optax.ScaleByBacktrackingLinesearchState)


@dataclasses.dataclass(frozen=True)
class CurvatureRule:
    """How to make one kind of optimizer-state node forget the loss, and restart its curvature model.

    Attributes:
        kinds: the node types the rule applies to (NamedTuple states).
        forget: ``node -> node`` with what the node remembers of the previous loss dropped (None: nothing).
        restart: ``node -> node`` with the curvature memory cleared (None: nothing); :func:`restart_curvature`
            forgets the loss afterwards, so ``restart`` need not.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> rule = CurvatureRule((optax.ScaleByAdamState,), restart=lambda node: node._replace(count=node.count * 0))
        >>> rule.applies(optax.adam(1e-3).init(jnp.zeros(2))[0])
        True
    """

    kinds: tuple[type, ...]
    forget: Callable[[Any], Any] | None = None
    restart: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if not self.kinds or not all(isinstance(kind, type) for kind in self.kinds):
            raise TypeError(f"a curvature rule needs a tuple of state types, got {self.kinds!r}")

    def applies(self, node: Any) -> bool:
        return isinstance(node, self.kinds)


def _drop_cached_value(node: Any) -> Any:
    # The line search's value at the iterate belongs to the old loss: inf makes it recompute at the next step.
    if not hasattr(node, "value"):
        return node
    return node._replace(value=jnp.full_like(node.value, jnp.inf))


def _empty_lbfgs_memory(node: optax.ScaleByLBFGSState) -> optax.ScaleByLBFGSState:
    zeros = lambda tree: jax.tree_util.tree_map(jnp.zeros_like, tree)  # noqa: E731
    return node._replace(count=jnp.zeros_like(node.count), diff_params_memory=zeros(node.diff_params_memory),
                         diff_updates_memory=zeros(node.diff_updates_memory), weights_memory=zeros(node.weights_memory))


# Every optimizer may chain an optax line search: its rule always applies, whichever optimizers are registered.
LINE_SEARCH = CurvatureRule(LINE_SEARCH_STATES, forget=_drop_cached_value)
LBFGS_MEMORY = CurvatureRule((optax.ScaleByLBFGSState,), restart=_empty_lbfgs_memory)


def curvature_rules() -> tuple[CurvatureRule, ...]:
    """The line search's rule and those of every registered optimizer (each once).

    Example:
        >>> LINE_SEARCH in curvature_rules() and LBFGS_MEMORY in curvature_rules()
        True
    """
    from pinnkit.optimizer_registry import optimizer_specs

    rules = [LINE_SEARCH]
    for spec in optimizer_specs():
        rules += [rule for rule in spec.curvature if rule not in rules]
    return tuple(rules)


def _find(tree: Any, kinds: tuple[type, ...]) -> list:
    nodes = jax.tree_util.tree_leaves(tree, is_leaf=lambda node: isinstance(node, kinds))
    return [node for node in nodes if isinstance(node, kinds)]


def _apply(opt_state: Any, rules: Iterable[CurvatureRule], action: str) -> Any:
    active = [(rule, getattr(rule, action)) for rule in rules if getattr(rule, action) is not None]
    if not active:
        return opt_state
    kinds = tuple(kind for rule, _ in active for kind in rule.kinds)

    def apply(node: Any) -> Any:
        for rule, change in active:
            if rule.applies(node):
                return change(node)
        return node

    return jax.tree_util.tree_map(apply, opt_state, is_leaf=lambda node: isinstance(node, kinds))


def is_line_search(opt_state: Any) -> bool:
    """Whether an optimizer state holds an optax line search (its steps need ``value_fn``).

    Example:
        >>> import jax.numpy as jnp, optax
        >>> is_line_search(optax.lbfgs().init(jnp.zeros(2))), is_line_search(optax.adam(1e-3).init(jnp.zeros(2)))
        (True, False)
    """
    return bool(_find(opt_state, LINE_SEARCH_STATES))


def has_adam(opt_state: Any) -> bool:
    """Whether an optimizer state holds Adam's moments (then the Adam SNR is recorded).

    Example:
        >>> import jax.numpy as jnp, optax
        >>> has_adam(optax.adam(1e-3).init(jnp.zeros(2))), has_adam(optax.sgd(1e-3).init(jnp.zeros(2)))
        (True, False)
    """
    return bool(_find(opt_state, (optax.ScaleByAdamState,)))


def line_search_failures(opt_state: Any) -> jax.Array:
    """1 when the state's line search ended its last round without sufficient decrease, else 0.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> int(line_search_failures(optax.adam(1e-3).init(jnp.zeros(2))))  # no line search, no failure
        0
    """
    failed = jnp.zeros((), jnp.int32)
    for state in _find(opt_state, LINE_SEARCH_STATES):
        failed = failed + (state.info.decrease_error > 0).astype(jnp.int32)
    return failed


def forget_loss(opt_state: Any) -> Any:
    """The optimizer state with what it remembers of the previous loss function dropped (after the collocation
    points change): a line search's cached value (recomputed at the next step) and a quasi-Newton method's previous
    point (no secant pair is formed across the change; the inverse Hessian is kept).

    Example:
        >>> import jax.numpy as jnp, optax
        >>> state = optax.lbfgs().init(jnp.zeros(2))
        >>> float(optax.tree.get(forget_loss(state), "value"))
        inf
    """
    return _apply(opt_state, curvature_rules(), "forget")


def restart_curvature(opt_state: Any) -> Any:
    """The optimizer state with its curvature memory cleared after a rejected step: a quasi-Newton method's
    inverse Hessian back to the identity (and no secant pair across the rejection), L-BFGS's memory emptied, the
    line search's cache dropped (it holds the rejected point's value).

    Example:
        >>> import jax.numpy as jnp, optax
        >>> state = restart_curvature(optax.lbfgs().init(jnp.zeros(2)))
        >>> int(optax.tree.get(state, "count")), float(optax.tree.get(state, "value"))
        (0, inf)
    """
    rules = curvature_rules()
    return _apply(_apply(opt_state, rules, "restart"), rules, "forget")
