"""Reading the weights out of an optimizer state, and the weighted loss that uses them.

The loss multiplies each residual by its weight *before* squaring (:func:`weighted_mse`), as the papers do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike

from pinnkit.reweight.states import FAMILY_STATE_NAMES, SwitchableWeightsState, Weights

__all__ = ["reweighting_on", "sample_weights", "weighted_mse"]


def _is_rba_weights(path: tuple, value: Any) -> bool:
    del value
    last = path[-1] if path else None
    return isinstance(last, optax.tree_utils.NamedTupleKey) and last.tuple_name in FAMILY_STATE_NAMES


def sample_weights(opt_state: optax.OptState) -> Weights | None:
    """The per-sample weights held by the RBA-family state inside ``opt_state``; None if there is none.

    Searches the whole state (``optax.chain``, ``optax.inject_hyperparams``, :func:`hold_weights`, nested
    tuples, a vmapped stack of states ...) with ``optax.tree.get``, restricted to the fields of
    :class:`RBAState` and :class:`GradientAwareRBAState` so that another transform's ``weights`` entry is never
    mistaken for them. (In optax 0.2.8 ``optax.tree.get`` returns its default when the key is absent and raises
    ``KeyError`` when it appears more than once.)

    Args:
        opt_state: any optax optimizer state.

    Returns:
        The weights (an array, or a dict term -> array, as built), or None when the state holds no
        RBA-family state.

    Raises:
        ValueError: when the state holds more than one RBA-family state (the weights would be ambiguous).

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from pinnkit.reweight import rba, sample_weights
        >>> state = optax.chain(rba(4), optax.adam(1e-3)).init(jnp.zeros(2))
        >>> sample_weights(state)
        Array([0., 0., 0., 0.], dtype=float32)
        >>> sample_weights(optax.adam(1e-3).init(jnp.zeros(2))) is None
        True
    """
    try:
        return optax.tree.get(opt_state, "weights", default=None, filtering=_is_rba_weights)
    except KeyError:
        raise ValueError(
            "opt_state holds more than one RBA-family state; read the one you mean with "
            "optax.tree.get_all_with_path(opt_state, 'weights')"
        ) from None


def _is_switch(path: tuple, value: Any) -> bool:
    del value
    last = path[-1] if path else None
    return isinstance(last, optax.tree_utils.NamedTupleKey) and last.tuple_name == SwitchableWeightsState.__name__


def reweighting_on(opt_state: optax.OptState) -> Array | bool:
    """Whether the weights inside ``opt_state`` take part in training: False without an RBA-family state, the
    flag of a :func:`~pinnkit.reweight.switchable_weights` wrapper (an array: one per model when stacked; a model
    with it off trains as the run without reweighting, its weights held at 1), else True.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from pinnkit.reweight import rba, switchable_weights
        >>> reweighting_on(optax.adam(1e-3).init(jnp.zeros(2))), reweighting_on(rba(3).init(None))
        (False, True)
        >>> bool(reweighting_on(switchable_weights(rba(3)).init(None)))
        True
    """
    if sample_weights(opt_state) is None:
        return False
    flags = optax.tree_utils.tree_get_all_with_path(opt_state, "on", _is_switch)
    if not flags:
        return True
    if len(flags) > 1:
        raise ValueError("opt_state holds more than one switchable reweighting")
    return flags[0][1]


def weighted_mse(
    residuals: ArrayLike | Mapping[str, ArrayLike],
    weights: ArrayLike | Mapping[str, ArrayLike] | None = None,
) -> Array:
    """The paper's loss ``mean((w * r) ** 2)``, the weight INSIDE the square; ``mean(r ** 2)`` unweighted.

    For a dict of residual terms the result is the sum over terms of each term's mean, weighted for the terms
    that ``weights`` names (``{"pde": w}`` weights the PDE residual and leaves ``"bc"`` plain, as the paper
    does). The weights are not stop-gradiented here: RBA weights come from the optimizer state, not from the
    parameters.

    Args:
        residuals: an array of residuals, or a mapping term -> array.
        weights: None, an array of the residuals' shape, or a mapping naming a subset of the residual terms.

    Returns:
        The scalar loss.

    Example:
        >>> import jax.numpy as jnp
        >>> from pinnkit.reweight import weighted_mse
        >>> weighted_mse(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.5]))  # ((1*1)^2 + (0.5*2)^2) / 2
        Array(1., dtype=float32)
        >>> weighted_mse({"pde": jnp.array([2.0]), "bc": jnp.array([1.0, 3.0])}, {"pde": jnp.array([0.5])})
        Array(6., dtype=float32)
    """
    if isinstance(residuals, Mapping):
        if weights is not None and not isinstance(weights, Mapping):
            raise TypeError(f"weights must be a mapping when residuals is one, got {type(weights).__name__}")
        weights = weights or {}
        unknown = [term for term in weights if term not in residuals]
        if unknown:
            raise ValueError(f"weights name terms {unknown} absent from residuals {sorted(residuals)}")
        if not residuals:
            raise ValueError("residuals must not be an empty mapping")
        return sum(weighted_mse(residuals[term], weights.get(term)) for term in residuals)
    if isinstance(weights, Mapping):
        raise TypeError("weights is a mapping but residuals is one array")
    residuals = jnp.asarray(residuals)
    if weights is None:
        return jnp.mean(residuals**2)
    weights = jnp.asarray(weights)
    if weights.shape != residuals.shape:
        raise ValueError(f"weights shape {weights.shape} must equal residuals shape {residuals.shape}")
    return jnp.mean((weights * residuals) ** 2)
