"""Sample-wise reweighting of PINN residuals as optax transforms: RBA, vRBA and a gradient-aware variant.

Every transform of the family owns per-sample weights ``w`` in its state (``RBAState.weights``) and advances
them from the residuals it is handed; it returns the gradient ``updates`` unchanged, so it chains in front of
any optax optimizer. The training loss reads the weights back (:func:`sample_weights`) and multiplies each
residual by its weight *before* squaring (:func:`weighted_mse`), as the papers do.

The transforms are one machine (:func:`_reweighting_transform`) fed with different target functions: a target
maps a batch of absolute residuals (and, for the gradient-aware rule, per-sample gradient norms) to a
non-negative ``q``, and every rule then moves the weights by the same bounded exponential moving average toward
``eta / (1 - gamma) * q``, at a rate that a stored gradient SNR may slow down (``snr_coupling``).

Around the transforms:

* :func:`hold_weights` freezes the weights (quasi-Newton stages, whose curvature pairs must come from one loss)
  or advances them only every K-th update;
* :func:`required_extra_args` and :func:`weights_frozen` tell a training loop, from the state's *types* (static
  under ``jit``), which keyword arguments ``update`` needs;
* :func:`transfer_reweighting` carries the weights (and step count, stored SNR) from one optimizer stage's state
  into the next one's;
* :func:`carry_weights` moves the weights onto new collocation points (after a resampling redraw): each new
  point takes the weight of the nearest old one.

The keyword arguments the family reads are exactly :data:`EXTRA_ARG_NAMES`; optax's line searches forward every
extra keyword of ``update`` to ``value_fn``, which must therefore name each one it is handed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike

__all__ = [
    "EXTRA_ARG_NAMES",
    "FrozenWeightsState",
    "GradientAwareRBAState",
    "HeldWeightsState",
    "RBAState",
    "carry_weights",
    "gradient_aware_rba",
    "hold_weights",
    "nearest_points",
    "rba",
    "required_extra_args",
    "sample_weights",
    "transfer_reweighting",
    "vrba",
    "vrba_target",
    "weighted_mse",
    "weights_frozen",
]

Weights = Array | dict[str, Array]  # one (N,) array, or term name -> (N,) array

#: Every keyword argument that a transform of the family reads in ``update``. A training loop hands the family
#: only these; optax's line searches (L-BFGS, pinnkit's BFGS family) forward each extra keyword of ``update`` to
#: ``value_fn`` and raise ``TypeError`` for one that ``value_fn`` does not name as a parameter, so a
#: ``value_fn`` used next to a reweighting transform names (and ignores) the ones it is handed.
EXTRA_ARG_NAMES: tuple[str, ...] = ("residuals", "indices", "snr", "sample_gradient_norms")

_NORMALIZATIONS = ("max", "minmax")
_INITS = ("zeros", "residual")
_POTENTIALS = ("exponential", "linear")
_VRBA_NORMALIZATIONS = ("max", "mean")


class RBAState(NamedTuple):
    """State of the transforms of the RBA family (:func:`rba`, :func:`vrba`, :func:`gradient_aware_rba`).

    Attributes:
        weights: the per-sample weights: one array of shape ``(N,)``, or a dict term-name -> array. The
            field name is what :func:`sample_weights` and ``optax.tree.get(state, "weights")`` look for.
        count: number of updates applied so far (int32 scalar). vRBA's temperature anneals with it.
        snr: the last finite gradient SNR handed to ``update`` (float32 scalar; NaN until one is handed in).
            It sets the step modulation ``s = min(1, snr_coupling / snr)`` of every later update.
    """

    weights: Weights
    count: Array  # int32 scalar
    snr: Array  # float32 scalar, NaN until an SNR is handed in


class GradientAwareRBAState(RBAState):
    """State of :func:`gradient_aware_rba`: the fields of :class:`RBAState`; its type says that ``update``
    also needs ``sample_gradient_norms`` (see :func:`required_extra_args`). It is a subclass, so
    ``isinstance(state, RBAState)`` holds for every family state."""

    __slots__ = ()


class FrozenWeightsState(NamedTuple):
    """State of ``hold_weights(transform)`` (``every=None``): the wrapped state, never advanced.

    Attributes:
        inner: the state of the wrapped transform, as its ``init`` built it (or as
            :func:`transfer_reweighting` filled it).
    """

    inner: optax.OptState


class HeldWeightsState(NamedTuple):
    """State of ``hold_weights(transform, every=K)``.

    Attributes:
        inner: the state of the wrapped transform, advanced on the K-th, 2K-th, ... update only.
        count: number of updates seen by the wrapper (int32 scalar).
    """

    inner: optax.OptState
    count: Array  # int32 scalar


_FAMILY_STATE_NAMES = (RBAState.__name__, GradientAwareRBAState.__name__)


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


def _check_closed_unit(name: str, value: Any) -> None:
    if _is_traced(value):
        return
    number = _real(name, value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def _check_vrba_options(potential: Any, normalize: Any, temperature_scale: Any, temperature: Any, phi: Any) -> None:
    _check_choice("potential", potential, _POTENTIALS)
    _check_choice("normalize", normalize, _VRBA_NORMALIZATIONS)
    _check_open_interval("temperature_scale", temperature_scale, 0.0, None)
    if temperature is not None:
        _check_open_interval("temperature", temperature, 0.0, None)
    _check_closed_unit("phi", phi)


def _check_constant_init(init: Any, eta: Any, gamma: Any) -> None:
    """A number ``c`` as ``init`` (constant initial weights) must lie in ``[0, eta / (1 - gamma)]``."""
    if _is_traced(init):
        return
    value = _real("init", init)
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"init must be 'zeros', 'residual' or a number in [0, eta / (1 - gamma)], got {init!r}")
    if not (_is_traced(eta) or _is_traced(gamma)):
        cap = float(eta) / (1 - float(gamma))
        # eta / (1 - gamma) rounds below its exact value (1e-3 / (1 - 0.999) = 0.9999999999999991): the bound
        # itself, written as the user would, must pass.
        if value > cap * (1 + 1e-12):
            raise ValueError(f"init={init!r} exceeds the weight bound eta / (1 - gamma) = {cap!r}")


# ----------------------------------------------------------------------------------------------------------
# Targets: batch -> q >= 0 (in [0, 1] except vRBA's "mean" normalisation)


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


def _residual_target(abs_residuals: Array, *, count: Array, normalize: str) -> Array:
    """The RBA paper's target: ``q = |r| / max|r|`` (or the min-max variant)."""
    del count
    return _normalized(abs_residuals, normalize)


