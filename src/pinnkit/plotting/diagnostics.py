"""The phase-diagnostics figure: batch SNR (raw and smoothed), order, homogeneity, error, transitions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from pinnkit.diagnostics.phases import Phases, smooth_log_snr

__all__ = ["plot_phase_diagnostics"]


def _finite(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape:
        raise ValueError(f"a series of shape {y.shape} does not match the iterations {x.shape}")
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    return x[keep], y[keep]


def _hand_lines(hand_lines: Sequence[float] | Mapping[str, float] | None) -> list[tuple[str | None, float]]:
    if hand_lines is None:
        return []
    if isinstance(hand_lines, Mapping):
        return [(None if label is None else str(label), float(value)) for label, value in hand_lines.items()]
    return [("hand" if index == 0 else None, float(value)) for index, value in enumerate(hand_lines)]


def plot_phase_diagnostics(
    iterations: Any,
    snr: Any,
    *,
    order: Any = None,
    adam_snr: Any = None,
    homogeneity: Any = None,
    error_iterations: Any = None,
    error: Any = None,
    phases: Phases | None = None,
    hand_lines: Sequence[float] | Mapping[str, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Two panels against log iterations: SNR (log) and order / homogeneity / normalised error (linear).

    Top: raw batch SNR (dots), its running median in log-time (line), Adam's SNR if given. Bottom: the
    gradient order (smoothed; from ``order`` if given, else from the smoothed SNR), the residual homogeneity,
    and the test error normalised as in the paper (clipped to its first value and divided by twice it, so it
    starts at 0.5). Detected transitions are solid vertical lines, hand-placed ones dashed. Nan entries are
    skipped.

    Args:
        iterations: the iteration of each record.
        snr: batch-gradient SNR per record.
        order: gradient order per record.
        adam_snr: Adam's SNR per record.
        homogeneity: residual homogeneity per record.
        error_iterations: iterations of the test-error records.
        error: the test error per error record.
        phases: detected transitions (:func:`pinnkit.diagnostics.detect_phases`).
        hand_lines: reference transitions: a list of iterations, or ``{label: iteration}``.
        title: figure title.

    Returns:
        A ``matplotlib.figure.Figure`` with two axes.

    Example:
        >>> import numpy as np
        >>> steps = np.arange(2.0, 2000.0, 2.0)
        >>> figure = plot_phase_diagnostics(steps, np.where(steps < 150, 50.0, 0.1), hand_lines=[150])
        >>> len(figure.axes)
        2
    """
    steps, values = _finite(iterations, snr)
    if steps.size == 0:
        raise ValueError("no finite, positive-iteration SNR records to plot")
    figure = Figure(figsize=(9, 7), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)

    top.loglog(steps, values, ".", ms=2, color="0.65", label="batch SNR")
    smooth_steps, smoothed = smooth_log_snr(steps, values)
    top.loglog(smooth_steps, 10.0**smoothed, color="C3", lw=1.8, label="batch SNR, running median")
    if adam_snr is not None:
        adam_steps, adam_values = _finite(iterations, adam_snr)
        top.loglog(adam_steps, adam_values, color="C0", lw=0.5, alpha=0.7, label="Adam SNR")
    top.set_ylabel("SNR")

    if order is not None:
        order_steps, order_values = _finite(iterations, order)
        phi = order_values / np.sqrt(np.maximum(1.0 - order_values**2, 1e-300))
        order_steps, smoothed_order = smooth_log_snr(order_steps, phi)
        bottom.plot(order_steps, 1 / np.sqrt(1 + 10.0 ** (-2 * smoothed_order)), color="C3", label="order")
    else:
        bottom.plot(smooth_steps, 1.0 / np.sqrt(1.0 + 10.0 ** (-2 * smoothed)), color="C3", label="order")
    if homogeneity is not None:
        bottom.plot(*_finite(iterations, homogeneity), color="C0", label="residual homogeneity")
    if error is not None:
        if error_iterations is None:
            raise ValueError("error needs error_iterations")
        error_steps, error_values = _finite(error_iterations, error)
        if error_values.size:
            first = error_values[0]
            bottom.plot(
                error_steps, np.minimum(error_values, first) / (2 * first), "--", color="C2",
                label="test error / (2 x initial)",
            )
    bottom.set_xscale("log")
    bottom.set_ylim(0, 1.05)
    bottom.set_xlabel("iteration")
    bottom.set_ylabel("order, homogeneity, error")

    detected = []
    if phases is not None:
        detected = [
            (name, value)
            for name, value in zip(
                ("diffusion", "equilibrium"), (phases.diffusion_start, phases.equilibrium_start), strict=True
            )
            if value is not None
        ]
    for axis in (top, bottom):
        for name, value in detected:
            axis.axvline(value, color="k", lw=1.2, label=f"detected {name}" if axis is top else None)
        for name, value in _hand_lines(hand_lines):
            axis.axvline(value, color="C1", ls="--", lw=1.2, label=name if axis is top else None)
    top.legend(fontsize=8, loc="best")
    bottom.legend(fontsize=8, loc="best")
    if title:
        figure.suptitle(title)
    return figure
