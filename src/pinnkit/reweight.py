"""Sample-wise reweighting of PINN residuals as optax transforms: RBA and a gradient-aware variant.

Both transforms own per-sample weights ``w`` in their state (``RBAState.weights``) and advance them from
the residuals they are handed; they return the gradient ``updates`` unchanged, so they chain in front of any
optax optimizer. The training loss reads the weights back (:func:`sample_weights`) and multiplies each
residual by its weight *before* squaring (:func:`weighted_mse`), as the paper does.

The two transforms are one machine (:func:`_reweighting_transform`) fed with different target functions: a
target maps a batch of absolute residuals (and, for the gradient-aware rule, per-sample gradient norms) to
``q`` in [0, 1], and every rule then moves the weights by the same bounded exponential moving average toward
``eta / (1 - gamma) * q``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike

__all__ = ["RBAState", "rba", "gradient_aware_rba", "sample_weights", "weighted_mse"]

Weights = Array | dict[str, Array]  # one (N,) array, or term name -> (N,) array

_NORMALIZATIONS = ("max", "minmax")
_INITS = ("zeros", "residual")


class RBAState(NamedTuple):
    """State of every transform of the RBA family (:func:`rba`, :func:`gradient_aware_rba`).

    Attributes:
        weights: the per-sample weights: one array of shape ``(N,)``, or a dict term-name -> array. The
            field name is what :func:`sample_weights` and ``optax.tree.get(state, "weights")`` look for.
        count: number of updates applied so far (int32 scalar).
    """

    weights: Weights
    count: Array  # int32 scalar


# ----------------------------------------------------------------------------------------------------------
# Validation


def _is_traced(value: Any) -> bool:
    # Hyperparameters arrive as tracers under optax.inject_hyperparams + jit: they cannot be range-checked.
    return isinstance(value, jax.core.Tracer)


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool | str | bytes):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def _check_open_interval(name: str, value: Any, low: float, high: float | None) -> None:
    if _is_traced(value):
        return
    number = _real(name, value)
    if not (number > low and (high is None or number < high)):
        interval = f"in ({low}, {high})" if high is not None else f"> {low}"
        raise ValueError(f"{name} must be {interval}, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    try:
        number = int(value.__index__())
    except (AttributeError, TypeError):
        raise TypeError(f"{name} must be a positive int, got {value!r}") from None
    if number <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return number


def _sample_sizes(num_samples: int | Mapping[str, int]) -> dict[str | None, int]:
    """Return {term: size}; the single-array case is the one key ``None``."""
    if isinstance(num_samples, Mapping):
        if not num_samples:
            raise ValueError("num_samples must not be an empty mapping")
        sizes: dict[str | None, int] = {}
        for term, size in num_samples.items():
            if not isinstance(term, str):
                raise TypeError(f"num_samples keys must be str term names, got {term!r}")
            sizes[term] = _positive_int(f"num_samples[{term!r}]", size)
        return sizes
    return {None: _positive_int("num_samples", num_samples)}


def _split_terms(tree: Any, sizes: dict[str | None, int], what: str) -> dict[str | None, Any]:
    """View ``tree`` (an array, or a mapping with at least the weighted terms) as {term: value}."""
    if None in sizes:
        if isinstance(tree, Mapping):
            raise TypeError(
                f"{what} must be one array because the weights are one array (num_samples={sizes[None]}), "
                f"got a mapping with keys {sorted(tree)}"
            )
        return {None: tree}
    if not isinstance(tree, Mapping):
        raise TypeError(f"{what} must be a mapping with the terms {sorted(sizes)}, got {type(tree).__name__}")
    missing = [term for term in sizes if term not in tree]
    if missing:
        raise ValueError(f"{what} lacks the weighted terms {missing}; it has {sorted(tree)}")
    return {term: tree[term] for term in sizes}


def _split_indices(indices: Any, sizes: dict[str | None, int]) -> dict[str | None, Any]:
    if indices is None:
        return dict.fromkeys(sizes)
    if None in sizes:
        if isinstance(indices, Mapping):
            raise TypeError(
                f"indices must be one int array for single-array weights, got keys {sorted(indices)}"
            )
        return {None: indices}
    if not isinstance(indices, Mapping):
        raise TypeError(
            f"indices must be a mapping term -> int array for dict weights, got {type(indices).__name__}"
        )
    unknown = [term for term in indices if term not in sizes]
    if unknown:
        raise ValueError(
            f"indices names terms {unknown} that carry no weights; weighted terms: {sorted(sizes)}"
        )
    # Terms absent from ``indices`` are updated in full.
    return {term: indices.get(term) for term in sizes}


def _term_label(term: str | None) -> str:
    return "" if term is None else f"[{term!r}]"


def _check_batch(values: Array, indices: Array | None, size: int, what: str, term: str | None) -> None:
    label = f"{what}{_term_label(term)}"
    if indices is None:
        if values.shape != (size,):
            raise ValueError(f"{label} must have shape ({size},), got {values.shape}")
        return
    if indices.ndim != 1 or not jnp.issubdtype(indices.dtype, jnp.integer):
        raise ValueError(
            f"indices{_term_label(term)} must be a 1-D int array, got {indices.dtype}{indices.shape}"
        )
    if values.shape != indices.shape:
        raise ValueError(
            f"{label} must match indices{_term_label(term)} in shape {indices.shape}, got {values.shape}"
        )
    if indices.shape[0] == 0:
        raise ValueError(f"indices{_term_label(term)} must not be empty")


# ----------------------------------------------------------------------------------------------------------
# Targets: batch -> q in [0, 1]


def _normalized(values: Array, normalize: str) -> Array:
    """Map non-negative ``values`` to [0, 1]: ``v / max v`` or ``(v - min v) / (max v - min v)``.

    A batch with nothing to normalise by (all zeros for "max", constant for "minmax") maps to 0: the division
    is guarded, so the weights stay finite and simply decay that step.
    """
    if normalize == "max":
        offset = jnp.zeros((), values.dtype)
        span = jnp.max(values)
    else:
        offset = jnp.min(values)
        span = jnp.max(values) - offset
    positive = span > 0
    return jnp.where(positive, (values - offset) / jnp.where(positive, span, 1), 0).astype(values.dtype)


def _residual_target(abs_residuals: Array, *, normalize: str) -> Array:
    """The paper's target: ``q = |r| / max|r|`` (or the min-max variant)."""
    return _normalized(abs_residuals, normalize)


