"""The phase transitions of a training history: one detector configuration for every reader.

``pinnkit train``, ``pinnkit compare``'s table, plan switching at the transition, ``pinnkit detect`` and the
benchmarks all call :func:`history_phases` (or :func:`detect_transitions`, its two numbers) with
:data:`DETECTOR` (the defaults of :class:`~pinnkit.diagnostics.PhaseTuning`, validated on the authors' logs and
on synthetic runs: ``benchmarks/paper_logs.py``, ``benchmarks/phases.py``), so they report the same iterations for
the same history.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from pinnkit import columns
from pinnkit.diagnostics.phases import Phases, PhaseTuning, detect_phases

__all__ = ["DETECTOR", "detect_transitions", "history_phases"]

# The one configuration. Earlier versions used a relaxed one for pinnkit's runs (equilibrium order 0.6, rise 1.0);
# it moved the Allen-Cahn vanilla equilibrium outside the tolerance on the authors' logs and found no more
# transitions on pinnkit's runs whose error fell (docs/diagnostics.md, "One detector").
DETECTOR = PhaseTuning()


def _column(history, *names: str) -> np.ndarray | None:
    present = history.columns if hasattr(history, "columns") else list(history)
    for name in names:
        if name in present:
            return np.asarray(history[name], float)
    return None


def history_phases(
    history,
    *,
    online: bool = False,
    errors: Mapping[str, Any] | None = None,
    error_column: str = columns.REL_L2,
    tuning: PhaseTuning = DETECTOR,
) -> Phases:
    """The phases of one run from its logged columns, as every reader of pinnkit computes them.

    The SNR is ``grad_mean_norm / grad_std_norm`` when both are logged (the detector then cleans each norm),
    else the ``snr`` column; the error whose sharp fall corroborates an equilibrium is ``error_column`` (the test
    error ``rel_l2``; a rule that steers training uses the training ``mse`` instead) or ``errors``, e.g. the
    paper's separate error file.

    Args:
        history: a :class:`pinnkit.History` or a mapping of columns: ``step`` (or ``iteration``), and ``snr`` or
            ``grad_mean_norm`` + ``grad_std_norm``; optionally ``rel_l2``.
        online: report what a monitor running alongside training would have known at the last row.
        errors: a separate test-error log, ``{"iteration": ..., "rel_l2": ...}``, used instead of a column.
        error_column: the history column of the error (absent: the SNR alone decides).
        tuning: the detector's parameters (:data:`DETECTOR` unless studying the detector itself).

    Returns:
        The :class:`~pinnkit.diagnostics.Phases`.

    Raises:
        ValueError: no step column or no SNR column.

    Example:
        >>> import numpy as np
        >>> steps = np.arange(1, 2001)
        >>> snr = np.where(steps < 100, 300.0, np.where(steps < 800, 0.05, 3.0))
        >>> phases = history_phases({"step": steps, "snr": snr})
        >>> 80 <= phases.diffusion_start <= 125, 640 <= phases.equilibrium_start <= 1000
        (True, True)
    """
    steps = _column(history, columns.STEP, columns.ITERATION)
    if steps is None:
        raise ValueError("the history has no step (or iteration) column")
    kwargs: dict[str, Any] = {}
    mean_norm, std_norm = _column(history, columns.GRAD_MEAN_NORM), _column(history, columns.GRAD_STD_NORM)
    if mean_norm is not None and std_norm is not None:
        kwargs.update(mean_norm=mean_norm, std_norm=std_norm)
    else:
        snr = _column(history, columns.SNR)
        if snr is None:
            raise ValueError("the history has no snr column (nor grad_mean_norm and grad_std_norm)")
        kwargs.update(snr=snr)
    if errors is not None:
        kwargs.update(error_iterations=np.asarray(errors[columns.ITERATION], float),
                      error=np.asarray(errors[columns.REL_L2]))
    elif (error := _column(history, error_column)) is not None:
        kwargs.update(error_iterations=steps, error=error)
    return detect_phases(steps, online=online, **kwargs, **dataclasses.asdict(tuning))


def detect_transitions(history, *, online: bool = False,
                       error_column: str = columns.REL_L2) -> dict[str, int | None]:
    """Diffusion and equilibrium onsets detected on a history's SNR (None where not found or not recorded).

    Args:
        history: a :class:`pinnkit.History` (or a mapping of columns) with ``step`` and ``snr`` (or the gradient
            norms), and optionally ``rel_l2``.
        online: report what a monitor running alongside training would have known at the last row.
        error_column: the error that may corroborate an equilibrium (see :func:`history_phases`).

    Returns:
        ``{"diffusion_start": ..., "equilibrium_start": ...}``, as :func:`history_phases` finds them.

    Example:
        >>> from pinnkit.history import History
        >>> detect_transitions(History([{"step": 1, "snr": 2.0}]))
        {'diffusion_start': None, 'equilibrium_start': None}
    """
    snr = _column(history, columns.SNR)
    norms = _column(history, columns.GRAD_MEAN_NORM)
    usable = snr if snr is not None else norms
    if usable is None or np.isfinite(usable).sum() < 5:
        return {"diffusion_start": None, "equilibrium_start": None}
    phases = history_phases(history, online=online, error_column=error_column)
    return {"diffusion_start": phases.diffusion_start, "equilibrium_start": phases.equilibrium_start}
