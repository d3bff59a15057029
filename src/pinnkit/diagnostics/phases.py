"""Automatic detection of the learning phases of a PINN from its batch-gradient SNR (and, optionally, test
error).

Training goes through *fitting* (batch gradients agree, SNR >> 1), *diffusion* (the SNR collapses by orders of
magnitude: gradients are noise-dominated) and *diffusion equilibrium* (an abrupt, persistent re-alignment: the
SNR jumps back to O(1), the gradient order to ~0.9-1, and the test error falls). See docs/diagnostics.md.

Method, in log10 SNR against log10 iteration (the phases are scale-free in time; logs are non-uniformly
spaced):

1. Smooth with a centred running **median** over a window of +-``half_width`` decades of iterations (at least
   ``min_records`` records). A median ignores the spikes that dominate a moving average of the norms.
2. **Diffusion start**: the first *sustained drop*: a run of records where the smoothed log-SNR falls by at
   least ``steep_drop`` decades across a factor ``drop_window`` of iterations, that falls ``min_drop`` decades
   in total, lands in the noisy regime (SNR <= ``noisy_snr``) and does not come back. The transition is where
   the curve *enters* the new level: the first record after which it stays within ``landing`` of the fall
   (at most ``landing_cap`` decades) above the level it settles at over the next ``level_window`` decades.
3. **Equilibrium start (SNR)**: after that, the first record whose smoothed log-SNR reaches the order
   ``equilibrium_order`` (SNR ~2) *and* lies ``min_rise`` decades above the median level since the diffusion
   start, and stays there (less ``hysteresis``) for a fraction ``persistence_fraction`` of the records up to
   ``persistence`` times its iteration. A transient burst of alignment is therefore not an equilibrium.
   With a test error, an earlier re-alignment to the lower order ``corroborated_order`` that rises the larger
   ``corroborated_rise`` decades also counts, when a sharp fall of the error (step 4) lies within a factor
   ``coincidence`` of it: short runs re-align to a lower order than the paper's long ones, and the error fall
   is the independent evidence that the re-alignment is the transition.
4. **Error** (when given): the first sharp fall of the test error (by a factor ``error_drop`` below its median
   over the preceding factor ``error_window`` of iterations, and staying there). When it lies within a factor
   ``coincidence`` of the SNR estimate the two are two measurements of one transition: the geometric mean is
   reported.

Online mode uses only *complete* evidence: a smoothed value once its whole window has been recorded, a drop
once the run has ended, a rise once its persistence window has passed. The answer at any record therefore
depends on no later record, and the reported iteration is where the transition started, not when it was
confirmed (``*_confirmed_at``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "PhaseTuning",
    "Phases",
    "detect_phases",
    "detect_phases_online",
    "paper_smoothed_snr",
    "smooth_log_snr",
]

_LOG_SNR_CLIP = 8.0  # |log10 SNR| beyond this is numerically meaningless (std or mean underflow)
_SUSTAIN = math.log10(2.0)  # after a drop, the SNR must stay down for a factor 2 of iterations


@dataclass(frozen=True)
class PhaseTuning:
    """Parameters of :func:`detect_phases` (all have physical defaults; see the module docstring).

    Windows are in decades of iterations or factors of iterations; levels in decades of SNR.
    """

    half_width: float = 0.1
    min_records: int = 9
    drop_window: float = 2.0
    steep_drop: float = 0.5
    merge_gap: float = 1.5
    min_drop: float = 0.8
    noisy_snr: float = 30.0
    landing: float = 0.1
    landing_cap: float = 0.25
    level_window: float = 0.5
    equilibrium_order: float = 0.9
    min_rise: float = 0.5
    corroborated_order: float = 0.6
    corroborated_rise: float = 1.0
    persistence: float = 2.0
    persistence_fraction: float = 0.7
    hysteresis: float = 0.2
    error_window: float = 2.0
    error_drop: float = 2.0
    coincidence: float = 3.0

    def __post_init__(self) -> None:
        factors = ("drop_window", "merge_gap", "persistence", "error_window", "error_drop", "coincidence")
        for name in factors:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 1.0):
                raise ValueError(f"{name} must be a factor > 1, got {value!r}")
        positive = ("half_width", "steep_drop", "min_drop", "noisy_snr", "min_rise", "corroborated_rise")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0.0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        for name in ("landing", "persistence_fraction", "equilibrium_order", "corroborated_order"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 < value < 1.0):
                raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
        records = self.min_records
        if isinstance(records, bool) or not isinstance(records, int) or records < 1:
            raise ValueError(f"min_records must be a positive int, got {self.min_records!r}")


@dataclass(frozen=True)
class Phases:
    """Detected phase transitions (iterations) and the evidence behind them.

    Attributes:
        diffusion_start: fitting -> diffusion, or None.
        equilibrium_start: diffusion -> diffusion equilibrium, or None.
        equilibrium_from_snr: the SNR-only estimate of the equilibrium start.
        error_drop: the sharp fall of the test error used with it (None when no error or no coincident fall).
        diffusion_confirmed_at, equilibrium_confirmed_at: online mode only, the record at which the evidence
            was complete (the latency of an online monitor); None offline.
        diffusion_drop: decades the smoothed SNR fell across the drop.
        equilibrium_rise: decades the smoothed SNR rose above its diffusion floor (median over the persistence
            window).
        iterations, log_snr, smoothed_log_snr: the cleaned records (log10 SNR) and their smoothing.
        reasons: one human-readable line per decision.
        online: whether the online (causal) mode produced this.
    """

    diffusion_start: int | None
    equilibrium_start: int | None
    equilibrium_from_snr: int | None = None
    error_drop: int | None = None
    diffusion_confirmed_at: int | None = None
    equilibrium_confirmed_at: int | None = None
    diffusion_drop: float | None = None
    equilibrium_rise: float | None = None
    iterations: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    log_snr: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    smoothed_log_snr: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    reasons: tuple[str, ...] = ()
    online: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The scalar fields as a JSON-ready dict (arrays left out).

        Returns:
            A dict of ints, floats, None, bools and a list of reason strings.

        Example:
            >>> Phases(150, 11100).as_dict()["equilibrium_start"]
            11100
        """
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, np.ndarray):
                continue
            out[item.name] = list(value) if isinstance(value, tuple) else value
        return out


