"""The value every reference solver returns: a solution sampled on a tensor-product grid."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Reference"]


@dataclasses.dataclass(frozen=True, eq=False)
class Reference:
    """A reference solution on the tensor grid ``axes[0] x axes[1] x ...``.

    Arrays are stored as float64 NumPy arrays (JAX arrays are converted). Equality is identity: compare
    the arrays yourself (``np.array_equal``); element-wise ``==`` of arrays has no single truth value.

    Attributes:
        axes: one 1-D array per problem input, in the problem's input order, e.g. ``(x, t)``.
        values: shape ``[len(a) for a in axes]`` for one output, ``[..., n_outputs]`` for several.
        output_names: e.g. ``("u",)`` or ``("psi", "u", "v", "p")``; the trailing axis of ``values``
            exists iff there is more than one name.

    Example:
        >>> import numpy as np
        >>> x, t = np.linspace(0, 1, 3), np.linspace(0, 1, 2)
        >>> ref = Reference(axes=(x, t), values=np.zeros((3, 2)), output_names=("u",))
        >>> ref.grid_points().shape
        (6, 2)
    """

    axes: tuple[np.ndarray, ...]
    values: np.ndarray
    output_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.axes, np.ndarray) or not isinstance(self.axes, tuple | list):
            raise TypeError(f"axes must be a tuple of 1-D arrays, got {type(self.axes).__name__}")
        if isinstance(self.output_names, str) or not isinstance(self.output_names, tuple | list):
            raise TypeError(f"output_names must be a tuple of str, got {self.output_names!r}")
        axes = tuple(np.asarray(axis, dtype=np.float64) for axis in self.axes)
        values = np.asarray(self.values, dtype=np.float64)
        names = tuple(self.output_names)
        if not axes:
            raise ValueError("axes must hold at least one axis")
        for index, axis in enumerate(axes):
            if axis.ndim != 1 or axis.size == 0:
                raise ValueError(f"axes[{index}] must be a non-empty 1-D array, got shape {axis.shape}")
        if not names or not all(isinstance(name, str) and name for name in names):
            raise ValueError(f"output_names must be non-empty strings, got {names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"output_names must be distinct, got {names!r}")
        grid_shape = tuple(axis.size for axis in axes)
        expected = grid_shape if len(names) == 1 else (*grid_shape, len(names))
        if values.shape != expected:
            raise ValueError(
                f"values has shape {values.shape}, but axes of lengths {grid_shape} and "
                f"{len(names)} output(s) {names} need shape {expected}"
            )
        # Frozen dataclass: normalise the fields once, here.
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "output_names", names)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """The number of points along each axis."""
        return tuple(axis.size for axis in self.axes)

    def grid_points(self) -> np.ndarray:
        """All grid points as rows, ``(prod(grid_shape), len(axes))``, meshgrid 'ij' order flattened C-order.

        Row ``k`` of the result matches ``values.reshape(len(rows), -1)[k]``.

        Returns:
            A float64 array of points.

        Example:
            >>> import numpy as np
            >>> ref = Reference((np.array([0.0, 1.0]), np.array([5.0, 6.0, 7.0])), np.zeros((2, 3)), ("u",))
            >>> ref.grid_points()[:4].tolist()
            [[0.0, 5.0], [0.0, 6.0], [0.0, 7.0], [1.0, 5.0]]
        """
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.stack([coordinate.reshape(-1) for coordinate in mesh], axis=1)

    def output(self, name: str) -> np.ndarray:
        """The values of one output over the grid, shape ``grid_shape``.

        Args:
            name: one of :attr:`output_names`.

        Returns:
            The array of that output (a view, not a copy).

        Example:
            >>> import numpy as np
            >>> ref = Reference((np.zeros(2),), np.arange(4.0).reshape(2, 2), ("u", "v"))
            >>> ref.output("v").tolist()
            [1.0, 3.0]
        """
        if name not in self.output_names:
            raise ValueError(f"unknown output {name!r}; this reference has {self.output_names}")
        if len(self.output_names) == 1:
            return self.values
        return self.values[..., self.output_names.index(name)]
