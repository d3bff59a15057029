"""The range medians give, for any ranges, exactly the floats of one ``np.median`` per range."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from pinnkit.diagnostics import range_median
from pinnkit.diagnostics.range_median import kth_smallest, range_medians


def brute_force(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.array([np.median(values[a:b]) for a, b in zip(lo, hi, strict=True)])


def bits(array: np.ndarray) -> np.ndarray:
    """The floats' bit patterns: equal NaNs compare equal, and 0.0 differs from -0.0."""
    return np.asarray(array, dtype=float).view(np.int64)


def random_ranges(rng: np.random.Generator, n: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-empty ranges in any order: overlapping, nested, of one value or of all of them."""
    ends = np.sort(rng.integers(0, n + 1, size=(count, 2)), axis=1)
    ends[:, 1] = np.maximum(ends[:, 1], ends[:, 0] + 1)
    ends[:, 0] = np.minimum(ends[:, 0], n - 1)
    ends[:, 1] = np.minimum(ends[:, 1], n)
    return ends[:, 0], ends[:, 1]


# + 0.0 turns -0.0 into 0.0: where a range's middle is a tie of 0.0 and -0.0 the sign may differ (documented).
VALUES = {
    "continuous": lambda rng, n: rng.normal(0, 1, n) + 0.0,
    "ties": lambda rng, n: np.round(rng.normal(0, 1, n), 1) + 0.0,
    "few levels": lambda rng, n: rng.integers(-2, 3, n).astype(float),
    "wide range": lambda rng, n: rng.normal(0, 1, n) * 10.0 ** rng.integers(-300, 300, n) + 0.0,
}


@pytest.mark.parametrize("kind", sorted(VALUES))
@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 257, 1000])
def test_random_ranges_equal_numpy_median(kind, n):
    rng = np.random.default_rng(n)
    values = VALUES[kind](rng, n)
    lo, hi = random_ranges(rng, n, 500)
    assert np.array_equal(bits(range_medians(values, lo, hi)), bits(brute_force(values, lo, hi)))


def test_every_range_of_a_short_array():
    rng = np.random.default_rng(1)
    values = np.round(rng.normal(0, 1, 23), 1) + 0.0
    lo, hi = np.array([(a, b) for a in range(23) for b in range(a + 1, 24)]).T
    assert np.array_equal(bits(range_medians(values, lo, hi)), bits(brute_force(values, lo, hi)))


def test_ranges_with_nan_and_infinities():
    rng = np.random.default_rng(2)
    values = rng.normal(0, 1, 300) + 0.0
    values[rng.choice(300, 5, replace=False)] = np.nan
    values[rng.choice(300, 5, replace=False)] = np.inf
    values[rng.choice(300, 5, replace=False)] = -np.inf
    lo, hi = random_ranges(rng, 300, 2000)
    with np.errstate(invalid="ignore"):  # np.median of inf and -inf in the middle: nan, with a warning
        expected = brute_force(values, lo, hi)
    np.testing.assert_array_equal(range_medians(values, lo, hi), expected)


def test_empty_ranges_are_nan():
    values = np.array([1.0, 2.0, 3.0])
    out = range_medians(values, np.array([0, 2, 3]), np.array([0, 2, 3]))
    assert out.shape == (3,) and np.isnan(out).all()
    assert range_medians(np.zeros(0), np.zeros(0, int), np.zeros(0, int)).shape == (0,)


def test_kth_smallest_of_random_ranges():
    rng = np.random.default_rng(3)
    ranks = rng.permutation(200)
    lo, hi = random_ranges(rng, 200, 1000)
    k = rng.integers(0, hi - lo)
    expected = [np.sort(ranks[a:b])[j] for a, b, j in zip(lo, hi, k, strict=True)]
    assert kth_smallest(ranks, lo, hi, k).tolist() == expected


def test_docstring_examples():
    assert doctest.testmod(range_median).failed == 0
