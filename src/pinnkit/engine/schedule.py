"""When a run records a history row: a small typed schedule, computed lazily."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from pinnkit.validation import integer

__all__ = ["LogSchedule", "MAX_STEPS", "MAX_ROWS"]

# optax keeps its step counts in int32, and a history row per step beyond this is no longer a history.
MAX_STEPS = 1_000_000_000
MAX_ROWS = 1_000_000


@dataclasses.dataclass(frozen=True)
class LogSchedule:
    """History rows after every ``every`` steps, every ``dense_every`` steps until ``dense_until``, and always
    after the last step. Row 0 (the initial state) is recorded too.

    The paper logs every 2 steps below 300 and every 100 after: ``LogSchedule(100, dense_until=300)``.

    Attributes:
        every: steps between rows.
        dense_until: record densely up to this step (0: never).
        dense_every: steps between rows in the dense part.

    Example:
        >>> schedule = LogSchedule(every=4, dense_until=4, dense_every=2)
        >>> list(schedule.marks(10))
        [2, 4, 8, 10]
        >>> schedule.count(10), list(schedule.marks(10, start=4))
        (4, [8, 10])
    """

    every: int = 100
    dense_until: int = 0
    dense_every: int = 2

    def __post_init__(self) -> None:
        integer("every (--log-every)", self.every, minimum=1)  # the CLI flag too: the user sees what to change
        integer("dense_until", self.dense_until, minimum=0)
        integer("dense_every", self.dense_every, minimum=1)

    def marks(self, end: int, start: int = 0) -> Iterator[int]:
        """The steps in ``(start, end]`` after which a row is recorded, in order (a generator: O(1) memory)."""
        integer("end", end, minimum=1)
        integer("start", start, minimum=0)
        step = start
        while step < end:
            step = self.next_mark(step, end)
            yield step

    def next_mark(self, step: int, end: int) -> int:
        """The first row step after ``step`` (never beyond ``end``)."""
        candidates = [end, (step // self.every + 1) * self.every]
        if step < self.dense_until:
            candidates.append(min((step // self.dense_every + 1) * self.dense_every, self.dense_until))
        return min(candidates)

    def count(self, end: int, start: int = 0) -> int:
        """The number of rows in ``(start, end]`` (closed form, for checking a run's size up front)."""
        integer("end", end, minimum=1)
        integer("start", start, minimum=0)
        if end <= start:
            return 0
        dense_top = min(self.dense_until, end)
        dense = set_count = 0
        if dense_top > start:
            # Dense marks k * dense_every in (start, dense_top], plus dense_top itself when it is not a multiple.
            dense = dense_top // self.dense_every - start // self.dense_every
            if dense_top % self.dense_every:
                dense += 1
        regular = end // self.every - start // self.every
        # Regular marks that are also dense marks were counted twice.
        overlap_top = dense_top
        if overlap_top > start:
            step = self.every * self.dense_every // _gcd(self.every, self.dense_every)
            set_count = overlap_top // step - start // step
            if overlap_top % self.dense_every and overlap_top % self.every == 0:
                set_count += 1
        total = dense + regular - set_count
        if end % self.every and not (end <= dense_top and (end % self.dense_every == 0 or end == dense_top)):
            total += 1  # the last step, when not already a mark
        return total

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a
