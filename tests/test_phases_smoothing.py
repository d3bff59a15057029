"""The fast running median of the phase detector gives the same floats as one ``np.median`` per window."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinnkit.diagnostics import phases
from pinnkit.diagnostics.phases import detect_phases, smooth_log_snr
from pinnkit.diagnostics.range_median import range_medians
from pinnkit.diagnostics.smoothing import record_windows, running_median


def naive_medians(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The smoothing as it was: one np.median per window (quadratic)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # huge values overflow; an empty window is NaN
        return np.array([np.median(values[a:b]) for a, b in zip(lo, hi, strict=True)])


def same_floats(fast: np.ndarray, slow: np.ndarray) -> bool:
    """Bit for bit (so that NaNs match and 0.0 differs from -0.0)."""
    fast, slow = np.asarray(fast, float), np.asarray(slow, float)
    return fast.shape == slow.shape and np.array_equal(fast.view(np.int64), slow.view(np.int64))


# Values with many ties (a few levels) or arbitrary finite floats (no -0.0: see range_medians).
tied = st.sampled_from([-8.0, -1.5, -0.25, 0.0, 0.5, 1.0, 1.0 + 2**-52, 8.0])
finite = st.floats(allow_nan=False, allow_infinity=False, width=64).map(lambda value: value + 0.0)
values_strategy = st.one_of(st.lists(tied, max_size=60), st.lists(finite, max_size=60))


@st.composite
def detector_windows(draw):
    """Values and the windows record_windows makes from sorted log-times, as in the detector."""
    values = np.array(draw(values_strategy), dtype=float)
    n = values.size
    gaps = draw(st.lists(st.floats(0.0, 0.5), min_size=n, max_size=n))
    log_time = np.cumsum(gaps) if n else np.zeros(0)
    half_width = draw(st.floats(1e-3, 1.0))
    min_records = draw(st.integers(1, 12))
    return values, log_time, half_width, min_records


@st.composite
def monotone_windows(draw):
    """Values and any windows whose two ends do not decrease (windows of one record included)."""
    values = np.array(draw(values_strategy), dtype=float)
    n = values.size
    count = draw(st.integers(0, 40)) if n else 0
    lo = np.sort(np.array(draw(st.lists(st.integers(0, max(n - 1, 0)), min_size=count, max_size=count)), int))
    sizes = np.array(draw(st.lists(st.integers(1, max(n, 1)), min_size=count, max_size=count)), int)
    hi = np.maximum.accumulate(np.minimum(lo + sizes, n)) if count else np.zeros(0, int)
    return values, lo, hi


@settings(max_examples=300, deadline=None)
@given(detector_windows())
def test_smooth_equals_the_naive_median(case):
    values, log_time, half_width, min_records = case
    smoothed, reads_until = running_median(log_time, values, half_width, min_records)
    lo, hi = record_windows(log_time, half_width, min_records)
    assert same_floats(smoothed, naive_medians(values, lo, hi))
    assert np.array_equal(reads_until, hi)


@settings(max_examples=300, deadline=None)
@given(monotone_windows())
def test_window_medians_equal_the_naive_median(case):
    values, lo, hi = case
    assert same_floats(range_medians(values, lo, hi), naive_medians(values, lo, hi))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(tied, st.sampled_from([np.nan, np.inf, -np.inf])), min_size=1, max_size=30),
       st.integers(1, 7))
def test_nan_and_infinities_as_np_median(values, width):
    values = np.array(values, dtype=float)
    n = values.size
    lo = np.clip(np.arange(n) - width // 2, 0, max(n - width, 0))
    hi = np.minimum(lo + width, n)
    expected = naive_medians(values, lo, hi)
    np.testing.assert_array_equal(range_medians(values, lo, hi), expected)


def test_short_series_and_single_record_windows():
    assert range_medians(np.zeros(0), np.zeros(0, int), np.zeros(0, int)).shape == (0,)
    values = np.array([3.0, -1.0, 2.0])
    assert same_floats(range_medians(values, np.arange(3), np.arange(1, 4)), values)
    assert range_medians(np.array([5.0]), np.array([0]), np.array([1])).tolist() == [5.0]
    assert np.isnan(range_medians(values, np.array([1]), np.array([1]))).all()  # empty window, as np.median


def test_long_series_with_the_detector_windows():
    rng = np.random.default_rng(0)
    steps = np.concatenate([np.arange(2, 300, 2), np.arange(300, 300_001, 100)]).astype(float)
    values = np.round(rng.normal(0, 1, steps.size), 1) + 0.0  # many ties (+ 0.0: no -0.0, which log10 never gives)
    log_time = np.log10(steps)
    lo, hi = record_windows(log_time, 0.1, 9)
    assert same_floats(running_median(log_time, values, 0.1, 9)[0], naive_medians(values, lo, hi))
    _, smoothed = smooth_log_snr(steps, 10.0**values)
    assert same_floats(smoothed, naive_medians(np.clip(np.log10(10.0**values), -8, 8), lo, hi))


def _naive_smooth(log_time, log_snr, half_width, min_records):
    lo, hi = record_windows(log_time, half_width, min_records)
    return naive_medians(log_snr, lo, hi), hi


@pytest.mark.parametrize("online", [False, True])
def test_detector_decisions_unchanged(monkeypatch, online):
    rng = np.random.default_rng(7)
    steps = np.concatenate([np.arange(2, 300, 2), np.arange(300, 120_001, 100)]).astype(float)
    log_time = np.log10(steps)
    trend = 1.7 - 3.2 / (1 + np.exp(-(log_time - 2.1) / 0.03)) + 2.2 / (1 + np.exp(-(log_time - 4.5) / 0.03))
    snr = 10.0 ** (trend + rng.normal(0, 0.25, steps.size))
    error = 10.0 ** (-1 - (log_time > 4.5))
    fast = detect_phases(steps, snr, error_iterations=steps, error=error, online=online)
    monkeypatch.setattr(phases, "running_median", _naive_smooth)
    slow = detect_phases(steps, snr, error_iterations=steps, error=error, online=online)
    assert fast.diffusion_start is not None and fast.equilibrium_start is not None
    assert fast.as_dict() == slow.as_dict()
    assert same_floats(fast.smoothed_log_snr, slow.smoothed_log_snr)
