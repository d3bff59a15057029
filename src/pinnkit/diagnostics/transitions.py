"""The phase transitions of a training history: one detector configuration for every reader.

``pinnkit train``, ``pinnkit compare``'s table, plan switching at the transition and ``pinnkit detect`` all call
:func:`detect_transitions`, so they report the same iterations for the same history.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pinnkit.diagnostics.phases import detect_phases

__all__ = ["detect_transitions", "TRANSITION_TUNING"]

# The detector's settings for pinnkit's own histories (see docs/diagnostics.md).
TRANSITION_TUNING: dict[str, Any] = {"equilibrium_order": 0.6, "min_rise": 1.0}


def detect_transitions(history, *, online: bool = False) -> dict[str, int | None]:
    """Diffusion and equilibrium onsets detected on a history's SNR (None where not found or not recorded).

    Args:
        history: a :class:`pinnkit.History` (or a mapping of columns) with ``step`` and ``snr`` (or the gradient
            norms), and optionally ``rel_l2``.
        online: report what a monitor running alongside training would have known at the last row.

    Returns:
        ``{"diffusion_start": ..., "equilibrium_start": ...}``.

    Example:
        >>> from pinnkit.history import History
        >>> detect_transitions(History([{"step": 1, "snr": 2.0}]))
        {'diffusion_start': None, 'equilibrium_start': None}
    """
    columns = history.columns if hasattr(history, "columns") else list(history)
    if "snr" not in columns or np.isfinite(np.asarray(history["snr"], float)).sum() < 5:
        return {"diffusion_start": None, "equilibrium_start": None}
    kwargs: dict[str, Any] = {}
    if "rel_l2" in columns:
        kwargs = {"error_iterations": history["step"], "error": history["rel_l2"]}
    if "grad_mean_norm" in columns and "grad_std_norm" in columns:
        kwargs.update(mean_norm=history["grad_mean_norm"], std_norm=history["grad_std_norm"])
    else:
        kwargs.update(snr=history["snr"])
    phases = detect_phases(history["step"], online=online, **kwargs, **TRANSITION_TUNING)
    return {"diffusion_start": phases.diffusion_start, "equilibrium_start": phases.equilibrium_start}
