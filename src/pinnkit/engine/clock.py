"""The clock of a run: training wall time (compilation excluded) and compile time, across stages and resumes."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

from pinnkit.engine import columns
from pinnkit.history import History

__all__ = ["Clock"]


class Clock:
    """Seconds spent training and compiling so far.

    ``wall_s`` counts only what :meth:`timing` wraps (the chunks of steps, their row probes, the redraws of the
    points), so that a run's speed does not depend on how often it compiles; ``compile_s`` adds up the compile
    time of each stage's programs.

    Example:
        >>> clock = Clock(1.5)
        >>> with clock.timing():
        ...     pass
        >>> clock.wall_s >= 1.5, clock.compile_s
        (True, 0.0)
    """

    def __init__(self, wall_s: float = 0.0):
        self.wall_s = wall_s
        self.compile_s = 0.0

    @classmethod
    def resumed(cls, history: History) -> Clock:
        """A clock that goes on from the wall time of ``history``'s last row (zero when it has none)."""
        previous = history.last(columns.WALL_TIME) if len(history) else math.nan
        return cls(previous if math.isfinite(previous) else 0.0)

    @contextlib.contextmanager
    def timing(self) -> Iterator[None]:
        """Add the time spent inside the ``with`` block to the wall time."""
        tick = time.perf_counter()
        yield
        self.wall_s += time.perf_counter() - tick

    def add_compile(self, seconds: float) -> None:
        self.compile_s += seconds
