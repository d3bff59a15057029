"""Variational residual-based attention (vRBA): weights from a convex potential of the residual.

Toscano, Chen, Oommen, Darbon, Karniadakis, "A variational framework for residual-based adaptivity in neural
PDE solvers and operator learning", arXiv 2509.14198. Where each formula comes from (the paper's equations,
the authors' code) and what the defaults measured: ``docs/reweighting.md``, section "vRBA".
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike

from pinnkit.reweight.checks import check_real, is_traced
from pinnkit.reweight.transform import reweighting_transform
from pinnkit.validation import choice, real

__all__ = ["POTENTIALS", "VRBA_NORMALIZATIONS", "vrba", "vrba_target"]

#: The weights vRBA derives from the potential: exponential (targets the max error) or linear (quadratic error).
POTENTIALS: tuple[str, ...] = ("exponential", "linear")
#: vRBA's normalisations of ``q``: by its maximum (bounded weights) or its mean (the paper's density).
VRBA_NORMALIZATIONS: tuple[str, ...] = ("max", "mean")


def _check_options(potential: Any, normalize: Any, temperature_scale: Any, temperature: Any, phi: Any) -> None:
    choice("potential", potential, POTENTIALS)
    choice("normalize", normalize, VRBA_NORMALIZATIONS)
    check_real("temperature_scale", temperature_scale, low=0.0, low_open=True)
    if temperature is not None:
        check_real("temperature", temperature, low=0.0, low_open=True)
    check_real("phi", phi, low=0.0, high=1.0)


def _target(
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

    A convex potential ``Phi`` of the residual picks the error the training targets; the weighting
    distribution it induces is ``q ∝ Phi'(|r| / eps)``, with a temperature ``eps`` that anneals. Per batch of
    absolute residuals ``a_i = |r_i|`` (stop-gradiented), on the ``n``-th update (``n = 1, 2, ...``, i.e.
    ``count + 1``)::

        potential="exponential":  Phi(u) = exp(u),     q_i ∝ exp(a_i / eps)    targets the uniform (max) error
        potential="linear":       Phi(u) = u**2 + 1,   q_i ∝ a_i / eps         targets the quadratic error

        eps_n = c * max_j a_j / log(n + 2)       (temperature=None, c = temperature_scale; or a fixed eps)

        qn_i = q_i / max_j q_j                   (normalize="max")
        qn_i = q_i / mean_j q_j                  (normalize="mean", the paper's density normalisation)

        t_i  = phi * qn_i + (1 - phi)
        w_i <- gamma * w_i + eta * t_i           (times the SNR rate s, as in rba)

    With the annealed temperature the exponential target is ``qn_i = (n + 2) ** ((a_i / max a - 1) / c)``: at
    first close to uniform, it concentrates on the largest residuals as ``n`` grows. The linear target is
    RBA's ``a_i / max a`` (``eps`` cancels): with ``normalize="max"`` and ``phi=1`` it is :func:`rba` step for
    step.

    * **Guards:** the exponential is evaluated as ``exp((a_i - max a) / eps)``, in (0, 1], so it never
      overflows, and tiny or huge residuals give the same weights as moderate ones. An all-zero batch gives the
      exponential target 1 (every sample ties with the maximum) and the linear one 0 (the weights decay).
    * **Scale invariance:** with the annealed temperature both potentials give the same weights for ``r`` and
      ``k r`` (k > 0); a fixed ``temperature`` (in residual units) makes the exponential scale-dependent.
    * **Bounds:** ``normalize="max"`` keeps the weights in ``[0, eta / (1 - gamma)]`` as in :func:`rba`.
      ``"mean"`` gives ``mean(qn) = 1`` but a single sample may carry up to ``qn = N`` (the batch size): the
      bound enforced is ``w <= N * eta / (1 - gamma)`` for a term of ``N`` samples.
    * **With a quasi-Newton stage that holds the weights** (``adam+ssbroyden``), the concentrated exponential
      target leaves most points nearly out of the loss; ``phi < 1`` (e.g. 0.5) keeps every point in it.
    * **Annealing clock:** the temperature follows this transform's own ``count`` (under
      ``hold_weights(..., every=K)`` once per actual weight update); ``transfer_reweighting`` carries it into
      the next stage.
    * Mini-batches (``indices``), the one-step lag, the SNR coupling, ``init="residual"`` and the L-BFGS
      pattern are as in :func:`rba`. Drawing points with the target instead (importance sampling) is
      ``pinnkit.sampling.Resampling(..., potential="exponential")``, through :func:`vrba_target`.

    Args:
        num_samples: as in :func:`rba`: an int, or a mapping term-name -> int for per-term weights.
        potential: ``"exponential"`` (the paper's default) or ``"linear"`` (linear weights).
        eta: the step toward the target, > 0.
        gamma: the decay of the running weights, in (0, 1).
        temperature_scale: ``c > 0`` of the annealed temperature; larger is smoother.
        temperature: None (annealed) or a fixed ``eps > 0`` in residual units (exponential only; ignored by the
            linear potential, where it cancels).
        phi: the share ``phi`` in [0, 1] of the potential's target; ``1 - phi`` is spread uniformly.
        snr_coupling: the reference SNR of the step modulation (as in :func:`rba`), or None.
        snr_warmup: updates before the modulation acts (as in :func:`rba`).
        normalize: ``"max"`` (bounded) or ``"mean"`` (the paper's density normalisation).
        init: ``"zeros"``, ``"residual"`` (the first update sets ``w = min(1, eta / (1 - gamma)) * t``) or a
            number in ``[0, eta / (1 - gamma)]`` (constant initial weights).

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
    _check_options(potential, normalize, temperature_scale, temperature, phi)
    target_bound = (lambda size: float(size)) if normalize == "mean" else (lambda size: 1.0)
    return reweighting_transform(
        num_samples,
        eta=eta,
        gamma=gamma,
        init=init,
        target_fn=functools.partial(
            _target,
            potential=potential,
            normalize=normalize,
            temperature=temperature,
            temperature_scale=temperature_scale,
            phi=phi,
        ),
        snr_coupling=snr_coupling,
        snr_warmup=snr_warmup,
        target_bound=target_bound,
        constant_init=True,
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
    _check_options(potential, normalize, temperature_scale, temperature, phi)
    if not is_traced(update) and not real("update", update, error=TypeError) >= 1:
        raise ValueError(f"update must be at least 1 (the first update is 1), got {update!r}")
    values = jnp.asarray(abs_residuals)
    if not jnp.issubdtype(values.dtype, jnp.floating):
        values = values.astype(jnp.result_type(float))
    count = jnp.asarray(update) - 1
    return _target(values, count=count, potential=potential, normalize=normalize, temperature=temperature,
                   temperature_scale=temperature_scale, phi=phi)