def _gradient_aware_target(
    abs_residuals: Array, *, sample_gradient_norms: Array, normalize: str, gradient_power: ArrayLike
) -> Array:
    """``q = a * h / max(a * h)`` with ``a = normalize(|r|)`` and ``h = (g_ref / (g + g_ref)) ** p``."""
    residual_part = _normalized(abs_residuals, normalize)
    norms = jnp.abs(sample_gradient_norms).astype(abs_residuals.dtype)
    reference = jnp.median(norms)
    has_reference = reference > 0
    # No usable scale (most gradient norms zero): fall back to h = 1, i.e. plain RBA for this batch.
    safe_reference = jnp.where(has_reference, reference, 1)
    damping = jnp.where(has_reference, (safe_reference / (norms + safe_reference)) ** gradient_power, 1)
    return _normalized(residual_part * damping, "max")


def _snr_step_scale(snr: ArrayLike | None, snr_coupling: ArrayLike | None) -> Array | None:
    """``s = min(1, snr_coupling / snr)``; None (no modulation) if either is None; snr <= 0 or NaN -> 1."""
    if snr is None or snr_coupling is None:
        return None
    snr = jax.lax.stop_gradient(jnp.asarray(snr))
    if snr.ndim != 0:
        raise ValueError(f"snr must be a scalar, got shape {snr.shape}")
    usable = snr > 0
    return jnp.where(usable, jnp.minimum(1.0, snr_coupling / jnp.where(usable, snr, 1.0)), 1.0)


# ----------------------------------------------------------------------------------------------------------
# The shared machine


