r"""Dense quasi-Newton optimizers for PINNs as optax transforms: BFGS, self-scaled BFGS and self-scaled Broyden.

optax ships L-BFGS but no dense member of the Broyden family. This module adds one preconditioner,
:func:`scale_by_quasi_newton` (it returns ``H g`` like ``optax.scale_by_lbfgs``), whose method is a scaling rule
(:mod:`pinnkit.scaling_rules`: BFGS, SSBFGS, SSBroyden, or a rule of your own), and builds the optimizers from it
exactly like ``optax.lbfgs``: chained with a sign flip (or a learning rate) and a strong-Wolfe zoom line search
(:func:`quasi_newton_optimizer`; :func:`bfgs`, :func:`ssbfgs`, :func:`ssbroyden`)::

    opt = ssbroyden()
    state = opt.init(params)
    value_and_grad = optax.value_and_grad_from_state(f)
    for _ in range(n):
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=f)
        params = optax.apply_updates(params, updates)

The preconditioner keeps the dense inverse-Hessian approximation ``H`` (``n x n``, ``n`` the number of parameters,
flattened with ``jax.flatten_util.ravel_pytree``; dtype of the params) together with the previous flat params and
gradient. On call ``k`` it forms the secant pair

    s = x_k - x_{k-1},    y = g_k - g_{k-1},

updates ``H`` with it (first the update, then the preconditioning, so that a chained line search only ever sees
accepted steps), and returns ``H g_k``. The update and the scalars ``h_k, b_k, a_k`` that the rules read are in
:mod:`pinnkit.scaling_rules`; every member satisfies the secant condition ``H_{k+1} y = s``.

``s^T B s`` (in ``b_k``) is computed without the line-search step, from the identity ``s^T B s = (s^T g_{k-1})^2 /
(g_{k-1}^T H g_{k-1})`` (exact whenever ``s`` is parallel to ``H g_{k-1}``, whatever the step length or learning
rate), storing the scalar ``g_{k-1}^T H g_{k-1}`` of the direction it handed out. Right after ``H`` was reset to the
identity, ``b_k = s^T s / y^T s``.

Initial scaling. ``H_0 = I`` by default (``initial_scale=False``); the method's own ``tau_k`` rule then applies from
the first update on. ``initial_scale=True`` instead uses ``tau_0 = h_0 / (1 + a_0 theta_0)`` on the first update
after ``init`` or a reset (``= h_0`` for BFGS and SSBFGS): for BFGS exactly Nocedal & Wright eq. 6.20, ``H_0 <- (y^T
s / y^T y) I``. It fits ``H_0`` to the largest curvatures seen in ``y``, which leaves ``H`` too small along flat
directions, and BFGS corrects a too-small ``H`` slowly: it helps when ``I`` is far too small, not otherwise (the
measurements are in ``docs/training.md``). Independently, ``scale_init_precond=True`` shortens the very first
direction (taken with ``H_0 = I``) to ``min(1, 1/||g_0||) g_0``, the heuristic of ``optax.scale_by_lbfgs``, so the
line search's first trial step has length at most 1; it does not touch ``H``.

Safeguards (all branch-free with ``jnp.where``, so jit and vmap safe; nothing is printed or raised while tracing)
---------------------------------------------------------------------------------------------------------------
- Curvature failure: the update is skipped (``H`` unchanged, ``num_skipped`` += 1) unless
  ``y^T s > curvature_eps ||y|| ||s||`` (relative test; ``curvature_eps`` defaults to the machine epsilon of the
  dtype). The strong-Wolfe zoom line search guarantees ``y^T s > 0`` on the steps it accepts.
- Non-finite ``s`` or ``y`` (e.g. a NaN gradient): skipped the same way; a non-finite point is not stored as the
  previous point, so the state never holds a NaN (the returned direction ``H g`` is NaN when ``g`` is: use
  ``optax.apply_if_finite`` to drop such steps).
- Breakdown: when ``y^T H y <= 0``, or ``tau_k``/``phi_k`` or the new ``H`` is not finite, or a diagonal entry of
  the new ``H`` is not positive (a cheap necessary condition for positive definiteness), ``H`` is reset to
  ``(y^T s / y^T y) I`` (Nocedal & Wright eq. 6.20; ``I`` if that is not finite) and ``num_resets`` += 1.
- ``a_k`` is clipped at 0 (it is ``>= 0`` by Cauchy-Schwarz, rounding can make it slightly negative); a non-finite
  or non-positive ``b_k`` is replaced by 1.
- Symmetry: the update is assembled from symmetric outer products ``u u^T`` (``u_i u_j = u_j u_i`` exactly in
  floating point), so ``H`` stays exactly symmetric without an extra ``(H + H^T)/2`` pass over ``n^2`` entries.
- ``H y`` and ``H g`` are one ``n x 2`` matmul at ``Precision.HIGHEST`` (no TF32 on GPUs); the new direction
  ``H_{k+1} g`` is assembled from vectors instead of a second matmul, and the only ``n x n`` array built per step is
  the new ``H`` itself (XLA fuses the outer products into it).
- ``reset_every=m`` resets ``H`` to ``I`` every ``m`` calls (before using that call's pair, which then gets the
  initial scaling); :func:`reset_inverse_hessian` does the same on demand.

Memory: ``H`` has ``n^2`` entries (5000 parameters: 200 MB in float64), so :func:`scale_by_quasi_newton` refuses
more than ``max_parameters`` (default 20 000) at ``init``; :func:`dense_memory` is the run's estimate of it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from pinnkit.curvature import CurvatureRule
from pinnkit.scaling_rules import (
    BFGS,
    SCALING_RULES,
    SSBFGS,
    SSBROYDEN,
    ScalingRule,
    SecantScalars,
    broyden_scalars,
    scaling_rule,
)
from pinnkit.validation import positive_int, real

__all__ = [
    "CURVATURE",
    "METHODS",
    "QuasiNewtonState",
    "ScalingRule",
    "bfgs",
    "dense_memory",
    "quasi_newton_optimizer",
    "reset_inverse_hessian",
    "scale_by_quasi_newton",
    "ssbfgs",
    "ssbroyden",
]

METHODS = tuple(rule.name for rule in SCALING_RULES)
_HIGHEST = jax.lax.Precision.HIGHEST


class QuasiNewtonState(NamedTuple):
    """State of :func:`scale_by_quasi_newton`.

    Attributes:
        count: number of calls to ``update`` so far (int32 scalar).
        inverse_hessian: the dense inverse-Hessian approximation ``H``, shape ``(n, n)``, dtype of the params.
        prev_params: flat params of the previous call, shape ``(n,)``.
        prev_grad: flat gradient of the previous call, shape ``(n,)``.
        prev_ghg: ``g^T H g`` of the direction handed out on the previous call (used for ``b_k``); 0 after a reset.
        has_prev: whether ``prev_params``/``prev_grad`` hold a finite point to difference against (bool scalar).
        num_updates: updates applied to ``H`` since ``init`` or the last reset (int32; 0 means the next update
            gets the initial scaling).
        num_skipped: secant pairs rejected so far (curvature failure ``y^T s <= eps`` or non-finite ``s``/``y``);
            a call at the previous point (``s = 0``, e.g. a stalled line search after convergence) is not counted.
        num_resets: resets of ``H`` so far (breakdown safeguard, ``reset_every``, :func:`reset_inverse_hessian`).
        tau: ``tau_k`` of the last applied update (1 before the first).
        phi: ``phi_k`` of the last applied update (1 before the first).
    """

    count: jax.Array
    inverse_hessian: jax.Array
    prev_params: jax.Array
    prev_grad: jax.Array
    prev_ghg: jax.Array
    has_prev: jax.Array
    num_updates: jax.Array
    num_skipped: jax.Array
    num_resets: jax.Array
    tau: jax.Array
    phi: jax.Array


def _check_learning_rate(learning_rate: Any) -> None:
    if learning_rate is None or callable(learning_rate):
        return
    real("learning_rate", learning_rate, low=0, low_open=True, none=True)


# ----------------------------------------------------------------------------------------------------------
# The preconditioner


def scale_by_quasi_newton(
    *,
    method: str | ScalingRule = "bfgs",
    max_parameters: int = 20_000,
    initial_scale: bool = False,
    scale_init_precond: bool = True,
    reset_every: int | None = None,
    curvature_eps: float | None = None,
    tau: float | None = None,
    phi: float | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Dense quasi-Newton preconditioner: returns ``H g`` with ``H`` the inverse Hessian of a scaling rule's method.

    The counterpart of ``optax.scale_by_lbfgs`` (no sign flip, no step size): chain it with ``optax.scale(-1.0)``
    and a line search, as :func:`bfgs`, :func:`ssbfgs` and :func:`ssbroyden` do. Each call first updates ``H``
    with ``s = x_k - x_{k-1}``, ``y = g_k - g_{k-1}`` (nothing on the first call), then preconditions ``g_k``.
    Formulas and safeguards are in the module docstring, the rules in :mod:`pinnkit.scaling_rules`.

    Args:
        method: a :class:`~pinnkit.scaling_rules.ScalingRule`, or the name of a built-in one: ``"bfgs"``,
            ``"ssbfgs"`` (self-scaled BFGS, ``tau_k = min(1, 1/b_k)``) or ``"ssbroyden"`` (self-scaled Broyden).
        max_parameters: refuse (``ValueError`` at ``init``) params with more entries than this: ``H`` is dense.
        initial_scale: scale ``H_0 = I`` on the first update after ``init``/reset by ``tau_0 = h_0/(1 + a_0 theta_0)``
            (Nocedal & Wright eq. 6.20 for BFGS); default ``False``: ``H_0 = I``.
        scale_init_precond: shorten the very first direction to ``min(1, 1/||g_0||) g_0`` (as ``optax.lbfgs``).
        reset_every: reset ``H`` to the identity every this many calls (``None``: never).
        curvature_eps: skip the update unless ``y^T s > curvature_eps ||y|| ||s||``; default: machine epsilon of the
            params' dtype.
        tau: if given, use this constant ``tau_k`` for every update but the initial scaling (overrides the method).
        phi: if given, use this constant ``phi_k`` (overrides the method; ``tau=1, phi=1`` is BFGS, ``phi=0`` DFP).

    Returns:
        An ``optax.GradientTransformationExtraArgs`` with state :class:`QuasiNewtonState`; ``update`` needs
        ``params`` and ignores extra keyword arguments (``value``, ``grad``, ``value_fn``, ...).

    Raises:
        ValueError: for an unknown ``method`` or an out-of-range option (the message names the value), and at
            ``init`` for params with more than ``max_parameters`` entries or a non-floating dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> precond = scale_by_quasi_newton(method="ssbroyden")
        >>> params = jnp.array([1.0, 2.0])
        >>> state = precond.init(params)
        >>> direction, state = precond.update(2 * params, state, params)  # first call: H = I, direction ~ g
        >>> state.inverse_hessian.shape, int(state.count)
        ((2, 2), 1)
    """
    rule = scaling_rule(method)
    max_parameters = positive_int("max_parameters", max_parameters)
    reset_every = positive_int("reset_every", reset_every, none=True)
    curvature_eps = real("curvature_eps", curvature_eps, low=0, none=True)
    tau = real("tau", tau, low=0, low_open=True, none=True)
    phi = real("phi", phi, none=True)
    initial_scale = bool(initial_scale)
    scale_init_precond = bool(scale_init_precond)

    def init_fn(params: optax.Params) -> QuasiNewtonState:
        flat, _ = ravel_pytree(params)
        n = int(flat.size)
        if n == 0:
            raise ValueError("params have no entries: nothing to precondition")
        if n > max_parameters:
            raise ValueError(
                f"the params have {n} entries, more than max_parameters={max_parameters}: a dense "
                f"{n} x {n} inverse Hessian would hold {n * n} numbers; raise max_parameters or use optax.lbfgs"
            )
        if not jnp.issubdtype(flat.dtype, jnp.floating):
            raise ValueError(f"params must be real floating point, got dtype {flat.dtype}")
        dtype = flat.dtype
        int_zero = jnp.zeros((), jnp.int32)
        return QuasiNewtonState(
            count=int_zero,
            inverse_hessian=jnp.eye(n, dtype=dtype),
            prev_params=jnp.zeros(n, dtype),
            prev_grad=jnp.zeros(n, dtype),
            prev_ghg=jnp.zeros((), dtype),
            has_prev=jnp.zeros((), bool),
            num_updates=int_zero,
            num_skipped=int_zero,
            num_resets=int_zero,
            tau=jnp.ones((), dtype),
            phi=jnp.ones((), dtype),
        )

    def update_fn(
        updates: optax.Updates, state: QuasiNewtonState, params: optax.Params | None = None, **extra_args: Any
    ) -> tuple[optax.Updates, QuasiNewtonState]:
        del extra_args
        if params is None:
            raise ValueError("scale_by_quasi_newton needs params: call update(grad, state, params, ...)")
        H = state.inverse_hessian
        n = H.shape[-1]
        dtype = H.dtype
        g, unravel = ravel_pytree(updates)
        x, _ = ravel_pytree(params)
        g = g.astype(dtype)
        x = x.astype(dtype)
        eps = curvature_eps if curvature_eps is not None else float(jnp.finfo(dtype).eps)
        one = jnp.ones((), dtype)

        num_updates = state.num_updates
        prev_ghg = state.prev_ghg
        periodic = jnp.zeros((), bool)
        if reset_every is not None:
            periodic = (state.count > 0) & (state.count % reset_every == 0)
            H = jnp.where(periodic, jnp.eye(n, dtype=dtype), H)
            num_updates = jnp.where(periodic, 0, num_updates)
            prev_ghg = jnp.where(periodic, 0.0, prev_ghg)

        # The secant pair, sanitised so that no NaN flows into the algebra below.
        s = x - state.prev_params
        y = g - state.prev_grad
        finite_pair = jnp.all(jnp.isfinite(s)) & jnp.all(jnp.isfinite(y))
        moved = ~finite_pair | jnp.any(s != 0)  # a call at the same point (no step) is not a rejected pair
        s = jnp.where(finite_pair, s, 0.0)
        y = jnp.where(finite_pair, y, 0.0)
        ys = jnp.vdot(y, s)
        yy = jnp.vdot(y, y)
        curvature_ok = ys > eps * jnp.sqrt(yy) * jnp.linalg.norm(s)
        attempt = state.has_prev & finite_pair & curvature_ok

        # H y and H g in one pass over H.
        hyg = jnp.matmul(H, jnp.stack([y, g], axis=1), precision=_HIGHEST)
        hy, hg = hyg[:, 0], hyg[:, 1]
        yhy = jnp.vdot(y, hy)
        yhy_ok = jnp.isfinite(yhy) & (yhy > 0)
        ys_safe = jnp.where(attempt, ys, one)
        yhy_safe = jnp.where(yhy_ok, yhy, one)

        h = yhy_safe / ys_safe
        sg = jnp.vdot(s, state.prev_grad)
        ghg_safe = jnp.where(prev_ghg > 0, prev_ghg, one)
        b = jnp.where(prev_ghg > 0, sg * sg / (ghg_safe * ys_safe), jnp.vdot(s, s) / ys_safe)
        b = jnp.where(jnp.isfinite(b) & (b > 0), b, one)
        a = jnp.maximum(b * h - 1.0, 0.0)
        first = num_updates == 0
        tau_k, phi_k = broyden_scalars(rule, SecantScalars(a, b, h, n), first, initial_scale=initial_scale,
                                       tau=tau, phi=phi)
        scalars_ok = jnp.isfinite(tau_k) & (tau_k > 0) & jnp.isfinite(phi_k)
        tau_safe = jnp.where(scalars_ok, tau_k, one)
        phi_safe = jnp.where(scalars_ok, phi_k, one)

        # H+ = (H - u u^T + phi w w^T) / tau + z z^T, u = H y / sqrt(y'Hy), w = sqrt(y'Hy) (s/y's - Hy/y'Hy),
        # z = s / sqrt(y's): symmetric outer products keep H+ exactly symmetric.
        root_yhy = jnp.sqrt(yhy_safe)
        u = hy / root_yhy
        w = root_yhy * (s / ys_safe - hy / yhy_safe)
        z = s / jnp.sqrt(ys_safe)
        # Whether H+ would be finite with a positive diagonal, from vectors alone (H itself is finite).
        diagonal = (jnp.diagonal(H) - u * u + phi_safe * w * w) / tau_safe + z * z
        vectors_ok = jnp.all(jnp.isfinite(u)) & jnp.all(jnp.isfinite(w)) & jnp.all(jnp.isfinite(z))
        new_ok = yhy_ok & scalars_ok & vectors_ok & jnp.all(jnp.isfinite(diagonal)) & jnp.all(diagonal > 0)
        apply = attempt & new_ok
        breakdown = attempt & ~new_ok
        gamma = ys_safe / jnp.where(yy > 0, yy, one)
        gamma = jnp.where(jnp.isfinite(gamma) & (gamma > 0), gamma, one)
        # One pass over H: H_out = c_h H + c_u u u^T + c_w w w^T + c_z z z^T + c_i I, the coefficients choosing the
        # update (apply), the reset (breakdown) or no change; u, w, z zeroed where unused so no NaN can leak in.
        zero = jnp.zeros((), dtype)
        c_h = jnp.where(apply, 1.0 / tau_safe, jnp.where(breakdown, zero, one))
        c_w = jnp.where(apply, phi_safe / tau_safe, zero)
        c_i = jnp.where(breakdown, gamma, zero)
        u_used = jnp.where(apply, u, zero) / jnp.sqrt(tau_safe)
        w_used = jnp.where(apply, w, zero)
        z_used = jnp.where(apply, z, zero)
        rows = jnp.arange(n)
        H_out = (c_h * H - u_used[:, None] * u_used[None, :] + c_w * (w_used[:, None] * w_used[None, :])
                 + z_used[:, None] * z_used[None, :] + jnp.where(rows[:, None] == rows[None, :], c_i, zero))

        # The direction H_out g from vectors (no second pass over H_out).
        hg_new = (hg - u * jnp.vdot(u, g) + phi_safe * w * jnp.vdot(w, g)) / tau_safe + z * jnp.vdot(z, g)
        direction = jnp.where(apply, hg_new, jnp.where(breakdown, gamma * g, hg))
        ghg = jnp.vdot(g, direction)
        if scale_init_precond:
            cap = jnp.minimum(1.0, 1.0 / jnp.linalg.norm(g))
            direction = jnp.where(state.count == 0, cap * direction, direction)

        # Only a finite point becomes the reference of the next secant pair: the state never holds a NaN.
        finite_point = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(g)) & jnp.isfinite(ghg)
        new_state = QuasiNewtonState(
            count=optax.safe_int32_increment(state.count),
            inverse_hessian=H_out,
            prev_params=jnp.where(finite_point, x, state.prev_params),
            prev_grad=jnp.where(finite_point, g, state.prev_grad),
            prev_ghg=jnp.where(finite_point, ghg, 0.0).astype(dtype),
            has_prev=finite_point,
            num_updates=jnp.where(apply, num_updates + 1, jnp.where(breakdown, 0, num_updates)).astype(jnp.int32),
            num_skipped=state.num_skipped + (state.has_prev & ~attempt & moved).astype(jnp.int32),
            num_resets=state.num_resets + (breakdown | periodic).astype(jnp.int32),
            tau=jnp.where(apply, tau_k, state.tau).astype(dtype),
            phi=jnp.where(apply, phi_k, state.phi).astype(dtype),
        )
        return unravel(direction), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# ----------------------------------------------------------------------------------------------------------
