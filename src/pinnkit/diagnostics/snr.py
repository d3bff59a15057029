"""Batch-gradient signal-to-noise ratio (SNR) and gradient "order" (paper.md section 2.3).

The collocation points are split once into ``B`` disjoint random batches. Each batch gets its own loss (its
points, their weights, plus the whole constraint term) and gradient ``g_b``; elementwise over the batches::

    mu = mean_b g_b,    sigma = std_b g_b (ddof 0),    rho = sqrt(mean_b g_b^2)
    SNR = ||mu|| / ||sigma||,    order = ||mu|| / ||rho|| = SNR / sqrt(1 + SNR^2)

over the concatenated weight matrices (biases excluded by default, as in the paper). ``||rho||^2 = ||mu||^2 +
||sigma||^2`` exactly, hence the identity between SNR and order. All ``B`` gradients come from one vmapped
backward pass; their mean is the ordinary full-batch gradient when every point is in one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, PRNGKeyArray

from pinnkit.validation import positive_int

__all__ = [
    "contiguous_batches",
    "GradientSNR",
    "batch_gradient_snr",
    "batch_gradients",
    "gradient_leaf_names",
    "make_batches",
    "order_from_snr",
    "snr_from_order",
]


class GradientSNR(NamedTuple):
    """Batch-gradient statistics of one step (jnp scalars, and one entry per included leaf for ``layer_snr``).

    Attributes:
        snr: ``||mu|| / ||sigma||`` over the whole network.
        order: ``||mu|| / ||rho||`` in [0, 1].
        mean_norm: ``||mu||``.
        std_norm: ``||sigma||``.
        rms_norm: ``||rho||``.
        layer_snr: ``||mu_l|| / ||sigma_l||`` per included leaf, in pytree-flatten order.
    """

    snr: Array
    order: Array
    mean_norm: Array
    std_norm: Array
    rms_norm: Array
    layer_snr: Array


def make_batches(key: PRNGKeyArray, num_points: int, num_batches: int = 100) -> Array:
    """A random partition of the point indices into ``num_batches`` disjoint batches of equal size.

    Fixed for a run (draw it once). When ``num_batches`` does not divide ``num_points`` the ``num_points mod
    num_batches`` leftover points of the permutation are left out of the SNR batches only; training always
    uses all points.

    Args:
        key: PRNG key of the permutation.
        num_points: number ``N`` of collocation points.
        num_batches: number ``B`` of batches (the paper uses 100).

    Returns:
        An int array of shape ``(B, N // B)``.

    Example:
        >>> import jax
        >>> make_batches(jax.random.key(0), 10, 3).shape
        (3, 3)
    """
    num_points = positive_int("num_points", num_points)
    num_batches = positive_int("num_batches", num_batches)
    if num_points < num_batches:
        raise ValueError(f"num_points={num_points} is fewer than num_batches={num_batches}")
    size = num_points // num_batches
    order = jax.random.permutation(key, num_points)
    return order[: num_batches * size].reshape(num_batches, size)


def contiguous_batches(num_points: int, num_batches: int = 100) -> Array:
    """The paper code's batches: consecutive slices ``[b N/B, (b+1) N/B)`` of the points in their array order.

    On points drawn in random order (a Latin hypercube) these are random disjoint subsets too; the slices matter
    when the points come from elsewhere in a given order (another code's arrays). Leftovers as in
    :func:`make_batches`.

    Example:
        >>> contiguous_batches(7, 3).tolist()
        [[0, 1], [2, 3], [4, 5]]
    """
    num_points = positive_int("num_points", num_points)
    num_batches = positive_int("num_batches", num_batches)
    if num_points < num_batches:
        raise ValueError(f"num_points={num_points} is fewer than num_batches={num_batches}")
    size = num_points // num_batches
    return jnp.arange(num_batches * size).reshape(num_batches, size)


def batch_gradients(
    batch_loss: Callable[[Any, Any], Array], params: Any, batched_inputs: Any
) -> Any:
    """The gradient of ``batch_loss`` for every batch, in one vmapped backward pass.

    Args:
        batch_loss: ``batch_loss(params, inputs) -> scalar`` for one batch (its points, weights, and the full
            constraint term).
        params: the parameters (any pytree of arrays; differentiate only its float leaves, e.g. with
            ``eqx.filter`` beforehand).
        batched_inputs: a pytree whose leaves have a leading batch axis ``B``.

    Returns:
        A pytree like ``params`` whose leaves have a leading axis ``B``.

    Example:
        >>> import jax.numpy as jnp
        >>> loss = lambda w, x: jnp.mean((w * x) ** 2)
        >>> batch_gradients(loss, jnp.array(1.0), jnp.array([[1.0, 1.0], [2.0, 2.0]])).tolist()
        [2.0, 8.0]
    """
    return jax.vmap(jax.grad(batch_loss), in_axes=(None, 0))(params, batched_inputs)


def _is_weight(path: tuple) -> bool:
    last = path[-1] if path else None
    return isinstance(last, jax.tree_util.GetAttrKey) and last.name == "weight"


def _included(tree: Any, include_biases: bool) -> list[tuple[tuple, Array]]:
    """(path, leaf) of the array leaves the statistics use, in flatten order."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    chosen = [(path, leaf) for path, leaf in leaves if eqx.is_inexact_array(leaf)]
    if not include_biases:
        chosen = [(path, leaf) for path, leaf in chosen if _is_weight(path)]
    return chosen


def gradient_leaf_names(params: Any, include_biases: bool = False) -> list[str]:
    """Names of the leaves :func:`batch_gradient_snr` includes, in the order of its ``layer_snr``.

    Args:
        params: the parameters (e.g. an Equinox MLP; non-array leaves are skipped).
        include_biases: include every float leaf, not only those named ``weight``.

    Returns:
        Names such as ``"layers[0].weight"`` (``jax.tree_util.keystr`` without the leading dot).

    Example:
        >>> import equinox as eqx, jax
        >>> gradient_leaf_names(eqx.nn.Linear(2, 3, key=jax.random.key(0)))
        ['weight']
    """
    return [jax.tree_util.keystr(path).lstrip(".") for path, _ in _included(params, include_biases)]


def batch_gradient_snr(batch_grads: Any, *, include_biases: bool = False) -> GradientSNR:
    """SNR, order and norms of the batch gradients (jit-safe).

    Args:
        batch_grads: a pytree of gradients whose leaves have a leading batch axis (see
            :func:`batch_gradients`).
        include_biases: use every float leaf; by default only leaves whose path ends in ``.weight`` (the
            paper's weight matrices).

    Returns:
        A :class:`GradientSNR`.

    Raises:
        ValueError: no leaf is included (e.g. no ``.weight`` leaves and ``include_biases=False``).

    Example:
        >>> import jax.numpy as jnp
        >>> grads = {"weight": jnp.array([[1.0, 0.0], [3.0, 0.0]])}   # B = 2 batches, 2 parameters
        >>> stats = batch_gradient_snr(grads, include_biases=True)
        >>> float(stats.snr), float(stats.mean_norm), float(stats.std_norm)
        (2.0, 2.0, 1.0)
    """
    chosen = _included(batch_grads, include_biases)
    if not chosen:
        raise ValueError(
            "no gradient leaves to measure: none is named 'weight' (include_biases=True uses every leaf)"
        )
    mean_sq, std_sq, rms_sq, layer = [], [], [], []
    for _, leaf in chosen:
        flat = leaf.reshape(leaf.shape[0], -1)
        mean = jnp.mean(flat, axis=0)
        # std via the centred values (not E[g^2] - mu^2) so that near-identical batches do not cancel to < 0.
        std_sq_leaf = jnp.sum(jnp.mean((flat - mean) ** 2, axis=0))
        mean_sq_leaf = jnp.sum(mean**2)
        mean_sq.append(mean_sq_leaf)
        std_sq.append(std_sq_leaf)
        rms_sq.append(jnp.sum(jnp.mean(flat**2, axis=0)))
        layer.append(jnp.sqrt(mean_sq_leaf) / jnp.sqrt(std_sq_leaf))
    mean_norm = jnp.sqrt(sum(mean_sq))
    std_norm = jnp.sqrt(sum(std_sq))
    rms_norm = jnp.sqrt(sum(rms_sq))
    return GradientSNR(
        snr=mean_norm / std_norm,
        order=mean_norm / rms_norm,
        mean_norm=mean_norm,
        std_norm=std_norm,
        rms_norm=rms_norm,
        layer_snr=jnp.stack(layer),
    )


def order_from_snr(snr: ArrayLike) -> Array:
    """Gradient order from SNR: ``snr / sqrt(1 + snr^2)``.

    Args:
        snr: SNR value(s), >= 0.

    Returns:
        The order, in [0, 1).

    Example:
        >>> round(float(order_from_snr(0.75)), 6)
        0.6
    """
    snr = jnp.asarray(snr)
    return snr / jnp.sqrt(1.0 + snr**2)


def snr_from_order(order: ArrayLike) -> Array:
    """SNR from gradient order: ``order / sqrt(1 - order^2)`` (inf at order 1).

    Args:
        order: order value(s) in [0, 1].

    Returns:
        The SNR.

    Example:
        >>> round(float(snr_from_order(0.6)), 6)
        0.75
    """
    order = jnp.asarray(order)
    return order / jnp.sqrt(1.0 - order**2)