def _reweighting_transform(
    num_samples: int | Mapping[str, int],
    *,
    eta: ArrayLike,
    gamma: ArrayLike,
    init: str,
    target_fn: Callable[..., Array],
    per_sample_args: tuple[str, ...] = (),
    step_scale_fn: Callable[[dict[str, Any]], Array | None] | None = None,
    name: str,
) -> optax.GradientTransformationExtraArgs:
    """The RBA family: ``w <- (1 - s (1 - gamma)) w + s eta q`` with ``q = target_fn(|r|, ...)`` in [0, 1].

    ``s`` is ``step_scale_fn(extra_args)`` in [0, 1] (None -> s = 1, written as the paper's
    ``gamma w + eta q``). Each name in ``per_sample_args`` is a required keyword argument of ``update``
    structured like ``residuals``; its per-term, stop-gradiented value reaches ``target_fn`` under that name.
    """
    sizes = _sample_sizes(num_samples)
    _check_open_interval("eta", eta, 0.0, None)
    _check_open_interval("gamma", gamma, 0.0, 1.0)
    _check_choice("init", init, _INITS)

    def init_fn(params: optax.Params) -> RBAState:
        del params
        weights = {term: jnp.zeros((size,)) for term, size in sizes.items()}
        return RBAState(weights=_pack(weights), count=jnp.zeros([], jnp.int32))

    def update_fn(
        updates: optax.Updates,
        state: RBAState,
        params: optax.Params | None = None,
        *,
        residuals: Any,
        indices: Any = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, RBAState]:
        del params
        missing = [arg for arg in per_sample_args if extra_args.get(arg) is None]
        if missing:
            raise TypeError(f"{name}.update requires the keyword argument(s) {missing}")
        residual_terms = _split_terms(residuals, sizes, "residuals")
        index_terms = _split_indices(indices, sizes)
        per_sample = {arg: _split_terms(extra_args[arg], sizes, arg) for arg in per_sample_args}
        scale = None if step_scale_fn is None else step_scale_fn(extra_args)
        cap = eta / (1 - gamma)
        weight_terms = _unpack(state.weights, sizes)

        new_weights = {}
        for term, weights in weight_terms.items():
            idx = index_terms[term]
            idx = None if idx is None else jnp.asarray(idx)
            abs_residuals = jnp.abs(jax.lax.stop_gradient(jnp.asarray(residual_terms[term])))
            _check_batch(abs_residuals, idx, sizes[term], "residuals", term)
            term_args = {}
            for arg in per_sample_args:
                value = jax.lax.stop_gradient(jnp.asarray(per_sample[arg][term]))
                _check_batch(value, idx, sizes[term], arg, term)
                term_args[arg] = value
            target = target_fn(abs_residuals, **term_args).astype(weights.dtype)

            current = weights if idx is None else weights[idx]
            if scale is None:
                advanced = gamma * current + eta * target
            else:
                advanced = (1 - scale * (1 - gamma)) * current + scale * eta * target
            if init == "residual":
                # The paper's init 2 (eta = 1 on the first update), capped so the weights keep the bound.
                advanced = jnp.where(state.count == 0, jnp.minimum(1.0, cap) * target, advanced)
            # Rounding guard: in exact arithmetic the update already never exceeds the cap.
            advanced = jnp.minimum(advanced, cap).astype(weights.dtype)
            new_weights[term] = advanced if idx is None else weights.at[idx].set(advanced)

        return updates, RBAState(weights=_pack(new_weights), count=optax.safe_int32_increment(state.count))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _pack(terms: dict[str | None, Array]) -> Weights:
    return terms[None] if None in terms else dict(terms)


def _unpack(weights: Weights, sizes: dict[str | None, int]) -> dict[str | None, Array]:
    return {None: weights} if None in sizes else {term: weights[term] for term in sizes}


# ----------------------------------------------------------------------------------------------------------
# Public transforms


