"""Trees of K stacked models: every leaf carries a leading model axis (several seeds trained as one program).

Example:
    >>> import jax.numpy as jnp
    >>> tree = stack({"w": jnp.ones(3)})
    >>> tree["w"].shape, unstack(tree, 0)["w"].shape
    ((1, 3), (3,))
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["finite_per_model", "select", "stack", "unstack"]


def stack(tree: Any) -> Any:
    """``tree`` as a stack of one model (a leading axis of length 1 on every leaf).

    Example:
        >>> stack({"w": jnp.zeros((2, 3))})["w"].shape
        (1, 2, 3)
    """
    return jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[None], tree)


def unstack(tree: Any, index: int) -> Any:
    """Model ``index`` of a stacked tree.

    Example:
        >>> unstack({"w": jnp.arange(6).reshape(2, 3)}, 1)["w"].tolist()
        [3, 4, 5]
    """
    return jax.tree_util.tree_map(lambda leaf: leaf[index], tree)


def select(keep: np.ndarray, old: Any, new: Any) -> Any:
    """Per model: ``old`` where ``keep``, else ``new`` (``new`` whole when there is no ``old``).

    Example:
        >>> select(np.array([True, False]), jnp.zeros(2), jnp.ones(2)).tolist()
        [0.0, 1.0]
    """
    if old is None:
        return new
    mask = jnp.asarray(keep)
    return jax.tree_util.tree_map(
        lambda a, b: jnp.where(mask.reshape((-1,) + (1,) * (b.ndim - 1)), a, b), old, new)


def finite_per_model(params: Any) -> jax.Array:
    """Whether every parameter of each model is finite (one bool per model).

    Example:
        >>> finite_per_model({"w": jnp.array([[1.0, 2.0], [jnp.nan, 0.0]])}).tolist()
        [True, False]
    """
    leaves = [jnp.all(jnp.isfinite(leaf.reshape(leaf.shape[0], -1)), axis=1)
              for leaf in jax.tree_util.tree_leaves(params)]
    return jnp.all(jnp.stack(leaves), axis=0)