# Full optimizers


def quasi_newton_optimizer(
    method: str | ScalingRule,
    learning_rate: optax.ScalarOrSchedule | None = None,
    *,
    max_linesearch_steps: int = 20,
    linesearch: Any = "zoom",
    **precond_options: Any,
) -> optax.GradientTransformationExtraArgs:
    """A dense quasi-Newton optimizer of any scaling rule, built like ``optax.lbfgs``.

    ``chain(scale_by_quasi_newton(method=method, **precond_options), scale(-1) or scale_by_learning_rate(lr),
    linesearch)``; :func:`bfgs`, :func:`ssbfgs` and :func:`ssbroyden` are this with their rules.

    Args:
        method: a :class:`~pinnkit.scaling_rules.ScalingRule` or a built-in rule's name.
        learning_rate: ``None`` (the line search picks the step along ``-H g``) or a scalar/schedule multiplying
            the direction before the line search, exactly as in ``optax.lbfgs``.
        max_linesearch_steps: steps of the default zoom line search.
        linesearch: ``"zoom"`` (``optax.scale_by_zoom_linesearch(max_linesearch_steps, initial_guess_strategy=
            "one")``), ``None`` (no line search) or any optax transformation.
        **precond_options: the options of :func:`scale_by_quasi_newton` (``max_parameters``, ``initial_scale``,
            ``reset_every``, ...).

    Returns:
        An ``optax.GradientTransformationExtraArgs``; drive it like ``optax.lbfgs`` (pass ``value``, ``grad`` and
        ``value_fn`` to ``update``, get ``value, grad`` from ``optax.value_and_grad_from_state``).

    Example:
        >>> from pinnkit.scaling_rules import SSBFGS
        >>> opt = quasi_newton_optimizer(SSBFGS, reset_every=100)
        >>> len(opt.init(jnp.zeros(3)))
        3
    """
    _check_learning_rate(learning_rate)
    max_linesearch_steps = positive_int("max_linesearch_steps", max_linesearch_steps)
    if isinstance(linesearch, str):
        if linesearch != "zoom":
            raise ValueError(f"unknown linesearch {linesearch!r}; pass 'zoom', None or an optax transformation")
        linesearch = optax.scale_by_zoom_linesearch(
            max_linesearch_steps=max_linesearch_steps, initial_guess_strategy="one"
        )
    elif linesearch is None:
        linesearch = optax.identity()
    elif not isinstance(linesearch, optax.GradientTransformation | optax.GradientTransformationExtraArgs):
        raise ValueError(f"linesearch must be 'zoom', None or an optax transformation, got {linesearch!r}")
    base_scaling = optax.scale(-1.0) if learning_rate is None else optax.scale_by_learning_rate(learning_rate)
    return optax.chain(scale_by_quasi_newton(method=method, **precond_options), base_scaling, linesearch)


