"""Viscous Burgers: u_t + u u_x - nu u_xx = 0, x in [-1, 1], t in [0, 1], u(x, 0) = -sin(pi x), u(+-1, t) = 0."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from pinnkit.derivatives import batch_axis_derivatives
from pinnkit.problems.base import Problem, scalar_output
from pinnkit.reference.base import Reference
from pinnkit.validation import integer


@dataclasses.dataclass(frozen=True)
class Burgers(Problem):
    """Burgers with a shock forming at x = 0 (nu = 0.01/pi).

    Args:
        viscosity: nu.
        initial_points: equispaced points of the initial-condition term.
        boundary_points: random times of the boundary term (split between x = -1 and x = 1).
        num_x, num_t: reference grid (256 x on [-1, 1] inclusive, t = 0, 0.01, ..., 0.99).
    """

    viscosity: float = 0.01 / math.pi
    initial_points: int = 256
    boundary_points: int = 200
    num_x: int = 256
    num_t: int = 100

    name = "burgers"
    summary = "u_t + u u_x - (0.01/pi) u_xx = 0, u(x,0) = -sin(pi x), u(+-1,t) = 0 (method of lines + diffrax)"
    input_names = ("x", "t")
    output_names = ("u",)
    lower_bounds = (-1.0, 0.0)
    upper_bounds = (1.0, 1.0)

    def validate(self) -> None:
        if not 0 < self.viscosity <= 1000:
            raise ValueError(f"viscosity must lie in (0, 1000], got {self.viscosity}")
        for name in ("initial_points", "boundary_points", "num_x", "num_t"):
            integer(name, getattr(self, name), minimum=2)

    def constraint_points(self, key):
        x = jnp.linspace(-1.0, 1.0, self.initial_points)
        t = jax.random.uniform(key, (self.boundary_points,))
        side = jnp.where(jnp.arange(self.boundary_points) % 2 == 0, -1.0, 1.0)
        return {
            "ic": jnp.stack([x, jnp.zeros_like(x)], axis=1),
            "bc": jnp.stack([side, t], axis=1),
        }

    def constraint_counts(self) -> dict[str, int]:
        return {"ic": self.initial_points, "bc": self.boundary_points}

    def reference_size(self) -> int:
        return self.num_x * self.num_t

    def residuals(self, model, points):
        u = scalar_output(model)

        series = batch_axis_derivatives(model, points["pde"], {0: 2, 1: 1})
        value, u_x, u_xx = (column[:, 0] for column in series[0])
        u_t = series[1][1][:, 0]
        ic = points["ic"]
        return {
            "pde": u_t + value * u_x - self.viscosity * u_xx,
            "ic": jax.vmap(u)(ic) + jnp.sin(jnp.pi * ic[:, 0]),
            "bc": jax.vmap(u)(points["bc"]),
        }

    def compute_reference(self) -> Reference:
        from pinnkit.reference import solve_burgers

        return solve_burgers(self.num_x, self.num_t, viscosity=self.viscosity)
