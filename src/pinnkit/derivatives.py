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

__all__ = [
    "axis_derivatives", "batch_axis_derivatives", "batch_directional_derivatives", "mixed_derivative",
    "partial_derivatives",
]

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
        >>> [round(float(v), 4) + 0.0 for v in (u, u_x, u_xx)]
        [0.0, 2.0, 0.0]
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
        >>> {k: round(float(v), 4) for k, v in d.items()}
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


def batch_axis_derivatives(
    model: Callable[[Array], Array], x: Float[Array, "n d"], orders: dict[int, int]
) -> dict[int, tuple[Array, ...]]:
    """Value and pure derivatives along several coordinate axes for a whole batch of points.

    For a :class:`pinnkit.nn.MLP` (with an affine input map, possibly a periodic embedding, and no Fourier
    features) the Taylor series are pushed through the layers by hand: at each layer the primal rows and every
    derivative row of every axis go through the layer's matrix, and the activation's series comes from closed
    forms (tanh) or ``jax.experimental.jet`` on that elementwise function alone. The primal is computed once for
    all axes. Any other model falls back to :func:`axis_derivatives` vmapped over the points. Both give the same
    numbers (tested).

    Args:
        model: a network mapping one point ``(d,)`` to ``(k,)`` outputs.
        x: points, shape ``(n, d)``.
        orders: axis -> highest derivative wanted along it, e.g. ``{0: 2, 1: 1}`` for u_x, u_xx, u_t.

    Returns:
        axis -> ``(u, d u/dx_axis, ..., d^order u/dx_axis^order)``, each of shape ``(n, k)``.

    Example:
        >>> import jax, pinnkit
        >>> model = pinnkit.nn.MLP(2, 1, width=8, depth=2, key=jax.random.key(0))
        >>> series = batch_axis_derivatives(model, jax.numpy.zeros((5, 2)), {0: 2, 1: 1})
        >>> [s.shape for s in series[0]], len(series[1])
        ([(5, 1), (5, 1), (5, 1)], 2)
    """
    dimension = x.shape[-1]
    for axis in orders:
        if not 0 <= axis < dimension:
            raise ValueError(f"axis {axis} is out of range for points with {dimension} coordinates")
    directions = {axis: (tuple(1.0 if i == axis else 0.0 for i in range(dimension)), order)
                  for axis, order in orders.items()}
    return batch_directional_derivatives(model, x, directions)


def batch_directional_derivatives(
    model: Callable[[Array], Array], x: Float[Array, "n d"], directions: dict
) -> dict:
    """Value and derivatives along several directions ``v`` of input space, ``d^k/dt^k model(x + t v)`` at
    ``t = 0``, for a whole batch of points: one Taylor pass per direction (see :func:`batch_axis_derivatives`).

    Mixed partial derivatives follow from directional ones by polarisation, e.g. in two dimensions
    ``u_xy = (D2_{(1,1)} - u_xx - u_yy) / 2`` and ``u_xxy = (D3_{(1,1)} - D3_{(1,-1)} - 2 u_yyy) / 6``: the cavity's
    third derivatives of the stream function come out of four directional series.

    Args:
        model: a network mapping one point ``(d,)`` to ``(k,)`` outputs.
        x: points, shape ``(n, d)``.
        directions: name -> ``(vector, order)``, a vector of ``d`` numbers and the highest derivative wanted.

    Returns:
        name -> ``(u, D u, D^2 u, ..., D^order u)``, each of shape ``(n, k)``.

    Example:
        >>> import jax.numpy as jnp
        >>> f = lambda p: jnp.atleast_1d(p[0] ** 2 * p[1])
        >>> series = batch_directional_derivatives(f, jnp.array([[1.0, 2.0]]), {"d": ((1.0, 1.0), 2)})
        >>> [round(float(value[0, 0]), 4) for value in series["d"]]   # f(1+t, 2+t) = 2 + 5t + 4t^2 + ...
        [2.0, 5.0, 8.0]
    """
    from pinnkit import nn

    dimension = x.shape[-1]
    checked = {}
    for name, (vector, order) in directions.items():
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order} for direction {name!r}")
        vector = tuple(float(component) for component in vector)
        if len(vector) != dimension:
            raise ValueError(f"direction {name!r} has {len(vector)} components for {dimension}-D points")
        checked[name] = (vector, int(order))
    if isinstance(model, nn.MLP) and model.input_map.fourier is None:
        return _mlp_series(model, x, checked)
    out = {}
    for name, (vector, order) in checked.items():
        direction = jnp.asarray(vector, x.dtype)

        def along(point, direction=direction, order=order):
            series = (direction,) + tuple(jnp.zeros_like(point) for _ in range(order - 1))
            value, derivatives = jet.jet(model, (point,), (series,))
            return (value, *derivatives)

        out[name] = tuple(jax.vmap(along)(x))
    return out


