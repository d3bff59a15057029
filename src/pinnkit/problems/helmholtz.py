"""2-D Helmholtz equation with a manufactured solution: u_xx + u_yy + k^2 u = f on [-1, 1]^2, u = 0 on the boundary."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from pinnkit.derivatives import batch_axis_derivatives
from pinnkit.problems.base import Problem, scalar_output
from pinnkit.reference.base import Reference
from pinnkit.validation import integer, positive_int


@dataclasses.dataclass(frozen=True)
class Helmholtz(Problem):
    """Helmholtz with exact solution u = sin(a1 pi x) sin(a2 pi y); ``f`` follows from it.

    Args:
        a1, a2: wave numbers of the manufactured solution (defaults 1 and 4, the classic case; the paper uses 6, 6).
        k: the Helmholtz coefficient.
        boundary_points_per_side: random boundary points on each of the four sides.
        boundary_grid: 0: the boundary points are uniform on each side; n >= 2: drawn without replacement from n
            equispaced points of each side (the paper's code: 100 of 1001).
        grid_size: points per side of the reference grid.
    """

    a1: float = 1.0
    a2: float = 4.0
    k: float = 1.0
    boundary_points_per_side: int = 100
    boundary_grid: int = 0
    grid_size: int = 201

    name = "helmholtz"
    summary = "u_xx + u_yy + k^2 u = f on [-1,1]^2, u = sin(a1 pi x) sin(a2 pi y), zero boundary (closed form)"
    input_names = ("x", "y")
    output_names = ("u",)
    lower_bounds = (-1.0, -1.0)
    upper_bounds = (1.0, 1.0)

    def validate(self) -> None:
        for name in ("a1", "a2"):
            value = getattr(self, name)
            if value == 0 or abs(value) > 1000:
                raise ValueError(f"{name} must be a non-zero wave number with |{name}| <= 1000, got {value} "
                                 "(zero makes the exact solution vanish)")
        if abs(self.k) > 1000:
            raise ValueError(f"k must satisfy |k| <= 1000, got {self.k}")
        positive_int("boundary_points_per_side", self.boundary_points_per_side)
        integer("grid_size", self.grid_size, minimum=2)
        integer("boundary_grid", self.boundary_grid, minimum=0)
        if 0 < self.boundary_grid < max(2, self.boundary_points_per_side):
            raise ValueError(f"boundary_grid={self.boundary_grid} must be 0 (uniform) or at least 2 and at least "
                             f"boundary_points_per_side={self.boundary_points_per_side} (drawn without replacement)")

    def exact(self, x, y):
        """The manufactured solution (works on numpy and JAX arrays)."""
        xp = jnp if isinstance(x, jax.Array) else np
        return xp.sin(self.a1 * xp.pi * x) * xp.sin(self.a2 * xp.pi * y)

    def forcing(self, x, y):
        """f = (k^2 - (a1 pi)^2 - (a2 pi)^2) u_exact."""
        return (self.k**2 - (self.a1 * jnp.pi) ** 2 - (self.a2 * jnp.pi) ** 2) * self.exact(x, y)

    def constraint_points(self, key):
        n = self.boundary_points_per_side
        if self.boundary_grid:
            grid = self.boundary_grid
            picks = jax.vmap(lambda side: jax.random.choice(side, grid, (n,), replace=False))(jax.random.split(key, 4))
            s = -1.0 + 2.0 * picks / (grid - 1)
        else:
            s = jax.random.uniform(key, (4, n), minval=-1.0, maxval=1.0)
        ones = jnp.ones(n)
        sides = [
            jnp.stack([-ones, s[0]], axis=1),
            jnp.stack([ones, s[1]], axis=1),
            jnp.stack([s[2], -ones], axis=1),
            jnp.stack([s[3], ones], axis=1),
        ]
        return {"bc": jnp.concatenate(sides)}

    def constraint_counts(self) -> dict[str, int]:
        return {"bc": 4 * self.boundary_points_per_side}

    def reference_size(self) -> int:
        return self.grid_size**2

    def residuals(self, model, points):
        u = scalar_output(model)

        interior = points["pde"]
        series = batch_axis_derivatives(model, interior, {0: 2, 1: 2})
        value, _, u_xx = (column[:, 0] for column in series[0])
        u_yy = series[1][2][:, 0]
        return {
            "pde": u_xx + u_yy + self.k**2 * value - self.forcing(interior[:, 0], interior[:, 1]),
            "bc": jax.vmap(u)(points["bc"]),
        }

    def compute_reference(self) -> Reference:
        axis = np.linspace(-1.0, 1.0, self.grid_size)
        x, y = np.meshgrid(axis, axis, indexing="ij")
        return Reference(axes=(axis, axis), values=self.exact(x, y), output_names=("u",))

    def reference(self) -> Reference:
        # A closed form is cheaper than a cache lookup.
        return self.compute_reference()
