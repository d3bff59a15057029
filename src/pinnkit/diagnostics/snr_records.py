"""The records the phase detector reads: sorted, finite (iteration, log10 SNR) and (iteration, log10 error).

A training history's columns can be passed as they are: rows with nan (values not logged) are dropped, and the
SNR may be given as itself, as the norms of the batch-gradient mean and std, or as the gradient order.

Example:
    >>> steps, log_snr = log_snr_records([30, 10, 20], [10.0, float("nan"), 100.0], None, None, None)
    >>> steps.tolist(), log_snr.tolist()
    ([20.0, 30.0], [2.0, 1.0])
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["LOG_SNR_CLIP", "as_1d", "error_records", "log_iterations", "log_snr_records"]

LOG_SNR_CLIP = 8.0
"""|log10 SNR| beyond this is numerically meaningless (std or mean underflow): records are clipped to it."""


def as_1d(name: str, values: Any) -> np.ndarray:
    """``values`` as a 1-D float array (ValueError naming ``name`` otherwise).

    Example:
        >>> as_1d("snr", [1, 2]).tolist()
        [1.0, 2.0]
    """
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence, got shape {array.shape}")
    return array


def log_snr_records(
    iterations: Any, snr: Any, mean_norm: Any, std_norm: Any, order: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, finite (iteration, log10 SNR) records from whichever SNR description was given.

    The first of ``snr``, (``mean_norm``, ``std_norm``) or ``order`` that is not None is used; records without
    an SNR (nan) or a finite iteration are dropped, and of records with the same iteration the first is kept.

    Raises:
        ValueError: no SNR description, mismatched lengths, a negative SNR or an order outside [0, 1].
    """
    steps = as_1d("iterations", iterations)
    if snr is not None:
        ratio = as_1d("snr", snr)
        source = "snr"
    elif mean_norm is not None or std_norm is not None:
        if mean_norm is None or std_norm is None:
            raise ValueError("mean_norm and std_norm must be given together")
        mean = as_1d("mean_norm", mean_norm)
        std = as_1d("std_norm", std_norm)
        if mean.shape != std.shape:
            raise ValueError(f"mean_norm {mean.shape} and std_norm {std.shape} differ in length")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = mean / std
        ratio = np.where((mean == 0) & (std == 0), np.nan, ratio)
        source = "mean_norm"
    elif order is not None:
        phi = as_1d("order", order)
        if np.any((phi < 0) | (phi > 1)):
            raise ValueError("order must lie in [0, 1]")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = phi / np.sqrt(1.0 - phi**2)
        source = "order"
    else:
        raise ValueError("give snr, mean_norm and std_norm, or order")
    if ratio.shape != steps.shape:
        raise ValueError(f"{source} has {ratio.shape[0]} entries but iterations has {steps.shape[0]}")
    if np.any(ratio < 0):
        raise ValueError(f"{source} gives a negative SNR")
    keep = np.isfinite(steps) & ~np.isnan(ratio)
    steps, ratio = steps[keep], ratio[keep]
    with np.errstate(divide="ignore"):
        log_snr = np.clip(np.log10(ratio), -LOG_SNR_CLIP, LOG_SNR_CLIP)
    order_index = np.argsort(steps, kind="stable")
    steps, log_snr = steps[order_index], log_snr[order_index]
    unique = np.concatenate([[True], np.diff(steps) > 0]) if steps.size else np.zeros(0, bool)
    return steps[unique], log_snr[unique]


def error_records(error_iterations: Any, error: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Sorted (iteration, log10 error) records of the finite, positive errors; None when neither is given.

    Example:
        >>> error_records([20, 10], [0.01, 0.1])
        (array([10., 20.]), array([-1., -2.]))
    """
    if error is None and error_iterations is None:
        return None
    if error is None or error_iterations is None:
        raise ValueError("error_iterations and error must be given together")
    steps = as_1d("error_iterations", error_iterations)
    values = as_1d("error", error)
    if steps.shape != values.shape:
        raise ValueError(f"error has {values.shape[0]} entries but error_iterations has {steps.shape[0]}")
    keep = np.isfinite(steps) & np.isfinite(values) & (values > 0)
    steps, values = steps[keep], values[keep]
    order_index = np.argsort(steps, kind="stable")
    return steps[order_index], np.log10(values[order_index])


def log_iterations(steps: np.ndarray) -> np.ndarray:
    """log10 of the iterations, the detector's time axis (the phases are scale-free in time).

    Example:
        >>> log_iterations(np.array([0.0, 1.0, 100.0])).tolist()  # iteration 0 sits at iteration 1
        [0.0, 0.0, 2.0]
    """
    # Iteration 0 (a log of the initial state) sits at iteration 1 on the log axis.
    return np.log10(np.maximum(steps, 1.0))
