"""Input derivatives of a network at a point, by forward-mode (Taylor-mode) differentiation.

PDE residuals need u, u_x, u_xx, ... at every collocation point. Nested reverse mode (``grad`` of ``grad``) builds
a backward pass per order; here one Taylor-mode pass (``jax.experimental.jet``) along a coordinate axis gives the
value and every pure derivative along that axis up to the requested order, and mixed derivatives use nested
``jax.jvp``. Both act on one point; batch over points with ``jax.vmap``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.experimental import jet
from jaxtyping import Array, Float

__all__ = ["axis_derivatives", "mixed_derivative", "partial_derivatives"]

PointFunction = Callable[[Float[Array, " d"]], Array]


def _unit(x: Array, axis: int) -> Array:
    if not 0 <= axis < x.shape[-1]:
        raise ValueError(f"axis {axis} is out of range for a point with {x.shape[-1]} coordinates")
    return jnp.zeros_like(x).at[axis].set(1.0)


def axis_derivatives(fn: PointFunction, x: Float[Array, " d"], axis: int, order: int) -> tuple[Array, ...]:
    """Value and pure derivatives of ``fn`` along one coordinate axis, by one Taylor-mode pass.

    Args:
        fn: a function of one point ``x`` (shape ``(d,)``), returning an array (any shape).
        x: the point.
        axis: the coordinate to differentiate along.
        order: the highest derivative wanted (>= 1).

    Returns:
        ``(fn(x), d fn/dx_axis, d^2 fn/dx_axis^2, ..., d^order fn/dx_axis^order)``.

    Example:
        >>> import jax.numpy as jnp
        >>> u, u_x, u_xx = axis_derivatives(lambda p: jnp.sin(p[0]) * p[1], jnp.array([0.0, 2.0]), 0, 2)
        >>> [float(v) for v in (u, u_x, u_xx)]
        [0.0, 2.0, -0.0]
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    direction = _unit(x, axis)
    series = (direction,) + tuple(jnp.zeros_like(x) for _ in range(order - 1))
    value, derivatives = jet.jet(fn, (x,), (series,))
    return (value, *derivatives)


def mixed_derivative(fn: PointFunction, x: Float[Array, " d"], axes: Sequence[int]) -> Array:
    """One (possibly mixed) partial derivative, d^k fn / dx_{axes[0]} ... dx_{axes[-1]}, by nested ``jax.jvp``.

    Example:
        >>> import jax.numpy as jnp
        >>> float(mixed_derivative(lambda p: p[0] ** 2 * p[1] ** 3, jnp.array([1.0, 2.0]), (0, 1, 1)))
        24.0
    """
    derivative = fn
    for axis in axes:
        derivative = _directional(derivative, _unit(x, axis))
    return derivative(x)


def _directional(fn: PointFunction, direction: Array) -> PointFunction:
    def along(point: Array) -> Array:
        return jax.jvp(fn, (point,), (direction,))[1]

    return along


def partial_derivatives(
    fn: PointFunction, x: Float[Array, " d"], wanted: Sequence[tuple[int, ...]]
) -> dict[tuple[int, ...], Array]:
    """Several partial derivatives at one point, each computed the cheapest way.

    Multi-indices along a single axis, ``(0,)``, ``(0, 0)``, ``(1, 1, 1)``, share one Taylor-mode pass per axis; mixed
    ones, ``(0, 1)``, use nested JVPs. ``()`` is the value itself.

    Args:
        fn: a function of one point.
        x: the point, shape ``(d,)``.
        wanted: multi-indices of the derivatives to return.

    Returns:
        A dict from each multi-index in ``wanted`` to its derivative.

    Example:
        >>> import jax.numpy as jnp
        >>> d = partial_derivatives(lambda p: p[0] ** 3 * p[1], jnp.array([1.0, 2.0]), [(), (0, 0), (0, 1)])
        >>> {k: float(v) for k, v in d.items()}
        {(): 2.0, (0, 0): 12.0, (0, 1): 3.0}
    """
    out: dict[tuple[int, ...], Array] = {}
    highest: dict[int, int] = {}
    for index in wanted:
        index = tuple(index)
        if len(set(index)) == 1:
            highest[index[0]] = max(highest.get(index[0], 0), len(index))
        elif index:
            out[index] = mixed_derivative(fn, x, index)
    for axis, order in highest.items():
        series = axis_derivatives(fn, x, axis, order)
        for k in range(1, order + 1):
            out[(axis,) * k] = series[k]
        out.setdefault((), series[0])
    if () in [tuple(index) for index in wanted] and () not in out:
        out[()] = fn(x)
    return {tuple(index): out[tuple(index)] for index in wanted}