def bfgs(
    learning_rate: optax.ScalarOrSchedule | None = None,
    *,
    max_parameters: int = 20_000,
    initial_scale: bool = False,
    scale_init_precond: bool = True,
    reset_every: int | None = None,
    curvature_eps: float | None = None,
    max_linesearch_steps: int = 20,
    linesearch: Any = "zoom",
) -> optax.GradientTransformationExtraArgs:
    """Dense BFGS with a strong-Wolfe zoom line search, built like ``optax.lbfgs``.

    ``quasi_newton_optimizer(BFGS, ...)``. ``H_0 = I``; ``initial_scale=True`` rescales it by ``y^T s / y^T y``
    before the first update (Nocedal & Wright eq. 6.20), see the module docstring for when that helps.

    Args:
        learning_rate: ``None`` (the line search picks the step along ``-H g``) or a scalar/schedule multiplying
            the direction before the line search, exactly as in ``optax.lbfgs``.
        max_parameters: refuse more parameters than this at ``init`` (``H`` is dense).
        initial_scale: see :func:`scale_by_quasi_newton`.
        scale_init_precond: see :func:`scale_by_quasi_newton`.
        reset_every: see :func:`scale_by_quasi_newton`.
        curvature_eps: see :func:`scale_by_quasi_newton`.
        max_linesearch_steps: steps of the default zoom line search.
        linesearch: ``"zoom"``, ``None`` or an optax transformation, as in :func:`quasi_newton_optimizer`.

    Returns:
        An ``optax.GradientTransformationExtraArgs``; drive it like ``optax.lbfgs`` (pass ``value``, ``grad`` and
        ``value_fn`` to ``update``, get ``value, grad`` from ``optax.value_and_grad_from_state``).

    Example:
        >>> import jax.numpy as jnp, optax
        >>> f = lambda x: jnp.sum((x - 1.0) ** 2 * jnp.array([1.0, 10.0]))
        >>> opt = bfgs()
        >>> params = jnp.zeros(2)
        >>> state = opt.init(params)
        >>> value_and_grad = optax.value_and_grad_from_state(f)
        >>> for _ in range(5):
        ...     value, grad = value_and_grad(params, state=state)
        ...     updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=f)
        ...     params = optax.apply_updates(params, updates)
        >>> bool(jnp.allclose(params, 1.0, atol=1e-4))
        True
    """
    return quasi_newton_optimizer(
        BFGS, learning_rate, max_linesearch_steps=max_linesearch_steps, linesearch=linesearch,
        max_parameters=max_parameters, initial_scale=initial_scale, scale_init_precond=scale_init_precond,
        reset_every=reset_every, curvature_eps=curvature_eps,
    )


