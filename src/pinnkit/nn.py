"""Equinox networks for PINNs: a tanh MLP with the paper's initialisation, Fourier features, the modified MLP.

Every network maps ONE point ``x`` of shape ``(in_size,)`` to ``(out_size,)``; batching is ``jax.vmap``. Every
network can also return its hidden activations (``model.activations(x)``), which the information diagnostics bin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from pinnkit.validation import is_integer, positive_int

__all__ = ["MLP", "ModifiedMLP", "FourierFeatures", "xavier_normal", "ACTIVATIONS"]

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "tanh": jnp.tanh,
    "sin": jnp.sin,
    "gelu": jax.nn.gelu,
    "swish": jax.nn.swish,
    "softplus": jax.nn.softplus,
}


def _activation(name: str | Callable[[Array], Array]) -> Callable[[Array], Array]:
    if callable(name):
        return name
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def xavier_normal(linear: eqx.nn.Linear, key: PRNGKeyArray) -> eqx.nn.Linear:
    """Replace a linear layer's weight by Xavier-normal draws, std = sqrt(2 / (fan_in + fan_out)).

    Biases keep Equinox's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), which is also PyTorch's default and what the
    paper's code leaves in place.

    Example:
        >>> import equinox as eqx, jax
        >>> layer = xavier_normal(eqx.nn.Linear(2, 64, key=jax.random.key(0)), jax.random.key(1))
        >>> layer.weight.shape
        (64, 2)
    """
    fan_out, fan_in = linear.weight.shape
    std = jnp.sqrt(2.0 / (fan_in + fan_out))
    weight = std * jax.random.normal(key, linear.weight.shape, linear.weight.dtype)
    return eqx.tree_at(lambda layer: layer.weight, linear, weight)


def _linear(in_size: int, out_size: int, key: PRNGKeyArray, dtype) -> eqx.nn.Linear:
    init_key, weight_key = jax.random.split(key)
    return xavier_normal(eqx.nn.Linear(in_size, out_size, key=init_key, dtype=dtype), weight_key)


class FourierFeatures(eqx.Module):
    """Random Fourier feature embedding x -> [cos(B x), sin(B x)] with a fixed B ~ N(0, scale^2).

    ``B`` is a constant of the module (a static field), not a parameter: no optimizer ever sees or moves it.

    Example:
        >>> import jax
        >>> embed = FourierFeatures(2, 32, scale=1.0, key=jax.random.key(0))
        >>> embed(jax.numpy.zeros(2)).shape
        (64,)
        >>> jax.tree_util.tree_leaves(embed)
        []
    """

    # A nested tuple: hashable, so Equinox can keep it out of the parameters.
    frequencies: tuple[tuple[float, ...], ...] = eqx.field(static=True)

    def __init__(self, in_size: int, num_features: int, *, scale: float = 1.0, key: PRNGKeyArray, dtype=None):
        positive_int("num_features", num_features)
        dtype = dtype or jnp.zeros(()).dtype
        drawn = scale * jax.random.normal(key, (num_features, in_size), dtype)
        self.frequencies = tuple(tuple(float(value) for value in row) for row in np.asarray(drawn))

    @property
    def out_size(self) -> int:
        return 2 * len(self.frequencies)

    def __call__(self, x: Float[Array, " in_size"]) -> Float[Array, " out_size"]:
        projected = jnp.asarray(self.frequencies, x.dtype) @ x
        return jnp.concatenate([jnp.cos(projected), jnp.sin(projected)])


class _InputMap(eqx.Module):
    """Affine map of the problem's domain onto [-1, 1]^d, an exact periodic embedding of chosen axes, then an
    optional Fourier embedding.

    A periodic axis (period: the domain's width along it) enters as ``(cos(pi x), sin(pi x))`` of its mapped
    coordinate, so the network is periodic in it by construction. The bounds and the axes are constants (static
    fields): the map is part of the network's definition, not a trainable layer.
    """

    lower: tuple[float, ...] | None = eqx.field(static=True)
    upper: tuple[float, ...] | None = eqx.field(static=True)
    fourier: FourierFeatures | None
    periodic: tuple[int, ...] = eqx.field(static=True, default=())

    def scale_and_shift(self, dtype) -> tuple[Array, Array] | None:
        """``(scale, shift)`` with ``mapped = x * scale + shift``, or None without bounds."""
        if self.lower is None:
            return None
        lower = np.asarray(self.lower, float)
        upper = np.asarray(self.upper, float)
        scale = 2.0 / (upper - lower)
        return jnp.asarray(scale, dtype), jnp.asarray(-1.0 - lower * scale, dtype)

    def __call__(self, x: Array) -> Array:
        affine = self.scale_and_shift(x.dtype)
        if affine is not None:
            x = x * affine[0] + affine[1]
        if self.periodic:
            features = []
            for axis in range(x.shape[-1]):
                if axis in self.periodic:
                    features += [jnp.cos(jnp.pi * x[axis]), jnp.sin(jnp.pi * x[axis])]
                else:
                    features.append(x[axis])
            x = jnp.stack(features)
        if self.fourier is not None:
            x = self.fourier(x)
        return x


def _input_map(in_size, domain, fourier_features, fourier_scale, key, dtype, periodic=()) -> tuple[_InputMap, int]:
    lower = upper = None
    if domain is not None:
        lower, upper = (np.asarray(bound, float) for bound in domain)
        if lower.shape != (in_size,) or upper.shape != (in_size,):
            raise ValueError(f"domain bounds must have shape ({in_size},), got {lower.shape} and {upper.shape}")
        if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
            raise ValueError(f"domain bounds must be finite, got {domain}")
        if not np.all(upper > lower):
            raise ValueError(f"domain upper bounds must exceed lower bounds, got {domain}")
        lower, upper = tuple(float(v) for v in lower), tuple(float(v) for v in upper)
    periodic = tuple(sorted(set(periodic or ())))
    for axis in periodic:
        if not is_integer(axis) or not 0 <= axis < in_size:
            raise ValueError(f"periodic axes must be input indices in [0, {in_size}), got {axis!r}")
    if periodic and domain is None:
        raise ValueError("a periodic axis needs the domain (its period is the domain's width)")
    fourier = None
    width_in = in_size + len(periodic)
    if fourier_features:
        fourier = FourierFeatures(width_in, fourier_features, scale=fourier_scale, key=key, dtype=dtype)
        width_in = fourier.out_size
    return _InputMap(lower, upper, fourier, periodic), width_in


def _check_sizes(in_size: int, out_size: int, width: int, depth: int) -> None:
    for name, value in (("in_size", in_size), ("out_size", out_size), ("width", width), ("depth", depth)):
        positive_int(name, value)


class MLP(eqx.Module):
    """Fully connected PINN network: ``depth`` hidden layers of ``width`` units, Xavier-normal weights.

    Args:
        in_size: number of inputs (the problem's coordinates).
        out_size: number of outputs.
        width: units per hidden layer.
        depth: number of hidden layers (the paper: 6 x 128).
        activation: a name from :data:`ACTIVATIONS` or a callable (default tanh, as the paper).
        domain: optional ``(lower, upper)`` bounds; inputs are mapped affinely onto [-1, 1] first.
        fourier_features: optional number of random Fourier features (0 or None: none).
        fourier_scale: standard deviation of the Fourier frequencies.
        periodic: input axes in which the network is exactly periodic, with the domain's width as period (needs
            ``domain``); e.g. ``(0,)`` for Allen-Cahn's x.
        key: PRNG key.
        dtype: parameter dtype (default: JAX's default float).

    Example:
        >>> import jax
        >>> model = MLP(2, 1, width=16, depth=2, key=jax.random.key(0))
        >>> model(jax.numpy.array([0.1, 0.2])).shape
        (1,)
        >>> [a.shape for a in model.activations(jax.numpy.array([0.1, 0.2]))]
        [(16,), (16,)]
    """

    input_map: _InputMap
    layers: tuple[eqx.nn.Linear, ...]
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        *,
        width: int = 64,
        depth: int = 4,
        activation: str | Callable[[Array], Array] = "tanh",
        domain: tuple[Sequence[float], Sequence[float]] | None = None,
        fourier_features: int | None = None,
        fourier_scale: float = 1.0,
        periodic: Sequence[int] = (),
        key: PRNGKeyArray,
        dtype=None,
    ):
        _check_sizes(in_size, out_size, width, depth)
        dtype = dtype or jnp.zeros(()).dtype
        embed_key, *layer_keys = jax.random.split(key, depth + 2)
        self.input_map, width_in = _input_map(in_size, domain, fourier_features, fourier_scale, embed_key, dtype,
                                              periodic)
        sizes = [width_in] + [width] * depth + [out_size]
        self.layers = tuple(
            _linear(n_in, n_out, layer_key, dtype)
            for n_in, n_out, layer_key in zip(sizes[:-1], sizes[1:], layer_keys, strict=True)
        )
        self.activation = _activation(activation)

    def activations(self, x: Float[Array, " in_size"]) -> list[Float[Array, " width"]]:
        """The hidden activations of every hidden layer at one point, input side first."""
        hidden = self.input_map(x)
        outputs = []
        for layer in self.layers[:-1]:
            hidden = self.activation(layer(hidden))
            outputs.append(hidden)
        return outputs

    def __call__(self, x: Float[Array, " in_size"]) -> Float[Array, " out_size"]:
        hidden = self.input_map(x)
        for layer in self.layers[:-1]:
            hidden = self.activation(layer(hidden))
        return self.layers[-1](hidden)


class ModifiedMLP(eqx.Module):
    """The modified MLP with U/V gating (Wang, Teng and Perdikaris 2021).

    ``U = act(W_u x + b_u)``, ``V = act(W_v x + b_v)``, then each hidden layer ``z = act(W h + b)`` is gated as
    ``h = z * U + (1 - z) * V``. Same arguments as :class:`MLP`.

    Example:
        >>> import jax
        >>> model = ModifiedMLP(2, 1, width=16, depth=3, key=jax.random.key(0))
        >>> model(jax.numpy.zeros(2)).shape
        (1,)
    """

    input_map: _InputMap
    gate_u: eqx.nn.Linear
    gate_v: eqx.nn.Linear
    layers: tuple[eqx.nn.Linear, ...]
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        *,
        width: int = 64,
        depth: int = 4,
        activation: str | Callable[[Array], Array] = "tanh",
        domain: tuple[Sequence[float], Sequence[float]] | None = None,
        fourier_features: int | None = None,
        fourier_scale: float = 1.0,
        periodic: Sequence[int] = (),
        key: PRNGKeyArray,
        dtype=None,
    ):
        _check_sizes(in_size, out_size, width, depth)
        dtype = dtype or jnp.zeros(()).dtype
        embed_key, u_key, v_key, *layer_keys = jax.random.split(key, depth + 4)
        self.input_map, width_in = _input_map(in_size, domain, fourier_features, fourier_scale, embed_key, dtype,
                                              periodic)
        self.gate_u = _linear(width_in, width, u_key, dtype)
        self.gate_v = _linear(width_in, width, v_key, dtype)
        sizes = [width_in] + [width] * depth + [out_size]
        self.layers = tuple(
            _linear(n_in, n_out, layer_key, dtype)
            for n_in, n_out, layer_key in zip(sizes[:-1], sizes[1:], layer_keys, strict=True)
        )
        self.activation = _activation(activation)

    def activations(self, x: Float[Array, " in_size"]) -> list[Float[Array, " width"]]:
        """The gated hidden activations of every hidden layer at one point, input side first."""
        features = self.input_map(x)
        gate_u = self.activation(self.gate_u(features))
        gate_v = self.activation(self.gate_v(features))
        hidden = features
        outputs = []
        for layer in self.layers[:-1]:
            z = self.activation(layer(hidden))
            hidden = z * gate_u + (1.0 - z) * gate_v
            outputs.append(hidden)
        return outputs

    def __call__(self, x: Float[Array, " in_size"]) -> Float[Array, " out_size"]:
        return self.layers[-1](self.activations(x)[-1])
