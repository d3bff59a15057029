"""Residual homogeneity ("residual order" phi_R, paper.md section 2.6).

Bin the domain into a regular grid, average the per-point values (RBA weights, or |residual| when there are
none) in each non-empty bin, and compare the mean of those bin means with their root mean square::

    phi_R = mean_b(w_b) / sqrt(mean_b(w_b^2)) = 1 / sqrt(1 + CV^2)

``CV`` being the coefficient of variation of the bin means: phi_R = 1 for perfectly homogeneous values and
falls as they localise. Unlike the paper's code (bins hard-coded for x in [-1, 1], t in [0, 1]), the grid
spans the problem's actual domain. Empty bins are left out (they carry no value, and counting them as zeros
would read sparse sampling as inhomogeneity).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from pinnkit.validation import is_integer, positive_int

__all__ = ["pointwise_homogeneity", "residual_homogeneity"]


def _bins_per_dimension(bins: int | tuple[int, ...], dimensions: int) -> tuple[int, ...]:
    if is_integer(bins):
        per_dimension = (positive_int("bins", bins),) * dimensions
    elif isinstance(bins, tuple | list):
        per_dimension = tuple(bins)
    else:
        raise TypeError(f"bins must be an int or a tuple of ints, got {bins!r}")
    if len(per_dimension) != dimensions:
        raise ValueError(f"bins={bins!r} has {len(per_dimension)} entries for {dimensions}-D points")
    return tuple(positive_int(f"bins[{index}]", count) for index, count in enumerate(per_dimension))


def residual_homogeneity(
    points: ArrayLike,
    values: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    bins: int | tuple[int, ...] = 10,
) -> Array:
    """phi_R of non-negative per-point values over a ``bins`` grid of the box ``[lower, upper]`` (jit-safe).

    Points on the upper edge go into the last bin; points outside the box are clipped into the edge bins.

    Args:
        points: ``(N, d)`` coordinates (or ``(N,)`` for one dimension).
        values: ``(N,)`` values, e.g. RBA weights or ``|r|``.
        lower: the box's lower corner, ``(d,)``.
        upper: the box's upper corner, ``(d,)``.
        bins: bins per dimension: an int, or one int per dimension.

    Returns:
        A scalar in (0, 1] (nan when every value is 0).

    Example:
        >>> import jax.numpy as jnp
        >>> points = jnp.array([[0.25], [0.75]])
        >>> float(residual_homogeneity(points, jnp.array([1.0, 1.0]), [0.0], [1.0], bins=2))
        1.0
        >>> phi = residual_homogeneity(points, jnp.array([1.0, 3.0]), [0.0], [1.0], bins=2)
        >>> round(float(phi), 4)   # 2 / sqrt(5)
        0.8944
    """
    points = jnp.asarray(points)
    if points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2:
        raise ValueError(f"points must have shape (N, d), got {points.shape}")
    values = jnp.asarray(values)
    if values.shape != points.shape[:1]:
        raise ValueError(f"values must have shape ({points.shape[0]},), got {values.shape}")
    dimensions = points.shape[1]
    lower = jnp.broadcast_to(jnp.asarray(lower, points.dtype), (dimensions,))
    upper = jnp.broadcast_to(jnp.asarray(upper, points.dtype), (dimensions,))
    per_dimension = _bins_per_dimension(bins, dimensions)
    counts_per_dimension = jnp.asarray(per_dimension)
    position = (points - lower) / (upper - lower)
    index = jnp.floor(position * counts_per_dimension).astype(jnp.int32)
    index = jnp.clip(index, 0, counts_per_dimension - 1)  # the upper edge (and any outlier) into the end bins
    # Row-major flat bin index, built with static strides.
    strides = [math.prod(per_dimension[axis + 1 :]) for axis in range(dimensions)]
    flat = jnp.sum(index * jnp.asarray(strides, jnp.int32), axis=1)
    num_bins = math.prod(per_dimension)
    sums = jax.ops.segment_sum(values, flat, num_segments=num_bins)
    counts = jax.ops.segment_sum(jnp.ones_like(values), flat, num_segments=num_bins)
    filled = counts > 0
    bin_means = jnp.where(filled, sums / jnp.maximum(counts, 1), 0.0)
    num_filled = jnp.sum(filled)
    mean = jnp.sum(bin_means) / num_filled
    mean_square = jnp.sum(bin_means**2) / num_filled
    return mean / jnp.sqrt(mean_square)


def pointwise_homogeneity(values: ArrayLike) -> Array:
    """Collocation-level homogeneity ``mean(v) / sqrt(mean(v^2))`` (the notebook's point-wise variant).

    Args:
        values: per-point values (e.g. RBA weights or ``|r|``).

    Returns:
        A scalar in (0, 1] for non-negative values (nan when all are 0).

    Example:
        >>> import jax.numpy as jnp
        >>> round(float(pointwise_homogeneity(jnp.array([1.0, 0.0]))), 4)   # 0.5 / sqrt(0.5)
        0.7071
    """
    values = jnp.asarray(values)
    return jnp.mean(values) / jnp.sqrt(jnp.mean(values**2))
