"""One place for the checks every public function makes on its arguments, and for their messages.

Each check returns the value it accepted (converted where that is the point: ``real`` returns a ``float``) and
raises ``ValueError`` (or the ``error`` it is given) naming the argument and the bad value. ``bool`` is never a
number here: ``True`` passed as a step count is a mistake, not 1.

Example:
    >>> positive_int("steps", 3)
    3
    >>> positive_int("steps", True)
    Traceback (most recent call last):
    ...
    ValueError: steps must be a positive integer, got True
    >>> real("eta", 0.5, low=0, high=1)
    0.5
    >>> choice("optimizer", "adamw", ("adam", "sgd"))
    Traceback (most recent call last):
    ...
    ValueError: unknown optimizer 'adamw'; choose one of ['adam', 'sgd']
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, TypeVar

import numpy as np

__all__ = ["choice", "integer", "is_integer", "non_negative_int", "positive_int", "real"]

T = TypeVar("T")


def is_integer(value: Any) -> bool:
    """Whether ``value`` is a Python or NumPy integer and not a bool.

    Example:
        >>> is_integer(3), is_integer(np.int32(3)), is_integer(True), is_integer(3.0)
        (True, True, False, False)
    """
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _integer_kind(minimum: int | None) -> str:
    if minimum == 1:
        return "a positive integer"
    if minimum == 0:
        return "a non-negative integer"
    if minimum is None:
        return "an integer"
    return f"an integer >= {minimum}"


def integer(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None,
            none: bool = False, error: type[Exception] = ValueError) -> int | None:
    """``value`` as an ``int`` if it is an integer in ``[minimum, maximum]`` (``None`` too when ``none``).

    ``error`` is the exception for a value of the wrong type (``ValueError`` by default, as for a value out of
    range; some callers keep ``TypeError`` for the type).

    Example:
        >>> integer("window", 5, minimum=2)
        5
        >>> integer("rows", 10**7, minimum=1, maximum=10**6)
        Traceback (most recent call last):
        ...
        ValueError: rows must be at most 1,000,000, got 10,000,000
    """
    if value is None and none:
        return None
    kind = _integer_kind(minimum) + (" or None" if none else "")
    if not is_integer(value):
        raise error(f"{name} must be {kind}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}, got {int(value):,}")
    return int(value)


def positive_int(name: str, value: Any, *, none: bool = False, error: type[Exception] = ValueError) -> int | None:
    """``integer(name, value, minimum=1)``.

    Example:
        >>> positive_int("batches", 0)
        Traceback (most recent call last):
        ...
        ValueError: batches must be a positive integer, got 0
    """
    return integer(name, value, minimum=1, none=none, error=error)


def non_negative_int(name: str, value: Any, *, none: bool = False) -> int | None:
    """``integer(name, value, minimum=0)``.

    Example:
        >>> non_negative_int("warmup", 0)
        0
    """
    return integer(name, value, minimum=0, none=none)


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    return f"{left}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{right}"


def real(name: str, value: Any, *, low: float | None = None, high: float | None = None, low_open: bool = False,
         high_open: bool = False, none: bool = False, error: type[Exception] = ValueError) -> float | None:
    """``value`` as a finite ``float`` in the interval from ``low`` to ``high`` (open ends where asked).

    Strings and bools are refused: ``"1e-3"`` from a config is a parse mistake, not a number. ``error`` is the
    exception for a value that is not a number at all (``ValueError`` by default, as for one out of range).

    Example:
        >>> real("learning_rate", 1e-3, low=0, low_open=True)
        0.001
        >>> real("gamma", 1.5, low=0, high=1)
        Traceback (most recent call last):
        ...
        ValueError: gamma must be a number in [0, 1], got 1.5
    """
    if value is None and none:
        return None
    bounded = low is not None or high is not None
    kind = "a number" + (f" in {_interval(low, high, low_open, high_open)}" if bounded else "")
    kind += " or None" if none else ""
    if isinstance(value, bool | np.bool_ | str | bytes):
        raise error(f"{name} must be {kind}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise error(f"{name} must be {kind}, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (number < low or (low_open and number == low)):
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    if high is not None and (number > high or (high_open and number == high)):
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return number


def choice(name: str, value: T, choices: Iterable[T]) -> T:
    """``value`` if it is one of ``choices``; otherwise a ``ValueError`` that lists them.

    Example:
        >>> choice("schedule", "paper", ("paper", "constant"))
        'paper'
    """
    options = list(choices)
    try:
        known = value in options
    except TypeError:  # an unhashable or incomparable value is simply not one of them
        known = False
    if not known:
        raise ValueError(f"unknown {name} {value!r}; choose one of {options}")
    return value