def ssbfgs(
    learning_rate: optax.ScalarOrSchedule | None = None,
    *,
    max_parameters: int = 20_000,
    initial_scale: bool = False,
    scale_init_precond: bool = True,
    reset_every: int | None = None,
    curvature_eps: float | None = None,
    max_linesearch_steps: int = 20,
    linesearch: Any = "zoom",
) -> optax.GradientTransformationExtraArgs:
    """Self-scaled BFGS (``tau_k = min(1, 1/b_k)``, Al-Baali 1998) with a zoom line search.

    ``quasi_newton_optimizer(SSBFGS, ...)``; the arguments are :func:`bfgs`'s.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` driven like ``optax.lbfgs``.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> f = lambda x: jnp.sum((x - 1.0) ** 2 * jnp.array([1.0, 10.0]))
        >>> opt, params = ssbfgs(), jnp.zeros(2)
        >>> state = opt.init(params)
        >>> value, grad = optax.value_and_grad_from_state(f)(params, state=state)
        >>> updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=f)
        >>> bool(f(optax.apply_updates(params, updates)) < f(params))
        True
    """
    return quasi_newton_optimizer(
        SSBFGS, learning_rate, max_linesearch_steps=max_linesearch_steps, linesearch=linesearch,
        max_parameters=max_parameters, initial_scale=initial_scale, scale_init_precond=scale_init_precond,
        reset_every=reset_every, curvature_eps=curvature_eps,
    )


