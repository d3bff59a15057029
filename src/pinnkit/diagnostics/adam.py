"""The "step-wise" SNR Adam uses implicitly, read for free from its moments (paper.md section 2.4).

With the bias-corrected moments ``m_hat = m / (1 - b1^t)`` and ``v_hat = v / (1 - b2^t)`` over all
parameters::

    adam SNR  = ||m_hat|| / ||sqrt(v_hat) + eps||
    mean step = mean_j |m_hat_j / (sqrt(v_hat_j) + eps)|    (the mean effective step / learning rate)

At step 1 the SNR is 1 (``m_hat = g``, ``sqrt(v_hat) = |g|``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array

__all__ = ["AdamSNR", "adam_snr"]


class AdamSNR(NamedTuple):
    """Adam-moment diagnostics (jnp scalars).

    Attributes:
        snr: ``||m_hat|| / ||sqrt(v_hat) + eps||``.
        mean_step: ``mean |m_hat / (sqrt(v_hat) + eps)|`` over all parameters.
    """

    snr: Array
    mean_step: Array


def _adam_states(opt_state: Any) -> list[optax.ScaleByAdamState]:
    is_adam = lambda node: isinstance(node, optax.ScaleByAdamState)  # noqa: E731
    return [node for node in jax.tree_util.tree_leaves(opt_state, is_leaf=is_adam) if is_adam(node)]


def adam_snr(opt_state: Any, *, eps: float = 1e-8, b1: float = 0.9, b2: float = 0.999) -> AdamSNR:
    """Adam's SNR and mean normalised step from any optimizer state that holds an Adam state (jit-safe).

    The ``optax.ScaleByAdamState`` is found anywhere inside the state (chains, ``inject_hyperparams``, masked
    or multi-transform states); with several, all their parameters are pooled, each bias-corrected with its
    own count.

    Args:
        opt_state: an optax optimizer state.
        eps: the epsilon added to ``sqrt(v_hat)``.
        b1: Adam's first-moment decay (bias correction).
        b2: Adam's second-moment decay (bias correction).

    Returns:
        An :class:`AdamSNR` (nan before the first update, when the count is 0).

    Raises:
        ValueError: the state holds no Adam state.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> optimizer = optax.adam(1e-3)
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> state = optimizer.init(params)
        >>> _, state = optimizer.update({"w": jnp.array([0.5, 4.0])}, state)
        >>> round(float(adam_snr(state).snr), 4)   # one step: m_hat = g, sqrt(v_hat) = |g|
        1.0
    """
    states = _adam_states(opt_state)
    if not states:
        kind = type(opt_state).__name__
        raise ValueError(f"no optax.ScaleByAdamState found in the optimizer state (a {kind})")
    m_hat, denominator = [], []
    for state in states:
        count = jnp.asarray(state.count, jnp.float32)
        first = [leaf for leaf in jax.tree_util.tree_leaves(state.mu) if eqx.is_array(leaf)]
        second = [leaf for leaf in jax.tree_util.tree_leaves(state.nu) if eqx.is_array(leaf)]
        for mu, nu in zip(first, second, strict=True):
            m_hat.append(jnp.ravel(mu) / (1.0 - b1**count))
            denominator.append(jnp.sqrt(jnp.ravel(nu) / (1.0 - b2**count)) + eps)
    if not m_hat:
        raise ValueError("the Adam state holds no moment arrays")
    m_hat_all = jnp.concatenate(m_hat)
    denominator_all = jnp.concatenate(denominator)
    return AdamSNR(
        snr=jnp.linalg.norm(m_hat_all) / jnp.linalg.norm(denominator_all),
        mean_step=jnp.mean(jnp.abs(m_hat_all / denominator_all)),
    )
