"""The shared argument checks: what they accept, what they refuse, and the value they name."""

import doctest

import numpy as np
import pytest

from pinnkit import validation
from pinnkit.validation import choice, integer, non_negative_int, positive_int, real


def test_the_module_examples_hold():
    assert doctest.testmod(validation).failed == 0


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int32(1)])
def test_positive_int_accepts_python_and_numpy_integers_and_returns_int(value):
    accepted = positive_int("n", value)
    assert accepted == int(value) and type(accepted) is int


@pytest.mark.parametrize("value", [0, -1, True, False, 1.0, "1", None, np.bool_(True)])
def test_positive_int_refuses_and_names_the_value(value):
    with pytest.raises(ValueError, match=rf"^n must be a positive integer, got {value!r}$".replace("(", r"\(")
                       .replace(")", r"\)")):
        positive_int("n", value)


def test_integer_bounds_none_and_error_type():
    assert integer("k", 2, minimum=2) == 2
    with pytest.raises(ValueError, match="k must be an integer >= 2, got 1"):
        integer("k", 1, minimum=2)
    with pytest.raises(ValueError, match="k must be at most 10, got 11"):
        integer("k", 11, minimum=0, maximum=10)
    assert integer("k", None, minimum=1, none=True) is None
    with pytest.raises(TypeError, match="k must be a positive integer or None, got 'x'"):
        positive_int("k", "x", none=True, error=TypeError)
    # a value of the right type but out of range is always a ValueError
    with pytest.raises(ValueError):
        positive_int("k", 0, error=TypeError)
    assert non_negative_int("w", 0) == 0
    with pytest.raises(ValueError, match="w must be a non-negative integer, got -1"):
        non_negative_int("w", -1)


def test_real_intervals_and_refusals():
    assert real("x", 1) == 1.0 and type(real("x", 1)) is float
    assert real("x", np.float32(0.5), low=0, high=1) == 0.5
    with pytest.raises(ValueError, match=r"x must be a number in \(0, 1\], got 0"):
        real("x", 0, low=0, high=1, low_open=True)
    with pytest.raises(ValueError, match=r"x must be a number in \[0, 1\), got 1"):
        real("x", 1, low=0, high=1, high_open=True)
    for bad in (True, "0.1", b"1", [1.0], None):
        with pytest.raises(ValueError, match="x must be a number"):
            real("x", bad)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="x must be finite"):
            real("x", bad)
    assert real("x", None, none=True) is None


def test_choice_lists_the_choices_and_refuses_unhashable_values():
    assert choice("mode", "a", ["a", "b"]) == "a"
    with pytest.raises(ValueError, match=r"unknown mode 'c'; choose one of \['a', 'b'\]"):
        choice("mode", "c", ("a", "b"))
    with pytest.raises(ValueError, match=r"unknown mode \[1\]"):
        choice("mode", [1], {"a": 1})
