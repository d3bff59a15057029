"""The training engine, one concern per module:

- :mod:`~pinnkit.engine.steps`: the loss, one optimizer step (first order or line search), a chunk of steps as
  one compiled loop, the compile cache;
- :mod:`~pinnkit.engine.probes`: what a history row records, as pure functions of the state (and the
  :class:`Probes` that configure them);
- :mod:`~pinnkit.engine.columns`: the history's column schema;
- :mod:`~pinnkit.engine.schedule`: when rows are recorded (:class:`LogSchedule`);
- :mod:`~pinnkit.engine.loop`: the outer loop over the stages of a plan: chunks between rows, divergence,
  checkpoints, stage switches (:func:`fit`, :func:`fit_stacked`), composed of
- :mod:`~pinnkit.engine.recording` (a probe's row into each live model's history, the callback),
  :mod:`~pinnkit.engine.liveness` (which stacked models are still finite, and why the others stopped),
  :mod:`~pinnkit.engine.clock` (wall and compile time), :mod:`~pinnkit.engine.resampler` (the points now, and
  their redraws) and :mod:`~pinnkit.engine.stacked` (trees of K stacked models: stack, unstack, select).
"""

from pinnkit.engine import columns
from pinnkit.engine.loop import Outcome, Trainer, TrainResult, fit, fit_stacked
from pinnkit.engine.probes import Probes
from pinnkit.engine.schedule import MAX_ROWS, MAX_STEPS, LogSchedule
from pinnkit.engine.steps import Evaluation, Steps, has_adam, is_line_search

__all__ = [
    "Evaluation", "LogSchedule", "MAX_ROWS", "MAX_STEPS", "Outcome", "Probes", "Steps", "TrainResult", "Trainer",
    "columns", "fit", "fit_stacked", "has_adam", "is_line_search",
]
