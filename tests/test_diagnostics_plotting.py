"""The phase-diagnostics figure: panels, curves, transition lines and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from pinnkit.diagnostics import Phases
from pinnkit.plotting.diagnostics import plot_phase_diagnostics


def _vertical_lines(axis):
    return [line for line in axis.get_lines() if np.allclose(line.get_xdata()[0], line.get_xdata()[-1])
            and len(line.get_xdata()) == 2]


def test_figure_has_both_panels_curves_and_lines():
    steps = np.arange(2.0, 5000.0, 2.0)
    snr = np.where(steps < 150, 50.0, 0.05)
    snr[::3] = np.nan  # not logged
    figure = plot_phase_diagnostics(
        steps, snr, adam_snr=snr / 100, homogeneity=np.full(steps.size, 0.9),
        error_iterations=steps[::50], error=np.linspace(1.0, 0.1, steps[::50].size),
        phases=Phases(150, 3000), hand_lines={"paper": 160}, title="t",
    )
    assert isinstance(figure, Figure)
    top, bottom = figure.axes
    assert top.get_xscale() == "log" and top.get_yscale() == "log" and bottom.get_yscale() == "linear"
    assert len(_vertical_lines(top)) == 3 and len(_vertical_lines(bottom)) == 3  # 2 detected + 1 hand
    labels = [text.get_text() for text in top.get_legend().get_texts()]
    assert "detected diffusion" in labels and "paper" in labels and "Adam SNR" in labels
    # The normalised error starts at 0.5 and never exceeds it.
    error_line = next(line for line in bottom.get_lines() if line.get_label().startswith("test error"))
    assert error_line.get_ydata()[0] == pytest.approx(0.5) and np.max(error_line.get_ydata()) <= 0.5
    # The smoothed order sits at the order of the plateaus: 50 -> ~1, 0.05 -> ~0.05.
    order_line = next(line for line in bottom.get_lines() if line.get_label() == "order")
    order_y = order_line.get_ydata()
    assert order_y[0] == pytest.approx(50 / np.sqrt(1 + 50**2))
    assert order_y[-1] == pytest.approx(0.05, rel=0.01)


def test_bad_input():
    with pytest.raises(ValueError):
        plot_phase_diagnostics([1.0, 2.0], [np.nan, np.nan])
    with pytest.raises(ValueError):
        plot_phase_diagnostics([1.0, 2.0], [1.0, 2.0, 3.0])