def _gradient_aware_target(
    abs_residuals: Array, *, count: Array, sample_gradient_norms: Array, normalize: str, gradient_power: ArrayLike
) -> Array:
    """``q = a * h / max(a * h)`` with ``a = normalize(|r|)`` and ``h = (g_ref / (g + g_ref)) ** p``."""
    del count
    residual_part = _normalized(abs_residuals, normalize)
    norms = jnp.abs(sample_gradient_norms).astype(abs_residuals.dtype)
    reference = jnp.median(norms)
    has_reference = reference > 0
    # No usable scale (most gradient norms zero): fall back to h = 1, i.e. plain RBA for this batch.
    safe_reference = jnp.where(has_reference, reference, 1)
    damping = jnp.where(has_reference, (safe_reference / (norms + safe_reference)) ** gradient_power, 1)
    return _normalized(residual_part * damping, "max")


def _vrba_target(
    abs_residuals: Array,
    *,
    count: Array,
    potential: str,
    normalize: str,
    temperature: ArrayLike | None,
    temperature_scale: ArrayLike,
    phi: ArrayLike,
) -> Array:
    """vRBA's target ``phi * qn + (1 - phi)``, ``qn`` the normalised ``Phi'(|r| / eps)`` (see :func:`vrba`)."""
    dtype = abs_residuals.dtype
    peak = jnp.max(abs_residuals)
    positive = peak > 0
    safe_peak = jnp.where(positive, peak, 1)
    if potential == "exponential":
        # exp(|r| / eps) / exp(max|r| / eps) = exp((|r| - max|r|) / eps): every value in (0, 1], the largest
        # exactly 1, and no overflow however small eps is.
        if temperature is None:
            # eps_n = c max|r| / log(n + 2), n = count + 1: (|r| - max|r|) / eps = (|r| - max|r|) / max|r| * L / c,
            # written so that neither eps nor the exponent is ever formed from a tiny or huge max|r|.
            log_n = jnp.log(count.astype(dtype) + 3)
            exponent = (abs_residuals - peak) / safe_peak * (log_n / temperature_scale)
            # An all-zero batch: every sample ties with the maximum, so all get q = 1.
            exponent = jnp.where(positive, exponent, 0)
        else:
            exponent = (abs_residuals - peak) / temperature
        q = jnp.exp(exponent)
    else:
        # Linear weights (quadratic potential): q = (|r| / eps) / (max|r| / eps); eps cancels. All-zero batch: 0.
        q = jnp.where(positive, abs_residuals / safe_peak, 0)
    if normalize == "mean":
        mean = jnp.mean(q)
        has_mass = mean > 0
        q = jnp.where(has_mass, q / jnp.where(has_mass, mean, 1), 0)
    return (phi * q + (1 - phi)).astype(dtype)


# ----------------------------------------------------------------------------------------------------------
# The stored gradient SNR and the step modulation it drives


def _store_snr(stored: Array, snr: ArrayLike | None) -> Array:
    """The state's new ``snr``: the one handed in when it is finite, else the stored one."""
    if snr is None:
        return stored
    value = jax.lax.stop_gradient(jnp.asarray(snr))
    if value.ndim != 0:
        raise ValueError(f"snr must be a scalar, got shape {value.shape}")
    value = value.astype(stored.dtype)
    return jnp.where(jnp.isfinite(value), value, stored)


def _snr_step_scale(snr: Array, snr_coupling: ArrayLike | None) -> Array | None:
    """``s = min(1, snr_coupling / snr)``; None (no modulation) if ``snr_coupling`` is None; snr <= 0 or NaN -> 1."""
    if snr_coupling is None:
        return None
    usable = snr > 0  # False for NaN (nothing stored yet)
    return jnp.where(usable, jnp.minimum(1.0, snr_coupling / jnp.where(usable, snr, 1.0)), 1.0)


# ----------------------------------------------------------------------------------------------------------
# The shared machine


