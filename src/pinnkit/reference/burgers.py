"""Burgers reference: a resolved Fourier spectral method of lines (diffrax), and the exact Cole-Hopf solution.

u_t + u u_x - nu u_xx = 0 on [-1, 1], u(x, 0) = -sin(pi x), u(-1, t) = u(1, t) = 0.

The initial condition is odd and 2-periodic and the equation keeps both symmetries, so u(+-1, t) = 0
holds automatically on the periodic interval. The steep layer at x = 0 behaves like tanh(x / (2 nu)),
whose poles lie pi nu off the real axis: Fourier coefficients fall like exp(-pi^2 nu m), about 1e-14 at
m = 1024 for nu = 0.01/pi. ``num_modes = 2048`` points therefore resolve the shock to round-off, the
aliasing of the quadratic term is below round-off too, and the output grid is filled by exact
trigonometric interpolation. Time stepping is explicit (Tsit5, adaptive): diffusion makes the system
mildly stiff (eigenvalues down to -nu (pi num_modes / 2)^2, about -3e4), which costs ~1.2e4 cheap steps
(a few seconds), less than Newton solves with a dense 2048 x 2048 Jacobian would.

:func:`burgers_cole_hopf` is independent of the solver: the exact solution by the Cole-Hopf transform,
evaluated with Gauss-Hermite quadrature. It is the truth the solver is tested against.
"""

from __future__ import annotations

import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

from pinnkit.reference.base import Reference

__all__ = ["burgers_cole_hopf", "solve_burgers"]


# ----- the method-of-lines solver -----------------------------------------------------------------------


def vector_field(t, u, args):
    wavenumbers, viscosity = args
    u_hat = jnp.fft.rfft(u)
    # Conservative form u u_x = (u^2 / 2)_x; the spectrum is resolved, so no dealiasing is needed.
    advection_hat = 0.5j * wavenumbers * jnp.fft.rfft(u * u)
    return jnp.fft.irfft(-viscosity * wavenumbers**2 * u_hat - advection_hat, n=u.shape[0])


@jax.jit
def _integrate(u0, ts, wavenumbers, viscosity, rtol, atol):
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        diffrax.Tsit5(),
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=u0,
        args=(wavenumbers, viscosity),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=10_000_000,
    )
    return solution.ys


