"""Figures of a comparison: error and loss against steps and seconds, SNR/order with transitions, weights, fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from pinnkit.history import History

__all__ = ["plot_error_curves", "plot_snr_curves", "plot_weights", "plot_fields"]

_REWEIGHT_STYLE = {"none": "-", "rba": "--", "gradient-aware": ":"}


def _label(run: Mapping) -> str:
    return f"{run['optimizer']} / {run['reweight']} / seed {run['seed']}"


def _color(index: int) -> str:
    return f"C{index % 10}"


def plot_error_curves(runs: Sequence[Mapping], histories: Mapping[str, History]) -> Figure:
    """Relative L2 and loss against step and against wall time, one curve per run.

    Args:
        runs: result rows with at least ``name``, ``optimizer``, ``reweight``, ``seed``.
        histories: history of each run by name.

    Returns:
        A 2 x 2 figure.

    Example:
        >>> h = History([{"step": 1, "wall_time_s": 0.1, "loss": 1.0, "rel_l2": 0.9}])
        >>> fig = plot_error_curves([{"name": "a", "optimizer": "adam", "reweight": "none", "seed": 0}], {"a": h})
        >>> len(fig.axes)
        4
    """
    figure = Figure(figsize=(11, 7.5), layout="constrained")
    axes = figure.subplots(2, 2)
    optimizers = sorted({run["optimizer"] for run in runs})
    for run in runs:
        history = histories[run["name"]]
        color = _color(optimizers.index(run["optimizer"]))
        style = _REWEIGHT_STYLE.get(run["reweight"], "-.")
        label = _label(run)
        for row, column in enumerate(("rel_l2", "loss")):
            if column not in history:
                continue
            values = history[column]
            mask = np.isfinite(values) & (values > 0)
            axes[row, 0].plot(history["step"][mask], values[mask], style, color=color, label=label, lw=1.2)
            axes[row, 1].plot(history["wall_time_s"][mask], values[mask], style, color=color, lw=1.2)
    for row, name in enumerate(("relative L2 error", "loss")):
        for col, xlabel in enumerate(("step", "wall time [s]")):
            axis = axes[row, col]
            axis.set_yscale("log")
            axis.set_xlabel(xlabel)
            axis.set_ylabel(name)
            axis.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    return figure


def plot_snr_curves(runs: Sequence[Mapping], histories: Mapping[str, History]) -> Figure:
    """Batch-gradient SNR and order against step, detected transitions as vertical lines.

    Example:
        >>> h = History([{"step": s, "snr": 1.0, "order": 0.7} for s in (1, 2)])
        >>> fig = plot_snr_curves([{"name": "a", "optimizer": "adam", "reweight": "none", "seed": 0}], {"a": h})
        >>> len(fig.axes)
        2
    """
    figure = Figure(figsize=(11, 7.5), layout="constrained")
    snr_axis, order_axis = figure.subplots(2, 1, sharex=True)
    for index, run in enumerate(runs):
        history = histories[run["name"]]
        if "snr" not in history:
            continue
        color = _color(index)
        label = _label(run)
        mask = np.isfinite(history["snr"])
        snr_axis.plot(history["step"][mask], history["snr"][mask], color=color, lw=1, label=label)
        order_axis.plot(history["step"][mask], history["order"][mask], color=color, lw=1)
        for key, style in (("diffusion_start", ":"), ("equilibrium_start", "--")):
            if run.get(key) is not None:
                for axis in (snr_axis, order_axis):
                    axis.axvline(run[key], color=color, ls=style, lw=1)
    snr_axis.set_yscale("log")
    snr_axis.set_xscale("log")
    snr_axis.set_ylabel("batch-gradient SNR")
    order_axis.set_ylabel("gradient order")
    order_axis.set_xlabel("step  (dotted: diffusion starts, dashed: equilibrium starts)")
    order_axis.set_ylim(0, 1.05)
    for axis in (snr_axis, order_axis):
        axis.grid(True, which="both", alpha=0.3)
    snr_axis.legend(fontsize=7)
    return figure


def plot_weights(points: np.ndarray, weights: np.ndarray, *, input_names=("x", "y"), title: str = "") -> Figure:
    """The reweighting weights over the domain (scatter coloured by weight).

    Example:
        >>> fig = plot_weights(np.random.rand(10, 2), np.random.rand(10))
        >>> len(fig.axes)
        2
    """
    figure = Figure(figsize=(6, 4.8), layout="constrained")
    axis = figure.subplots()
    scatter = axis.scatter(points[:, 0], points[:, 1], c=weights, s=4, cmap="viridis")
    figure.colorbar(scatter, ax=axis, label="sample weight")
    axis.set_xlabel(input_names[0])
    axis.set_ylabel(input_names[1])
    axis.set_title(title)
    return figure


def plot_fields(axes_values: Sequence[np.ndarray], predicted: np.ndarray, reference: np.ndarray, *,
                input_names=("x", "y"), title: str = "") -> Figure:
    """Prediction, reference and absolute error of one field over a 2-D grid.

    Example:
        >>> grid = np.linspace(0, 1, 5)
        >>> fig = plot_fields((grid, grid), np.zeros((5, 5)), np.ones((5, 5)))
        >>> len(fig.axes)
        6
    """
    figure = Figure(figsize=(14, 4), layout="constrained")
    axes = figure.subplots(1, 3)
    first, second = axes_values
    extent = (second.min(), second.max(), first.min(), first.max())
    limits = (min(predicted.min(), reference.min()), max(predicted.max(), reference.max()))
    panels = (("prediction", predicted, limits, "RdBu_r"), ("reference", reference, limits, "RdBu_r"),
              ("|error|", np.abs(predicted - reference), None, "magma"))
    for axis, (name, field, vlim, cmap) in zip(axes, panels, strict=True):
        image = axis.imshow(field, origin="lower", aspect="auto", extent=extent, cmap=cmap,
                            vmin=vlim[0] if vlim else None, vmax=vlim[1] if vlim else None)
        figure.colorbar(image, ax=axis)
        axis.set_title(f"{title} {name}".strip())
        axis.set_xlabel(input_names[1])
        axis.set_ylabel(input_names[0])
    return figure