def _reweighting_transform(
    num_samples: int | Mapping[str, int],
    *,
    eta: ArrayLike,
    gamma: ArrayLike,
    init: str | ArrayLike,
    target_fn: Callable[..., Array],
    per_sample_args: tuple[str, ...] = (),
    snr_coupling: ArrayLike | None = None,
    snr_warmup: int | None = None,
    target_bound: Callable[[int], float] = lambda size: 1.0,
    state_type: type[RBAState] = RBAState,
    name: str,
) -> optax.GradientTransformationExtraArgs:
    """The RBA family: ``w <- (1 - s (1 - gamma)) w + s eta q`` with ``q = target_fn(|r|, count=...)``.

    ``q`` lies in ``[0, target_bound(N)]`` for a term of ``N`` samples (1 for every rule but vRBA's "mean"
    normalisation). ``s = min(1, snr_coupling / snr)`` from the stored ``snr`` (s = 1, written as the paper's
    ``gamma w + eta q``, when ``snr_coupling`` is None, no SNR is stored, or s rounds to 1). Each name in
    ``per_sample_args`` is a required keyword argument of ``update`` structured like ``residuals``; its per-term,
    stop-gradiented value reaches ``target_fn`` under that name. ``init`` is "zeros", "residual" or a number
    (constant initial weights); the caller has validated it.
    """
    sizes = _sample_sizes(num_samples)
    _check_open_interval("eta", eta, 0.0, None)
    _check_open_interval("gamma", gamma, 0.0, 1.0)
    if snr_coupling is not None:
        _check_open_interval("snr_coupling", snr_coupling, 0.0, None)
    if snr_warmup is None:
        snr_warmup = 0 if _is_traced(gamma) else math.ceil(1.0 / (1.0 - float(gamma)) - 1e-9)
    elif isinstance(snr_warmup, bool) or not isinstance(snr_warmup, int) or snr_warmup < 0:
        raise ValueError(f"snr_warmup must be a non-negative integer, got {snr_warmup!r}")
    from_residual = isinstance(init, str) and init == "residual"
    initial_value = 0.0 if isinstance(init, str) else init

    def init_fn(params: optax.Params) -> RBAState:
        del params
        dtype = jnp.result_type(float)
        weights = {term: jnp.full((size,), initial_value, dtype) for term, size in sizes.items()}
        return state_type(
            weights=_pack(weights), count=jnp.zeros([], jnp.int32), snr=jnp.full((), jnp.nan, jnp.float32)
        )

    def update_fn(
        updates: optax.Updates,
        state: RBAState,
        params: optax.Params | None = None,
        *,
        residuals: Any,
        indices: Any = None,
        snr: ArrayLike | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, RBAState]:
        del params
        missing = [arg for arg in per_sample_args if extra_args.get(arg) is None]
        if missing:
            raise TypeError(f"{name}.update requires the keyword argument(s) {missing}")
        residual_terms = _split_terms(residuals, sizes, "residuals")
        index_terms = _split_indices(indices, sizes)
        per_sample = {arg: _split_terms(extra_args[arg], sizes, arg) for arg in per_sample_args}
        stored_snr = _store_snr(state.snr, snr)
        scale = _snr_step_scale(stored_snr, snr_coupling)
        if scale is not None and snr_warmup:
            scale = jnp.where(state.count >= snr_warmup, scale, 1.0)
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
            target = target_fn(abs_residuals, count=state.count, **term_args).astype(weights.dtype)

            current = weights if idx is None else weights[idx]
            advanced = gamma * current + eta * target
            if scale is not None:
                modulated = (1 - scale * (1 - gamma)) * current + scale * eta * target
                advanced = jnp.where(scale < 1, modulated, advanced)
            if from_residual:
                # The paper's init 2 (eta = 1 on the first update), capped so the weights keep the bound.
                advanced = jnp.where(state.count == 0, jnp.minimum(1.0, cap) * target, advanced)
            # Rounding guard: in exact arithmetic the update already never exceeds the bound.
            advanced = jnp.minimum(advanced, cap * target_bound(sizes[term])).astype(weights.dtype)
            new_weights[term] = advanced if idx is None else weights.at[idx].set(advanced)

        return updates, state_type(
            weights=_pack(new_weights), count=optax.safe_int32_increment(state.count), snr=stored_snr
        )

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
    _check_choice("normalize", normalize, _NORMALIZATIONS)
    _check_choice("init", init, _INITS)
    return _reweighting_transform(
        num_samples,
        eta=eta,
        gamma=gamma,
        init=init,
        target_fn=functools.partial(_residual_target, normalize=normalize),
        snr_coupling=snr_coupling,
        snr_warmup=snr_warmup,
        name="rba",
    )


