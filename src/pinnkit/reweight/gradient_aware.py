"""Gradient-aware RBA (pinnkit's design): large residuals AND small per-sample gradients get large weights.

The paper's final abstract targets "samples with large residuals and vanishing gradients" but its code holds no
gradient term; this is pinnkit's reading, a target of the shared machine whose state type
(:class:`~pinnkit.reweight.states.GradientAwareRBAState`) tells the engine to hand in ``sample_gradient_norms``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike

from pinnkit.reweight.checks import check_real
from pinnkit.reweight.residual import NORMALIZATIONS
from pinnkit.reweight.states import GradientAwareRBAState
from pinnkit.reweight.transform import normalized, reweighting_transform
from pinnkit.validation import choice

__all__ = ["gradient_aware_rba", "gradient_aware_target"]


def gradient_aware_target(
    abs_residuals: Array, *, count: Array, sample_gradient_norms: Array, normalize: str, gradient_power: ArrayLike
) -> Array:
    """``q = a * h / max(a * h)`` with ``a = normalize(|r|)`` and ``h = (g_ref / (g + g_ref)) ** p``.

    Example:
        >>> target = gradient_aware_target(jnp.ones(3), count=jnp.int32(0), normalize="max", gradient_power=1.0,
        ...                                sample_gradient_norms=jnp.array([1.0, 2.0, 4.0]))
        >>> target  # g_ref = 2: h = [2/3, 1/2, 1/3], normalised by 2/3
        Array([1.  , 0.75, 0.5 ], dtype=float32)
    """
    del count
    residual_part = normalized(abs_residuals, normalize)
    norms = jnp.abs(sample_gradient_norms).astype(abs_residuals.dtype)
    reference = jnp.median(norms)
    has_reference = reference > 0
    # No usable scale (most gradient norms zero): fall back to h = 1, i.e. plain RBA for this batch.
    safe_reference = jnp.where(has_reference, reference, 1)
    damping = jnp.where(has_reference, (safe_reference / (norms + safe_reference)) ** gradient_power, 1)
    return normalized(residual_part * damping, "max")


def gradient_aware_rba(
    num_samples: int | Mapping[str, int],
    *,
    eta: ArrayLike = 1e-3,
    gamma: ArrayLike = 0.999,
    gradient_power: ArrayLike = 1.0,
    snr_coupling: ArrayLike | None = None,
    snr_warmup: int | None = None,
    normalize: str = "max",
    init: str = "zeros",
) -> optax.GradientTransformationExtraArgs:
    r"""RBA that boosts samples with large residuals AND small per-sample gradients (pinnkit's design).

    The paper's final abstract targets "samples with large residuals and vanishing gradients" but its code
    holds no gradient term; this is pinnkit's reading. With ``g_i = ||d r_i / d theta||`` (see
    ``pinnkit.diagnostics.sample_gradients.sample_gradient_norms``), per batch::

        a_i   = |r_i| / max|r|                    (or min-max, as in rba's ``normalize``)
        h_i   = (g_ref / (g_i + g_ref)) ** p,     g_ref = median_j g_j      (h = 1 when g_ref = 0)
        q_i   = a_i h_i / max_j (a_j h_j)         (q = 0 when every a_j h_j = 0)
        s     = min(1, snr_coupling / snr)        (s = 1 when snr_coupling is None or no snr is stored)
        w_i  <-  (1 - s (1 - gamma)) w_i + s eta q_i

    ``h`` decreases in ``g`` and equals ``2 ** -p`` at the median; ``p = 0`` is plain :func:`rba`. ``snr`` is
    the last finite value handed to ``update`` (stored in the state, so one update with ``snr`` keeps
    modulating the updates after it until another arrives). ``s`` scales the *rate* of the moving average,
    not its target: the fixed point stays ``eta / (1 - gamma) * q`` for every ``snr`` and the weights stay in
    ``[0, eta / (1 - gamma)]``. A low batch-gradient SNR (the diffusion phase) gives ``s = 1``: the weights
    move at RBA's full rate; a high SNR (drift, diffusion equilibrium) gives ``s < 1``: they move less and hold
    their values. ``s = 1`` is exactly ``gamma w + eta q``. Everything else (bounds, the one-step lag,
    ``indices``, ``init``, the L-BFGS pattern, where ``value_fn`` must also name ``sample_gradient_norms`` and
    ``snr``) is as in :func:`rba`.

    Args:
        num_samples: as in :func:`rba`.
        eta: the step toward the target, > 0.
        gamma: the decay of the running weights, in (0, 1).
        gradient_power: ``p >= 0``, how strongly small gradient norms are favoured.
        snr_warmup: updates before the modulation acts (as in :func:`rba`).
        snr_coupling: the reference SNR ``s_ref > 0`` of the step modulation, or None for no modulation (then
            ``snr`` is only stored).
        normalize: ``"max"`` or ``"minmax"`` for the residual part ``a``.
        init: ``"zeros"`` or ``"residual"`` (the first update sets ``w = min(1, eta / (1 - gamma)) * q``).

    Returns:
        An ``optax.GradientTransformationExtraArgs`` with state :class:`GradientAwareRBAState`. Its
        ``update(updates, state, params=None, *, residuals, sample_gradient_norms, snr=None, indices=None,
        **extra_args)`` takes ``sample_gradient_norms`` structured like ``residuals`` (the same samples) and a
        scalar ``snr``.

    Example:
        >>> import jax.numpy as jnp
        >>> from pinnkit.reweight import gradient_aware_rba
        >>> transform = gradient_aware_rba(3, eta=0.1, gamma=0.5)
        >>> state = transform.init(None)
        >>> _, state = transform.update(
        ...     None, state, residuals=jnp.ones(3), sample_gradient_norms=jnp.array([1.0, 2.0, 4.0]))
        >>> state.weights  # equal residuals: the smallest gradient norm gets the largest weight
        Array([0.1  , 0.075, 0.05 ], dtype=float32)
    """
    choice("normalize", normalize, NORMALIZATIONS)
    check_real("gradient_power", gradient_power, low=0.0)
    return reweighting_transform(
        num_samples,
        eta=eta,
        gamma=gamma,
        init=init,
        target_fn=functools.partial(gradient_aware_target, normalize=normalize, gradient_power=gradient_power),
        per_sample_args=("sample_gradient_norms",),
        snr_coupling=snr_coupling,
        snr_warmup=snr_warmup,
        state_type=GradientAwareRBAState,
        name="gradient_aware_rba",
    )
