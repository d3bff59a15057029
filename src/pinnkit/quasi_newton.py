r"""Dense quasi-Newton optimizers for PINNs as optax transforms: BFGS, self-scaled BFGS and self-scaled Broyden.

optax ships L-BFGS but no dense member of the Broyden family. This module adds three, built and driven exactly like
``optax.lbfgs``: a preconditioner (:func:`scale_by_quasi_newton`, which returns ``H g`` like
``optax.scale_by_lbfgs``), chained with a sign flip (or a learning rate) and a strong-Wolfe zoom line search
(:func:`bfgs`, :func:`ssbfgs`, :func:`ssbroyden`)::

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
accepted steps), and returns ``H g_k``.

The update (self-scaled Broyden family, inverse form)
-------------------------------------------------------
With ``rho = 1 / (y^T s)`` and ``H = H_k``::

    H_{k+1} = (1 / tau_k) [H - (H y y^T H) / (y^T H y) + phi_k v v^T] + rho s s^T,
    v       = sqrt(y^T H y) (rho s - H y / (y^T H y)).

``tau_k = phi_k = 1`` is BFGS (Nocedal & Wright, *Numerical Optimization*, 2nd ed., eq. 6.17 written out);
``phi_k = 0`` is DFP. Every member satisfies the secant condition ``H_{k+1} y = s``. This is the form of Urbán,
Stefanou & Pons, J. Comput. Phys. 523 (2025) 113656, arXiv:2405.04230 (the SSBroyden update of their Section 2,
eqs. 13-23, as listed in the README of github.com/jorgeurban/self_scaled_algorithms_pinns), repeated by Kiyani et al.,
arXiv:2501.16371, and by Bioli & Mendibe Abarrategi, arXiv:2603.10599 (``_invhessian_update_term`` of
``AbstractSSBroyden`` in github.com/IvanBioli/ssbroyden_optimistix, ``ssbrodyen_family.py``).

The scalars that pick ``tau_k`` and ``phi_k`` are (Al-Baali's notation, used in all three papers)::

    h_k = (y^T H y) / (y^T s),    b_k = (s^T B s) / (y^T s),    a_k = b_k h_k - 1 >= 0,    B = H^{-1}.

The codes compute ``s^T B s = -alpha_k s^T g_{k-1}`` from the line-search step ``alpha_k`` (``B s = -alpha g``
because ``s = -alpha H g_{k-1}``). The preconditioner does not see ``alpha_k``; it uses the equivalent, step-length
free identity ``s^T B s = (s^T g_{k-1})^2 / (g_{k-1}^T H g_{k-1})`` (exact whenever ``s`` is parallel to
``H g_{k-1}``, whatever the step length or learning rate), storing the scalar ``g_{k-1}^T H g_{k-1}`` of the
direction it handed out. Right after ``H`` was reset to the identity, ``b_k = s^T s / y^T s``.

``method="bfgs"``
    ``tau_k = 1``, ``phi_k = 1``.

``method="ssbfgs"`` (self-scaled BFGS; Al-Baali, J. Optim. Theory Appl. 96 (1998) 533-553, the ``SSBFGS_AB`` of
    Urbán et al., their eq. 11; ``AbstractSSBFGS`` of Bioli & Mendibe Abarrategi)
    ``phi_k = 1`` (``theta_k = 0``), ``tau_k = min(1, 1 / b_k)``.

``method="ssbroyden"`` (self-scaled Broyden, Al-Baali & Khalfan, "A wide interval for efficient self-scaling
    quasi-Newton algorithms", Optim. Methods Softw. 20 (2005); ``SSBroyden2`` in ``modified_optimize.py`` of Urbán
    et al., eqs. 13-23 of their paper; ``_compute_thetak``/``_compute_tauk`` of Bioli & Mendibe Abarrategi)::

        c_k        = sqrt(a_k / (1 + a_k))
        rho_k^-    = min(1, h_k (1 - c_k))
        theta_k^-  = (rho_k^- - 1) / a_k,          theta_k^+ = 1 / rho_k^-
        theta_k    = max(theta_k^-, min(theta_k^+, (1 - b_k) / b_k))
        sigma_k    = 1 + a_k theta_k,              sigma_k^(n) = |sigma_k|^(1 / (1 - n))
        rho_k      = min(1, 1 / b_k)
        tau_k      = min(rho_k sigma_k^(n), sigma_k)      if theta_k <= 0
                   = rho_k min(sigma_k^(n), 1 / theta_k)  if theta_k > 0
        phi_k      = (1 - theta_k) / sigma_k

    With ``theta_k = 0`` this reduces to the SSBFGS choice above. ``theta_k`` in ``[theta_k^-, theta_k^+]`` keeps
    ``sigma_k >= rho_k^- > 0`` and ``H`` positive definite.

Initial scaling. ``H_0 = I`` by default (``initial_scale=False``), as in Urbán et al.'s PINN runs (their examples pass
``hess_inv0 = I`` with ``initial_scale=False``), in SciPy's BFGS and in Bioli & Mendibe Abarrategi's plain BFGS; the
method's own ``tau_k`` rule then applies from the first update on. ``initial_scale=True`` instead uses
``tau_0 = h_0 / (1 + a_0 theta_0)`` on the first update after ``init`` or a reset (``= h_0`` for BFGS and SSBFGS,
where ``theta_0 = 0``): the first-iteration rule of Bioli & Mendibe Abarrategi (``first_iter_tauk``) and of Urbán et
al.'s code with ``initial_scale=True``; for BFGS it is exactly Nocedal & Wright eq. 6.20, ``H_0 <- (y^T s / y^T y) I``
before the first update. Why not the textbook default: 6.20 fits ``H_0`` to the largest curvatures seen in ``y``,
which leaves ``H`` too small along flat directions, and BFGS corrects a too-small ``H`` slowly (a too-large one fast).
Measured on ``f = (x - x*)^T A (x - x*) / 2`` in 20 dimensions, eigenvalues of ``A`` log-spaced over
``[1, 1e4]``, zoom line search, iterations to ``|x - x*|_inf <= 1e-10``: BFGS 21 unscaled vs 137 with 6.20 (SciPy's
BFGS: 26), SSBFGS 21 vs 69, SSBroyden 22 vs 64. With eigenvalues in ``[1e-6, 1e-2]`` (``I`` far too small) 6.20 wins
for BFGS (137 vs 249) while the self-scaled methods, which rescale ``H`` up on their own, stay at 58-76 either way. On
a small 1D Poisson PINN (tanh MLP 1-20-20-1, 481 parameters, float64, 1000 steps, 3 seeds) the unscaled start gave
the lower final loss for BFGS on all seeds and for SSBFGS/SSBroyden on 2 of 3 (the self-scaled methods reached
1e-13..1e-17 either way, BFGS 1e-8..1e-10, optax.lbfgs 1e-6..1e-7).
Independently, ``scale_init_precond=True`` shortens the very first direction (taken with ``H_0 = I``) to
``min(1, 1/||g_0||) g_0``, the heuristic of ``optax.scale_by_lbfgs``, so the line search's first trial step has
length at most 1; it does not touch ``H``.

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
  ``(y^T s / y^T y) I`` (Nocedal & Wright eq. 6.20; ``I`` if that is not finite) and ``num_resets`` += 1. Urbán et
  al. reset to ``I`` between their SciPy restarts when a Cholesky factorisation of ``H`` fails.
- ``a_k`` is clipped at 0 (it is ``>= 0`` by Cauchy-Schwarz, rounding can make it slightly negative); at
  ``a_k = 0`` the vector ``v`` vanishes (``v^T B v = a_k``), ``theta_k^-`` is taken as ``-inf`` (its limit), so
  ``theta_k = min(theta_k^+, (1 - b_k)/b_k)``; a non-finite or non-positive ``b_k`` is replaced by 1.
- Symmetry: the update is assembled from symmetric outer products ``u u^T`` (``u_i u_j = u_j u_i`` exactly in
  floating point), so ``H`` stays exactly symmetric without an extra ``(H + H^T)/2`` pass over ``n^2`` entries.
- ``H y`` and ``H g`` are one ``n x 2`` matmul at ``Precision.HIGHEST`` (no TF32 on GPUs); the new direction
  ``H_{k+1} g`` is assembled from vectors instead of a second matmul, and the only ``n x n`` array built per step is
  the new ``H`` itself (XLA fuses the outer products into it; at ``n = 3000`` the compiled update needs 9 MB of
  scratch next to the 72 MB of ``H``).
- ``reset_every=m`` resets ``H`` to ``I`` every ``m`` calls (before using that call's pair, which then gets the
  initial scaling); :func:`reset_inverse_hessian` does the same on demand.

Memory: ``H`` has ``n^2`` entries (5000 parameters: 200 MB in float64), so :func:`scale_by_quasi_newton` refuses
more than ``max_parameters`` (default 20 000) at ``init``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

__all__ = [
    "METHODS",
    "QuasiNewtonState",
    "scale_by_quasi_newton",
    "bfgs",
    "ssbfgs",
    "ssbroyden",
    "reset_inverse_hessian",
]

METHODS = ("bfgs", "ssbfgs", "ssbroyden")
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


# ----------------------------------------------------------------------------------------------------------
# Validation


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _optional_finite(name: str, value: Any, *, positive: bool = False, nonnegative: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool | str | bytes):
        raise ValueError(f"{name} must be a real number or None, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number or None, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and number <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    if nonnegative and number < 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}")
    return number


def _check_learning_rate(learning_rate: Any) -> None:
    if learning_rate is None or callable(learning_rate):
        return
    _optional_finite("learning_rate", learning_rate, positive=True)


# ----------------------------------------------------------------------------------------------------------
# The scalars tau_k and theta_k


def _ssbroyden_theta(a: jax.Array, b: jax.Array, h: jax.Array) -> jax.Array:
    # Al-Baali & Khalfan's interval [theta^-, theta^+] and the SSBroyden2 choice inside it (module docstring).
    c = jnp.sqrt(a / (1.0 + a))
    rho_minus = jnp.minimum(1.0, h * (1.0 - c))
    positive = a > 0
    theta_minus = jnp.where(positive, (rho_minus - 1.0) / jnp.where(positive, a, 1.0), -jnp.inf)
    theta_plus = 1.0 / rho_minus
    return jnp.maximum(theta_minus, jnp.minimum(theta_plus, (1.0 - b) / b))


def _ssbroyden_tau(theta: jax.Array, a: jax.Array, b: jax.Array, n: int) -> jax.Array:
    sigma = 1.0 + a * theta
    sigma_n = jnp.abs(sigma) ** (1.0 / (1.0 - n)) if n > 1 else jnp.ones_like(sigma)
    rho = jnp.minimum(1.0, 1.0 / b)
    theta_safe = jnp.where(theta > 0, theta, 1.0)
    return jnp.where(theta <= 0, jnp.minimum(rho * sigma_n, sigma), rho * jnp.minimum(sigma_n, 1.0 / theta_safe))


def _scalars(
    method: str, a: jax.Array, b: jax.Array, h: jax.Array, first: jax.Array, n: int,
    initial_scale: bool, tau: float | None, phi: float | None,
) -> tuple[jax.Array, jax.Array]:
    """(tau_k, phi_k) for one update."""
    zero = jnp.zeros_like(a)
    if phi is not None:
        phi_k = jnp.full_like(a, phi)
        theta = (1.0 - phi_k) / (1.0 + a * phi_k)  # inverse of phi = (1 - theta) / (1 + a theta)
    elif method == "ssbroyden":
        theta = _ssbroyden_theta(a, b, h)
        phi_k = (1.0 - theta) / (1.0 + a * theta)
    else:
        theta, phi_k = zero, jnp.ones_like(a)
    if tau is not None:
        tau_k = jnp.full_like(a, tau)
    elif method == "bfgs":
        tau_k = jnp.ones_like(a)
    elif method == "ssbfgs":
        tau_k = jnp.minimum(1.0, 1.0 / b)
    else:
        tau_k = _ssbroyden_tau(theta, a, b, n)
    if initial_scale:
        tau_k = jnp.where(first, h / (1.0 + a * theta), tau_k)
    return tau_k, phi_k


# ----------------------------------------------------------------------------------------------------------
# The preconditioner


def scale_by_quasi_newton(
    *,
    method: str = "bfgs",
    max_parameters: int = 20_000,
    initial_scale: bool = False,
    scale_init_precond: bool = True,
    reset_every: int | None = None,
    curvature_eps: float | None = None,
    tau: float | None = None,
    phi: float | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Dense quasi-Newton preconditioner: returns ``H g`` with ``H`` a BFGS / SSBFGS / SSBroyden inverse Hessian.

    The counterpart of ``optax.scale_by_lbfgs`` (no sign flip, no step size): chain it with ``optax.scale(-1.0)``
    and a line search, as :func:`bfgs`, :func:`ssbfgs` and :func:`ssbroyden` do. Each call first updates ``H``
    with ``s = x_k - x_{k-1}``, ``y = g_k - g_{k-1}`` (nothing on the first call), then preconditions ``g_k``.
    Formulas, sources and safeguards are in the module docstring.

    Args:
        method: ``"bfgs"``, ``"ssbfgs"`` (self-scaled BFGS, Al-Baali's ``tau_k = min(1, 1/b_k)``) or
            ``"ssbroyden"`` (self-scaled Broyden of Al-Baali & Khalfan as used by Urbán et al.).
        max_parameters: refuse (``ValueError`` at ``init``) params with more entries than this: ``H`` is dense.
        initial_scale: scale ``H_0 = I`` on the first update after ``init``/reset by ``tau_0 = h_0/(1 + a_0 theta_0)``
            (Nocedal & Wright eq. 6.20 for BFGS); default ``False``: ``H_0 = I`` as in Urbán et al.'s runs.
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
    if method not in METHODS:
        raise ValueError(f"unknown quasi-Newton method {method!r}; choose one of {list(METHODS)}")
    _positive_int("max_parameters", max_parameters)
    if reset_every is not None:
        _positive_int("reset_every", reset_every)
    curvature_eps = _optional_finite("curvature_eps", curvature_eps, nonnegative=True)
    tau = _optional_finite("tau", tau, positive=True)
    phi = _optional_finite("phi", phi)
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
        tau_k, phi_k = _scalars(method, a, b, h, first, n, initial_scale, tau, phi)
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


def _optimizer(
    method: str,
    learning_rate: optax.ScalarOrSchedule | None,
    linesearch: Any,
    max_linesearch_steps: int,
    **precond_options: Any,
) -> optax.GradientTransformationExtraArgs:
    _check_learning_rate(learning_rate)
    _positive_int("max_linesearch_steps", max_linesearch_steps)
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

    ``chain(scale_by_quasi_newton(method="bfgs"), scale(-1) or scale_by_learning_rate(lr), linesearch)``.
    ``H_0 = I``; ``initial_scale=True`` rescales it by ``y^T s / y^T y`` before the first update (Nocedal & Wright
    eq. 6.20), see the module docstring for when that helps.

    Args:
        learning_rate: ``None`` (the line search picks the step along ``-H g``) or a scalar/schedule multiplying
            the direction before the line search, exactly as in ``optax.lbfgs``.
        max_parameters: refuse more parameters than this at ``init`` (``H`` is dense).
        initial_scale: see :func:`scale_by_quasi_newton`.
        scale_init_precond: see :func:`scale_by_quasi_newton`.
        reset_every: see :func:`scale_by_quasi_newton`.
        curvature_eps: see :func:`scale_by_quasi_newton`.
        max_linesearch_steps: steps of the default zoom line search.
        linesearch: ``"zoom"`` (``optax.scale_by_zoom_linesearch(max_linesearch_steps, initial_guess_strategy=
            "one")``), ``None`` (no line search) or any optax transformation.

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
    return _optimizer(
        "bfgs", learning_rate, linesearch, max_linesearch_steps, max_parameters=max_parameters,
        initial_scale=initial_scale, scale_init_precond=scale_init_precond, reset_every=reset_every,
        curvature_eps=curvature_eps,
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
    """Self-scaled BFGS (``tau_k = min(1, 1/b_k)``, Al-Baali 1998; Urbán et al. 2025 eq. 11) with a zoom line search.

    ``chain(scale_by_quasi_newton(method="ssbfgs"), scale(-1) or scale_by_learning_rate(lr), linesearch)``.

    Args:
        learning_rate: ``None`` or a scalar/schedule, as in :func:`bfgs`.
        max_parameters: refuse more parameters than this at ``init`` (``H`` is dense).
        initial_scale: see :func:`scale_by_quasi_newton`.
        scale_init_precond: see :func:`scale_by_quasi_newton`.
        reset_every: see :func:`scale_by_quasi_newton`.
        curvature_eps: see :func:`scale_by_quasi_newton`.
        max_linesearch_steps: steps of the default zoom line search.
        linesearch: ``"zoom"``, ``None`` or an optax transformation, as in :func:`bfgs`.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` driven like ``optax.lbfgs``.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> f = lambda x: jnp.sum((x - 1.0) ** 2 * jnp.array([1.0, 10.0]))
        >>> opt = ssbfgs()
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
    return _optimizer(
        "ssbfgs", learning_rate, linesearch, max_linesearch_steps, max_parameters=max_parameters,
        initial_scale=initial_scale, scale_init_precond=scale_init_precond, reset_every=reset_every,
        curvature_eps=curvature_eps,
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
    """Self-scaled Broyden (Al-Baali & Khalfan; Urbán et al. 2025 eqs. 13-23) with a zoom line search.

    ``chain(scale_by_quasi_newton(method="ssbroyden"), scale(-1) or scale_by_learning_rate(lr), linesearch)``.

    Args:
        learning_rate: ``None`` or a scalar/schedule, as in :func:`bfgs`.
        max_parameters: refuse more parameters than this at ``init`` (``H`` is dense).
        initial_scale: see :func:`scale_by_quasi_newton`.
        scale_init_precond: see :func:`scale_by_quasi_newton`.
        reset_every: see :func:`scale_by_quasi_newton`.
        curvature_eps: see :func:`scale_by_quasi_newton`.
        tau: force a constant scaling ``tau_k`` (default: the adaptive rule); ``tau=1, phi=1`` is BFGS.
        phi: force a constant Broyden parameter ``phi_k`` (default: the adaptive rule).
        max_linesearch_steps: steps of the default zoom line search.
        linesearch: ``"zoom"``, ``None`` or an optax transformation, as in :func:`bfgs`.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` driven like ``optax.lbfgs``.

    Example:
        >>> import jax.numpy as jnp, optax
        >>> f = lambda x: jnp.sum((x - 1.0) ** 2 * jnp.array([1.0, 10.0]))
        >>> opt = ssbroyden()
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
    return _optimizer(
        "ssbroyden", learning_rate, linesearch, max_linesearch_steps, max_parameters=max_parameters,
        initial_scale=initial_scale, scale_init_precond=scale_init_precond, reset_every=reset_every,
        curvature_eps=curvature_eps, tau=tau, phi=phi,
    )