def vrba(
    num_samples: int | Mapping[str, int],
    *,
    potential: str = "exponential",
    eta: ArrayLike = 1e-3,
    gamma: ArrayLike = 0.999,
    temperature_scale: ArrayLike = 1.0,
    temperature: ArrayLike | None = None,
    phi: ArrayLike = 1.0,
    snr_coupling: ArrayLike | None = None,
    snr_warmup: int | None = None,
    normalize: str = "max",
    init: str | ArrayLike = "zeros",
) -> optax.GradientTransformationExtraArgs:
    r"""Variational residual-based attention (vRBA): weights from a convex potential of the residual.

    Toscano, Chen, Oommen, Darbon, Karniadakis, "A variational framework for residual-based adaptivity in
    neural PDE solvers and operator learning", npj Artificial Intelligence 2, 32 (2026), arXiv 2509.14198.
    A convex potential ``Phi`` of the residual picks the error the training targets; the sampling (here:
    weighting) distribution it induces is ``q ∝ Phi'(|r| / eps)``, with a temperature ``eps`` that anneals.
    Per batch of absolute residuals ``a_i = |r_i|`` (stop-gradiented), on the ``n``-th update (``n = 1, 2, ...``,
    i.e. ``count + 1``)::

        potential="exponential":  Phi(u) = exp(u),     q_i ∝ exp(a_i / eps)    targets the uniform (max) error
        potential="linear":       Phi(u) = u**2 + 1,   q_i ∝ a_i / eps         targets the quadratic error

        eps_n = c * max_j a_j / log(n + 2)       (temperature=None, c = temperature_scale; or a fixed eps)

        qn_i = q_i / max_j q_j                   (normalize="max", the public code)
        qn_i = q_i / mean_j q_j                  (normalize="mean", the paper's density normalisation)

        t_i  = phi * qn_i + (1 - phi)
        w_i <- gamma * w_i + eta * t_i           (times the SNR rate s, as in rba)

    With the annealed temperature the exponential target is ``qn_i = (n + 2) ** ((a_i / max a - 1) / c)``: at
    first close to uniform, it concentrates on the largest residuals as ``n`` grows. The linear target is
    RBA's ``a_i / max a`` (``eps`` cancels). Where each choice comes from:

    * ``q ∝ Phi'(r / eps)``, the three steps "update q, update the model, anneal eps", and the normalised
      exponential ``q = exp(r / eps) / ∫ exp(r / eps)``: the paper, Methods, "Variational residual-based
      attention methods", "Update the tilted distribution", eq. (12).
    * Which potential targets which error (exponential: L-infinity; linear weights, i.e. the quadratic
      potential of RAD/RBA: quadratic error), and ``eps`` for the exponential being free ("any"): the paper's
      abstract and the potential table of the NABLA-SciML vRBA README (jdtoscano94/NABLA-SciML,
      ``vRBA_variational_residual_based_attention_PINNs_Operator_learning/README.md``). That code names the
      linear-weights case ``"quadratic"`` (its potential) and uses ``"linear"`` for the uniform baseline
      ``Phi(r) = r``; here ``potential`` names the weights, as the paper's abstract does.
    * ``eps = c_log * max|r| / log(it + 2)`` with ``it = 1, 2, ...`` the Adam iteration, ``c_log = 1``; the
      target ``phi * q / max q + (1 - phi)`` with ``phi = 1``; the EMA ``gamma * lambda + eta * target`` with
      ``eta = 0.01``, ``gamma = 0.999``; initial weights 0.1: ``update_vRBA`` in the code cell "vRBA Steps 1 &
      3" of ``vRBA/Allen_Cahn/PINNs_clean.ipynb`` (cell index 16; commit 75a4f68) and of
      ``vRBA_.../Burgers_Demo.ipynb`` (cell index 22), the same in
      ``vRBA_.../PINN/Potential_analysis/AC/AC_SNR.py``. (``vRBA/Burgers/SS_vRBA.ipynb``, cell index 10, takes
      the log of the time *coordinate* ``t`` instead of ``it``; its cell 35 uses ``it``.)

    The exponential is evaluated as ``exp((a_i - max a) / eps)``, in (0, 1] with the largest exactly 1, so it
    never overflows; the annealed exponent is formed as ``(a_i - max a) / max a * log(n + 2) / c``, so tiny
    (1e-30) and huge (1e30) residuals give the same weights as moderate ones. An all-zero batch ties every
    sample with the maximum: the exponential target is uniform (``qn = 1``, as in the code), the linear one
    is 0 (the weights decay, as in :func:`rba`).

    * **Scale invariance:** with the annealed temperature (``eps`` proportional to ``max a``) both potentials
      give the same weights for ``r`` and ``k r`` (k > 0). A fixed ``temperature`` makes the exponential
      depend on the residuals' scale (``eps`` is then in residual units); the linear potential never does.
    * **Bounds:** ``normalize="max"`` keeps ``qn`` and ``t`` in [0, 1], so the weights stay in
      ``[0, eta / (1 - gamma)]`` as in :func:`rba`. The paper's density normalisation ``"mean"`` gives
      ``mean(qn) = 1`` (the weights' mean tends to ``eta / (1 - gamma)``), but a single sample may carry up to
      ``qn = N`` (the batch size): its weights are not bounded independently of ``N`` (unbounded as ``N``
      grows). The bound enforced there is the one that holds exactly, ``w <= N * eta / (1 - gamma)`` for a
      term of ``N`` samples (batches with ``indices`` have at most ``N``).
    * **Defaults:** ``eta = 1e-3, gamma = 0.999`` keep the code's time constant ``1 / (1 - gamma) = 1000``
      with pinnkit's weight scale ``eta / (1 - gamma) = 1`` (the bound of :func:`rba`). The code uses
      ``eta = 0.01`` (bound 10) and absorbs the scale elsewhere: its Allen-Cahn script starts the
      initial-condition weight at ``bound ** 2 = 100`` and then adapts it to the ratio of gradient norms, its
      Burgers demo imposes the initial condition exactly; the weight scale then acts as a global loss factor,
      to which Adam is nearly blind. pinnkit weights only the residual terms, so the bound 1 keeps them
      balanced against the unweighted ones as :func:`rba` does. ``eta=0.01, init=0.1`` give the code's
      weights.
    * **With a quasi-Newton stage that holds the weights** (the default of a plan such as ``adam+ssbroyden``):
      by the end of the first stage the annealed exponential target has concentrated on the largest residuals,
      and held weights then leave most points nearly out of the loss; a weighted loss near zero no longer means
      a solved PDE. ``phi < 1`` (e.g. 0.5) keeps every point in it (measured in ``docs/reweighting.md``).
    * **Annealing clock:** the temperature follows this transform's own ``count``: under
      ``hold_weights(..., every=K)`` it anneals once per actual weight update. :func:`transfer_reweighting`
      carries ``count`` into the next stage (the code restarts its clock in the SSBroyden stage).
    * Mini-batches (``indices``: ``max a`` and the normalisation are the batch's), the one-step lag, the SNR
      coupling, ``init="residual"`` and the L-BFGS pattern are as in :func:`rba`.
    * The paper's importance *sampling* (its quasi-Newton stage draws the points with probability growing with
      the target and trains on the unweighted loss) is a resampling density here:
      ``pinnkit.sampling.Resampling(..., potential="exponential")`` draws with :func:`vrba_target`.
    * Not here: the paper's other potentials (``cosh``, ``(1 + r) log(1 + r) - r``, ``exp(r**2)``, whose
      temperatures the code solves for by Newton iterations).

    Args:
        num_samples: as in :func:`rba`: an int, or a mapping term-name -> int for per-term weights.
        potential: ``"exponential"`` (the paper's default) or ``"linear"`` (linear weights).
        eta: the step toward the target, > 0.
        gamma: the decay of the running weights, in (0, 1).
        temperature_scale: ``c > 0`` of the annealed temperature (the code's ``c_log``); larger is smoother.
        temperature: None (annealed, the code) or a fixed ``eps > 0`` in residual units (exponential only;
            ignored by the linear potential, where it cancels).
        phi: the share ``phi`` in [0, 1] of the potential's target; ``1 - phi`` is spread uniformly.
        snr_coupling: the reference SNR of the step modulation (as in :func:`rba`), or None.
        snr_warmup: updates before the modulation acts (as in :func:`rba`).
        normalize: ``"max"`` (bounded, the code) or ``"mean"`` (the paper's density normalisation).
        init: ``"zeros"``, ``"residual"`` (the first update sets ``w = min(1, eta / (1 - gamma)) * t``) or a
            number in ``[0, eta / (1 - gamma)]`` (constant initial weights, as the code's 0.1).

    Returns:
        An ``optax.GradientTransformationExtraArgs`` with state :class:`RBAState` and the ``update`` of
        :func:`rba`. Under ``optax.inject_hyperparams``, pass ``static_args="num_samples"``; strings and None
        stay static by themselves.

    Example:
        >>> import jax.numpy as jnp, numpy as np, optax
        >>> from pinnkit.reweight import sample_weights, vrba
        >>> optimizer = optax.chain(vrba(3, eta=0.1, gamma=0.5), optax.adam(1e-3))
        >>> state = optimizer.init(jnp.zeros(2))
        >>> _, state = optimizer.update(jnp.ones(2), state, residuals=jnp.array([1.0, -2.0, 4.0]))
        >>> # n = 1: qn = 3 ** (|r| / 4 - 1) = [0.4387, 0.5774, 1]; w = 0.1 * qn
        >>> print(np.round(np.asarray(sample_weights(state), float), 4))
        [0.0439 0.0577 0.1   ]
    """
    _check_vrba_options(potential, normalize, temperature_scale, temperature, phi)
    if isinstance(init, str):
        _check_choice("init", init, _INITS)
    else:
        _check_constant_init(init, eta, gamma)
    target_bound = (lambda size: float(size)) if normalize == "mean" else (lambda size: 1.0)
    return _reweighting_transform(
        num_samples,
        eta=eta,
        gamma=gamma,
        init=init,
        target_fn=functools.partial(
            _vrba_target,
            potential=potential,
            normalize=normalize,
            temperature=temperature,
            temperature_scale=temperature_scale,
            phi=phi,
        ),
        snr_coupling=snr_coupling,
        snr_warmup=snr_warmup,
        target_bound=target_bound,
        name="vrba",
    )


