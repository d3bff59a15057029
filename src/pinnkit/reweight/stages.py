"""What a reweighting state needs from a training loop, and carrying it across stages and redrawn points.

Everything here reads the state's *types* (static under ``jit``): :func:`required_extra_args` and
:func:`weights_frozen` tell a loop which keyword arguments ``update`` needs; :func:`transfer_reweighting`
carries the weights (and step count, stored SNR) from one optimizer stage's state into the next one's;
:func:`carry_weights` moves them onto new collocation points, each new point taking the weight of the nearest
old one.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike

from pinnkit.reweight.states import RBAState, family_states
from pinnkit.sampling import nearest_points

__all__ = ["carry_weights", "required_extra_args", "transfer_reweighting", "weights_frozen"]


def required_extra_args(opt_state: optax.OptState) -> frozenset[str]:
    """The keyword arguments that ``update`` needs for the reweighting inside ``opt_state``.

    Decided by the state's types only (static under ``jit``, no trial trace): empty when ``opt_state`` holds no
    RBA-family state or when it sits in a :class:`FrozenWeightsState`; ``{"residuals"}`` for :func:`rba` and
    :func:`vrba` (also under ``hold_weights(..., every=K)``); ``{"residuals", "sample_gradient_norms"}`` for
    :func:`gradient_aware_rba` (:class:`GradientAwareRBAState`): each state type's ``REQUIRED_ARGS``. Optional
    arguments (``indices``, ``snr``) are not listed; every name comes from :data:`EXTRA_ARG_NAMES`. Several family
    states give the union of their needs.

    Args:
        opt_state: any optax optimizer state (chains, ``optax.inject_hyperparams``, vmapped stacks ...).

    Returns:
        A frozenset of argument names.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from pinnkit.reweight import gradient_aware_rba, hold_weights, required_extra_args, vrba
        >>> sorted(required_extra_args(optax.chain(gradient_aware_rba(4), optax.adam(1e-3)).init(jnp.zeros(1))))
        ['residuals', 'sample_gradient_norms']
        >>> required_extra_args(optax.chain(hold_weights(vrba(4)), optax.lbfgs()).init(jnp.zeros(1)))
        frozenset()
    """
    needs: set[str] = set()
    for state, frozen in family_states(opt_state):
        if frozen:
            continue
        needs.update(type(state).REQUIRED_ARGS)
    return frozenset(needs)


def weights_frozen(opt_state: optax.OptState) -> bool:
    """Whether the reweighting in ``opt_state`` is frozen (its family state sits in a :class:`FrozenWeightsState`).

    Args:
        opt_state: any optax optimizer state.

    Returns:
        True when ``opt_state`` holds at least one RBA-family state and every one sits inside a
        :class:`FrozenWeightsState`; False otherwise (no family state, moving weights, or
        ``hold_weights(..., every=K)``).

    Example:
        >>> import jax.numpy as jnp
        >>> from pinnkit.reweight import hold_weights, rba, weights_frozen
        >>> weights_frozen(hold_weights(rba(3)).init(None)), weights_frozen(rba(3).init(None))
        (True, False)
    """
    states = family_states(opt_state)
    return bool(states) and all(frozen for _, frozen in states)


def _only_family_state(tree: Any, which: str) -> RBAState | None:
    states = family_states(tree)
    if len(states) > 1:
        raise ValueError(f"{which} holds {len(states)} RBA-family states; transfer_reweighting needs at most one")
    return states[0][0] if states else None


def _cast_like(value: ArrayLike, like: ArrayLike) -> Array:
    return jnp.asarray(value, dtype=jnp.result_type(like))


def transfer_reweighting(source_state: optax.OptState, target_state: optax.OptState) -> optax.OptState:
    """``target_state`` with its RBA-family state replaced by the one in ``source_state``.

    Carries the weights, the step count (vRBA's annealing clock) and the stored SNR from one optimizer stage to
    the next (Adam -> L-BFGS, say), wherever each family state sits: plain, inside ``optax.chain``,
    ``optax.inject_hyperparams`` or the :func:`hold_weights` wrappers. The target keeps its own state type
    (an ``rba`` state may fill a ``gradient_aware_rba`` one: the fields are the same) and its dtypes (the
    source's values are cast to them). Vmapped (stacked) states work alike: every leaf then has the leading
    model axis, which must match. Works under ``jit``.

    Args:
        source_state: the optimizer state to take the family state from.
        target_state: the optimizer state to put it into.

    Returns:
        The new target state; ``target_state`` itself when either holds no family state.

    Raises:
        ValueError: either state holds more than one family state, or the weights differ in structure (terms)
            or any field differs in shape (the message names both shapes).

    Example:
        >>> import jax.numpy as jnp
        >>> from pinnkit.reweight import rba, transfer_reweighting
        >>> source = rba(2, eta=0.1, gamma=0.5).update(None, rba(2).init(None), residuals=jnp.array([1.0, 2.0]))[1]
        >>> target = transfer_reweighting(source, rba(2).init(None))
        >>> target.weights, int(target.count)
        (Array([0.05, 0.1 ], dtype=float32), 1)
        >>> transfer_reweighting(source, rba(3).init(None))
        Traceback (most recent call last):
        ...
        ValueError: transfer_reweighting: weights: source shape (2,), target shape (3,)
    """
    source = _only_family_state(source_state, "source_state")
    target = _only_family_state(target_state, "target_state")
    if source is None or target is None:
        return target_state
    fields = []
    for field, source_field, target_field in zip(RBAState._fields, source, target, strict=True):
        source_tree = jax.tree_util.tree_structure(source_field)
        target_tree = jax.tree_util.tree_structure(target_field)
        if source_tree != target_tree:
            raise ValueError(
                f"transfer_reweighting: {field}: source structure {source_tree}, target structure {target_tree}"
            )
        for source_leaf, target_leaf in zip(
            jax.tree_util.tree_leaves(source_field), jax.tree_util.tree_leaves(target_field), strict=True
        ):
            if jnp.shape(source_leaf) != jnp.shape(target_leaf):
                raise ValueError(
                    f"transfer_reweighting: {field}: source shape {jnp.shape(source_leaf)}, "
                    f"target shape {jnp.shape(target_leaf)}"
                )
        fields.append(jax.tree.map(_cast_like, source_field, target_field))
    replacement = type(target)(*fields)
    return jax.tree_util.tree_map(
        lambda node: replacement if isinstance(node, RBAState) else node,
        target_state,
        is_leaf=lambda node: isinstance(node, RBAState),
    )


def carry_weights(opt_state: optax.OptState, old_points: ArrayLike, new_points: ArrayLike, *,
                  term: str | None = None, scale: ArrayLike | None = None) -> optax.OptState:
    """``opt_state`` with its per-sample weights moved onto new collocation points: each new point takes the
    weight of the nearest old point.

    A weight belongs to a place in the domain, not to an index: it is a moving average of that place's
    normalised residual, and residuals vary smoothly. After a resampling redraw (RAD) the weights at the old
    indices would otherwise be applied to unrelated new points. The step count (vRBA's annealing clock) and the
    stored SNR are kept. Every RBA-family state is moved (plain, chained, inside :func:`hold_weights` or
    ``optax.inject_hyperparams``); a vmapped (stacked) state has its weights gathered along the last axis for
    every model alike. A state without a family state is returned unchanged.

    Args:
        opt_state: any optax optimizer state.
        old_points: the points the weights belong to, ``(N, d)``.
        new_points: the new points, ``(M, d)``; the weights become ``(M,)``, so the transform that continues
            must have been built for ``M`` samples (a redraw keeps the count).
        term: for weights kept per term (a dict), the term the points belong to; the other terms are kept.
            None (the default) requires weights that are one array.
        scale: per-coordinate lengths for the distance (see ``pinnkit.sampling.nearest_points``).

    Returns:
        The new optimizer state.

    Raises:
        ValueError: the weights do not match ``old_points`` in length, or the term is missing or ambiguous.

    Example:
        >>> import jax.numpy as jnp
        >>> from pinnkit.reweight import carry_weights, rba
        >>> transform = rba(3, eta=0.1, gamma=0.5)
        >>> state = transform.update(None, transform.init(None), residuals=jnp.array([1.0, 2.0, 4.0]))[1]
        >>> old = jnp.array([[0.0], [1.0], [2.0]])
        >>> carry_weights(state, old, jnp.array([[2.1], [2.0], [-1.0]])).weights
        Array([0.1  , 0.1  , 0.025], dtype=float32)
    """
    if not family_states(opt_state):
        return opt_state
    old = jnp.asarray(old_points)
    indices = nearest_points(old, new_points, scale=scale)

    def gather(values: Array, label: str) -> Array:
        if values.shape[-1] != old.shape[0]:
            raise ValueError(f"carry_weights: the weights{label} have {values.shape[-1]} samples, old_points "
                             f"{old.shape[0]}")
        return jnp.take(values, indices, axis=-1)

    def move(state: RBAState) -> RBAState:
        weights = state.weights
        if isinstance(weights, dict):
            if term is None or term not in weights:
                raise ValueError(f"carry_weights: the weights are kept per term {sorted(weights)}; pass term= "
                                 f"one of them (got {term!r})")
            weights = dict(weights, **{term: gather(weights[term], f" of term {term!r}")})
        else:
            if term is not None:
                raise ValueError(f"carry_weights: the weights are one array, not per term; got term={term!r}")
            weights = gather(weights, "")
        return state._replace(weights=weights)

    return jax.tree_util.tree_map(lambda node: move(node) if isinstance(node, RBAState) else node, opt_state,
                                  is_leaf=lambda node: isinstance(node, RBAState))
