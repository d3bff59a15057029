"""Runs that differ only in numbers, trained as one vmapped program.

Runs of one optimizer plan on one set-up (problem, points, network architecture, steps) may differ in their seed,
in the base learning rate of their first-order stages, and in whether their reweighting moves. Such runs are
*variants* of one program: stacked along the model axis they compile once per stage and take one pass over the
steps. "No reweighting" is the reweighting held at weight 1 (:func:`pinnkit.reweight.switchable_weights` with its
flag off): the loss ``mean((1 * r) ** 2)`` is ``mean(r ** 2)`` bit for bit, so such a variant trains as the run
without reweighting does.

The per-model numbers live in the optimizer state (``step_size`` leaves, the switch flags, the weights), set by
:func:`set_variant_numbers` when a stage's state is built. Built with ``per_model=True``
(:func:`pinnkit.optimizers.make_optimizer`), a first-order stage takes its step as ``(u * decay) * rate`` rather
than ``u * (rate * decay)``: a variant's history equals the separate run's to float rounding, not bit for bit.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from pinnkit.optimizers import make_optimizer
    >>> from pinnkit.reweight import sample_weights
    >>> optimizer = make_optimizer("adam", reweight="rba", num_samples=3, per_model=True)
    >>> state = jax.vmap(optimizer.init)(jnp.zeros((2, 1)))
    >>> state = set_variant_numbers(state, reweighting=[False, True], learning_rates=[1e-2, 1e-3], fresh=True)
    >>> sample_weights(state).tolist()
    [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pinnkit.reweight.states import FAMILY_STATE_NAMES, SwitchableWeightsState, family_states

__all__ = ["Variant", "set_variant_numbers", "variant_groups"]


@dataclasses.dataclass(frozen=True)
class Variant:
    """One run of a stack of variants.

    Attributes:
        seed: the seed of its network initialisation.
        reweight: ``"none"`` or the stack's reweighting.
        learning_rate: the base learning rate of its first-order stages (None: the optimizer's default).
    """

    seed: int
    reweight: str
    learning_rate: float | None = None


def _field_filter(tuple_name: str | tuple[str, ...]):
    names = (tuple_name,) if isinstance(tuple_name, str) else tuple_name

    def keep(path: tuple, value: Any) -> bool:
        del value
        last = path[-1] if path else None
        return isinstance(last, optax.tree_utils.NamedTupleKey) and last.tuple_name in names

    return keep


def _has(state: Any, key: str, filtering=None) -> bool:
    return bool(optax.tree_utils.tree_get_all_with_path(state, key, filtering))


def set_variant_numbers(state: Any, *, reweighting: Sequence[bool] | None, learning_rates: Sequence[float | None],
                        fresh: bool) -> Any:
    """A stacked optimizer state (built with ``per_model=True``) with each model's own numbers.

    Args:
        state: the stacked state of one plan stage (``jax.vmap(optimizer.init)``).
        reweighting: per model, whether its reweighting weights move (None: the stack does not reweight).
        learning_rates: per model, the base learning rate of a first-order stage (None: leave the built one).
            Ignored by a stage without a ``step_size`` leaf (a line search).
        fresh: whether the weights start here (a plan's first stage): those of the models that do not reweight
            are set to 1. A later stage gets them from the stage before.

    Returns:
        The state with the flags, step sizes and weights set.

    Raises:
        ValueError: the number of models disagrees with the state's leading axis.
    """
    switched = _has(state, "on", _field_filter(SwitchableWeightsState.__name__))
    on = np.ones(len(learning_rates), bool) if reweighting is None else np.asarray(reweighting, bool)
    leaves = jax.tree_util.tree_leaves(state)
    models = leaves[0].shape[0] if leaves else len(on)
    if len(on) != models or len(learning_rates) != models:
        raise ValueError(f"{len(on)} reweighting flags and {len(learning_rates)} learning rates for a state of "
                         f"{models} models")
    if switched:
        state = optax.tree.set(state, _field_filter(SwitchableWeightsState.__name__), on=jnp.asarray(on))
        if fresh:
            weights_filter = _field_filter(FAMILY_STATE_NAMES)
            weights = optax.tree.get(state, "weights", filtering=weights_filter)

            def ones_where_off(leaf):
                mask = jnp.asarray(on).reshape((-1,) + (1,) * (leaf.ndim - 1))
                return jnp.where(mask, leaf, jnp.ones_like(leaf))

            state = optax.tree.set(state, weights_filter, weights=jax.tree.map(ones_where_off, weights))
    elif not on.all() and any(not frozen for _, frozen in family_states(state)):
        raise ValueError("models that do not reweight need a state built with per_model=True, whose moving "
                         "weights can be switched off")
    if _has(state, "step_size") and any(rate is not None for rate in learning_rates):
        built = optax.tree.get(state, "step_size")
        rates = [-rate if rate is not None else value for rate, value in zip(learning_rates, np.asarray(built),
                                                                             strict=True)]
        state = optax.tree.set(state, step_size=jnp.asarray(rates, built.dtype))
    return state


def variant_groups(reweights: Sequence[str]) -> list[tuple[str, ...]]:
    """The reweightings of a grid cell's list grouped into stacks: ``"none"`` joins the first other reweighting
    (its weights held at 1); each further reweighting stands alone (two schemes are two programs).

    Example:
        >>> variant_groups(["none", "rba"]), variant_groups(["rba", "vrba", "none"]), variant_groups(["none"])
        ([('none', 'rba')], [('rba', 'none'), ('vrba',)], [('none',)])
    """
    schemes = [name for name in reweights if name != "none"]
    if not schemes:
        return [tuple(reweights)]
    groups = []
    for index, name in enumerate(schemes):
        if index == 0 and "none" in reweights:
            pair = [name, "none"]
            groups.append(tuple(sorted(pair, key=list(reweights).index)))
        else:
            groups.append((name,))
    return groups