def vrba_target(
    abs_residuals: ArrayLike,
    update: ArrayLike,
    *,
    potential: str = "exponential",
    temperature_scale: ArrayLike = 1.0,
    temperature: ArrayLike | None = None,
    phi: ArrayLike = 1.0,
    normalize: str = "max",
) -> Array:
    r"""vRBA's target ``t = phi * qn + (1 - phi)`` for one batch of absolute residuals, on the ``update``-th update.

    The function :func:`vrba` moves its weights toward (``update = count + 1``); exposed so that a sampler can
    draw points with probability growing with it (the paper's importance sampling; see
    :class:`pinnkit.sampling.Resampling`'s ``potential="exponential"``). With the annealed temperature
    ``eps_n = c * max|r| / log(n + 2)`` the exponential target is ``qn_i = (n + 2) ** ((a_i / max a - 1) / c)``;
    the formulas, bounds and guards are those of :func:`vrba`.

    Args:
        abs_residuals: the batch's ``|r_i|`` (non-negative).
        update: ``n >= 1``, the annealing clock.
        potential, temperature_scale, temperature, phi, normalize: as in :func:`vrba`.

    Returns:
        ``t`` with the residuals' shape: in ``[1 - phi, 1]`` for ``normalize="max"``.

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> from pinnkit.reweight import vrba_target
        >>> # n = 1: 3 ** (|r| / 4 - 1)
        >>> print(np.round(np.asarray(vrba_target(jnp.array([1.0, 2.0, 4.0]), 1)), 4))
        [0.4387 0.5774 1.    ]
    """
    _check_vrba_options(potential, normalize, temperature_scale, temperature, phi)
    if not _is_traced(update) and not _real("update", update) >= 1:
        raise ValueError(f"update must be at least 1 (the first update is 1), got {update!r}")
    values = jnp.asarray(abs_residuals)
    if not jnp.issubdtype(values.dtype, jnp.floating):
        values = values.astype(jnp.result_type(float))
    count = jnp.asarray(update) - 1
    return _vrba_target(values, count=count, potential=potential, normalize=normalize, temperature=temperature,
                        temperature_scale=temperature_scale, phi=phi)


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
    _check_choice("normalize", normalize, _NORMALIZATIONS)
    _check_choice("init", init, _INITS)
    if not _is_traced(gradient_power) and not _real("gradient_power", gradient_power) >= 0:
        raise ValueError(f"gradient_power must be >= 0, got {gradient_power!r}")
    return _reweighting_transform(
        num_samples,
        eta=eta,
        gamma=gamma,
        init=init,
        target_fn=functools.partial(
            _gradient_aware_target, normalize=normalize, gradient_power=gradient_power
        ),
        per_sample_args=("sample_gradient_norms",),
        snr_coupling=snr_coupling,
        snr_warmup=snr_warmup,
        state_type=GradientAwareRBAState,
        name="gradient_aware_rba",
    )


# ----------------------------------------------------------------------------------------------------------
# Holding the weights fixed


