"""The shared machinery every PDE problem hands its specifics to.

A problem is a frozen dataclass whose fields are its parameters. It names its inputs and outputs, knows its domain,
samples collocation and constraint points from a key, turns a network into per-sample residual vectors (one per loss
term), and provides a reference solution on a grid. A new PDE is a short module that fills these in.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from pinnkit.reference.base import Reference
from pinnkit.validation import positive_int

__all__ = ["Problem", "Points", "Residuals", "latin_hypercube", "uniform"]

Points = dict[str, Float[Array, "n d"]]
Residuals = dict[str, Float[Array, " n"]]
Model = Callable[[Float[Array, " d"]], Float[Array, " k"]]


def latin_hypercube(key: PRNGKeyArray, num: int, lower: Array, upper: Array) -> Float[Array, "num d"]:
    """``num`` Latin-hypercube points in the box [lower, upper], in random order.

    Each coordinate takes exactly one value in each of ``num`` equal strata, independently permuted per coordinate.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> latin_hypercube(jax.random.key(0), 5, jnp.zeros(2), jnp.ones(2)).shape
        (5, 2)
    """
    lower, upper = jnp.asarray(lower), jnp.asarray(upper)
    dim = lower.shape[0]
    perm_key, jitter_key = jax.random.split(key)
    strata = jax.vmap(lambda k: jax.random.permutation(k, num))(jax.random.split(perm_key, dim)).T
    unit = (strata + jax.random.uniform(jitter_key, (num, dim), dtype=lower.dtype)) / num
    return lower + unit * (upper - lower)


def uniform(key: PRNGKeyArray, num: int, lower: Array, upper: Array) -> Float[Array, "num d"]:
    """``num`` independent uniform points in the box [lower, upper].

    Example:
        >>> import jax, jax.numpy as jnp
        >>> uniform(jax.random.key(0), 3, jnp.zeros(2), jnp.ones(2)).shape
        (3, 2)
    """
    lower, upper = jnp.asarray(lower), jnp.asarray(upper)
    return jax.random.uniform(key, (num, lower.shape[0]), lower.dtype, lower, upper)


SAMPLERS = {"lhs": latin_hypercube, "uniform": uniform}


@dataclasses.dataclass(frozen=True)
class Problem(abc.ABC):
    """A PDE problem: domain, residuals, constraints, sampling and reference.

    Subclasses set the class attributes and implement :meth:`constraint_points`, :meth:`residuals` and
    :meth:`compute_reference`; fields of the dataclass are the problem's parameters.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    input_names: ClassVar[tuple[str, ...]]
    output_names: ClassVar[tuple[str, ...]]
    lower_bounds: ClassVar[tuple[float, ...]]
    upper_bounds: ClassVar[tuple[float, ...]]
    # The terms evaluated at the interior collocation points (weighted by RBA and split into SNR batches).
    collocation_terms: ClassVar[tuple[str, ...]] = ("pde",)
    # Inputs in which the solution is periodic over the domain (a network can be made periodic in them exactly).
    periodic_axes: ClassVar[tuple[int, ...]] = ()

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and not np.isfinite(value):
                raise ValueError(f"{self.name}: parameter {field.name} must be finite, got {value}")
        self.validate()

    def validate(self) -> None:
        """Check the parameters; raise ValueError naming a bad one."""

    # ----- domain and sampling -------------------------------------------------------------------------------
    @property
    def domain(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` bounds of the inputs, in the order of :attr:`input_names`."""
        return np.asarray(self.lower_bounds, float), np.asarray(self.upper_bounds, float)

    @property
    def params(self) -> dict[str, Any]:
        """The problem's parameters as a plain dict."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    def sample(self, key: PRNGKeyArray, num_residual: int, *, method: str = "lhs", dtype=None) -> Points:
        """Collocation points (under each of :attr:`collocation_terms`) and constraint points for the other terms.

        Args:
            key: PRNG key; the same key gives the same points.
            num_residual: number of collocation points in the interior.
            method: ``"lhs"`` (Latin hypercube, the paper's choice) or ``"uniform"``.
            dtype: float dtype of the points (default: JAX's default float).

        Returns:
            A dict from term name to an array of points of shape ``(n, len(input_names))``.
        """
        num_residual = positive_int("num_residual", num_residual)
        if method not in SAMPLERS:
            raise ValueError(f"unknown sampling method {method!r}; choose one of {sorted(SAMPLERS)}")
        dtype = dtype or jnp.zeros(()).dtype
        lower, upper = (jnp.asarray(bound, dtype) for bound in self.domain)
        interior_key, constraint_key = jax.random.split(key)
        interior = SAMPLERS[method](interior_key, num_residual, lower, upper)
        points = {term: interior for term in self.collocation_terms}
        for term, value in self.constraint_points(constraint_key).items():
            points[term] = jnp.asarray(value, dtype)
        return points

    @abc.abstractmethod
    def constraint_points(self, key: PRNGKeyArray) -> Points:
        """Points of the initial/boundary terms, by term name."""

    @abc.abstractmethod
    def constraint_counts(self) -> dict[str, int]:
        """The number of points of each initial/boundary term (without making them)."""

    @abc.abstractmethod
    def reference_size(self) -> int:
        """The number of points of the reference grid (without solving)."""

    # ----- physics ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def residuals(self, model: Model, points: Points) -> Residuals:
        """Per-sample residual vectors, one per loss term, each of shape ``(n_term,)``."""

    def observe(self, model: Model, x: Float[Array, "n d"]) -> Float[Array, "n k"]:
        """The quantities the reference provides (its ``output_names``), predicted by ``model`` at points ``x``."""
        return jax.vmap(model)(x)

    def error_quantity(self, values: Float[Array, "... k"]) -> Float[Array, ...]:
        """The scalar field the relative L2 error is measured on (default: the single output)."""
        return values[..., 0]

    # ----- reference -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def compute_reference(self) -> Reference:
        """Solve for the reference (no caching here)."""

    def reference(self) -> Reference:
        """The reference solution on its grid, computed once and cached on disk (see ``pinnkit.reference``)."""
        from pinnkit.reference import cached_reference

        return cached_reference(self.name, self.params, self.compute_reference)

    def relative_l2_fn(self, reference: Reference | None = None) -> Callable[[Model], Array]:
        """A function ``model -> relative L2 error`` on the reference grid (jit it once, call it every log step).

        The error is ``||q_pred - q_ref||_2 / ||q_ref||_2`` of :meth:`error_quantity` over the whole grid.

        Example:
            >>> import jax, pinnkit
            >>> problem = pinnkit.problems.get("helmholtz")
            >>> model = pinnkit.nn.MLP(2, 1, width=8, depth=1, key=jax.random.key(0))
            >>> bool(problem.relative_l2_fn()(model) > 0)
            True
        """
        reference = reference or self.reference()
        grid = reference.grid_points()
        values = reference.values.reshape(grid.shape[0], -1)
        target = np.asarray(self.error_quantity(values))
        target_norm = float(np.linalg.norm(target))

        def relative_l2(model: Model) -> Array:
            leaves = [leaf for leaf in jax.tree_util.tree_leaves(model) if eqx.is_inexact_array(leaf)]
            x = jnp.asarray(grid, dtype=leaves[0].dtype if leaves else jnp.zeros(()).dtype)
            predicted = self.error_quantity(self.observe(model, x))
            return jnp.linalg.norm(predicted - jnp.asarray(target, predicted.dtype)) / target_norm

        return relative_l2

    def describe(self) -> str:
        """One line: name, summary and parameters."""
        params = ", ".join(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
                           for key, value in self.params.items())
        return f"{self.name}: {self.summary} ({params})" if params else f"{self.name}: {self.summary}"


def scalar_output(model: Model) -> Callable[[Array], Array]:
    """The first output of a network as a scalar function of one point (what derivative helpers take)."""
    return lambda point: model(point)[0]


def replace_params(problem: Problem, params: Mapping[str, Any]) -> Problem:
    """A copy of ``problem`` with some parameters replaced.

    Unknown names, and values of the wrong kind for a parameter (a string or a bool for a number, a fraction for a
    count), raise ValueError naming the parameter. Integers are accepted for float parameters.
    """
    fields = {field.name: field for field in dataclasses.fields(problem)}
    unknown = set(params) - set(fields)
    if unknown:
        raise ValueError(f"{problem.name} has no parameter {sorted(unknown)[0]!r}; its parameters are {sorted(fields)}")
    checked = {}
    for name, value in params.items():
        default = getattr(problem, name)
        checked[name] = _coerce(problem.name, name, value, default)
    return dataclasses.replace(problem, **checked)


def _coerce(problem_name: str, name: str, value: Any, default: Any) -> Any:
    bad = ValueError(f"{problem_name}: parameter {name} must be of type {type(default).__name__}, got {value!r}")
    if isinstance(default, bool):
        if not isinstance(value, bool | np.bool_):
            raise bad
        return bool(value)
    if isinstance(value, bool | np.bool_ | str) or not isinstance(value, int | float | np.integer | np.floating):
        raise bad
    if isinstance(default, int):
        if float(value) != int(value):
            raise bad
        return int(value)
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{problem_name}: parameter {name} must be finite, got {value}")
    return value
