r"""Quasi-Newton methods as scaling rules: what picks ``tau_k`` and ``phi_k`` in one self-scaled Broyden update.

:func:`pinnkit.quasi_newton.scale_by_quasi_newton` runs one update of the inverse Hessian ``H`` (the self-scaled
Broyden family, inverse form)::

    H_{k+1} = (1 / tau_k) [H - (H y y^T H) / (y^T H y) + phi_k v v^T] + rho s s^T,
    v       = sqrt(y^T H y) (rho s - H y / (y^T H y)),    rho = 1 / (y^T s),

and a method is the rule that chooses ``tau_k`` (the scaling) and ``phi_k`` (the Broyden parameter, written through
``theta_k`` as ``phi_k = (1 - theta_k) / (1 + a_k theta_k)``) from the scalars of the secant pair (Al-Baali's
notation)::

    h_k = (y^T H y) / (y^T s),    b_k = (s^T B s) / (y^T s),    a_k = b_k h_k - 1 >= 0,    B = H^{-1}.

``tau_k = phi_k = 1`` is BFGS (Nocedal & Wright eq. 6.17); ``phi_k = 0`` is DFP. A new method is a new
:class:`ScalingRule`, passed to ``scale_by_quasi_newton(method=rule)`` (the same solver, other hooks: as optimistix
makes BFGS and DFP of one solver); :func:`pinnkit.optimizer_registry.quasi_newton_spec` makes it an optimizer that
plans and the command line can name.

========== =================================================================================================
rule       choice
========== =================================================================================================
bfgs       ``tau_k = 1``, ``phi_k = 1``
ssbfgs     ``phi_k = 1``, ``tau_k = min(1, 1 / b_k)`` (self-scaled BFGS, Al-Baali 1998)
ssbroyden  ``theta_k`` and ``tau_k`` of Al-Baali & Khalfan's self-scaled Broyden method (below)
========== =================================================================================================

SSBroyden::

    c_k        = sqrt(a_k / (1 + a_k))
    rho_k^-    = min(1, h_k (1 - c_k))
    theta_k^-  = (rho_k^- - 1) / a_k,          theta_k^+ = 1 / rho_k^-
    theta_k    = max(theta_k^-, min(theta_k^+, (1 - b_k) / b_k))
    sigma_k    = 1 + a_k theta_k,              sigma_k^(n) = |sigma_k|^(1 / (1 - n))
    rho_k      = min(1, 1 / b_k)
    tau_k      = min(rho_k sigma_k^(n), sigma_k)      if theta_k <= 0
               = rho_k min(sigma_k^(n), 1 / theta_k)  if theta_k > 0
    phi_k      = (1 - theta_k) / sigma_k

With ``theta_k = 0`` this reduces to SSBFGS. ``theta_k`` in ``[theta_k^-, theta_k^+]`` keeps ``sigma_k >= rho_k^- >
0`` and ``H`` positive definite; at ``a_k = 0`` (where ``v`` vanishes) ``theta_k^-`` is its limit ``-inf``. Where
the formulas come from: ``docs/training.md`` (Provenance).

Example:
    >>> import jax.numpy as jnp
    >>> scalars = SecantScalars(a=jnp.array(0.0), b=jnp.array(2.0), h=jnp.array(0.5), n=3)
    >>> float(SSBFGS.tau(scalars, jnp.array(0.0)))
    0.5
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["BFGS", "SCALING_RULES", "SSBFGS", "SSBROYDEN", "ScalingRule", "SecantScalars", "broyden_scalars",
           "scaling_rule"]


class SecantScalars(NamedTuple):
    """The scalars of one secant pair that a :class:`ScalingRule` reads (module docstring).

    Attributes:
        a: ``b_k h_k - 1``, clipped at 0.
        b: ``s^T B s / y^T s`` (1 where not finite or not positive).
        h: ``y^T H y / y^T s``.
        n: the number of parameters (a Python int).
    """

    a: jax.Array
    b: jax.Array
    h: jax.Array
    n: int


@dataclasses.dataclass(frozen=True)
class ScalingRule:
    """A quasi-Newton method of the self-scaled Broyden family: how it picks ``tau_k`` and ``theta_k``.

    Attributes:
        name: the method's name (``"bfgs"``, ...): what plans and ``scale_by_quasi_newton(method=...)`` call it.
        tau: ``(scalars, theta_k) -> tau_k``, the scaling of ``H`` (branch-free: it is traced).
        theta: ``scalars -> theta_k``, the Broyden parameter; ``None``: ``theta_k = 0``, ``phi_k = 1`` (the BFGS
            update, scaled by ``tau_k``).
        description: a few words for help texts (``"self-scaled BFGS"``).

    Example:
        >>> import jax.numpy as jnp
        >>> plain = ScalingRule("plain", tau=lambda scalars, theta: jnp.ones_like(scalars.a), description="BFGS")
        >>> plain.theta is None
        True
    """

    name: str
    tau: Callable[[SecantScalars, jax.Array], jax.Array]
    theta: Callable[[SecantScalars], jax.Array] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a scaling rule needs a name, got {self.name!r}")
        if not callable(self.tau) or (self.theta is not None and not callable(self.theta)):
            raise TypeError(f"scaling rule {self.name!r}: tau (and theta, if given) must be callables")


def _unit_tau(scalars: SecantScalars, theta: jax.Array) -> jax.Array:
    return jnp.ones_like(scalars.a)


def _self_scaled_tau(scalars: SecantScalars, theta: jax.Array) -> jax.Array:
    return jnp.minimum(1.0, 1.0 / scalars.b)


def _ssbroyden_theta(scalars: SecantScalars) -> jax.Array:
    # Al-Baali & Khalfan's interval [theta^-, theta^+] and the SSBroyden2 choice inside it (module docstring).
    a, b, h = scalars.a, scalars.b, scalars.h
    c = jnp.sqrt(a / (1.0 + a))
    rho_minus = jnp.minimum(1.0, h * (1.0 - c))
    positive = a > 0
    theta_minus = jnp.where(positive, (rho_minus - 1.0) / jnp.where(positive, a, 1.0), -jnp.inf)
    theta_plus = 1.0 / rho_minus
    return jnp.maximum(theta_minus, jnp.minimum(theta_plus, (1.0 - b) / b))


def _ssbroyden_tau(scalars: SecantScalars, theta: jax.Array) -> jax.Array:
    a, b, n = scalars.a, scalars.b, scalars.n
    sigma = 1.0 + a * theta
    sigma_n = jnp.abs(sigma) ** (1.0 / (1.0 - n)) if n > 1 else jnp.ones_like(sigma)
    rho = jnp.minimum(1.0, 1.0 / b)
    theta_safe = jnp.where(theta > 0, theta, 1.0)
    return jnp.where(theta <= 0, jnp.minimum(rho * sigma_n, sigma), rho * jnp.minimum(sigma_n, 1.0 / theta_safe))


BFGS = ScalingRule("bfgs", tau=_unit_tau, description="BFGS")
SSBFGS = ScalingRule("ssbfgs", tau=_self_scaled_tau, description="self-scaled BFGS")
SSBROYDEN = ScalingRule("ssbroyden", tau=_ssbroyden_tau, theta=_ssbroyden_theta, description="self-scaled Broyden")
SCALING_RULES = (BFGS, SSBFGS, SSBROYDEN)


def scaling_rule(method: str | ScalingRule) -> ScalingRule:
    """The rule called ``method`` (one of :data:`SCALING_RULES`), or ``method`` itself if it is a rule.

    Example:
        >>> scaling_rule("ssbroyden") is SSBROYDEN
        True
    """
    if isinstance(method, ScalingRule):
        return method
    for rule in SCALING_RULES:
        if rule.name == method:
            return rule
    raise ValueError(f"unknown quasi-Newton method {method!r}; choose one of {[rule.name for rule in SCALING_RULES]}"
                     " or pass a ScalingRule")


def broyden_scalars(rule: ScalingRule, scalars: SecantScalars, first: jax.Array, *, initial_scale: bool,
                    tau: float | None = None, phi: float | None = None) -> tuple[jax.Array, jax.Array]:
    """``(tau_k, phi_k)`` of one update: the rule's, or the constants ``tau``/``phi`` where given.

    ``initial_scale``: on the first update after ``init`` or a reset (``first``) ``tau_k = h_k / (1 + a_k
    theta_k)`` instead (Nocedal & Wright eq. 6.20 for BFGS).

    Example:
        >>> import jax.numpy as jnp
        >>> scalars = SecantScalars(a=jnp.array(0.0), b=jnp.array(2.0), h=jnp.array(0.5), n=3)
        >>> [float(x) for x in broyden_scalars(BFGS, scalars, jnp.array(True), initial_scale=True)]
        [0.5, 1.0]
    """
    a = scalars.a
    if phi is not None:
        phi_k = jnp.full_like(a, phi)
        theta = (1.0 - phi_k) / (1.0 + a * phi_k)  # inverse of phi = (1 - theta) / (1 + a theta)
    elif rule.theta is not None:
        theta = rule.theta(scalars)
        phi_k = (1.0 - theta) / (1.0 + a * theta)
    else:
        theta, phi_k = jnp.zeros_like(a), jnp.ones_like(a)
    tau_k = jnp.full_like(a, tau) if tau is not None else rule.tau(scalars, theta)
    if initial_scale:
        tau_k = jnp.where(first, scalars.h / (1.0 + a * theta), tau_k)
    return tau_k, phi_k