def hold_weights(
    transform: optax.GradientTransformation, every: int | None = None
) -> optax.GradientTransformationExtraArgs:
    """Hold the weights of a reweighting transform fixed, or advance them only every ``every``-th update.

    Quasi-Newton stages (L-BFGS, BFGS) build curvature pairs from gradient differences, which mean something
    only if the loss does not change between the two gradients; moving weights change it every step.

    * ``every=None``: the weights never move. The state is :class:`FrozenWeightsState` ``(inner)``; ``update``
      returns ``updates`` and the state unchanged and ignores ``residuals``, ``snr``, ``indices``, ... : it may be
      called with none of them (``residuals=None`` too), and :func:`required_extra_args` then asks for none.
    * ``every=K`` (int >= 1): the wrapped transform is advanced once every ``K`` updates, on the K-th, 2K-th,
      ... update, with the arguments handed to that update only (the residuals of the held updates in between
      leave no trace; an ``snr`` handed to a held update is dropped). The state is :class:`HeldWeightsState`
      ``(inner, count)``. The choice is made under ``jit`` from ``count``, so ``residuals`` (and whatever else
      the wrapped transform needs) must come on every call. ``K = 1`` advances on every update: the plain
      transform. vRBA's temperature anneals with the inner ``count``, i.e. once per actual advance.

    ``updates`` always pass through unchanged: wrap a transform of this module (or one wrapped in
    ``optax.inject_hyperparams``), not a chain that also rescales the gradient. :func:`sample_weights` and
    :func:`transfer_reweighting` see through both wrappers.

    Args:
        transform: a transform of the RBA family (:func:`rba`, :func:`vrba`, :func:`gradient_aware_rba`),
            possibly inside ``optax.inject_hyperparams``.
        every: None (frozen) or a positive int ``K``.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose state is :class:`FrozenWeightsState` (``every=None``)
        or :class:`HeldWeightsState`.

    Raises:
        TypeError: ``transform`` is not a gradient transformation or its state holds no RBA-family state (at
            ``init``), or ``every`` is not an int; ``update`` of ``every=K`` without ``residuals``.
        ValueError: ``every < 1``.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from pinnkit.reweight import hold_weights, rba, sample_weights, transfer_reweighting
        >>> adam_stage = optax.chain(rba(2, eta=0.1, gamma=0.5), optax.adam(1e-3))
        >>> state = adam_stage.init(jnp.zeros(1))
        >>> _, state = adam_stage.update(jnp.ones(1), state, residuals=jnp.array([1.0, 2.0]))
        >>> lbfgs_stage = optax.chain(hold_weights(rba(2, eta=0.1, gamma=0.5)), optax.lbfgs())
        >>> frozen = transfer_reweighting(state, lbfgs_stage.init(jnp.zeros(1)))
        >>> sample_weights(frozen)  # carried over, and held while L-BFGS runs
        Array([0.05, 0.1 ], dtype=float32)
    """
    if not (callable(getattr(transform, "init", None)) and callable(getattr(transform, "update", None))):
        raise TypeError(f"transform must be an optax gradient transformation, got {transform!r}")
    period = None if every is None else _positive_int("every", every)
    inner = optax.with_extra_args_support(transform)

    def checked_init(params: optax.Params) -> optax.OptState:
        state = inner.init(params)
        if not _family_states(state):
            raise TypeError(
                f"hold_weights wraps an RBA-family transform (rba, vrba, gradient_aware_rba); the state of "
                f"{transform!r} holds none"
            )
        return state

    if period is None:

        def frozen_init(params: optax.Params) -> FrozenWeightsState:
            return FrozenWeightsState(inner=checked_init(params))

        def frozen_update(
            updates: optax.Updates, state: FrozenWeightsState, params: optax.Params | None = None, **extra_args: Any
        ) -> tuple[optax.Updates, FrozenWeightsState]:
            del params, extra_args
            return updates, state

        return optax.GradientTransformationExtraArgs(frozen_init, frozen_update)

    def held_init(params: optax.Params) -> HeldWeightsState:
        return HeldWeightsState(inner=checked_init(params), count=jnp.zeros([], jnp.int32))

    def held_update(
        updates: optax.Updates,
        state: HeldWeightsState,
        params: optax.Params | None = None,
        *,
        residuals: Any = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, HeldWeightsState]:
        if residuals is None:
            raise TypeError(
                f"hold_weights(every={period}).update requires residuals on every call (whether this call "
                f"advances the weights is decided under jit)"
            )
        count = optax.safe_int32_increment(state.count)
        advance = count % period == 0
        _, advanced = inner.update(updates, state.inner, params, residuals=residuals, **extra_args)
        new_inner = jax.tree.map(lambda new, old: jnp.where(advance, new, old), advanced, state.inner)
        return updates, HeldWeightsState(inner=new_inner, count=count)

    return optax.GradientTransformationExtraArgs(held_init, held_update)


# ----------------------------------------------------------------------------------------------------------
# Finding the family state: declared needs, frozen or not, carrying it across stages


def _family_states(tree: Any, frozen: bool = False) -> list[tuple[RBAState, bool]]:
    """Every RBA-family state in ``tree`` with whether it sits inside a :class:`FrozenWeightsState`."""
    kinds = (RBAState, FrozenWeightsState)
    found: list[tuple[RBAState, bool]] = []
    for node in jax.tree_util.tree_leaves(tree, is_leaf=lambda node: isinstance(node, kinds)):
        if isinstance(node, FrozenWeightsState):
            found.extend(_family_states(node.inner, frozen=True))
        elif isinstance(node, RBAState):
            found.append((node, frozen))
    return found


