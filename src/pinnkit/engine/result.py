"""What a training run returns: :class:`TrainResult`, with how it ended as an :class:`Outcome`."""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

from pinnkit.history import History
from pinnkit.problems.base import Points

__all__ = ["Outcome", "TrainResult"]


class Outcome(enum.Enum):
    """How a run ended.

    Its status text (``result.json``'s ``"status"``) is the value alone, or the value and why, after a colon.

    Example:
        >>> Outcome.DIVERGED.status("loss became non-finite within steps 3-4")
        'diverged: loss became non-finite within steps 3-4'
        >>> Outcome.parse("completed")
        (<Outcome.COMPLETED: 'completed'>, '')
    """

    COMPLETED = "completed"
    DIVERGED = "diverged"

    def status(self, message: str = "") -> str:
        """The status text of this outcome with ``message`` saying why (none for a completed run)."""
        return f"{self.value}: {message}" if message else self.value

    @classmethod
    def parse(cls, status: str) -> tuple[Outcome, str]:
        """The outcome and message of a status text written by :meth:`status`.

        Raises:
            ValueError: a text that starts with no outcome.
        """
        head, _, message = str(status).partition(": ")
        try:
            return cls(head), message
        except ValueError:
            raise ValueError(f"unknown run status {status!r}; a status starts with one of "
                             f"{[outcome.value for outcome in cls]}") from None


class TrainResult(NamedTuple):
    """What :func:`pinnkit.fit` returns.

    Attributes:
        model: the trained model (of the last finite row when the run diverged).
        opt_state: the final optimizer state of the last stage (reweighting weights inside).
        history: the recorded history.
        outcome: how the run ended (:class:`Outcome`).
        steps: the steps taken in total (including ``start_step``).
        wall_time_s: training time, compilation excluded.
        compile_time_s: time spent compiling.
        points: the points trained on (split over the devices when there were several).
        stage_starts: the step at which each stage of the plan began.
        message: why training stopped early (empty for a completed run).

    Example:
        >>> result = TrainResult(None, None, History(), Outcome.DIVERGED, 3, 0.1, 0.0,
        ...                      message="loss became non-finite within steps 3-3")
        >>> result.outcome is Outcome.DIVERGED, result.status
        (True, 'diverged: loss became non-finite within steps 3-3')
    """

    model: Any
    opt_state: Any
    history: History
    outcome: Outcome
    steps: int
    wall_time_s: float
    compile_time_s: float
    points: Points | None = None
    stage_starts: tuple[int, ...] = (0,)
    message: str = ""

    @property
    def status(self) -> str:
        """``"completed"``, or ``"diverged: "`` and a sentence saying why training stopped early."""
        return self.outcome.status(self.message)
