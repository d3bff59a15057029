"""Allen-Cahn reference: Fourier pseudo-spectral method of lines in x, diffrax in t, float64.

u_t - d u_xx + r (u^3 - u) = 0 on the periodic interval [-1, 1), u(x, 0) = x^2 cos(pi x).

The state is u at ``num_x`` equispaced points; u_xx is exact for the trigonometric interpolant
(multiply the FFT by -k^2, the Nyquist mode included) and the cubic is evaluated pointwise, as in the
Chebfun ``spin`` run that produced the standard dataset. The diffusion eigenvalues reach only
d (pi num_x / 2)^2 = 65 at the defaults, so the system is not stiff: an explicit adaptive Runge-Kutta
method (Tsit5, 92 steps at rtol = atol = 1e-10) was faster and as accurate as Dopri8 in our measurements,
and an implicit method would only add Jacobian solves.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from pinnkit.reference.base import Reference

__all__ = ["allen_cahn_initial_condition", "solve_allen_cahn"]


def allen_cahn_initial_condition(x: np.ndarray) -> np.ndarray:
    """The initial condition u(x, 0) = x^2 cos(pi x).

    Args:
        x: points in [-1, 1).

    Returns:
        The initial values, same shape as ``x``.

    Example:
        >>> float(allen_cahn_initial_condition(np.array([1.0]))[0])
        -1.0
    """
    x = np.asarray(x, dtype=np.float64)
    return x**2 * np.cos(np.pi * x)


def vector_field(t, u, args):
    wavenumbers_squared, diffusion, reaction = args
    u_xx = jnp.fft.irfft(-wavenumbers_squared * jnp.fft.rfft(u), n=u.shape[0])
    return diffusion * u_xx - reaction * (u**3 - u)


@jax.jit
def _integrate(u0, ts, wavenumbers_squared, diffusion, reaction, rtol, atol):
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        diffrax.Tsit5(),
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=u0,
        args=(wavenumbers_squared, diffusion, reaction),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=1_000_000,
    )
    return solution.ys


def _check_positive(name: str, value: float) -> None:
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be positive and finite, got {value!r}")


def solve_allen_cahn(
    num_x: int = 512,
    num_t: int = 201,
    *,
    diffusion: float = 1e-4,
    reaction: float = 5.0,
    t_final: float = 1.0,
    rtol: float = 1e-10,
    atol: float = 1e-10,
) -> Reference:
    """Solve u_t - diffusion u_xx + reaction (u^3 - u) = 0, periodic on [-1, 1), u(x, 0) = x^2 cos(pi x).

    Float64 is switched on only inside this call; the caller's JAX setting is left as it was.

    Args:
        num_x: grid points (and Fourier modes) in x; the grid is ``-1 + 2 j / num_x``, j = 0 .. num_x - 1.
        num_t: output times ``linspace(0, t_final, num_t)``.
        diffusion: the coefficient of u_xx (the paper's 1e-4).
        reaction: the coefficient of the cubic (the paper's 5).
        t_final: the last output time.
        rtol, atol: tolerances of the adaptive Tsit5 time stepper.

    Returns:
        A :class:`Reference` with axes ``(x, t)`` and values of shape ``(num_x, num_t)``, output ``("u",)``.

    Example:
        >>> ref = solve_allen_cahn(64, 3, t_final=0.1, rtol=1e-6, atol=1e-6)
        >>> ref.values.shape
        (64, 3)
    """
    if not isinstance(num_x, int | np.integer) or num_x < 4 or num_x % 2:
        raise ValueError(f"num_x must be an even int >= 4, got {num_x!r}")
    if not isinstance(num_t, int | np.integer) or num_t < 2:
        raise ValueError(f"num_t must be an int >= 2, got {num_t!r}")
    for name, value in (("diffusion", diffusion), ("t_final", t_final), ("rtol", rtol), ("atol", atol)):
        _check_positive(name, value)
    if not np.isfinite(reaction):
        raise ValueError(f"reaction must be finite, got {reaction!r}")

    x = -1.0 + 2.0 * np.arange(num_x) / num_x
    t = np.linspace(0.0, t_final, num_t)
    # Period 2: mode m has wavenumber pi m.
    wavenumbers = np.pi * np.fft.rfftfreq(num_x, d=1.0 / num_x)
    with jax.enable_x64(True):
        ys = _integrate(
            jnp.asarray(allen_cahn_initial_condition(x)),
            jnp.asarray(t),
            jnp.asarray(wavenumbers**2),
            jnp.float64(diffusion),
            jnp.float64(reaction),
            jnp.float64(rtol),
            jnp.float64(atol),
        )
        values = np.asarray(ys, dtype=np.float64).T
    return Reference(axes=(x, t), values=values, output_names=("u",))
