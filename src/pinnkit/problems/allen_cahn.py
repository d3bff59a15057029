"""Allen-Cahn: u_t - d u_xx + r (u^3 - u) = 0 on x in [-1, 1], t in [0, 1], u(x, 0) = x^2 cos(pi x), periodic."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from pinnkit.derivatives import axis_derivatives, batch_axis_derivatives
from pinnkit.problems.base import Problem, scalar_output
from pinnkit.reference.base import Reference
from pinnkit.validation import integer


def allen_cahn_initial(x):
    """u(x, 0) = x^2 cos(pi x)."""
    return x**2 * jnp.cos(jnp.pi * x)


@dataclasses.dataclass(frozen=True)
class AllenCahn(Problem):
    """The paper's Allen-Cahn benchmark.

    The loss has the PDE term and the initial condition at ``initial_points`` equispaced x (the paper: the 512
    reference grid points) and, by default as in the paper, no boundary term; ``periodic_loss=True`` adds
    u(-1, t) = u(1, t) and u_x(-1, t) = u_x(1, t) at ``boundary_points`` random times.

    Args:
        diffusion: the coefficient d (1e-4).
        reaction: the coefficient r (5).
        initial_points: points of the initial-condition term.
        periodic_loss: add the periodic boundary term.
        boundary_points: times of the periodic boundary term.
        num_x, num_t: reference grid (512 periodic x on [-1, 1), 201 t on [0, 1]).
    """

    diffusion: float = 1e-4
    reaction: float = 5.0
    initial_points: int = 512
    periodic_loss: bool = False
    boundary_points: int = 200
    num_x: int = 512
    num_t: int = 201

    name = "allen-cahn"
    summary = "u_t - 1e-4 u_xx + 5u^3 - 5u = 0, u(x,0) = x^2 cos(pi x), periodic (spectral + diffrax)"
    input_names = ("x", "t")
    output_names = ("u",)
    lower_bounds = (-1.0, 0.0)
    upper_bounds = (1.0, 1.0)
    periodic_axes = (0,)

    def validate(self) -> None:
        for name in ("initial_points", "boundary_points", "num_x", "num_t"):
            integer(name, getattr(self, name), minimum=2)
        if not 0 < self.diffusion <= 1000:
            raise ValueError(f"diffusion must lie in (0, 1000], got {self.diffusion}")
        if abs(self.reaction) > 1000:
            raise ValueError(f"reaction must satisfy |reaction| <= 1000, got {self.reaction}")

    def constraint_points(self, key):
        x = -1.0 + 2.0 * jnp.arange(self.initial_points) / self.initial_points
        points = {"ic": jnp.stack([x, jnp.zeros_like(x)], axis=1)}
        if self.periodic_loss:
            t = jax.random.uniform(key, (self.boundary_points,))
            points["bc"] = jnp.stack([-jnp.ones_like(t), t], axis=1)
        return points

    def constraint_counts(self) -> dict[str, int]:
        counts = {"ic": self.initial_points}
        if self.periodic_loss:
            counts["bc"] = 2 * self.boundary_points
        return counts

    def reference_size(self) -> int:
        return self.num_x * self.num_t

    def residuals(self, model, points):
        u = scalar_output(model)

        series = batch_axis_derivatives(model, points["pde"], {0: 2, 1: 1})
        value, _, u_xx = (column[:, 0] for column in series[0])
        u_t = series[1][1][:, 0]
        pde = u_t - self.diffusion * u_xx + self.reaction * (value**3 - value)
        ic = points["ic"]
        out = {"pde": pde, "ic": jax.vmap(u)(ic) - allen_cahn_initial(ic[:, 0])}
        if self.periodic_loss:
            left = points["bc"]
            right = left.at[:, 0].set(1.0)
            value_and_slope = lambda point: jnp.stack(axis_derivatives(u, point, 0, 1))
            jump = jax.vmap(value_and_slope)(left) - jax.vmap(value_and_slope)(right)
            out["bc"] = jnp.concatenate([jump[:, 0], jump[:, 1]])
        return out

    def compute_reference(self) -> Reference:
        from pinnkit.reference import solve_allen_cahn

        return solve_allen_cahn(self.num_x, self.num_t, diffusion=self.diffusion, reaction=self.reaction)
