"""Holding the weights of a reweighting transform fixed, or advancing them only every K-th update.

Quasi-Newton stages (L-BFGS, BFGS) build curvature pairs from gradient differences, which mean something only if
the loss does not change between the two gradients; moving weights change it every step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from pinnkit.reweight.states import FrozenWeightsState, HeldWeightsState, SwitchableWeightsState, family_states
from pinnkit.validation import positive_int

__all__ = ["hold_weights", "switchable_weights"]


def hold_weights(
    transform: optax.GradientTransformation, every: int | None = None
) -> optax.GradientTransformationExtraArgs:
    """Hold the weights of a reweighting transform fixed, or advance them only every ``every``-th update.

    Quasi-Newton stages (L-BFGS, BFGS) build curvature pairs from gradient differences, which mean something
    only if the loss does not change between the two gradients; moving weights change it every step.

    * ``every=None``: the weights never move. The state is :class:`FrozenWeightsState` ``(inner)``; ``update``
      returns ``updates`` and the state unchanged and ignores ``residuals``, ``snr``, ``indices``, ... : it may be
      called with none of them (``residuals=None`` too), and :func:`required_extra_args` then asks for none.
    * ``every=K`` (int >= 1): the wrapped transform is advanced once every ``K`` updates, on the K-th, 2K-th,
      ... update, with the arguments handed to that update only (the residuals of the held updates in between
      leave no trace; an ``snr`` handed to a held update is dropped). The state is :class:`HeldWeightsState`
      ``(inner, count)``. The choice is made under ``jit`` from ``count``, so ``residuals`` (and whatever else
      the wrapped transform needs) must come on every call. ``K = 1`` advances on every update: the plain
      transform. vRBA's temperature anneals with the inner ``count``, i.e. once per actual advance.

    ``updates`` always pass through unchanged: wrap a transform of this module (or one wrapped in
    ``optax.inject_hyperparams``), not a chain that also rescales the gradient. :func:`sample_weights` and
    :func:`transfer_reweighting` see through both wrappers.

    Args:
        transform: a transform of the RBA family (:func:`rba`, :func:`vrba`, :func:`gradient_aware_rba`),
            possibly inside ``optax.inject_hyperparams``.
        every: None (frozen) or a positive int ``K``.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose state is :class:`FrozenWeightsState` (``every=None``)
        or :class:`HeldWeightsState`.

    Raises:
        TypeError: ``transform`` is not a gradient transformation or its state holds no RBA-family state (at
            ``init``), or ``every`` is not an int; ``update`` of ``every=K`` without ``residuals``.
        ValueError: ``every < 1``.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from pinnkit.reweight import hold_weights, rba, sample_weights, transfer_reweighting
        >>> adam_stage = optax.chain(rba(2, eta=0.1, gamma=0.5), optax.adam(1e-3))
        >>> state = adam_stage.init(jnp.zeros(1))
        >>> _, state = adam_stage.update(jnp.ones(1), state, residuals=jnp.array([1.0, 2.0]))
        >>> lbfgs_stage = optax.chain(hold_weights(rba(2, eta=0.1, gamma=0.5)), optax.lbfgs())
        >>> frozen = transfer_reweighting(state, lbfgs_stage.init(jnp.zeros(1)))
        >>> sample_weights(frozen)  # carried over, and held while L-BFGS runs
        Array([0.05, 0.1 ], dtype=float32)
    """
    period = positive_int("every", every, none=True, error=TypeError)
    inner, checked_init = _checked(transform, "hold_weights")

    if period is None:

        def frozen_init(params: optax.Params) -> FrozenWeightsState:
            return FrozenWeightsState(inner=checked_init(params))

        def frozen_update(
            updates: optax.Updates, state: FrozenWeightsState, params: optax.Params | None = None, **extra_args: Any
        ) -> tuple[optax.Updates, FrozenWeightsState]:
            del params, extra_args
            return updates, state

        return optax.GradientTransformationExtraArgs(frozen_init, frozen_update)

    def held_init(params: optax.Params) -> HeldWeightsState:
        return HeldWeightsState(inner=checked_init(params), count=jnp.zeros([], jnp.int32))

    def held_update(
        updates: optax.Updates,
        state: HeldWeightsState,
        params: optax.Params | None = None,
        *,
        residuals: Any = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, HeldWeightsState]:
        if residuals is None:
            raise TypeError(
                f"hold_weights(every={period}).update requires residuals on every call (whether this call "
                f"advances the weights is decided under jit)"
            )
        count = optax.safe_int32_increment(state.count)
        advance = count % period == 0
        _, advanced = inner.update(updates, state.inner, params, residuals=residuals, **extra_args)
        new_inner = jax.tree.map(lambda new, old: jnp.where(advance, new, old), advanced, state.inner)
        return updates, HeldWeightsState(inner=new_inner, count=count)

    return optax.GradientTransformationExtraArgs(held_init, held_update)


def switchable_weights(transform: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """A reweighting transform whose weights move only while a flag of its state is on.

    The state is :class:`SwitchableWeightsState` ``(inner, on)``, ``on`` True at ``init``: then ``update`` is the
    wrapped transform's. With ``on`` False the wrapped state stays as it is. Stacked runs that differ only in
    whether they reweight (:mod:`pinnkit.variants`) set the flag per model: a model with the flag off and all its
    weights 1 trains as the run without reweighting, since ``mean((1 * r) ** 2)`` is ``mean(r ** 2)`` bit for bit,
    inside the same vmapped program as its reweighted peers. ``updates`` pass through unchanged.

    Args:
        transform: a transform of the RBA family, possibly inside :func:`hold_weights` (``every=K``) or
            ``optax.inject_hyperparams``.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` with state :class:`SwitchableWeightsState`.

    Raises:
        TypeError: ``transform`` is not a gradient transformation or its state holds no RBA-family state.

    Example:
        >>> import jax.numpy as jnp
        >>> from pinnkit.reweight import rba, sample_weights, switchable_weights
        >>> transform = switchable_weights(rba(2, eta=0.1, gamma=0.5))
        >>> state = transform.init(None)._replace(on=jnp.zeros((), bool))
        >>> _, state = transform.update(None, state, residuals=jnp.array([1.0, 2.0]))
        >>> sample_weights(state)
        Array([0., 0.], dtype=float32)
    """
    inner, checked_init = _checked(transform, "switchable_weights")

    def init(params: optax.Params) -> SwitchableWeightsState:
        return SwitchableWeightsState(inner=checked_init(params), on=jnp.ones((), bool))

    def update(
        updates: optax.Updates, state: SwitchableWeightsState, params: optax.Params | None = None, **extra_args: Any
    ) -> tuple[optax.Updates, SwitchableWeightsState]:
        _, advanced = inner.update(updates, state.inner, params, **extra_args)
        kept = jax.tree.map(lambda new, old: jnp.where(state.on, new, old), advanced, state.inner)
        return updates, SwitchableWeightsState(inner=kept, on=state.on)

    return optax.GradientTransformationExtraArgs(init, update)


def _checked(transform: Any, wrapper: str):
    """The transform with extra-args support, and an ``init`` that checks it holds an RBA-family state."""
    if not (callable(getattr(transform, "init", None)) and callable(getattr(transform, "update", None))):
        raise TypeError(f"transform must be an optax gradient transformation, got {transform!r}")
    inner = optax.with_extra_args_support(transform)

    def checked_init(params: optax.Params) -> optax.OptState:
        state = inner.init(params)
        if not family_states(state):
            raise TypeError(
                f"{wrapper} wraps an RBA-family transform (rba, vrba, gradient_aware_rba); the state of "
                f"{transform!r} holds none"
            )
        return state

    return inner, checked_init
