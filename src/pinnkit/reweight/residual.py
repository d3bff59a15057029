"""Residual-based attention (RBA): per-sample weights that follow the normalised residual magnitude.

The paper's rule (its sections 2.5 a and b: ``normalize="max"`` and ``"minmax"``), as a target of the shared
machine :func:`pinnkit.reweight.transform.reweighting_transform`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import optax
from jaxtyping import Array, ArrayLike

from pinnkit.reweight.transform import normalized, reweighting_transform
from pinnkit.validation import choice

__all__ = ["NORMALIZATIONS", "rba", "residual_target"]

#: How ``rba`` and ``gradient_aware_rba`` map a batch of ``|r|`` to [0, 1].
NORMALIZATIONS: tuple[str, ...] = ("max", "minmax")


def residual_target(abs_residuals: Array, *, count: Array, normalize: str) -> Array:
    """The RBA paper's target: ``q = |r| / max|r|`` (or the min-max variant).

    Example:
        >>> import jax.numpy as jnp
        >>> residual_target(jnp.array([1.0, 2.0, 4.0]), count=jnp.int32(0), normalize="minmax")
        Array([0.        , 0.33333334, 1.        ], dtype=float32)
    """
    del count
    return normalized(abs_residuals, normalize)


def rba(
    num_samples: int | Mapping[str, int],
    *,
    eta: ArrayLike = 1e-3,
    gamma: ArrayLike = 0.999,
    normalize: str = "max",
    init: str = "zeros",
    snr_coupling: ArrayLike | None = None,
    snr_warmup: int | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Residual-based attention (RBA): per-sample weights that follow the normalised residual magnitude.

    Each update advances the weights from the residuals it is handed and returns ``updates`` unchanged::

        w  <-  gamma * w + eta * q,   q = |r| / max|r|                          (normalize="max", the paper)
                                      q = (|r| - min|r|) / (max|r| - min|r|)     (normalize="minmax")

    The residuals are ``jax.lax.stop_gradient``-ed. A batch with nothing to normalise by (all-zero residuals
    for "max", constant ones for "minmax") gives ``q = 0``: the weights stay finite and just decay that step.

    * **Fixed point:** for constant residuals ``w* = eta / (1 - gamma) * q``; with the defaults
      ``eta / (1 - gamma) = 1`` and ``w* = |r| / max|r|``. Weights ramp up over ~``1 / (1 - gamma)`` steps.
    * **Bounds:** since ``0 <= q <= 1``, weights started in ``[0, eta / (1 - gamma)]`` never leave it.
    * **init="residual"** is the paper's init 2 (``eta = 1`` on the first update): the first update sets
      ``w = min(1, eta / (1 - gamma)) * q`` (just ``q`` for the defaults; the ``min`` keeps the bound when the
      cap is below 1). With ``indices`` only that first batch is initialised; the others start from 0.
    * **One-step lag:** a transform runs after the gradient, so the weights that step ``k``'s loss reads come
      from the residuals of step ``k - 1`` (the paper's loop updates the weights first). With
      ``gamma ~ 0.999`` this changes nothing visible.
    * **Mini-batches:** with ``indices``, ``residuals`` holds only those samples; only those weights move
      (``w.at[indices].set(...)``) and ``q`` is normalised by the batch's own max. Indices must be unique and
      in range (not checked under ``jit``).
    * **SNR coupling** (off by default): ``update(..., snr=x)`` stores a finite ``x`` in the state
      (``RBAState.snr``); with ``snr_coupling`` set, every update, with or without ``snr``, moves at the rate
      ``s = min(1, snr_coupling / stored snr)``: ``w <- (1 - s (1 - gamma)) w + s eta q``. ``s = 1`` (exactly
      the rule above) while no SNR is stored or when ``snr_coupling`` is None. The fixed point and the bounds do
      not depend on ``s``; see :func:`gradient_aware_rba`.
    * **L-BFGS:** optax's line searches forward extra keyword arguments to ``value_fn`` and raise
      ``TypeError`` for any that ``value_fn`` does not name as a parameter (``**kwargs`` does not count).
      Either freeze the weights for the whole quasi-Newton stage (:func:`hold_weights`; then ``update`` needs
      no residuals, see :func:`required_extra_args`), or read the weights from the state before the step,
      freeze them into ``value_fn``, and let ``value_fn`` name (and ignore) the extra arguments it is handed
      (:data:`EXTRA_ARG_NAMES`)::

          def value_fn(params, residuals=None, indices=None, snr=None, sample_gradient_norms=None):
              return loss(params, frozen_weights)

      Take ``value, grad = jax.value_and_grad(value_fn)(params)`` fresh each step: while the weights move,
      ``optax.value_and_grad_from_state`` hands back the value the line search cached under the previous
      step's weights, and the zoom line search then stalls. It is exact only when the weights stay frozen
      for the whole L-BFGS phase.

    Args:
        num_samples: number of weighted samples: an int (weights are one array of shape ``(N,)``) or a
            mapping term-name -> int (weights are a dict of arrays with those keys; other residual terms stay
            unweighted).
        eta: the step toward the target, > 0.
        gamma: the decay of the running weights, in (0, 1).
        normalize: ``"max"`` (the paper) or ``"minmax"`` (the paper's Helmholtz variant).
        init: ``"zeros"`` (the paper's init 1) or ``"residual"`` (init 2).
        snr_coupling: the reference SNR ``s_ref > 0`` of the step modulation, or None (default) for none.
        snr_warmup: updates before the modulation acts (default ``ceil(1 / (1 - gamma))``, the time the weights
            take to reach their scale: from zero weights the loss is the constraint terms alone, whose batch
            gradients agree, and the SNR then says nothing about the samples).

    Returns:
        An ``optax.GradientTransformationExtraArgs`` with state :class:`RBAState`. Its
        ``update(updates, state, params=None, *, residuals, indices=None, snr=None, **extra_args)`` takes
        ``residuals`` structured like the weights (an array, or a dict with at least the weighted keys),
        ``indices`` (an int array, or a dict term -> int array; terms absent from the dict are updated in full)
        and a scalar ``snr``. Under ``optax.inject_hyperparams``, pass ``static_args="num_samples"``.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from pinnkit.reweight import rba, sample_weights
        >>> optimizer = optax.chain(rba(3, eta=0.1, gamma=0.5), optax.sgd(0.1))
        >>> state = optimizer.init(jnp.zeros(2))
        >>> grads = jnp.ones(2)
        >>> updates, state = optimizer.update(grads, state, residuals=jnp.array([1.0, -2.0, 4.0]))
        >>> sample_weights(state)
        Array([0.025, 0.05 , 0.1  ], dtype=float32)
    """
    choice("normalize", normalize, NORMALIZATIONS)
    return reweighting_transform(
        num_samples,
        eta=eta,
        gamma=gamma,
        init=init,
        target_fn=functools.partial(residual_target, normalize=normalize),
        snr_coupling=snr_coupling,
        snr_warmup=snr_warmup,
        name="rba",
    )
