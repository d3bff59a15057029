"""The collocation points of a run as training goes on: fixed, or redrawn by their residual every so many steps
(RAD, :class:`pinnkit.sampling.Resampling`), with the sample weights moved onto the new points."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from pinnkit import reweight
from pinnkit.engine.stacked import unstack
from pinnkit.engine.steps import forget_loss
from pinnkit.problems.base import Points

if TYPE_CHECKING:
    from pinnkit.engine.loop import Trainer
    from pinnkit.sampling import Resampling

__all__ = ["Resampler"]


class Resampler:
    """The points now, and when and how they are redrawn (never, without ``resampling``).

    A redraw ends a chunk of steps (a history row falls on it). The draws and the carrying of the weights are
    compiled once, at the first redraw, and reused for the rest of the run (the points keep their shapes).

    Args:
        resampling: a :class:`pinnkit.sampling.Resampling`, or None for fixed points.
        key: the key of the redraws (folded with the step of each).
        points: the points the run starts from.

    Example:
        >>> fixed = Resampler(None, jax.random.key(0), {"pde": np.zeros((4, 2))})
        >>> fixed.next_mark(7, step=5), fixed.due(5, end=10)
        (7, False)
    """

    def __init__(self, resampling: Resampling | None, key: jax.Array, points: Points):
        self.resampling = resampling
        self.key = key
        self.points = points  # as drawn (not split over devices: the trainer splits what it trains on)
        self._draw = None
        self._carry = None

    def next_mark(self, mark: int, *, step: int) -> int:
        """``mark``, the next row after ``step``, brought forward to the next redraw when that comes first."""
        if self.resampling is None:
            return mark
        return min(mark, (step // self.resampling.every + 1) * self.resampling.every)

    def due(self, step: int, *, end: int) -> bool:
        """Whether the points are redrawn after ``step`` (never after the stage's last step)."""
        return self.resampling is not None and step % self.resampling.every == 0 and step < end

    def resample(self, trainer: Trainer, params, opt_state, step: int) -> Any:
        """Redraw the points for the (one) model at ``step``, set them on ``trainer`` and return the optimizer
        state with its sample weights on the new points and its memory of the old loss dropped."""
        old_points = trainer.points
        trainer.set_points(self._redraw(trainer, params, step))
        # A weight belongs to a place in the domain: the new points take their nearest old point's weight.
        return trainer.place(forget_loss(self._carry_weights(trainer, opt_state, old_points, trainer.points)))

    def _redraw(self, trainer: Trainer, params, step: int) -> Points:
        if self._draw is None:
            problem = trainer.problem
            self._draw = jax.jit(lambda key, p, points, redraw: self.resampling.draw(
                key, problem, trainer.model_of(p), points, redraw=redraw))
        key = jax.random.fold_in(self.key, step)
        # The redraw's number in the run (1, 2, ...): the clock of an annealed density; traced, so no recompiling.
        redraw = np.asarray(step // self.resampling.every, np.int32)
        self.points = self._draw(key, unstack(params, 0), self.points, redraw)
        return self.points

    def _carry_weights(self, trainer: Trainer, opt_state, old: Points, new: Points):
        if self._carry is None:
            lower, upper = (np.asarray(bound, float) for bound in trainer.problem.domain)
            self._carry = jax.jit(lambda state, a, b: reweight.carry_weights(state, a, b, scale=upper - lower))
        term = trainer.problem.collocation_terms[0]
        return self._carry(opt_state, old[term], new[term])