def _mlp_series(model, x: Array, directions: dict) -> dict:
    affine = model.input_map.scale_and_shift(x.dtype)
    if affine is not None:
        scale, shift = affine
        hidden = x * scale + shift
    else:
        scale = jnp.ones(x.shape[-1], x.dtype)
        hidden = x
    first = model.layers[0]
    periodic = model.input_map.periodic
    if not periodic:
        # Layer 1 is affine in x: along v its first derivative is W (scale v), the higher ones vanish.
        z = hidden @ first.weight.T + first.bias
        blocks = {}
        for name, (vector, order) in directions.items():
            slope = first.weight @ (scale * jnp.asarray(vector, x.dtype))
            blocks[name] = [jnp.broadcast_to(slope, z.shape)] + [jnp.zeros_like(z)] * (order - 1)
    else:
        # Periodic axes enter as (cos, sin) of pi x: their derivative series are closed forms.
        features, series = _periodic_features(hidden, scale, periodic, directions)
        z = features @ first.weight.T + first.bias
        blocks = {name: [block @ first.weight.T for block in series[name]] for name in directions}
    for layer in model.layers[1:]:
        primal, blocks = _activation_series(model.activation, z, blocks)
        # One matrix product per row block: measured ~5-10 % faster on CPU than one product of the concatenated
        # blocks, whose concatenation and slicing cost copies (forward and backward).
        z = primal @ layer.weight.T + layer.bias
        blocks = {name: [block @ layer.weight.T for block in series] for name, series in blocks.items()}
    return {name: (z, *blocks[name]) for name in directions}


def _periodic_features(hidden, scale, periodic, directions):
    """The embedded inputs and, per direction, their derivatives of order 1..k along it."""
    dimension = hidden.shape[1]
    columns = []
    series = {name: [[] for _ in range(order)] for name, (_, order) in directions.items()}
    for index in range(dimension):
        x = hidden[:, index]
        if index in periodic:
            angle = jnp.pi * x
            cosine, sine = jnp.cos(angle), jnp.sin(angle)
            columns += [cosine, sine]
            # d^k/dt^k of (cos, sin)(w t): w^k (cos, sin) rotated by k quarter turns.
            cycle = [(cosine, sine), (-sine, cosine), (-cosine, -sine), (sine, -cosine)]
            for name, (vector, order) in directions.items():
                for k in range(1, order + 1):
                    rate = (jnp.pi * scale[index] * vector[index]) ** k
                    pair = cycle[k % 4]
                    series[name][k - 1] += [rate * pair[0], rate * pair[1]]
        else:
            columns.append(x)
            for name, (vector, order) in directions.items():
                for k in range(1, order + 1):
                    value = scale[index] * vector[index] if k == 1 else 0.0
                    series[name][k - 1].append(jnp.full_like(x, value))
    features = jnp.stack(columns, axis=1)
    return features, {name: [jnp.stack(block, axis=1) for block in blocks] for name, blocks in series.items()}


def _activation_series(activation, z, blocks):
    """The activation's value and, per axis, its derivative series given the pre-activation's series."""
    if activation is jnp.tanh and max(len(series) for series in blocks.values()) <= 3:
        return _tanh_series(z, blocks)
    primal = activation(z)
    out = {}
    for axis, series in blocks.items():
        _, derivatives = jet.jet(activation, (z,), (tuple(series),))
        out[axis] = list(derivatives)
    return primal, out


def _tanh_series(z, blocks):
    # Faa di Bruno with the closed-form derivatives of tanh (first s = 1 - a^2, second -2 a s, third
    # s (6 a^2 - 2)): cheaper for XLA than the generic jet rule.
    a = jnp.tanh(z)
    s = 1.0 - a * a
    second = -2.0 * a * s
    out = {}
    for axis, series in blocks.items():
        z1 = series[0]
        derivatives = [s * z1]
        if len(series) > 1:
            z2 = series[1]
            derivatives.append(s * z2 + second * z1 * z1)
        if len(series) > 2:
            third = s * (6.0 * a * a - 2.0)
            derivatives.append(s * series[2] + 3.0 * second * z1 * z2 + third * z1 * z1 * z1)
        out[axis] = derivatives
    return a, out
