"""The states of the reweighting family, the extra arguments they declare, and finding them in any optimizer state.

A state's *type* says what ``update`` needs (static under ``jit``, ``REQUIRED_ARGS``): every :class:`RBAState`
needs ``residuals``, a :class:`GradientAwareRBAState` also ``sample_gradient_norms``, and a state inside
:class:`FrozenWeightsState` needs nothing. :func:`family_states` finds them wherever they sit (chains,
``optax.inject_hyperparams``, the holding wrappers, vmapped stacks).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax
from jaxtyping import Array

__all__ = [
    "EXTRA_ARG_NAMES",
    "FAMILY_STATE_NAMES",
    "FrozenWeightsState",
    "GradientAwareRBAState",
    "HeldWeightsState",
    "RBAState",
    "SwitchableWeightsState",
    "Weights",
    "family_states",
]

Weights = Array | dict[str, Array]  # one (N,) array, or term name -> (N,) array

#: Every keyword argument that a transform of the family reads in ``update``. A training loop hands the family
#: only these; optax's line searches (L-BFGS, pinnkit's BFGS family) forward each extra keyword of ``update`` to
#: ``value_fn`` and raise ``TypeError`` for one that ``value_fn`` does not name as a parameter, so a
#: ``value_fn`` used next to a reweighting transform names (and ignores) the ones it is handed.
EXTRA_ARG_NAMES: tuple[str, ...] = ("residuals", "indices", "snr", "sample_gradient_norms")


class RBAState(NamedTuple):
    """State of the transforms of the RBA family (``rba``, ``vrba``, ``gradient_aware_rba``).

    Attributes:
        weights: the per-sample weights: one array of shape ``(N,)``, or a dict term-name -> array. The
            field name is what ``sample_weights`` and ``optax.tree.get(state, "weights")`` look for.
        count: number of updates applied so far (int32 scalar). vRBA's temperature anneals with it.
        snr: the last finite gradient SNR handed to ``update`` (float32 scalar; NaN until one is handed in).
            It sets the step modulation ``s = min(1, snr_coupling / snr)`` of every later update.

    Example:
        >>> import jax.numpy as jnp
        >>> state = RBAState(weights=jnp.zeros(3), count=jnp.zeros([], jnp.int32), snr=jnp.full((), jnp.nan))
        >>> state.weights.shape, int(state.count)
        ((3,), 0)
    """

    weights: Weights
    count: Array  # int32 scalar
    snr: Array  # float32 scalar, NaN until an SNR is handed in

    #: The keyword arguments ``update`` requires (optional ones, ``indices`` and ``snr``, are not listed); a
    #: scheme whose target needs more gives its state a subclass that names them (``required_extra_args``).
    REQUIRED_ARGS = ("residuals",)


class GradientAwareRBAState(RBAState):
    """State of ``gradient_aware_rba``: the fields of :class:`RBAState`; its type says that ``update``
    also needs ``sample_gradient_norms`` (see ``required_extra_args``). It is a subclass, so
    ``isinstance(state, RBAState)`` holds for every family state.

    Example:
        >>> import jax.numpy as jnp
        >>> isinstance(GradientAwareRBAState(jnp.zeros(2), jnp.zeros([], jnp.int32), jnp.zeros(())), RBAState)
        True
    """

    __slots__ = ()
    REQUIRED_ARGS = ("residuals", "sample_gradient_norms")


class FrozenWeightsState(NamedTuple):
    """State of ``hold_weights(transform)`` (``every=None``): the wrapped state, never advanced.

    Attributes:
        inner: the state of the wrapped transform, as its ``init`` built it (or as
            ``transfer_reweighting`` filled it).

    Example:
        >>> FrozenWeightsState(inner=()).inner
        ()
    """

    inner: optax.OptState


class HeldWeightsState(NamedTuple):
    """State of ``hold_weights(transform, every=K)``.

    Attributes:
        inner: the state of the wrapped transform, advanced on the K-th, 2K-th, ... update only.
        count: number of updates seen by the wrapper (int32 scalar).

    Example:
        >>> import jax.numpy as jnp
        >>> int(HeldWeightsState(inner=(), count=jnp.zeros([], jnp.int32)).count)
        0
    """

    inner: optax.OptState
    count: Array  # int32 scalar


class SwitchableWeightsState(NamedTuple):
    """State of ``switchable_weights(transform)``.

    Attributes:
        inner: the state of the wrapped transform, advanced only while ``on``.
        on: whether the weights move (bool scalar, True at ``init``; one per model once stacked).

    Example:
        >>> import jax.numpy as jnp
        >>> bool(SwitchableWeightsState(inner=(), on=jnp.ones((), bool)).on)
        True
    """

    inner: optax.OptState
    on: Array  # bool scalar


#: The names of the state types that hold weights (what ``sample_weights`` filters ``optax.tree.get`` by).
FAMILY_STATE_NAMES: tuple[str, ...] = (RBAState.__name__, GradientAwareRBAState.__name__)


def family_states(tree: Any, frozen: bool = False) -> list[tuple[RBAState, bool]]:
    """Every RBA-family state in ``tree``, each with whether it sits inside a :class:`FrozenWeightsState`.

    Args:
        tree: any pytree, typically an optax optimizer state.
        frozen: whether ``tree`` itself sits inside a frozen wrapper (used when recursing).

    Returns:
        A list of ``(state, frozen)`` pairs, in the tree's leaf order.

    Example:
        >>> import jax.numpy as jnp
        >>> state = RBAState(jnp.zeros(2), jnp.zeros([], jnp.int32), jnp.zeros(()))
        >>> [frozen for _, frozen in family_states((state, FrozenWeightsState(inner=state)))]
        [False, True]
    """
    kinds = (RBAState, FrozenWeightsState)
    found: list[tuple[RBAState, bool]] = []
    for node in jax.tree_util.tree_leaves(tree, is_leaf=lambda node: isinstance(node, kinds)):
        if isinstance(node, FrozenWeightsState):
            found.extend(family_states(node.inner, frozen=True))
        elif isinstance(node, RBAState):
            found.append((node, frozen))
    return found
