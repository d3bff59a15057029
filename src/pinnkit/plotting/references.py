"""A figure of a reference solution: one colour map per output over its two axes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from pinnkit.reference.base import Reference

__all__ = ["plot_reference"]


def plot_reference(
    reference: Reference,
    *,
    title: str | None = None,
    axis_names: Sequence[str] | None = None,
    fig: Figure | None = None,
    robust: bool = False,
) -> Figure:
    """Colour maps of every output of a 2-D reference, side by side, each with a colour bar.

    Uses only ``matplotlib.figure.Figure`` (no pyplot state), so it is safe in scripts, tests and threads;
    save with ``fig.savefig(path)``.

    Args:
        reference: a reference with exactly two axes; the first is drawn horizontally.
        title: the figure's title.
        axis_names: labels of the two axes (default ``("x", "t")``).
        fig: a figure to draw into (it should be empty); a new one is made if None.
        robust: clip each colour scale to the 1st-99th percentile, so that a singular point (the lid
            corners of the cavity pressure) does not wash out the rest.

    Returns:
        The figure.

    Example:
        >>> import numpy as np
        >>> from pinnkit.reference import Reference
        >>> x, t = np.linspace(-1, 1, 5), np.linspace(0, 1, 3)
        >>> ref = Reference((x, t), np.add.outer(x, t), ("u",))
        >>> len(plot_reference(ref, title="demo").axes)  # the map and its colour bar
        2
    """
    if not isinstance(reference, Reference):
        raise TypeError(f"reference must be a Reference, got {type(reference).__name__}")
    if len(reference.axes) != 2:
        raise ValueError(f"plot_reference draws 2-D references, got {len(reference.axes)} axes")
    axis_names = tuple(axis_names) if axis_names is not None else ("x", "t")
    if len(axis_names) != 2:
        raise ValueError(f"axis_names must name the two axes, got {axis_names!r}")

    num_outputs = len(reference.output_names)
    if fig is None:
        fig = Figure(figsize=(max(4.2 * num_outputs + 0.5, 6.5), 3.8), layout="constrained")
    first, second = reference.axes
    square = np.isclose(np.ptp(first), np.ptp(second))
    for index, name in enumerate(reference.output_names):
        ax = fig.add_subplot(1, num_outputs, index + 1)
        values = reference.output(name)
        limits = {}
        if robust:
            low, high = np.percentile(values, [1.0, 99.0])
            limits = {"vmin": low, "vmax": high}
        # values[i, j] lives at (first[i], second[j]); pcolormesh wants rows along the vertical axis.
        mesh = ax.pcolormesh(first, second, values.T, shading="nearest", cmap="RdBu_r", **limits)
        fig.colorbar(mesh, ax=ax, extend="both" if robust else "neither")
        ax.set_title(name)
        ax.set_xlabel(axis_names[0])
        ax.set_ylabel(axis_names[1])
        if square:
            ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    return fig