def ssbroyden(
    learning_rate: optax.ScalarOrSchedule | None = None,
    *,
    max_parameters: int = 20_000,
    initial_scale: bool = False,
    scale_init_precond: bool = True,
    reset_every: int | None = None,
    curvature_eps: float | None = None,
    tau: float | None = None,
    phi: float | None = None,
    max_linesearch_steps: int = 20,
    linesearch: Any = "zoom",
) -> optax.GradientTransformationExtraArgs:
    """Self-scaled Broyden (Al-Baali & Khalfan) with a zoom line search.

    ``quasi_newton_optimizer(SSBROYDEN, ...)``; the arguments are :func:`bfgs`'s, and:

    Args:
        tau: force a constant scaling ``tau_k`` (default: the adaptive rule); ``tau=1, phi=1`` is BFGS.
        phi: force a constant Broyden parameter ``phi_k`` (default: the adaptive rule).

    Returns:
        An ``optax.GradientTransformationExtraArgs`` driven like ``optax.lbfgs``.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> f = lambda x: jnp.sum((x - 1.0) ** 2 * jnp.array([1.0, 10.0]))
        >>> opt, params = ssbroyden(), jnp.zeros(2)
        >>> state = opt.init(params)
        >>> value, grad = optax.value_and_grad_from_state(f)(params, state=state)
        >>> updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=f)
        >>> bool(f(optax.apply_updates(params, updates)) < f(params))
        True
    """
    return quasi_newton_optimizer(
        SSBROYDEN, learning_rate, max_linesearch_steps=max_linesearch_steps, linesearch=linesearch,
        max_parameters=max_parameters, initial_scale=initial_scale, scale_init_precond=scale_init_precond,
        reset_every=reset_every, curvature_eps=curvature_eps, tau=tau, phi=phi,
    )