def trigonometric_interpolation(samples: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Evaluate the trigonometric interpolant of periodic samples on [-1, 1) (last axis) at points ``x``."""
    num = samples.shape[-1]
    coefficients = np.fft.rfft(samples, axis=-1) / num
    modes = np.arange(coefficients.shape[-1])
    # Each mode m > 0 stands for the pair +-m; the Nyquist mode (even num) is its own pair and is taken real.
    multiplicity = np.where((modes == 0) | (2 * modes == num), 1.0, 2.0)
    basis = np.exp(1j * np.pi * np.outer(modes, x + 1.0))
    return np.real((coefficients * multiplicity) @ basis)


def solve_burgers(
    num_x: int = 256,
    num_t: int = 100,
    *,
    viscosity: float = 0.01 / math.pi,
    dt: float = 0.01,
    num_modes: int = 2048,
    rtol: float = 1e-10,
    atol: float = 1e-10,
) -> Reference:
    """Solve u_t + u u_x - viscosity u_xx = 0, u(x, 0) = -sin(pi x), u(+-1, t) = 0.

    Float64 is switched on only inside this call. The default grid is that of the classic
    ``burgers_shock.mat`` (256 x on [-1, 1] inclusive, t = 0, 0.01, ..., 0.99).

    Args:
        num_x: output points ``linspace(-1, 1, num_x)``.
        num_t: output times ``dt * arange(num_t)``.
        viscosity: nu (0.01/pi by default). Smaller values need more modes (the layer has width ~ nu).
        dt: spacing of the output times.
        num_modes: even number of points of the periodic grid the solver evolves.
        rtol, atol: tolerances of the adaptive Tsit5 time stepper.

    Returns:
        A :class:`Reference` with axes ``(x, t)``, values of shape ``(num_x, num_t)``, output ``("u",)``.

    Example:
        >>> ref = solve_burgers(5, 3, viscosity=0.1, num_modes=64, rtol=1e-6, atol=1e-6)
        >>> ref.values.shape
        (5, 3)
    """
    for name, value, smallest in (("num_x", num_x, 2), ("num_t", num_t, 2), ("num_modes", num_modes, 8)):
        if not isinstance(value, int | np.integer) or value < smallest:
            raise ValueError(f"{name} must be an int >= {smallest}, got {value!r}")
    if num_modes % 2:
        raise ValueError(f"num_modes must be even, got {num_modes}")
    for name, value in (("viscosity", viscosity), ("dt", dt), ("rtol", rtol), ("atol", atol)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be positive and finite, got {value!r}")

    x = np.linspace(-1.0, 1.0, num_x)
    t = dt * np.arange(num_t)
    periodic_x = -1.0 + 2.0 * np.arange(num_modes) / num_modes
    wavenumbers = np.pi * np.fft.rfftfreq(num_modes, d=1.0 / num_modes)
    with jax.enable_x64(True):
        ys = _integrate(
            jnp.asarray(-np.sin(np.pi * periodic_x)),
            jnp.asarray(t),
            jnp.asarray(wavenumbers),
            jnp.float64(viscosity),
            jnp.float64(rtol),
            jnp.float64(atol),
        )
        samples = np.asarray(ys, dtype=np.float64)
    values = trigonometric_interpolation(samples, x).T
    # The walls are zero by symmetry; make it exact rather than ~1e-16.
    values[0], values[-1] = 0.0, 0.0
    return Reference(axes=(x, t), values=values, output_names=("u",))


# ----- the exact solution -------------------------------------------------------------------------------


def burgers_cole_hopf(x: np.ndarray, t: np.ndarray, viscosity: float, *, num_nodes: int = 160) -> np.ndarray:
    """The exact solution of the Burgers problem of :func:`solve_burgers`, by the Cole-Hopf transform.

    u(x, t) = -∫ sin(pi (x - eta)) f(x - eta) G(eta) d eta / ∫ f(x - eta) G(eta) d eta, with
    f(y) = exp(-cos(pi y) / (2 pi nu)) and the heat kernel G(eta) = exp(-eta^2 / (4 nu t)). Substituting
    eta = sqrt(4 nu t) z turns both integrals into Gauss-Hermite form; the exponents are shifted by
    their maximum before exponentiating (f alone reaches exp(50) at nu = 0.01/pi). At nu = 0.01/pi,
    t <= 1, 100 nodes already agree with 400 to 4e-15.

    Args:
        x: 1-D array of positions.
        t: 1-D array of times (>= 0; t = 0 returns the initial condition).
        viscosity: nu > 0.
        num_nodes: Gauss-Hermite nodes (more for smaller nu or larger t).

    Returns:
        An array of shape ``(len(x), len(t))``.

    Example:
        >>> u = burgers_cole_hopf(np.array([-0.5, 0.0, 0.5]), np.array([0.0, 0.5]), 0.01 / np.pi)
        >>> [round(float(v), 6) for v in u[:, 0]]
        [1.0, -0.0, -1.0]
    """
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if x.ndim != 1 or t.ndim != 1:
        raise ValueError(f"x and t must be 1-D, got shapes {x.shape} and {t.shape}")
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError("t must be finite and >= 0")
    if not np.isfinite(viscosity) or viscosity <= 0:
        raise ValueError(f"viscosity must be positive and finite, got {viscosity!r}")
    nodes, weights = scipy.special.roots_hermite(num_nodes)
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)  # Far nodes may have weight 0: log -> -inf -> contributes 0.
    result = np.empty((x.size, t.size))
    for column, time in enumerate(t):
        if time == 0.0:
            result[:, column] = -np.sin(np.pi * x)
            continue
        y = x[:, None] - math.sqrt(4.0 * viscosity * time) * nodes[None, :]
        exponent = -np.cos(np.pi * y) / (2.0 * math.pi * viscosity) + log_weights
        weight = np.exp(exponent - exponent.max(axis=1, keepdims=True))
        result[:, column] = -np.sum(np.sin(np.pi * y) * weight, axis=1) / np.sum(weight, axis=1)
    return result