def required_extra_args(opt_state: optax.OptState) -> frozenset[str]:
    """The keyword arguments that ``update`` needs for the reweighting inside ``opt_state``.

    Decided by the state's types only (static under ``jit``, no trial trace): empty when ``opt_state`` holds no
    RBA-family state or when it sits in a :class:`FrozenWeightsState`; ``{"residuals"}`` for :func:`rba` and
    :func:`vrba` (also under ``hold_weights(..., every=K)``); ``{"residuals", "sample_gradient_norms"}`` for
    :func:`gradient_aware_rba` (:class:`GradientAwareRBAState`). Optional arguments (``indices``, ``snr``) are not
    listed; every name comes from :data:`EXTRA_ARG_NAMES`. Several family states give the union of their needs.

    Args:
        opt_state: any optax optimizer state (chains, ``optax.inject_hyperparams``, vmapped stacks ...).

    Returns:
        A frozenset of argument names.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> from pinnkit.reweight import gradient_aware_rba, hold_weights, required_extra_args, vrba
        >>> sorted(required_extra_args(optax.chain(gradient_aware_rba(4), optax.adam(1e-3)).init(jnp.zeros(1))))
        ['residuals', 'sample_gradient_norms']
        >>> required_extra_args(optax.chain(hold_weights(vrba(4)), optax.lbfgs()).init(jnp.zeros(1)))
        frozenset()
    """
    needs: set[str] = set()
    for state, frozen in _family_states(opt_state):
        if frozen:
            continue
        needs.add("residuals")
        if isinstance(state, GradientAwareRBAState):
            needs.add("sample_gradient_norms")
    return frozenset(needs)


def weights_frozen(opt_state: optax.OptState) -> bool:
    """Whether the reweighting in ``opt_state`` is frozen (its family state sits in a :class:`FrozenWeightsState`).

    Args:
        opt_state: any optax optimizer state.

    Returns:
        True when ``opt_state`` holds at least one RBA-family state and every one sits inside a
        :class:`FrozenWeightsState`; False otherwise (no family state, moving weights, or
        ``hold_weights(..., every=K)``).

    Example:
        >>> import jax.numpy as jnp
        >>> from pinnkit.reweight import hold_weights, rba, weights_frozen
        >>> weights_frozen(hold_weights(rba(3)).init(None)), weights_frozen(rba(3).init(None))
        (True, False)
    """
    states = _family_states(opt_state)
    return bool(states) and all(frozen for _, frozen in states)


def _only_family_state(tree: Any, which: str) -> RBAState | None:
    states = _family_states(tree)
    if len(states) > 1:
        raise ValueError(f"{which} holds {len(states)} RBA-family states; transfer_reweighting needs at most one")
    return states[0][0] if states else None


def _cast_like(value: ArrayLike, like: ArrayLike) -> Array:
    return jnp.asarray(value, dtype=jnp.result_type(like))


def transfer_reweighting(source_state: optax.OptState, target_state: optax.OptState) -> optax.OptState:
    """``target_state`` with its RBA-family state replaced by the one in ``source_state``.

    Carries the weights, the step count (vRBA's annealing clock) and the stored SNR from one optimizer stage to
    the next (Adam -> L-BFGS, say), wherever each family state sits: plain, inside ``optax.chain``,
    ``optax.inject_hyperparams`` or the :func:`hold_weights` wrappers. The target keeps its own state type
    (an ``rba`` state may fill a ``gradient_aware_rba`` one: the fields are the same) and its dtypes (the
    source's values are cast to them). Vmapped (stacked) states work alike: every leaf then has the leading
    model axis, which must match. Works under ``jit``.

    Args:
        source_state: the optimizer state to take the family state from.
        target_state: the optimizer state to put it into.

    Returns:
        The new target state; ``target_state`` itself when either holds no family state.

    Raises:
        ValueError: either state holds more than one family state, or the weights differ in structure (terms)
            or any field differs in shape (the message names both shapes).

    Example:
        >>> import jax.numpy as jnp
        >>> from pinnkit.reweight import rba, transfer_reweighting
        >>> source = rba(2, eta=0.1, gamma=0.5).update(None, rba(2).init(None), residuals=jnp.array([1.0, 2.0]))[1]
        >>> target = transfer_reweighting(source, rba(2).init(None))
        >>> target.weights, int(target.count)
        (Array([0.05, 0.1 ], dtype=float32), 1)
        >>> transfer_reweighting(source, rba(3).init(None))
        Traceback (most recent call last):
        ...
        ValueError: transfer_reweighting: weights: source shape (2,), target shape (3,)
    """
    source = _only_family_state(source_state, "source_state")
    target = _only_family_state(target_state, "target_state")
    if source is None or target is None:
        return target_state
    fields = []
    for field, source_field, target_field in zip(RBAState._fields, source, target, strict=True):
        source_tree = jax.tree_util.tree_structure(source_field)
        target_tree = jax.tree_util.tree_structure(target_field)
        if source_tree != target_tree:
            raise ValueError(
                f"transfer_reweighting: {field}: source structure {source_tree}, target structure {target_tree}"
            )
        for source_leaf, target_leaf in zip(
            jax.tree_util.tree_leaves(source_field), jax.tree_util.tree_leaves(target_field), strict=True
        ):
            if jnp.shape(source_leaf) != jnp.shape(target_leaf):
                raise ValueError(
                    f"transfer_reweighting: {field}: source shape {jnp.shape(source_leaf)}, "
                    f"target shape {jnp.shape(target_leaf)}"
                )
        fields.append(jax.tree.map(_cast_like, source_field, target_field))
    replacement = type(target)(*fields)
    return jax.tree_util.tree_map(
        lambda node: replacement if isinstance(node, RBAState) else node,
        target_state,
        is_leaf=lambda node: isinstance(node, RBAState),
    )


