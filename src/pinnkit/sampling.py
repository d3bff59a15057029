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

:func:`nearest_points` is the geometry that follows a redraw: ``pinnkit.reweight.carry_weights`` gives each new
point the weight of the nearest old one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from pinnkit.problems.base import Points, Problem
from pinnkit.validation import choice, positive_int, real

__all__ = ["POTENTIALS", "Resampling", "nearest_points"]

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
            positive_int(f"resampling {name}", getattr(self, name))
        for name in ("power", "constant"):
            real(f"resampling {name}", getattr(self, name), low=0, high=1e6)
        choice("resampling potential", self.potential, POTENTIALS)
        real("resampling temperature_scale", self.temperature_scale, low=0, high=1e6, low_open=True)
        real("resampling phi", self.phi, low=0, high=1)
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
            # Imported here: pinnkit.reweight imports this module (carry_weights uses nearest_points).
            from pinnkit.reweight.variational import vrba_target

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


def nearest_points(old_points: ArrayLike, new_points: ArrayLike, *, scale: ArrayLike | None = None,
                   chunk: int = 1024) -> Array:
    """For each new point, the index of the nearest old point (Euclidean distance after dividing by ``scale``).

    Ties go to the lowest index. Memory is bounded by ``chunk`` new points at a time. Works under ``jit``.

    Args:
        old_points: array ``(N, d)``.
        new_points: array ``(M, d)``.
        scale: per-coordinate lengths ``(d,)`` (e.g. the domain's extent), so that no coordinate dominates the
            distance by its units; default 1.
        chunk: new points per block.

    Returns:
        An int32 array ``(M,)`` of indices into ``old_points``.

    Example:
        >>> import jax.numpy as jnp
        >>> from pinnkit.sampling import nearest_points
        >>> nearest_points(jnp.array([[0.0], [1.0], [2.0]]), jnp.array([[1.9], [0.2], [0.9]]))
        Array([2, 0, 1], dtype=int32)
    """
    old = jnp.asarray(old_points)
    new = jnp.asarray(new_points)
    if old.ndim != 2 or new.ndim != 2 or old.shape[1] != new.shape[1]:
        raise ValueError(f"nearest_points needs (N, d) and (M, d) arrays, got shapes {old.shape} and {new.shape}")
    if old.shape[0] == 0:
        raise ValueError("nearest_points: old_points is empty")
    positive_int("chunk", chunk)
    dtype = jnp.result_type(old.dtype, new.dtype, float)
    old, new = old.astype(dtype), new.astype(dtype)
    if scale is not None:
        scale = jnp.asarray(scale, dtype)
        if scale.shape != (old.shape[1],):
            raise ValueError(f"scale must have shape ({old.shape[1]},), got {scale.shape}")
        old, new = old / scale, new / scale
    count = new.shape[0]
    blocks = -(-count // chunk)
    padded = jnp.concatenate([new, jnp.zeros((blocks * chunk - count, new.shape[1]), dtype)])
    old_norms = jnp.sum(old * old, axis=1)

    def block(rows: Array) -> Array:
        # |a - b|^2 = |a|^2 - 2 a.b + |b|^2; |a|^2 is the same for every candidate of a row, so it is left out.
        distances = old_norms[None, :] - 2 * rows @ old.T
        return jnp.argmin(distances, axis=1).astype(jnp.int32)

    indices = jax.lax.map(block, padded.reshape(blocks, chunk, -1)).reshape(-1)
    return indices[:count]
