"""The one machine behind every reweighting scheme: a bounded moving average toward a target.

A scheme is a *target function*: it maps a batch of absolute residuals (and, where the scheme asks for them,
other per-sample values such as gradient norms) to a non-negative ``q``; :func:`reweighting_transform` then
moves the weights by the same rule for every scheme::

    w  <-  (1 - s (1 - gamma)) w + s eta q,      s = min(1, snr_coupling / stored snr)

which is the paper's ``gamma w + eta q`` when ``s = 1`` (no ``snr_coupling``, no SNR stored yet, or ``s``
rounds to 1). The transform returns the gradient ``updates`` unchanged, so it chains in front of any optax
optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike

from pinnkit.reweight.checks import check_init, check_real, is_traced
from pinnkit.reweight.states import RBAState
from pinnkit.reweight.terms import check_batch, pack, sample_sizes, split_indices, split_terms, unpack
from pinnkit.validation import non_negative_int

__all__ = ["normalized", "reweighting_transform", "snr_step_scale", "store_snr"]


def normalized(values: Array, normalize: str) -> Array:
    """Map non-negative ``values`` to [0, 1]: ``v / max v`` (``"max"``) or ``(v - min v) / (max v - min v)``.

    A batch with nothing to normalise by (all zeros for "max", constant for "minmax") maps to 0: the division
    is guarded, so the weights stay finite and simply decay that step.

    Example:
        >>> normalized(jnp.array([1.0, 2.0, 4.0]), "max"), normalized(jnp.zeros(2), "max")
        (Array([0.25, 0.5 , 1.  ], dtype=float32), Array([0., 0.], dtype=float32))
    """
    if normalize == "max":
        offset = jnp.zeros((), values.dtype)
        span = jnp.max(values)
    else:
        offset = jnp.min(values)
        span = jnp.max(values) - offset
    positive = span > 0
    return jnp.where(positive, (values - offset) / jnp.where(positive, span, 1), 0).astype(values.dtype)


def store_snr(stored: Array, snr: ArrayLike | None) -> Array:
    """The state's new ``snr``: the one handed in when it is finite, else the stored one.

    Example:
        >>> store_snr(jnp.float32(2.0), jnp.nan), store_snr(jnp.float32(2.0), 5.0)
        (Array(2., dtype=float32), Array(5., dtype=float32))
    """
    if snr is None:
        return stored
    value = jax.lax.stop_gradient(jnp.asarray(snr))
    if value.ndim != 0:
        raise ValueError(f"snr must be a scalar, got shape {value.shape}")
    value = value.astype(stored.dtype)
    return jnp.where(jnp.isfinite(value), value, stored)


def snr_step_scale(snr: Array, snr_coupling: ArrayLike | None) -> Array | None:
    """``s = min(1, snr_coupling / snr)``; None (no modulation) if ``snr_coupling`` is None; snr <= 0 or NaN -> 1.

    Example:
        >>> float(snr_step_scale(jnp.float32(4.0), 1.0)), float(snr_step_scale(jnp.float32(jnp.nan), 1.0))
        (0.25, 1.0)
    """
    if snr_coupling is None:
        return None
    usable = snr > 0  # False for NaN (nothing stored yet)
    return jnp.where(usable, jnp.minimum(1.0, snr_coupling / jnp.where(usable, snr, 1.0)), 1.0)


def reweighting_transform(
    num_samples: int | Mapping[str, int],
    *,
    eta: ArrayLike,
    gamma: ArrayLike,
    init: str | ArrayLike,
    target_fn: Callable[..., Array],
    per_sample_args: tuple[str, ...] = (),
    snr_coupling: ArrayLike | None = None,
    snr_warmup: int | None = None,
    target_bound: Callable[[int], float] = lambda size: 1.0,
    state_type: type[RBAState] = RBAState,
    constant_init: bool = False,
    name: str,
) -> optax.GradientTransformationExtraArgs:
    """A reweighting transform of the RBA family: ``w <- (1 - s (1 - gamma)) w + s eta q``.

    ``q = target_fn(|r|, count=count, **per_sample)`` for each term's batch of stop-gradiented absolute
    residuals; it must lie in ``[0, target_bound(N)]`` for a term of ``N`` samples (1 for every built-in scheme
    but vRBA's "mean" normalisation), which keeps the weights in ``[0, target_bound(N) * eta / (1 - gamma)]``.

    Args:
        num_samples: an int (weights are one ``(N,)`` array) or a mapping term-name -> int (a dict of arrays).
        eta: the step toward the target, > 0.
        gamma: the decay of the running weights, in (0, 1).
        init: ``"zeros"``, ``"residual"`` (the first update sets ``w = min(1, eta / (1 - gamma)) * q``) or,
            with ``constant_init``, a number in ``[0, eta / (1 - gamma)]``.
        target_fn: the scheme's target, called per term as above.
        per_sample_args: names of further required keyword arguments of ``update``, structured like
            ``residuals``; each term's stop-gradiented value reaches ``target_fn`` under that name.
        snr_coupling: the reference SNR of the step modulation ``s``, > 0, or None for ``s = 1``.
        snr_warmup: updates before the modulation acts (default ``ceil(1 / (1 - gamma))``).
        target_bound: the largest ``q`` for a term of ``N`` samples.
        state_type: :class:`RBAState` or a subclass (whose type declares ``per_sample_args`` to the engine).
        constant_init: whether ``init`` may be a number.
        name: the scheme's name, for error messages.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` with state ``state_type``; its ``update(updates, state,
        params=None, *, residuals, indices=None, snr=None, **per_sample)`` returns ``updates`` unchanged.

    Example:
        >>> import jax.numpy as jnp
        >>> uniform = reweighting_transform(3, eta=0.1, gamma=0.5, init="zeros", name="uniform",
        ...                                 target_fn=lambda abs_residuals, *, count: jnp.ones_like(abs_residuals))
        >>> uniform.update(None, uniform.init(None), residuals=jnp.array([1.0, 2.0, 4.0]))[1].weights
        Array([0.1, 0.1, 0.1], dtype=float32)
    """
    sizes = sample_sizes(num_samples)
    check_real("eta", eta, low=0.0, low_open=True)
    check_real("gamma", gamma, low=0.0, high=1.0, low_open=True, high_open=True)
    if snr_coupling is not None:
        check_real("snr_coupling", snr_coupling, low=0.0, low_open=True)
    if snr_warmup is None:
        snr_warmup = 0 if is_traced(gamma) else math.ceil(1.0 / (1.0 - float(gamma)) - 1e-9)
    else:
        non_negative_int("snr_warmup", snr_warmup)
    check_init(init, eta=eta, gamma=gamma, constant=constant_init)
    from_residual = isinstance(init, str) and init == "residual"
    initial_value = 0.0 if isinstance(init, str) else init

    def init_fn(params: optax.Params) -> RBAState:
        del params
        dtype = jnp.result_type(float)
        weights = {term: jnp.full((size,), initial_value, dtype) for term, size in sizes.items()}
        return state_type(
            weights=pack(weights), count=jnp.zeros([], jnp.int32), snr=jnp.full((), jnp.nan, jnp.float32)
        )

    def update_fn(
        updates: optax.Updates,
        state: RBAState,
        params: optax.Params | None = None,
        *,
        residuals: Any,
        indices: Any = None,
        snr: ArrayLike | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, RBAState]:
        del params
        missing = [arg for arg in per_sample_args if extra_args.get(arg) is None]
        if missing:
            raise TypeError(f"{name}.update requires the keyword argument(s) {missing}")
        residual_terms = split_terms(residuals, sizes, "residuals")
        index_terms = split_indices(indices, sizes)
        per_sample = {arg: split_terms(extra_args[arg], sizes, arg) for arg in per_sample_args}
        stored_snr = store_snr(state.snr, snr)
        scale = snr_step_scale(stored_snr, snr_coupling)
        if scale is not None and snr_warmup:
            scale = jnp.where(state.count >= snr_warmup, scale, 1.0)
        cap = eta / (1 - gamma)
        weight_terms = unpack(state.weights, sizes)

        new_weights = {}
        for term, weights in weight_terms.items():
            idx = index_terms[term]
            idx = None if idx is None else jnp.asarray(idx)
            abs_residuals = jnp.abs(jax.lax.stop_gradient(jnp.asarray(residual_terms[term])))
            check_batch(abs_residuals, idx, sizes[term], "residuals", term)
            term_args = {}
            for arg in per_sample_args:
                value = jax.lax.stop_gradient(jnp.asarray(per_sample[arg][term]))
                check_batch(value, idx, sizes[term], arg, term)
                term_args[arg] = value
            target = target_fn(abs_residuals, count=state.count, **term_args).astype(weights.dtype)

            current = weights if idx is None else weights[idx]
            advanced = gamma * current + eta * target
            if scale is not None:
                modulated = (1 - scale * (1 - gamma)) * current + scale * eta * target
                advanced = jnp.where(scale < 1, modulated, advanced)
            if from_residual:
                # The paper's init 2 (eta = 1 on the first update), capped so the weights keep the bound.
                advanced = jnp.where(state.count == 0, jnp.minimum(1.0, cap) * target, advanced)
            # Rounding guard: in exact arithmetic the update already never exceeds the bound.
            advanced = jnp.minimum(advanced, cap * target_bound(sizes[term])).astype(weights.dtype)
            new_weights[term] = advanced if idx is None else weights.at[idx].set(advanced)

        return updates, state_type(
            weights=pack(new_weights), count=optax.safe_int32_increment(state.count), snr=stored_snr
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