# ----- inputs -----


def _as_1d(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence, got shape {array.shape}")
    return array


def _log_snr_records(
    iterations: Any, snr: Any, mean_norm: Any, std_norm: Any, order: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, finite (iteration, log10 SNR) records from whichever SNR description was given."""
    steps = _as_1d("iterations", iterations)
    if snr is not None:
        ratio = _as_1d("snr", snr)
        source = "snr"
    elif mean_norm is not None or std_norm is not None:
        if mean_norm is None or std_norm is None:
            raise ValueError("mean_norm and std_norm must be given together")
        mean = _as_1d("mean_norm", mean_norm)
        std = _as_1d("std_norm", std_norm)
        if mean.shape != std.shape:
            raise ValueError(f"mean_norm {mean.shape} and std_norm {std.shape} differ in length")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = mean / std
        ratio = np.where((mean == 0) & (std == 0), np.nan, ratio)
        source = "mean_norm"
    elif order is not None:
        phi = _as_1d("order", order)
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
        log_snr = np.clip(np.log10(ratio), -_LOG_SNR_CLIP, _LOG_SNR_CLIP)
    order_index = np.argsort(steps, kind="stable")
    steps, log_snr = steps[order_index], log_snr[order_index]
    unique = np.concatenate([[True], np.diff(steps) > 0]) if steps.size else np.zeros(0, bool)
    return steps[unique], log_snr[unique]


def _error_records(error_iterations: Any, error: Any) -> tuple[np.ndarray, np.ndarray] | None:
    if error is None and error_iterations is None:
        return None
    if error is None or error_iterations is None:
        raise ValueError("error_iterations and error must be given together")
    steps = _as_1d("error_iterations", error_iterations)
    values = _as_1d("error", error)
    if steps.shape != values.shape:
        raise ValueError(f"error has {values.shape[0]} entries but error_iterations has {steps.shape[0]}")
    keep = np.isfinite(steps) & np.isfinite(values) & (values > 0)
    steps, values = steps[keep], values[keep]
    order_index = np.argsort(steps, kind="stable")
    return steps[order_index], np.log10(values[order_index])


def _log_time(steps: np.ndarray) -> np.ndarray:
    # Iteration 0 (a log of the initial state) sits at iteration 1 on the log axis.
    return np.log10(np.maximum(steps, 1.0))


# ----- smoothing -----


def _windows(log_time: np.ndarray, half_width: float, min_records: int) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi) record windows: +-half_width decades, widened (centred on the record) to min_records."""
    n = log_time.size
    lo = np.searchsorted(log_time, log_time - half_width, side="left")
    hi = np.searchsorted(log_time, log_time + half_width, side="right")
    want = min(min_records, n)
    centre_lo = np.clip(np.arange(n) - want // 2, 0, max(n - want, 0))
    lo = np.minimum(lo, centre_lo)
    hi = np.maximum(hi, centre_lo + want)
    return lo, hi


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
    steps, log_snr = _log_snr_records(iterations, snr, None, None, None)
    return steps, _smooth(_log_time(steps), log_snr, half_width, min_records)[0]


def _smooth(
    log_time: np.ndarray, log_snr: np.ndarray, half_width: float, min_records: int
) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed values and, per record, the index one past the last record its window reads."""
    lo, hi = _windows(log_time, half_width, min_records)
    return _window_medians(np.asarray(log_snr, dtype=float), lo, hi), hi


def _window_medians(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``np.median(values[lo[i]:hi[i]])`` for every i, the same floats, in O((n + m) log n) for m windows.

    Each window median is one or two order statistics of its slice, found with a wavelet matrix over the
    ranks of ``values`` (the k-th smallest of a slice: one descent of log2(n) levels, vectorised over all
    windows at once). As in :func:`numpy.median`: an odd window gives its middle value, an even one the mean
    of its two middle values computed as ``(a + b) / 2``, a window holding a NaN gives NaN and an empty one NaN.
    (Where a window's middle is a tie of ``0.0`` and ``-0.0`` the sign of the zero may differ.)
    """
    values = np.asarray(values, dtype=float)
    lo = np.clip(np.asarray(lo, dtype=np.int64), 0, values.size)  # window bounds are record indices in [0, n]
    hi = np.clip(np.asarray(hi, dtype=np.int64), 0, values.size)
    size = hi - lo
    out = np.full(lo.shape, np.nan)
    usable = size > 0
    if values.size == 0 or not usable.any():
        return out
    nan_before = np.concatenate([[0], np.cumsum(np.isnan(values))])
    usable &= nan_before[hi] == nan_before[lo]
    order = np.argsort(values, kind="stable")  # NaN last; ties keep their record order
    ranks = np.empty(values.size, dtype=np.int64)
    ranks[order] = np.arange(values.size)
    where = np.flatnonzero(usable)
    a, b, m = lo[where], hi[where], size[where]
    both = _kth_smallest(ranks, np.concatenate([a, a]), np.concatenate([b, b]), np.concatenate([(m - 1) // 2, m // 2]))
    lower, upper = values[order[both[: where.size]]], values[order[both[where.size :]]]
    with np.errstate(over="ignore", invalid="ignore"):
        out[where] = np.where(m % 2 == 1, lower, (lower + upper) / 2)
    return out


def _kth_smallest(ranks: np.ndarray, lo: np.ndarray, hi: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The ``k[i]``-th smallest (from 0) of ``ranks[lo[i]:hi[i]]``, ``ranks`` a permutation of 0..n-1.

    A wavelet matrix built and queried one bit level at a time (most significant first): at each level the
    sequence is stably partitioned by the bit (zeros first) and each query range follows its k-th element.
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
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")
    steps = _as_1d("iterations", iterations)
    mean = _as_1d("mean_norm", mean_norm)
    std = _as_1d("std_norm", std_norm)
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


# ----- the decisions -----


@dataclass
class _Decision:
    index: int | None = None  # record index of the transition
    decided: bool = True  # False: strict mode cannot decide yet (evidence incomplete)
    size: float | None = None
    reason: str = ""


def _diffusion_start(
    log_time: np.ndarray, smoothed: np.ndarray, tuning: PhaseTuning, strict: bool
) -> _Decision:
    n = smoothed.size
    if n < 3:
        return _Decision(decided=not strict, reason="diffusion: too few records")
    half = math.log10(tuning.drop_window) / 2
    gap = math.log10(tuning.merge_gap)
    end = log_time[-1]

    def level(at: np.ndarray | float) -> np.ndarray:
        return np.interp(at, log_time, smoothed)

    drop = level(log_time - half) - level(log_time + half)
    valid = log_time + half <= end
    steep = (drop >= tuning.steep_drop) & valid
    candidates = np.flatnonzero(steep)
    if candidates.size == 0:
        return _Decision(decided=not strict, reason="diffusion: no steep drop of the smoothed SNR")
    runs: list[tuple[int, int]] = []
    first = previous = int(candidates[0])
    for index in candidates[1:]:
        if log_time[index] - log_time[previous] > gap:
            runs.append((first, previous))
            first = int(index)
        previous = int(index)
    runs.append((first, previous))
    last_valid = log_time[valid][-1]
    settle = max(_SUSTAIN, tuning.level_window)
    for first, last in runs:
        # Closed: no later steep record can join the run, and the level after it has been fully recorded.
        closed = last_valid > log_time[last] + gap and end >= log_time[last] + half + settle
        if strict and not closed:
            return _Decision(decided=False)
        before = float(level(log_time[first] - half))
        landed_from = log_time[last] + half
        landed = (log_time >= landed_from) & (log_time <= landed_from + tuning.level_window)
        after = float(np.median(smoothed[landed])) if landed.any() else float(level(landed_from))
        total = before - after
        if total < tuning.min_drop or after > math.log10(tuning.noisy_snr):
            continue
        sustained = (log_time >= landed_from) & (log_time <= landed_from + _SUSTAIN)
        if sustained.any() and np.median(smoothed[sustained]) > before - tuning.min_drop / 2:
            continue  # the SNR came back up: a dip, not the collapse into diffusion
        target = after + min(tuning.landing * total, tuning.landing_cap)
        below = smoothed <= target
        index = last
        horizon = landed_from + tuning.level_window - tuning.half_width
        searchable = np.flatnonzero((log_time >= log_time[first]) & (log_time <= horizon))
        if searchable.size:
            # A crossing counts once the curve stays below for the next half-width (not one low wiggle). The
            # records are in time order, so each look-ahead is a slice [start, stop): counted with a prefix sum
            # of the records above the target (linear time; a per-candidate mask was quadratic).
            start = np.searchsorted(log_time, log_time[searchable], side="left")
            stop = np.searchsorted(log_time, log_time[searchable] + tuning.half_width, side="right")
            above = np.concatenate(([0], np.cumsum(~below)))
            stays = np.flatnonzero(above[stop] - above[start] == 0)
            if stays.size:
                index = int(searchable[stays[0]])
        reason = (
            f"diffusion: smoothed SNR fell {total:.1f} decades ({10**before:.3g} -> {10**after:.3g}) and "
            f"settled there from iteration {round(10 ** log_time[index])}"
        )
        return _Decision(index=index, size=total, reason=reason)
    # Strict: a later drop may still come.
    return _Decision(decided=not strict, reason="diffusion: no sustained drop of the SNR to a noisy level")


def _equilibrium_from_snr(
    log_time: np.ndarray, smoothed: np.ndarray, start: int, tuning: PhaseTuning, strict: bool
) -> _Decision:
    n = smoothed.size
    if start >= n:
        return _Decision(decided=not strict, reason="equilibrium: no records after the diffusion start")
    aligned = math.log10(tuning.equilibrium_order / math.sqrt(1.0 - tuning.equilibrium_order**2))
    span = math.log10(tuning.persistence)
    end = log_time[-1]
    for offset in np.flatnonzero(smoothed[start:] >= aligned):
        index = start + int(offset)
        # The diffusion level so far: a median, so that one deep excursion does not lower the bar.
        floor = float(np.median(smoothed[start : index + 1]))
        threshold = max(aligned, floor + tuning.min_rise)
        if smoothed[index] < threshold:
            continue
        complete = end >= log_time[index] + span
        if not complete and (strict or end < log_time[index] + span / 2):
            # strict: wait for the whole persistence window; offline: too little of it left to judge.
            return _Decision(decided=not strict, reason="equilibrium: no persistent re-alignment of the SNR")
        window = (log_time >= log_time[index]) & (log_time <= log_time[index] + span)
        # Hysteresis: once above the threshold, a record stays "aligned" until it falls hysteresis below it.
        if np.mean(smoothed[window] >= threshold - tuning.hysteresis) < tuning.persistence_fraction:
            continue
        rise = float(np.median(smoothed[window]) - floor)
        reason = (
            f"equilibrium: smoothed SNR rose {rise:.1f} decades above its diffusion level "
            f"({10**floor:.3g}) to >= {10**threshold:.3g} and stayed for x{tuning.persistence:g} iterations"
        )
        return _Decision(index=index, size=rise, reason=reason)
    return _Decision(decided=not strict, reason="equilibrium: no persistent re-alignment of the SNR")


def _coincident_error_fall(
    steps: np.ndarray, equilibrium: _Decision, diffusion: _Decision, error: tuple[np.ndarray, np.ndarray],
    tuning: PhaseTuning, strict: bool,
) -> _Decision:
    """A sharp error fall within a factor ``coincidence`` of the SNR re-alignment (and after the diffusion start)."""
    snr_step = steps[equilibrium.index]
    after = snr_step / tuning.coincidence
    if diffusion.index is not None:
        after = max(after, steps[diffusion.index])
    return _error_fall(error, after, snr_step * tuning.coincidence, tuning, strict)


def _corroborated(
    steps: np.ndarray, log_time: np.ndarray, smoothed: np.ndarray, start: int, error: tuple[np.ndarray, np.ndarray],
    equilibrium: _Decision, diffusion: _Decision, tuning: PhaseTuning, strict: bool,
) -> _Decision:
    """The earlier of the SNR-only equilibrium and a lower re-alignment that a sharp error fall corroborates."""
    relaxed_tuning = dataclasses.replace(
        tuning, equilibrium_order=tuning.corroborated_order, min_rise=tuning.corroborated_rise)
    relaxed = _equilibrium_from_snr(log_time, smoothed, start, relaxed_tuning, strict)
    if relaxed.index is None or (equilibrium.index is not None and relaxed.index >= equilibrium.index):
        if strict and not relaxed.decided and equilibrium.index is None:
            return _Decision(decided=False)
        return equilibrium
    fall = _coincident_error_fall(steps, relaxed, diffusion, error, tuning, strict)
    if fall.index is not None:
        return dataclasses.replace(relaxed, reason=relaxed.reason + ", with a sharp fall of the test error within "
                                   f"x{tuning.coincidence:g} (order >= {tuning.corroborated_order:g} suffices then)")
    if strict and not fall.decided:
        # Whether the earlier re-alignment counts is not known yet: neither answer may be given.
        return _Decision(decided=False)
    return equilibrium


def _error_fall(
    error: tuple[np.ndarray, np.ndarray], after: float, until: float, tuning: PhaseTuning, strict: bool
) -> _Decision:
    """First sharp, sustained fall of the test error in (after, until]; index into the error records."""
    steps, log_error = error
    log_time = _log_time(steps)
    span = math.log10(tuning.error_window)
    fall = math.log10(tuning.error_drop)
    end = log_time[-1] if log_time.size else -np.inf
    for index in np.flatnonzero((steps > after) & (steps <= until)):
        trailing = (log_time >= log_time[index] - span) & (log_time < log_time[index])
        if trailing.sum() < 2:
            continue
        reference = np.median(log_error[trailing])
        if log_error[index] > reference - fall:
            continue
        if strict and end < log_time[index] + span:
            return _Decision(decided=False)
        following = (log_time >= log_time[index]) & (log_time <= log_time[index] + span)
        if np.median(log_error[following]) <= reference - fall:
            reason = (
                f"error: fell below 1/{tuning.error_drop:g} of its recent level ({10**reference:.3g}) at "
                f"iteration {int(steps[index])}"
            )
            return _Decision(index=int(index), reason=reason)
    if strict and end < math.log10(max(until, 1.0)) + span:
        return _Decision(decided=False)
    return _Decision(reason="error: no sharp fall near the SNR re-alignment")


def _detect(
    steps: np.ndarray,
    log_snr: np.ndarray,
    error: tuple[np.ndarray, np.ndarray] | None,
    tuning: PhaseTuning,
    strict: bool,
) -> dict[str, Any]:
    """All decisions on one (prefix of a) record. Strict: only complete evidence, undecided -> None."""
    log_time = _log_time(steps)
    smoothed, reads_until = _smooth(log_time, log_snr, tuning.half_width, tuning.min_records)
    if strict:
        # Keep the leading records whose window is fully recorded (the prefix cannot widen it any more).
        complete = (reads_until < steps.size) & (log_time + tuning.half_width < log_time[-1])
        usable = steps.size if complete.all() else int(np.argmin(complete))
        log_time, smoothed = log_time[:usable], smoothed[:usable]
    result: dict[str, Any] = {"smoothed": smoothed, "reasons": []}
    diffusion = _diffusion_start(log_time, smoothed, tuning, strict)
    result["diffusion"] = diffusion
    if diffusion.reason:
        result["reasons"].append(diffusion.reason)
    if strict and not diffusion.decided:
        return result
    start = diffusion.index + 1 if diffusion.index is not None else 0
    equilibrium = _equilibrium_from_snr(log_time, smoothed, start, tuning, strict)
    if error is not None and error[0].size:
        equilibrium = _corroborated(steps, log_time, smoothed, start, error, equilibrium, diffusion, tuning, strict)
    result["equilibrium"] = equilibrium
    if equilibrium.reason:
        result["reasons"].append(equilibrium.reason)
    if error is None or equilibrium.index is None or error[0].size == 0:
        return result
    fall = _coincident_error_fall(steps, equilibrium, diffusion, error, tuning, strict)
    result["error"] = fall
    if fall.reason:
        result["reasons"].append(fall.reason)
    return result


def _assemble(
    steps: np.ndarray, log_snr: np.ndarray, error: Any, decisions: dict[str, Any], online: bool,
    confirmed: tuple[int | None, int | None] = (None, None),
) -> Phases:
    diffusion = decisions.get("diffusion", _Decision())
    equilibrium = decisions.get("equilibrium", _Decision())
    fall = decisions.get("error", _Decision())
    diffusion_start = int(steps[diffusion.index]) if diffusion.index is not None else None
    from_snr = int(steps[equilibrium.index]) if equilibrium.index is not None else None
    error_drop = int(error[0][fall.index]) if fall.index is not None else None
    equilibrium_start = from_snr
    if from_snr is not None and error_drop is not None:
        # Two measurements of one transition, placed in log-time: their geometric mean.
        equilibrium_start = int(round(math.sqrt(max(from_snr, 1) * max(error_drop, 1))))
    smoothed = decisions["smoothed"]
    padded = np.full(steps.size, np.nan)
    padded[: smoothed.size] = smoothed
    return Phases(
        diffusion_start=diffusion_start,
        equilibrium_start=equilibrium_start,
        equilibrium_from_snr=from_snr,
        error_drop=error_drop,
        diffusion_confirmed_at=confirmed[0],
        equilibrium_confirmed_at=confirmed[1],
        diffusion_drop=diffusion.size,
        equilibrium_rise=equilibrium.size,
        iterations=steps,
        log_snr=log_snr,
        smoothed_log_snr=padded,
        reasons=tuple(decisions["reasons"]),
        online=online,
    )


def _first_prefix(total: int, found: Any) -> int | None:
    """Smallest prefix length n (1..total) with found(n), assuming found is monotone in n."""
    if total == 0 or not found(total):
        return None
    low, high = 1, total
    while low < high:
        middle = (low + high) // 2
        if found(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _online(
    steps: np.ndarray, log_snr: np.ndarray, error: tuple[np.ndarray, np.ndarray] | None, tuning: PhaseTuning
) -> Phases:
    """What a monitor fed one record at a time would have reported, and when.

    Strict decisions use only complete evidence, so once a transition is known at some record it is known,
    with the same value, at every later record: the first record that knows it is found by bisection.
    """
    cache: dict[int, dict[str, Any]] = {}

    def known_at(n: int) -> dict[str, Any]:
        if n not in cache:
            prefix_error = None
            if error is not None:
                keep = error[0] <= steps[n - 1]
                prefix_error = (error[0][keep], error[1][keep])
            cache[n] = _detect(steps[:n], log_snr[:n], prefix_error, tuning, strict=True)
        return cache[n]

    def diffusion_known(n: int) -> bool:
        return known_at(n)["diffusion"].index is not None

    def equilibrium_known(n: int) -> bool:
        decisions = known_at(n)
        if "equilibrium" not in decisions or decisions["equilibrium"].index is None:
            return False
        return "error" not in decisions or decisions["error"].decided

    total = steps.size
    n_diffusion = _first_prefix(total, diffusion_known)
    n_equilibrium = _first_prefix(total, equilibrium_known) if n_diffusion is not None else None
    if n_equilibrium is not None:
        decisions = dict(known_at(n_equilibrium))
    elif n_diffusion is not None:
        decisions = {key: known_at(n_diffusion)[key] for key in ("diffusion", "reasons")}
        decisions["reasons"] = [*decisions["reasons"], "equilibrium: not confirmed by the end of the record"]
    else:
        decisions = {"reasons": ["diffusion: not confirmed by the end of the record"]}
    # The curve shown is the one known at the last record.
    decisions["smoothed"] = known_at(total)["smoothed"]
    confirmed = (
        int(steps[n_diffusion - 1]) if n_diffusion is not None else None,
        int(steps[n_equilibrium - 1]) if n_equilibrium is not None else None,
    )
    return _assemble(steps, log_snr, error, decisions, online=True, confirmed=confirmed)


def detect_phases(
    iterations: Any,
    snr: Any = None,
    *,
    mean_norm: Any = None,
    std_norm: Any = None,
    order: Any = None,
    error_iterations: Any = None,
    error: Any = None,
    online: bool = False,
    **tuning: Any,
) -> Phases:
    """Detect the fitting -> diffusion and diffusion -> equilibrium transitions of one training run.

    Give the SNR as ``snr``, or as ``mean_norm`` and ``std_norm`` (``snr = mean_norm / std_norm``), or as the
    gradient ``order`` (``snr = order / sqrt(1 - order^2)``). Rows with nan are dropped (values not logged),
    so the columns of a training history can be passed as they are. The spacing may be non-uniform (the paper
    logs every 2 iterations below 300, then every 100).

    Args:
        iterations: the iteration of each record.
        snr: the batch-gradient SNR per record.
        mean_norm: ``||mean over batches of the batch gradients||`` per record.
        std_norm: ``||std over batches||`` per record.
        order: the gradient order per record, in [0, 1].
        error_iterations: iterations of the test-error records.
        error: the test error (e.g. relative L2) per error record; refines the equilibrium start.
        online: use only complete evidence, as a monitor running alongside training would (see the module
            docstring); the ``*_confirmed_at`` fields then say when each transition became known.
        **tuning: overrides of :class:`PhaseTuning` fields.

    Returns:
        A :class:`Phases`.

    Raises:
        ValueError: no usable SNR description, mismatched lengths, bad tuning values.
        TypeError: an unknown tuning name.

    Example:
        >>> import numpy as np
        >>> steps = np.concatenate([np.arange(2, 300, 2), np.arange(300, 100_001, 100)])
        >>> log_snr = np.where(steps < 150, 1.7, np.where(steps < 20_000, -1.5, 0.8))
        >>> phases = detect_phases(steps, 10.0**log_snr)
        >>> 100 <= phases.diffusion_start <= 200, 15_000 <= phases.equilibrium_start <= 25_000
        (True, True)
    """
    known = {item.name for item in dataclasses.fields(PhaseTuning)}
    unknown = sorted(set(tuning) - known)
    if unknown:
        raise TypeError(f"unknown tuning parameter(s) {unknown}; known: {sorted(known)}")
    settings = PhaseTuning(**tuning)
    steps, log_snr = _log_snr_records(iterations, snr, mean_norm, std_norm, order)
    errors = _error_records(error_iterations, error)
    if steps.size == 0:
        return Phases(None, None, reasons=("no finite SNR records",), online=online)
    if online:
        return _online(steps, log_snr, errors, settings)
    decisions = _detect(steps, log_snr, errors, settings, strict=False)
    return _assemble(steps, log_snr, errors, decisions, online=False)


def detect_phases_online(iterations: Any, snr: Any = None, **kwargs: Any) -> Phases:
    """:func:`detect_phases` with ``online=True``: the answer a causal monitor would have given.

    Args:
        iterations: the iteration of each record.
        snr: the SNR per record (or pass ``mean_norm``/``std_norm``/``order`` by keyword).
        **kwargs: the other keyword arguments of :func:`detect_phases`.

    Returns:
        A :class:`Phases` with ``online=True``.

    Example:
        >>> import numpy as np
        >>> steps = np.concatenate([np.arange(2, 300, 2), np.arange(300, 100_001, 100)])
        >>> log_snr = np.where(steps < 150, 1.7, np.where(steps < 20_000, -1.5, 0.8))
        >>> phases = detect_phases_online(steps, 10.0**log_snr)
        >>> phases.equilibrium_confirmed_at >= 2 * phases.equilibrium_start
        True
    """
    kwargs.pop("online", None)
    return detect_phases(iterations, snr, online=True, **kwargs)