# ----------------------------------------------------------------------------------------------------------
# Forgetting and restarting (the optimizer registry's curvature rule for this state)


def _forget_previous_point(node: QuasiNewtonState) -> QuasiNewtonState:
    # No secant pair across a change of the loss: the next call only records its point. H is kept.
    return node._replace(has_prev=jnp.zeros_like(node.has_prev))


def _restart(node: QuasiNewtonState) -> QuasiNewtonState:
    H = node.inverse_hessian
    eye = jnp.broadcast_to(jnp.eye(H.shape[-1], dtype=H.dtype), H.shape)
    return node._replace(
        inverse_hessian=eye,
        prev_ghg=jnp.zeros_like(node.prev_ghg),
        num_updates=jnp.zeros_like(node.num_updates),
        num_resets=node.num_resets + 1,
    )


CURVATURE = CurvatureRule((QuasiNewtonState,), forget=_forget_previous_point, restart=_restart)


def _is_qn_state(node: Any) -> bool:
    return isinstance(node, QuasiNewtonState)


def reset_inverse_hessian(state: Any) -> Any:
    """Reset ``H`` to the identity in a :class:`QuasiNewtonState`, or in every one inside an optimizer state.

    The next update then applies the initial scaling again (``num_updates`` goes to 0, ``num_resets`` up by one).
    Works on the state of :func:`scale_by_quasi_newton` or of :func:`bfgs`/:func:`ssbfgs`/:func:`ssbroyden`
    (a chain state), also on states stacked for ``jax.vmap``; pure, so it can be used inside ``jax.jit``.
    :func:`pinnkit.curvature.restart_curvature` does this (through :data:`CURVATURE`) and also drops the previous
    point and the line search's cache.

    Args:
        state: a :class:`QuasiNewtonState` or any pytree of optimizer states containing at least one.

    Returns:
        The same structure with each :class:`QuasiNewtonState` reset.

    Raises:
        ValueError: if ``state`` contains no :class:`QuasiNewtonState`.

    Example:
        >>> import jax.numpy as jnp
        >>> opt = ssbroyden()
        >>> state = opt.init(jnp.zeros(3))
        >>> state = reset_inverse_hessian(state)
        >>> int(state[0].num_resets), bool((state[0].inverse_hessian == jnp.eye(3)).all())
        (1, True)
    """
    found = []

    def reset(node: Any) -> Any:
        if not _is_qn_state(node):
            return node
        found.append(True)
        return _restart(node)

    out = jax.tree_util.tree_map(reset, state, is_leaf=_is_qn_state)
    if not found:
        raise ValueError(f"no QuasiNewtonState found in the given state of type {type(state).__name__}")
    return out


def dense_memory(parameters: int, itemsize: int) -> int:
    """Bytes a dense quasi-Newton stage adds to a run of ``parameters`` parameters (``H``, the new ``H`` and the
    update's scratch: three ``n x n`` arrays), for :func:`pinnkit.resources.estimate_run_memory`.

    Example:
        >>> dense_memory(1000, 8)
        24000000
    """
    return parameters * parameters * itemsize * 3
