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

The records are cleaned in :mod:`pinnkit.diagnostics.snr_records` and smoothed in
:mod:`pinnkit.diagnostics.smoothing` (whose :func:`smooth_log_snr` and :func:`paper_smoothed_snr` are
re-exported here); this module holds the decisions.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pinnkit.diagnostics.smoothing import paper_smoothed_snr, running_median, smooth_log_snr
from pinnkit.diagnostics.snr_records import error_records, log_iterations, log_snr_records
from pinnkit.validation import positive_int, real

__all__ = [
    "PhaseTuning",
    "Phases",
    "detect_phases",
    "detect_phases_online",
    "paper_smoothed_snr",
    "smooth_log_snr",
]

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
        for name in ("drop_window", "merge_gap", "persistence", "error_window", "error_drop", "coincidence"):
            real(name, getattr(self, name), low=1.0, low_open=True)  # factors of iterations or of the error
        for name in ("half_width", "steep_drop", "min_drop", "noisy_snr", "min_rise", "corroborated_rise"):
            real(name, getattr(self, name), low=0.0, low_open=True)
        for name in ("landing", "persistence_fraction", "equilibrium_order", "corroborated_order"):
            real(name, getattr(self, name), low=0.0, high=1.0, low_open=True, high_open=True)
        positive_int("min_records", self.min_records)


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


# ----- the decisions -----


@dataclass(frozen=True)
class _Decision:
    """One decision of the detector: where a transition is, if anywhere, and why."""

    index: int | None = None  # record index of the transition
    decided: bool = True  # False: strict mode cannot decide yet (evidence incomplete)
    size: float | None = None
    reason: str = ""


@dataclass(frozen=True, eq=False)
class _Decisions:
    """All the detector decided on one (prefix of a) record; a decision it did not come to is None.

    ``error`` is the sharp fall of the test error that coincides with the equilibrium (an index into the error
    records); ``reasons`` holds the decisions' reasons in the order they were made.
    """

    smoothed: np.ndarray
    reasons: tuple[str, ...] = ()
    diffusion: _Decision | None = None
    equilibrium: _Decision | None = None
    error: _Decision | None = None

    def with_diffusion(self, decision: _Decision) -> _Decisions:
        return dataclasses.replace(self, diffusion=decision, reasons=self._reasons_and(decision))

    def with_equilibrium(self, decision: _Decision) -> _Decisions:
        return dataclasses.replace(self, equilibrium=decision, reasons=self._reasons_and(decision))

    def with_error(self, decision: _Decision) -> _Decisions:
        return dataclasses.replace(self, error=decision, reasons=self._reasons_and(decision))

    def _reasons_and(self, decision: _Decision) -> tuple[str, ...]:
        return (*self.reasons, decision.reason) if decision.reason else self.reasons


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
    log_time = log_iterations(steps)
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
) -> _Decisions:
    """All decisions on one (prefix of a) record. Strict: only complete evidence, undecided -> None."""
    log_time = log_iterations(steps)
    smoothed, reads_until = running_median(log_time, log_snr, tuning.half_width, tuning.min_records)
    if strict:
        # Keep the leading records whose window is fully recorded (the prefix cannot widen it any more).
        complete = (reads_until < steps.size) & (log_time + tuning.half_width < log_time[-1])
        usable = steps.size if complete.all() else int(np.argmin(complete))
        log_time, smoothed = log_time[:usable], smoothed[:usable]
    diffusion = _diffusion_start(log_time, smoothed, tuning, strict)
    decisions = _Decisions(smoothed).with_diffusion(diffusion)
    if strict and not diffusion.decided:
        return decisions
    start = diffusion.index + 1 if diffusion.index is not None else 0
    equilibrium = _equilibrium_from_snr(log_time, smoothed, start, tuning, strict)
    if error is not None and error[0].size:
        equilibrium = _corroborated(steps, log_time, smoothed, start, error, equilibrium, diffusion, tuning, strict)
    decisions = decisions.with_equilibrium(equilibrium)
    if error is None or equilibrium.index is None or error[0].size == 0:
        return decisions
    return decisions.with_error(_coincident_error_fall(steps, equilibrium, diffusion, error, tuning, strict))


def _assemble(
    steps: np.ndarray, log_snr: np.ndarray, error: Any, decisions: _Decisions, online: bool,
    confirmed: tuple[int | None, int | None] = (None, None),
) -> Phases:
    none = _Decision()  # a decision not come to: no transition
    diffusion = decisions.diffusion or none
    equilibrium = decisions.equilibrium or none
    fall = decisions.error or none
    diffusion_start = int(steps[diffusion.index]) if diffusion.index is not None else None
    from_snr = int(steps[equilibrium.index]) if equilibrium.index is not None else None
    error_drop = int(error[0][fall.index]) if fall.index is not None else None
    equilibrium_start = from_snr
    if from_snr is not None and error_drop is not None:
        # Two measurements of one transition, placed in log-time: their geometric mean.
        equilibrium_start = int(round(math.sqrt(max(from_snr, 1) * max(error_drop, 1))))
    padded = np.full(steps.size, np.nan)
    padded[: decisions.smoothed.size] = decisions.smoothed
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
        reasons=decisions.reasons,
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
    cache: dict[int, _Decisions] = {}

    def known_at(n: int) -> _Decisions:
        if n not in cache:
            prefix_error = None
            if error is not None:
                keep = error[0] <= steps[n - 1]
                prefix_error = (error[0][keep], error[1][keep])
            cache[n] = _detect(steps[:n], log_snr[:n], prefix_error, tuning, strict=True)
        return cache[n]

    def diffusion_known(n: int) -> bool:
        diffusion = known_at(n).diffusion
        return diffusion is not None and diffusion.index is not None

    def equilibrium_known(n: int) -> bool:
        decisions = known_at(n)
        if decisions.equilibrium is None or decisions.equilibrium.index is None:
            return False
        return decisions.error is None or decisions.error.decided

    total = steps.size
    n_diffusion = _first_prefix(total, diffusion_known)
    n_equilibrium = _first_prefix(total, equilibrium_known) if n_diffusion is not None else None
    # The curve shown is the one known at the last record.
    smoothed = known_at(total).smoothed
    if n_equilibrium is not None:
        decisions = dataclasses.replace(known_at(n_equilibrium), smoothed=smoothed)
    elif n_diffusion is not None:
        known = known_at(n_diffusion)
        reasons = (*known.reasons, "equilibrium: not confirmed by the end of the record")
        decisions = _Decisions(smoothed, reasons, diffusion=known.diffusion)
    else:
        decisions = _Decisions(smoothed, ("diffusion: not confirmed by the end of the record",))
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
    steps, log_snr = log_snr_records(iterations, snr, mean_norm, std_norm, order)
    errors = error_records(error_iterations, error)
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
