"""Residual-based adaptive resampling of the collocation points (RAD).

Every ``every`` steps the interior collocation points are redrawn from a large uniform candidate set with
probability

    p(x)  proportional to  |r(x)|^k / mean(|r|^k) + c

(Wu, Zhu, Tan, Kartha, Lu, "A comprehensive study of non-adaptive and residual-based adaptive sampling for
physics-informed neural networks", CMAME 2023: RAD with ``k = 1, c = 1`` by default), so that points concentrate
where the residual is large (a shock, an interface) while ``c`` keeps every region sampled. With
``potential="exponential"`` the ``|r|`` above is replaced by vRBA's annealed exponential target (the importance
sampling of Toscano et al., arXiv 2509.14198; :func:`pinnkit.reweight.vrba_target`), whose clock is the redraw
number. The constraint points (initial and boundary conditions) stay as they are. Used by the engine through
``fit(..., resampling=...)``; resampling runs one model at a time (each model would want its own points).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike

from pinnkit.problems.base import Points, Problem
from pinnkit.reweight import vrba_target

__all__ = ["POTENTIALS", "Resampling"]

#: What the density grows with: ``"power"`` (RAD: ``|r|``) or ``"exponential"`` (vRBA's annealed target).
POTENTIALS: tuple[str, ...] = ("power", "exponential")


@dataclasses.dataclass(frozen=True)
class Resampling:
    """When and how to redraw the collocation points.

    Attributes:
        every: steps between redraws (a redraw also ends a chunk and records a history row).
        candidates: uniform candidate points the new points are drawn from (without replacement).
        power: ``k``, the exponent of the residual magnitude.
        constant: ``c``, the uniform part of the density (relative to the mean of ``|r|^k``).
        chunk: candidates evaluated at a time (bounds the memory of the residual evaluation).
        potential: ``"power"`` (RAD, the density grows with ``|r|``) or ``"exponential"``: it grows with vRBA's
            target ``t = phi * (n + 2) ** ((|r| / max|r| - 1) / temperature_scale) + (1 - phi)`` on the ``n``-th
            redraw, i.e. ``p ∝ t^k / mean(t^k) + c``: the points concentrate on the largest residuals more
            sharply as training goes on (the paper's sampling in its quasi-Newton stage; there the target is
            smoothed over redraws of a fixed pool, here each redraw has fresh candidates, so it is the
            instantaneous target).
        temperature_scale: ``c > 0`` of vRBA's annealed temperature (exponential only).
        phi: vRBA's share ``phi`` in [0, 1] of the exponential target (exponential only).

    Example:
        >>> Resampling(every=1000).candidates
        100000
    """

    every: int
    candidates: int = 100_000
    power: float = 1.0
    constant: float = 1.0
    chunk: int = 8192
    potential: str = "power"
    temperature_scale: float = 1.0
    phi: float = 1.0

    def __post_init__(self) -> None:
        for name in ("every", "candidates", "chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"resampling {name} must be a positive integer, got {value!r}")
        for name in ("power", "constant"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0 or value > 1e6:
                raise ValueError(f"resampling {name} must be a number in [0, 1e6], got {value!r}")
        if self.potential not in POTENTIALS:
            raise ValueError(f"resampling potential must be one of {POTENTIALS}, got {self.potential!r}")
        for name, inside, bounds in (("temperature_scale", lambda v: 0 < v <= 1e6, "(0, 1e6]"),
                                     ("phi", lambda v: 0 <= v <= 1, "[0, 1]")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not inside(value):
                raise ValueError(f"resampling {name} must be a number in {bounds}, got {value!r}")
        if self.power == 0 and self.constant == 0:
            raise ValueError("resampling power and constant cannot both be 0 (the density would be flat zero)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def draw(self, key: jax.Array, problem: Problem, model, points: Points, *, redraw: ArrayLike = 1) -> Points:
        """New collocation points for ``model`` (jit-compatible; the constraint points are kept).

        ``redraw`` (``n >= 1``, may be traced) is the exponential potential's annealing clock: the engine passes
        the number of the redraw in the run (``step // every``).

        Example:
            >>> import jax, pinnkit
            >>> problem = pinnkit.problems.get("burgers")
            >>> points = problem.sample(jax.random.key(0), 50)
            >>> model = pinnkit.nn.MLP(2, 1, width=8, depth=1, key=jax.random.key(1))
            >>> new = Resampling(every=10, candidates=500).draw(jax.random.key(2), problem, model, points)
            >>> new["pde"].shape, bool((new["ic"] == points["ic"]).all())
            ((50, 2), True)
        """
        terms = tuple(problem.collocation_terms)
        count = points[terms[0]].shape[0]
        if count > self.candidates:
            raise ValueError(f"resampling draws {count} points from {self.candidates} candidates: give more "
                             "candidates than collocation points")
        candidate_key, choice_key = jax.random.split(key)
        dtype = points[terms[0]].dtype
        lower, upper = (jnp.asarray(bound, dtype) for bound in problem.domain)
        candidates = jax.random.uniform(candidate_key, (self.candidates, lower.shape[0]), dtype, lower, upper)
        constraint_points = {term: value for term, value in points.items() if term not in terms}

        def magnitude(block):
            batch = dict(constraint_points)
            batch.update({term: block for term in terms})
            residuals = problem.residuals(model, batch)
            return sum(jnp.abs(residuals[term]) for term in terms)

        chunk = min(self.chunk, self.candidates)
        padded = -(-self.candidates // chunk) * chunk
        filler = jnp.broadcast_to(candidates[:1], (padded - self.candidates, candidates.shape[1]))
        blocks = jnp.concatenate([candidates, filler]).reshape(padded // chunk, chunk, -1)
        error = jax.lax.map(magnitude, blocks).reshape(-1)[: self.candidates]
        error = jnp.where(jnp.isfinite(error), error, 0.0)
        if self.potential == "exponential":
            error = vrba_target(error, jnp.maximum(jnp.asarray(redraw), 1), temperature_scale=self.temperature_scale,
                                phi=self.phi)
        error = error ** self.power
        mean = jnp.mean(error)
        density = jnp.where(mean > 0, error / jnp.where(mean > 0, mean, 1.0), 0.0) + self.constant
        density = jnp.where(jnp.sum(density) > 0, density, 1.0)
        chosen = jax.random.choice(choice_key, self.candidates, (count,), replace=False,
                                   p=density / jnp.sum(density))
        new = dict(points)
        for term in terms:
            new[term] = candidates[chosen]
        return new