# ----------------------------------------------------------------------------------------------------------
# Reset


def _is_qn_state(node: Any) -> bool:
    return isinstance(node, QuasiNewtonState)


def reset_inverse_hessian(state: Any) -> Any:
    """Reset ``H`` to the identity in a :class:`QuasiNewtonState`, or in every one inside an optimizer state.

    The next update then applies the initial scaling again (``num_updates`` goes to 0, ``num_resets`` up by one).
    Works on the state of :func:`scale_by_quasi_newton` or of :func:`bfgs`/:func:`ssbfgs`/:func:`ssbroyden`
    (a chain state), also on states stacked for ``jax.vmap``; pure, so it can be used inside ``jax.jit``.

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
        H = node.inverse_hessian
        eye = jnp.broadcast_to(jnp.eye(H.shape[-1], dtype=H.dtype), H.shape)
        return node._replace(
            inverse_hessian=eye,
            prev_ghg=jnp.zeros_like(node.prev_ghg),
            num_updates=jnp.zeros_like(node.num_updates),
            num_resets=node.num_resets + 1,
        )

    out = jax.tree_util.tree_map(reset, state, is_leaf=_is_qn_state)
    if not found:
        raise ValueError(f"no QuasiNewtonState found in the given state of type {type(state).__name__}")
    return out

