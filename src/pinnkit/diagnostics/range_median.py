"""Medians of many ranges of one array at once: ``np.median(values[lo[i]:hi[i]])`` for every ``i``, the same
floats, in O((n + m) log n) for m ranges of n values instead of one sort per range.

Each median is one or two order statistics of its range, found with a wavelet matrix over the ranks of the
values: the k-th smallest of a range is one descent of log2(n) bit levels, vectorised over all ranges at once.
The ranges may be anything (overlapping, nested, in any order); the phase detector's running median
(:mod:`pinnkit.diagnostics.smoothing`) is one use.

Example:
    >>> import numpy as np
    >>> values = np.array([5.0, 1.0, 4.0, 2.0, 3.0])
    >>> range_medians(values, np.array([0, 1, 2]), np.array([3, 5, 4])).tolist()
    [4.0, 2.5, 3.0]
    >>> [float(np.median(values[a:b])) for a, b in [(0, 3), (1, 5), (2, 4)]]
    [4.0, 2.5, 3.0]
"""

from __future__ import annotations

import numpy as np

__all__ = ["kth_smallest", "range_medians"]


def range_medians(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``np.median(values[lo[i]:hi[i]])`` for every i, the same floats.

    As in :func:`numpy.median`: an odd range gives its middle value, an even one the mean of its two middle
    values computed as ``(a + b) / 2``, a range holding a NaN gives NaN and an empty one NaN (without numpy's
    warning). Bounds are clipped to ``[0, len(values)]``, as slicing does for non-negative bounds. (Where a
    range's middle is a tie of ``0.0`` and ``-0.0`` the sign of the zero may differ.)

    Args:
        values: the 1-D array.
        lo, hi: the ranges' first index and the index one past their last, one pair per range.

    Returns:
        A float array of the ranges' shape.

    Example:
        >>> range_medians(np.array([3.0, np.nan, 1.0, 2.0]), np.array([0, 2, 1]), np.array([1, 4, 1])).tolist()
        [3.0, 1.5, nan]
    """
    values = np.asarray(values, dtype=float)
    lo = np.clip(np.asarray(lo, dtype=np.int64), 0, values.size)  # range bounds are indices in [0, n]
    hi = np.clip(np.asarray(hi, dtype=np.int64), 0, values.size)
    size = hi - lo
    out = np.full(lo.shape, np.nan)
    usable = size > 0
    if values.size == 0 or not usable.any():
        return out
    nan_before = np.concatenate([[0], np.cumsum(np.isnan(values))])
    usable &= nan_before[hi] == nan_before[lo]
    order = np.argsort(values, kind="stable")  # NaN last; ties keep their index order
    ranks = np.empty(values.size, dtype=np.int64)
    ranks[order] = np.arange(values.size)
    where = np.flatnonzero(usable)
    a, b, m = lo[where], hi[where], size[where]
    both = kth_smallest(ranks, np.concatenate([a, a]), np.concatenate([b, b]), np.concatenate([(m - 1) // 2, m // 2]))
    lower, upper = values[order[both[: where.size]]], values[order[both[where.size :]]]
    with np.errstate(over="ignore", invalid="ignore"):
        out[where] = np.where(m % 2 == 1, lower, (lower + upper) / 2)
    return out


def kth_smallest(ranks: np.ndarray, lo: np.ndarray, hi: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The ``k[i]``-th smallest (from 0) of ``ranks[lo[i]:hi[i]]``, ``ranks`` a permutation of 0..n-1.

    A wavelet matrix built and queried one bit level at a time (most significant first): at each level the
    sequence is stably partitioned by the bit (zeros first) and each query range follows its k-th element.
    Requires ``0 <= lo[i] < hi[i] <= n`` and ``0 <= k[i] < hi[i] - lo[i]``.

    Example:
        >>> kth_smallest(np.array([3, 0, 2, 1]), np.array([0, 1]), np.array([4, 3]), np.array([3, 0])).tolist()
        [3, 0]
    """
    n = ranks.size
    answer = np.zeros(lo.shape, dtype=np.int64)
    current = ranks
    lo, hi, k = lo.copy(), hi.copy(), k.copy()
    zeros_before = np.zeros(n + 1, dtype=np.int64)
    for level in range(max(int(n - 1).bit_length(), 1) - 1, -1, -1):
        is_zero = ((current >> level) & 1) == 0
        np.cumsum(is_zero, out=zeros_before[1:])
        total_zeros = zeros_before[-1]
        zeros_lo, zeros_hi = zeros_before[lo], zeros_before[hi]
        zeros_in = zeros_hi - zeros_lo
        right = k >= zeros_in
        k = np.where(right, k - zeros_in, k)
        lo = np.where(right, total_zeros + lo - zeros_lo, zeros_lo)
        hi = np.where(right, total_zeros + hi - zeros_hi, zeros_hi)
        answer |= right.astype(np.int64) << level
        current = np.concatenate([current[is_zero], current[~is_zero]])
    return answer
