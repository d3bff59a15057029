"""Smoothing the batch-gradient SNR: the phase detector's centred running median of log10 SNR, and the paper's
moving averages of the norms (for comparison).

Example:
    >>> steps, smoothed = smooth_log_snr([10, 20, 30, 40], [10.0, 1000.0, 10.0, 10.0], min_records=3)
    >>> smoothed.tolist()
    [1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pinnkit.diagnostics.range_median import range_medians
from pinnkit.diagnostics.snr_records import as_1d, log_iterations, log_snr_records
from pinnkit.validation import positive_int

__all__ = ["paper_smoothed_snr", "record_windows", "running_median", "smooth_log_snr"]


def record_windows(log_time: np.ndarray, half_width: float, min_records: int) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi) record windows: +-half_width decades, widened (centred on the record) to min_records.

    Example:
        >>> lo, hi = record_windows(np.log10([1.0, 10.0, 100.0, 1000.0]), 0.5, 2)
        >>> lo.tolist(), hi.tolist()
        ([0, 0, 1, 2], [2, 2, 3, 4])
    """
    n = log_time.size
    lo = np.searchsorted(log_time, log_time - half_width, side="left")
    hi = np.searchsorted(log_time, log_time + half_width, side="right")
    want = min(min_records, n)
    centre_lo = np.clip(np.arange(n) - want // 2, 0, max(n - want, 0))
    lo = np.minimum(lo, centre_lo)
    hi = np.maximum(hi, centre_lo + want)
    return lo, hi


def running_median(
    log_time: np.ndarray, log_snr: np.ndarray, half_width: float, min_records: int
) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed values (the median of each record's window, :func:`record_windows`) and, per record, the index
    one past the last record its window reads (what an online detector must have recorded to know it).

    Example:
        >>> smoothed, reads_until = running_median(np.arange(4.0), np.array([1.0, 9.0, 1.0, 1.0]), 0.1, 3)
        >>> smoothed.tolist(), reads_until.tolist()
        ([1.0, 1.0, 1.0, 1.0], [3, 3, 4, 4])
    """
    lo, hi = record_windows(log_time, half_width, min_records)
    return range_medians(np.asarray(log_snr, dtype=float), lo, hi), hi


def smooth_log_snr(
    iterations: Any, snr: Any, *, half_width: float = 0.1, min_records: int = 9
) -> tuple[np.ndarray, np.ndarray]:
    """Centred running median of log10 SNR over +-``half_width`` decades of iterations.

    Nan records are dropped. Each window holds at least ``min_records`` records (widened around the record
    where the log is sparse). The median is robust to the one-record spikes of raw batch SNR.

    Args:
        iterations: the iteration of each record.
        snr: the SNR of each record (nan: not logged).
        half_width: window half-width in decades of iterations.
        min_records: the fewest records a window may hold.

    Returns:
        ``(iterations, smoothed_log10_snr)`` of the finite records, sorted by iteration.

    Example:
        >>> steps, smoothed = smooth_log_snr([10, 20, 30, 40], [10.0, 1000.0, 10.0, 10.0], min_records=3)
        >>> smoothed.tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    steps, log_snr = log_snr_records(iterations, snr, None, None, None)
    return steps, running_median(log_iterations(steps), log_snr, half_width, min_records)[0]


def paper_smoothed_snr(
    iterations: Any, mean_norm: Any, std_norm: Any, *, window: int = 60
) -> tuple[np.ndarray, np.ndarray]:
    """The paper's smoothing: centred moving averages of the norms (and iterations), then their ratio.

    The series (nan rows dropped) is padded with ``window`` copies of its first and last values, as in the
    authors' notebook. Averaging the norms lets rare large-``mean_norm`` records dominate;
    :func:`smooth_log_snr` does not.

    Args:
        iterations: the iteration of each record.
        mean_norm: ``||mean of the batch gradients||`` per record.
        std_norm: ``||std of the batch gradients||`` per record.
        window: moving-average length in records.

    Returns:
        ``(smoothed_iterations, smoothed_snr)``.

    Example:
        >>> mean_norm, std_norm = [2.0, 2.0, 4.0, 4.0], [1.0, 1.0, 2.0, 2.0]
        >>> steps, snr = paper_smoothed_snr([1, 2, 3, 4], mean_norm, std_norm, window=2)
        >>> snr.tolist()
        [2.0, 2.0, 2.0, 2.0]
    """
    window = positive_int("window", window)
    steps = as_1d("iterations", iterations)
    mean = as_1d("mean_norm", mean_norm)
    std = as_1d("std_norm", std_norm)
    if not steps.shape == mean.shape == std.shape:
        raise ValueError("iterations, mean_norm and std_norm must have the same length")
    keep = np.isfinite(steps) & np.isfinite(mean) & np.isfinite(std)
    if not keep.any():
        raise ValueError("no finite records to smooth")
    kernel = np.ones(window) / window

    def average(values: np.ndarray) -> np.ndarray:
        padded = np.concatenate([np.full(window, values[0]), values, np.full(window, values[-1])])
        return np.convolve(padded, kernel, mode="same")[window:-window]

    return average(steps[keep]), average(mean[keep]) / average(std[keep])
