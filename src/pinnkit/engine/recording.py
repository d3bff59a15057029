"""Recording history rows: the probe's stacked row becomes one row per live model, in the column order of
:mod:`pinnkit.engine.columns`, with the information measures on their schedule and the callback after."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from pinnkit.engine import columns
from pinnkit.engine.probes import Probes, information
from pinnkit.engine.stacked import unstack
from pinnkit.history import History

if TYPE_CHECKING:
    from pinnkit.engine.loop import Trainer

__all__ = ["Recorder", "row_entry"]


def row_entry(arrays: Mapping[str, np.ndarray], index: int, *, step: int, stage: int, wall_s: float,
              layer_names: Sequence[str]) -> dict[str, float]:
    """Model ``index``'s history row from a probe's stacked row (``layer_snr`` split into one column a layer).

    Example:
        >>> row_entry({"loss": np.array([0.5, 0.25])}, 1, step=10, stage=0, wall_s=1.0, layer_names=[])
        {'step': 10, 'stage': 0, 'wall_time_s': 1.0, 'loss': 0.25}
    """
    entry: dict[str, float] = {columns.STEP: step, columns.STAGE: stage, columns.WALL_TIME: wall_s}
    for name in sorted(arrays, key=columns.order_key):
        value = arrays[name]
        if name == "layer_snr":
            entry.update({columns.layer_snr(layer): float(v)
                          for layer, v in zip(layer_names, value[index], strict=True)})
        else:
            entry[name] = float(value[index])
    return entry


class Recorder:
    """The histories of K stacked models and the step and wall time of each model's last recorded row.

    Args:
        histories: one history per model (appended to).
        start_step: the steps done before this run (a model that never records reports these).
        wall_s: the wall time so far.
        probes: what a row records (the information measures' schedule).
        callback: ``callback(step, row)`` after each row, with the row of the first model still training.
    """

    def __init__(self, histories: list[History], start_step: int, wall_s: float, probes: Probes,
                 callback: Callable[[int, dict], Any] | None):
        self.histories = histories
        self.probes = probes
        self.callback = callback
        self.last_good = [(start_step, wall_s)] * len(histories)

    def record(self, trainer: Trainer, step: int, stage: int, row: dict, failures, params, *, alive: np.ndarray,
               wall_s: float, layer_names: list[str]) -> None:
        """Append the row after ``step`` to each live model's history (``failures``: the line search's, per model)."""
        arrays = jax.tree_util.tree_map(np.asarray, row)
        failures = np.asarray(failures) if failures is not None else None
        probes = self.probes
        for index in np.flatnonzero(alive):
            entry = row_entry(arrays, index, step=step, stage=stage, wall_s=wall_s, layer_names=layer_names)
            if trainer.steps.line_search:
                entry[columns.LINE_SEARCH_FAILURES] = int(failures[index]) if failures is not None else 0
            history = self.histories[index]
            if probes.information_every and len(history) % probes.information_every == 0:
                entry.update(information(trainer.model_of(unstack(params, index)), trainer.points,
                                         trainer.problem.collocation_terms[0], probes.information_points))
            history.append(entry)
            self.last_good[index] = (step, wall_s)
        if self.callback is not None and alive.any():
            self.callback(step, self.histories[int(np.flatnonzero(alive)[0])].last_row())