def nearest_points(old_points: ArrayLike, new_points: ArrayLike, *, scale: ArrayLike | None = None,
                   chunk: int = 1024) -> Array:
    """For each new point, the index of the nearest old point (Euclidean distance after dividing by ``scale``).

    Ties go to the lowest index. Memory is bounded by ``chunk`` new points at a time. Works under ``jit``.

    Args:
        old_points: array ``(N, d)``.
        new_points: array ``(M, d)``.
        scale: per-coordinate lengths ``(d,)`` (e.g. the domain's extent), so that no coordinate dominates the
            distance by its units; default 1.
        chunk: new points per block.

    Returns:
        An int32 array ``(M,)`` of indices into ``old_points``.

    Example:
        >>> import jax.numpy as jnp
        >>> nearest_points(jnp.array([[0.0], [1.0], [2.0]]), jnp.array([[1.9], [0.2], [0.9]]))
        Array([2, 0, 1], dtype=int32)
    """
    old = jnp.asarray(old_points)
    new = jnp.asarray(new_points)
    if old.ndim != 2 or new.ndim != 2 or old.shape[1] != new.shape[1]:
        raise ValueError(f"nearest_points needs (N, d) and (M, d) arrays, got shapes {old.shape} and {new.shape}")
    if old.shape[0] == 0:
        raise ValueError("nearest_points: old_points is empty")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    dtype = jnp.result_type(old.dtype, new.dtype, float)
    old, new = old.astype(dtype), new.astype(dtype)
    if scale is not None:
        scale = jnp.asarray(scale, dtype)
        if scale.shape != (old.shape[1],):
            raise ValueError(f"scale must have shape ({old.shape[1]},), got {scale.shape}")
        old, new = old / scale, new / scale
    count = new.shape[0]
    blocks = -(-count // chunk)
    padded = jnp.concatenate([new, jnp.zeros((blocks * chunk - count, new.shape[1]), dtype)])
    old_norms = jnp.sum(old * old, axis=1)

    def block(rows: Array) -> Array:
        # |a - b|^2 = |a|^2 - 2 a.b + |b|^2; |a|^2 is the same for every candidate of a row, so it is left out.
        distances = old_norms[None, :] - 2 * rows @ old.T
        return jnp.argmin(distances, axis=1).astype(jnp.int32)

    indices = jax.lax.map(block, padded.reshape(blocks, chunk, -1)).reshape(-1)
    return indices[:count]


def carry_weights(opt_state: optax.OptState, old_points: ArrayLike, new_points: ArrayLike, *,
                  term: str | None = None, scale: ArrayLike | None = None) -> optax.OptState:
    """``opt_state`` with its per-sample weights moved onto new collocation points: each new point takes the
    weight of the nearest old point.

    A weight belongs to a place in the domain, not to an index: it is a moving average of that place's
    normalised residual, and residuals vary smoothly. After a resampling redraw (RAD) the weights at the old
    indices would otherwise be applied to unrelated new points. The step count (vRBA's annealing clock) and the
    stored SNR are kept. Every RBA-family state is moved (plain, chained, inside :func:`hold_weights` or
    ``optax.inject_hyperparams``); a vmapped (stacked) state has its weights gathered along the last axis for
    every model alike. A state without a family state is returned unchanged.

    Args:
        opt_state: any optax optimizer state.
        old_points: the points the weights belong to, ``(N, d)``.
        new_points: the new points, ``(M, d)``; the weights become ``(M,)``, so the transform that continues
            must have been built for ``M`` samples (a redraw keeps the count).
        term: for weights kept per term (a dict), the term the points belong to; the other terms are kept.
            None (the default) requires weights that are one array.
        scale: per-coordinate lengths for the distance (see :func:`nearest_points`).

    Returns:
        The new optimizer state.

    Raises:
        ValueError: the weights do not match ``old_points`` in length, or the term is missing or ambiguous.

    Example:
        >>> import jax.numpy as jnp
        >>> transform = rba(3, eta=0.1, gamma=0.5)
        >>> state = transform.update(None, transform.init(None), residuals=jnp.array([1.0, 2.0, 4.0]))[1]
        >>> old = jnp.array([[0.0], [1.0], [2.0]])
        >>> carry_weights(state, old, jnp.array([[2.1], [2.0], [-1.0]])).weights
        Array([0.1  , 0.1  , 0.025], dtype=float32)
    """
    if not _family_states(opt_state):
        return opt_state
    old = jnp.asarray(old_points)
    indices = nearest_points(old, new_points, scale=scale)

    def gather(values: Array, label: str) -> Array:
        if values.shape[-1] != old.shape[0]:
            raise ValueError(f"carry_weights: the weights{label} have {values.shape[-1]} samples, old_points "
                             f"{old.shape[0]}")
        return jnp.take(values, indices, axis=-1)

    def move(state: RBAState) -> RBAState:
        weights = state.weights
        if isinstance(weights, dict):
            if term is None or term not in weights:
                raise ValueError(f"carry_weights: the weights are kept per term {sorted(weights)}; pass term= "
                                 f"one of them (got {term!r})")
            weights = dict(weights, **{term: gather(weights[term], f" of term {term!r}")})
        else:
            if term is not None:
                raise ValueError(f"carry_weights: the weights are one array, not per term; got term={term!r}")
            weights = gather(weights, "")
        return state._replace(weights=weights)

    return jax.tree_util.tree_map(lambda node: move(node) if isinstance(node, RBAState) else node, opt_state,
                                  is_leaf=lambda node: isinstance(node, RBAState))


# ----------------------------------------------------------------------------------------------------------
# Reading the weights, using them


def _is_rba_weights(path: tuple, value: Any) -> bool:
    del value
    last = path[-1] if path else None
    return isinstance(last, optax.tree_utils.NamedTupleKey) and last.tuple_name in _FAMILY_STATE_NAMES


def sample_weights(opt_state: optax.OptState) -> Weights | None:
    """The per-sample weights held by the RBA-family state inside ``opt_state``; None if there is none.

    Searches the whole state (``optax.chain``, ``optax.inject_hyperparams``, :func:`hold_weights`, nested
    tuples, a vmapped stack of states ...) with ``optax.tree.get``, restricted to the fields of
    :class:`RBAState` and :class:`GradientAwareRBAState` so that another transform's ``weights`` entry is never
    mistaken for them. (In optax 0.2.8 ``optax.tree.get`` returns its default when the key is absent and raises
    ``KeyError`` when it appears more than once.)

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
