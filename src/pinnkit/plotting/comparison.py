"""Figures of a comparison: error and loss against steps and seconds, SNR/order with transitions, weights, fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from pinnkit.columns import LOSS, REL_L2, SNR, STAGE, STEP, WALL_TIME
from pinnkit.history import History

__all__ = ["plot_error_curves", "plot_fields", "plot_phase_panels", "plot_weights"]

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
        for row, column in enumerate((REL_L2, LOSS)):
            if column not in history:
                continue
            values = history[column]
            mask = np.isfinite(values) & (values > 0)
            axes[row, 0].plot(history[STEP][mask], values[mask], style, color=color, label=label, lw=1.2)
            axes[row, 1].plot(history[WALL_TIME][mask], values[mask], style, color=color, lw=1.2)
    for row, name in enumerate(("relative L2 error", "loss")):
        for col, xlabel in enumerate(("step", "wall time [s]")):
            axis = axes[row, col]
            if axis.has_data():
                axis.set_yscale("log")
            axis.set_xlabel(xlabel)
            axis.set_ylabel(name)
            axis.grid(True, which="both", alpha=0.3)
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize=7)
    return figure


_PHASE_COLORS = {"fitting": "#fde0c5", "diffusion": "#dbe9f6", "equilibrium": "#d9f0d3"}


def plot_phase_panels(runs: Sequence[Mapping], histories: Mapping[str, History], *, columns: int = 2) -> Figure:
    """One small panel per run: the batch-gradient SNR (faint raw, bold smoothed), the test error on a second axis,
    the detected phases shaded (fitting, diffusion, diffusion equilibrium) and the stage switches dotted.

    Args:
        runs: result rows with ``name``, ``optimizer``, ``reweight``, ``seed`` and, where detected,
            ``diffusion_start`` and ``equilibrium_start``.
        histories: history of each run by name.
        columns: panels per row.

    Returns:
        The figure.

    Example:
        >>> h = History([{"step": s, "snr": 10.0 / s, "rel_l2": 1.0 / s} for s in range(1, 40)])
        >>> fig = plot_phase_panels([{"name": "a", "optimizer": "adam", "reweight": "none", "seed": 0,
        ...                           "diffusion_start": 5, "equilibrium_start": None}], {"a": h})
        >>> len(fig.axes)
        2
    """
    from pinnkit.diagnostics.phases import smooth_log_snr

    shown = [run for run in runs if SNR in histories[run["name"]]]
    if not shown:
        figure = Figure(figsize=(6, 2), layout="constrained")
        figure.text(0.5, 0.5, "no batch-gradient SNR was recorded", ha="center", va="center")
        return figure
    columns = max(1, min(columns, len(shown)))
    rows = -(-len(shown) // columns)
    figure = Figure(figsize=(5.6 * columns, 2.9 * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).reshape(-1)
    for axis, run in zip(axes, shown, strict=False):
        history = histories[run["name"]]
        steps = history[STEP]
        snr = history[SNR]
        keep = np.isfinite(snr) & (snr > 0) & (steps > 0)
        end = float(steps.max()) if steps.size else 1.0
        diffusion, equilibrium = run.get("diffusion_start"), run.get("equilibrium_start")
        spans = []
        if diffusion is not None:  # phases are shaded only where the detector found them
            spans = [("fitting", 1.0, diffusion), ("diffusion", diffusion, equilibrium or end)]
            if equilibrium is not None:
                spans.append(("equilibrium", equilibrium, end))
        for name, left, right in spans:
            axis.axvspan(max(float(left), 1.0), float(right), color=_PHASE_COLORS[name], lw=0, label=name)
        axis.plot(steps[keep], snr[keep], color="C0", alpha=0.25, lw=0.8)
        if keep.sum() >= 3:
            smooth_steps, smoothed = smooth_log_snr(steps[keep], snr[keep])
            axis.plot(smooth_steps, 10.0**smoothed, color="C0", lw=2, label="SNR (median over ±0.1 decade)")
        if STAGE in history:
            stage = history[STAGE]
            for index in np.flatnonzero(np.diff(stage) != 0):
                axis.axvline(steps[index], color="k", ls=":", lw=1.2)
        if keep.any():  # a run that diverged at once may have nothing positive to put on a log scale
            axis.set_xscale("log")
            axis.set_yscale("log")
        axis.set_ylabel("batch-gradient SNR", color="C0")
        axis.grid(True, which="major", alpha=0.3)
        if REL_L2 in history:
            twin = axis.twinx()
            errors = history[REL_L2]
            good = np.isfinite(errors) & (errors > 0) & (steps > 0)
            twin.plot(steps[good], errors[good], color="C3", lw=1.5, label="rel. L2 (test)")
            if good.any():
                twin.set_yscale("log")
            twin.set_ylabel("relative L2", color="C3")
        found = [f"{label} {run[key]}" for key, label in (("diffusion_start", "diffusion"),
                                                           ("equilibrium_start", "equilibrium"))
                 if run.get(key) is not None]
        axis.set_title(f"{run['optimizer']} / {run['reweight']} / seed {run['seed']}"
                       + (f" ({', '.join(found)})" if found else " (no transition detected)"), fontsize=9)
        axis.set_xlabel("step (dotted: optimizer switch)")
    for axis in axes[len(shown):]:
        axis.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(handles, labels, fontsize=7, loc="lower left")
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