def rba(
    num_samples: int | Mapping[str, int],
    *,
    eta: ArrayLike = 1e-3,
    gamma: ArrayLike = 0.999,
    normalize: str = "max",
    init: str = "zeros",
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
    * **L-BFGS:** optax's line searches forward extra keyword arguments to ``value_fn`` and raise
      ``TypeError`` for any that ``value_fn`` does not name as a parameter (``**kwargs`` does not count).
      Read the weights from the state before the step, freeze them into ``value_fn``, and let ``value_fn``
      name (and ignore) ``residuals`` and ``indices``::

          def value_fn(params, residuals=None, indices=None):
              return loss(params, frozen_weights)

      Take ``value, grad = jax.value_and_grad(value_fn)(params)`` fresh each step: while the weights move,
      ``optax.value_and_grad_from_state`` hands back the value the line search cached under the previous
      step's weights, and the zoom line search then stalls. It is exact only when the weights stay frozen
      for the whole L-BFGS phase (RBA left out of that chain).

    Args:
        num_samples: number of weighted samples: an int (weights are one array of shape ``(N,)``) or a
            mapping term-name -> int (weights are a dict of arrays with those keys; other residual terms stay
            unweighted).
        eta: the step toward the target, > 0.
        gamma: the decay of the running weights, in (0, 1).
        normalize: ``"max"`` (the paper) or ``"minmax"`` (the paper's Helmholtz variant).
        init: ``"zeros"`` (the paper's init 1) or ``"residual"`` (init 2).

    Returns:
        An ``optax.GradientTransformationExtraArgs`` with state :class:`RBAState`. Its
        ``update(updates, state, params=None, *, residuals, indices=None, **extra_args)`` takes ``residuals``
        structured like the weights (an array, or a dict with at least the weighted keys) and ``indices`` (an
        int array, or a dict term -> int array; terms absent from the dict are updated in full). Under
        ``optax.inject_hyperparams``, pass ``static_args="num_samples"``.

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
    _check_choice("normalize", normalize, _NORMALIZATIONS)
    return _reweighting_transform(
        num_samples,
        eta=eta,
        gamma=gamma,
        init=init,
        target_fn=functools.partial(_residual_target, normalize=normalize),
        name="rba",
    )


def gradient_aware_rba(
    num_samples: int | Mapping[str, int],
    *,
    eta: ArrayLike = 1e-3,
    gamma: ArrayLike = 0.999,
    gradient_power: ArrayLike = 1.0,
    snr_coupling: ArrayLike | None = None,
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
        s     = min(1, snr_coupling / snr)        (s = 1 when snr or snr_coupling is None)
        w_i  <-  (1 - s (1 - gamma)) w_i + s eta q_i

    ``h`` decreases in ``g`` and equals ``2 ** -p`` at the median; ``p = 0`` is plain :func:`rba`. ``s``
    scales the *rate* of the moving average, not its target: the fixed point stays ``eta / (1 - gamma) * q``
    for every ``snr`` and the weights stay in ``[0, eta / (1 - gamma)]``. A low batch-gradient SNR (the
    diffusion phase) gives ``s = 1``: the weights move at RBA's full rate; a high SNR (drift, diffusion
    equilibrium) gives ``s < 1``: they move less and hold their values. ``s = 1`` is exactly
    ``gamma w + eta q``. Everything else (bounds, the one-step lag, ``indices``, ``init``, the L-BFGS
    pattern, where ``value_fn`` must also name ``sample_gradient_norms`` and ``snr``) is as in :func:`rba`.

    Args:
        num_samples: as in :func:`rba`.
        eta: the step toward the target, > 0.
        gamma: the decay of the running weights, in (0, 1).
        gradient_power: ``p >= 0``, how strongly small gradient norms are favoured.
        snr_coupling: the reference SNR ``s_ref > 0`` of the step modulation, or None for no modulation (then
            ``snr`` is ignored).
        normalize: ``"max"`` or ``"minmax"`` for the residual part ``a``.
        init: ``"zeros"`` or ``"residual"`` (the first update sets ``w = min(1, eta / (1 - gamma)) * q``).

    Returns:
        An ``optax.GradientTransformationExtraArgs`` with state :class:`RBAState`. Its ``update(updates,
        state, params=None, *, residuals, sample_gradient_norms, snr=None, indices=None, **extra_args)``
        takes ``sample_gradient_norms`` structured like ``residuals`` (the same samples) and a scalar ``snr``.

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
    _check_choice("normalize", normalize, _NORMALIZATIONS)
    if not _is_traced(gradient_power) and not _real("gradient_power", gradient_power) >= 0:
        raise ValueError(f"gradient_power must be >= 0, got {gradient_power!r}")
    if snr_coupling is not None:
        _check_open_interval("snr_coupling", snr_coupling, 0.0, None)

    def step_scale(extra_args: dict[str, Any]) -> Array | None:
        return _snr_step_scale(extra_args.get("snr"), snr_coupling)

    return _reweighting_transform(
        num_samples,
        eta=eta,
        gamma=gamma,
        init=init,
        target_fn=functools.partial(
            _gradient_aware_target, normalize=normalize, gradient_power=gradient_power
        ),
        per_sample_args=("sample_gradient_norms",),
        step_scale_fn=step_scale,
        name="gradient_aware_rba",
    )


# ----------------------------------------------------------------------------------------------------------
# Reading the weights, using them


def _is_rba_weights(path: tuple, value: Any) -> bool:
    del value
    last = path[-1] if path else None
    return isinstance(last, optax.tree_utils.NamedTupleKey) and last.tuple_name == RBAState.__name__


def sample_weights(opt_state: optax.OptState) -> Weights | None:
    """The per-sample weights held by the RBA-family state inside ``opt_state``; None if there is none.

    Searches the whole state (``optax.chain``, ``optax.inject_hyperparams``, nested tuples, a vmapped stack
    of states ...) with ``optax.tree.get``, restricted to :class:`RBAState` fields so that another transform's
    ``weights`` entry is never mistaken for them. (In optax 0.2.8 ``optax.tree.get`` returns its default when
    the key is absent and raises ``KeyError`` when it appears more than once.)

    Args:
        opt_state: any optax optimizer state.

    Returns:
        The weights (an array, or a dict term -> array, as built), or None when the state holds no
        RBA-family state.

    Raises:
        ValueError: when the state holds more than one RBA-family state (the weights would be ambiguous).

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from pinnkit.reweight import rba, sample_weights
        >>> state = optax.chain(rba(4), optax.adam(1e-3)).init(jnp.zeros(2))
        >>> sample_weights(state)
        Array([0., 0., 0., 0.], dtype=float32)
        >>> sample_weights(optax.adam(1e-3).init(jnp.zeros(2))) is None
        True
    """
    try:
        return optax.tree.get(opt_state, "weights", default=None, filtering=_is_rba_weights)
    except KeyError:
        raise ValueError(
            "opt_state holds more than one RBA-family state; read the one you mean with "
            "optax.tree.get_all_with_path(opt_state, 'weights')"
        ) from None


def weighted_mse(
    residuals: ArrayLike | Mapping[str, ArrayLike],
    weights: ArrayLike | Mapping[str, ArrayLike] | None = None,
) -> Array:
    """The paper's loss ``mean((w * r) ** 2)``, the weight INSIDE the square; ``mean(r ** 2)`` unweighted.

    For a dict of residual terms the result is the sum over terms of each term's mean, weighted for the terms
    that ``weights`` names (``{"pde": w}`` weights the PDE residual and leaves ``"bc"`` plain, as the paper
    does). The weights are not stop-gradiented here: RBA weights come from the optimizer state, not from the
    parameters.

    Args:
        residuals: an array of residuals, or a mapping term -> array.
        weights: None, an array of the residuals' shape, or a mapping naming a subset of the residual terms.

    Returns:
        The scalar loss.

    Example:
        >>> import jax.numpy as jnp
        >>> from pinnkit.reweight import weighted_mse
        >>> weighted_mse(jnp.array([1.0, 2.0]), jnp.array([1.0, 0.5]))  # ((1*1)^2 + (0.5*2)^2) / 2
        Array(1., dtype=float32)
        >>> weighted_mse({"pde": jnp.array([2.0]), "bc": jnp.array([1.0, 3.0])}, {"pde": jnp.array([0.5])})
        Array(6., dtype=float32)
    """
    if isinstance(residuals, Mapping):
        if weights is not None and not isinstance(weights, Mapping):
            raise TypeError(f"weights must be a mapping when residuals is one, got {type(weights).__name__}")
        weights = weights or {}
        unknown = [term for term in weights if term not in residuals]
        if unknown:
            raise ValueError(f"weights name terms {unknown} absent from residuals {sorted(residuals)}")
        if not residuals:
            raise ValueError("residuals must not be an empty mapping")
        return sum(weighted_mse(residuals[term], weights.get(term)) for term in residuals)
    if isinstance(weights, Mapping):
        raise TypeError("weights is a mapping but residuals is one array")
    residuals = jnp.asarray(residuals)
    if weights is None:
        return jnp.mean(residuals**2)
    weights = jnp.asarray(weights)
    if weights.shape != residuals.shape:
        raise ValueError(f"weights shape {weights.shape} must equal residuals shape {residuals.shape}")
    return jnp.mean((weights * residuals) ** 2)
