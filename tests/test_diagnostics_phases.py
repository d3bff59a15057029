"""Phase detection: synthetic curves with known change points, the authors' logs, and online causality."""

from __future__ import annotations

import numpy as np
import pytest

from pinnkit.diagnostics import (
    PhaseTuning,
    detect_phases,
    detect_phases_online,
    paper_smoothed_snr,
    read_error_log,
    read_gradient_log,
    smooth_log_snr,
)

# ----- synthetic runs -----


def paper_cadence(last: int = 300_000) -> np.ndarray:
    """Every 2 iterations below 300, then every 100 (the paper's logs)."""
    return np.concatenate([np.arange(2, 300, 2), np.arange(300, last + 1, 100)]).astype(float)


def _step(log_time, at, width):
    return 0.5 * (1 + np.tanh((log_time - np.log10(at)) / width))


def _ramp(log_time, start, top, end, bottom):
    """Straight line in log-log from (start, top) to (end, bottom), flat after."""
    fraction = np.clip((log_time - np.log10(start)) / (np.log10(end) - np.log10(start)), 0, 1)
    return top + (bottom - top) * fraction


# Shapes read from paper.md sections 3, 4 and 6 (log10 SNR trends); truth = (fitting->diffusion,
# ->equilibrium), where the constructed transitions sit.
SHAPES = {
    # plateau ~50, drop at ~130, low noisy diffusion, jump to ~5 at 65k, collapse after 2e5 (AC vanilla).
    "plateau_drop": (lambda lt: 1.7 - 3.2 * _step(lt, 130, 0.06) + 2.2 * _step(lt, 65_000, 0.05)
                     - 2.5 * _step(lt, 200_000, 0.08), (150, 65_000), "paper"),
    # data-term-only start at 1e6, steep ramp to O(1) by 130, slow dip, DE at 11k (AC RBA).
    "ramp_rba": (lambda lt: _ramp(lt, 2, 6.0, 130, -0.4) - 0.9 * _step(lt, 1000, 0.1)
                 + 2.0 * _step(lt, 11_000, 0.04) - 3.5 * _step(lt, 130_000, 0.05), (150, 11_100), "paper"),
    # fitting ~20 to 170, plateau 0.1 with a deep dip at 3k, jump to ~3 at 19k (HM vanilla).
    "deep_dip": (lambda lt: 1.3 - 2.3 * _step(lt, 170, 0.06) + 1.5 * _step(lt, 19_000, 0.05)
                 - 2.0 * _step(lt, 180_000, 0.1) - 1.5 * np.exp(-(((lt - np.log10(3000)) / 0.2) ** 2)),
                 (180, 19_000), "paper"),
    # below SNR 0.1 before iteration 100, equilibrium at 1k (HM RBA).
    "early_equilibrium": (lambda lt: _ramp(lt, 2, 5.0, 80, -1.6) + 2.2 * _step(lt, 950, 0.05)
                          - 2.0 * _step(lt, 150_000, 0.1), (70, 1000), "paper"),
    # 1e4 until ~1e3, diffusion at SNR ~3 (order ~0.95), bump to ~30 at 55k; logged every 95 (cerebral).
    "high_diffusion": (lambda lt: 4.0 - 3.7 * _step(lt, 1300, 0.05) + 1.0 * _step(lt, 55_000, 0.04)
                       - 0.3 * _step(lt, 80_000, 0.05), (1100, 57_000), "every95"),
}


def synthetic_run(shape: str, seed: int, noise: float = 1.0):
    trend_of, truth, cadence = SHAPES[shape]
    steps = np.arange(95, 125_001, 95).astype(float) if cadence == "every95" else paper_cadence()
    rng = np.random.default_rng(seed)
    trend = trend_of(np.log10(steps))
    # Multiplicative noise as in the logs: a jitter plus one-record excursions of 1-2.5 decades towards O(1).
    log_snr = trend + noise * rng.normal(0, 0.25, steps.size)
    excursion = rng.random(steps.size) < np.where(trend > 1.5, 0.1, 0.25) * noise
    log_snr += excursion * np.where(trend > 0, -1, 1) * rng.uniform(1, 2.5, steps.size)
    return steps, 10.0**log_snr, truth


def _pair(phases):
    return phases.diffusion_start, phases.equilibrium_start


def within(found, truth, factor):
    return found is not None and truth / factor <= found <= truth * factor


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_transitions_offline(shape, seed):
    steps, snr, (diffusion, equilibrium) = synthetic_run(shape, seed)
    phases = detect_phases(steps, snr)
    assert within(phases.diffusion_start, diffusion, 2.0), phases.reasons
    assert within(phases.equilibrium_start, equilibrium, 1.5), phases.reasons


@pytest.mark.parametrize("shape", ["plateau_drop", "ramp_rba", "early_equilibrium"])
def test_synthetic_transitions_online(shape):
    steps, snr, (diffusion, equilibrium) = synthetic_run(shape, 2)
    phases = detect_phases(steps, snr, online=True)
    assert phases.online
    assert within(phases.diffusion_start, diffusion, 2.0), phases.reasons
    assert within(phases.equilibrium_start, equilibrium, 1.5), phases.reasons
    # It can only know once the persistence window (x2) has been recorded, and it reports where it started.
    assert phases.equilibrium_confirmed_at >= 2 * phases.equilibrium_from_snr
    assert phases.diffusion_confirmed_at > phases.diffusion_start


def test_online_never_uses_the_future():
    steps, snr, _ = synthetic_run("ramp_rba", 3)
    full = detect_phases_online(steps, snr)
    assert full.equilibrium_start is not None
    # Cut the record right after the confirmation: the same answer.
    cut = steps <= full.equilibrium_confirmed_at
    truncated = detect_phases_online(steps[cut], snr[cut])
    assert _pair(truncated) == _pair(full)
    # Replace everything after the confirmation by garbage: still the same answer.
    scrambled = snr.copy()
    scrambled[~cut] = 10.0 ** np.random.default_rng(0).uniform(-4, 4, (~cut).sum())
    again = detect_phases_online(steps, scrambled)
    assert _pair(again) == _pair(full)
    # One record before the confirmation, the equilibrium is not known yet.
    early = steps < full.equilibrium_confirmed_at
    assert detect_phases_online(steps[early], snr[early]).equilibrium_start is None


def test_online_answers_never_change_once_given():
    steps, snr, _ = synthetic_run("plateau_drop", 4)
    answers = set()
    for end in np.linspace(200, steps.size, 12).astype(int):
        phases = detect_phases_online(steps[:end], snr[:end])
        if phases.diffusion_start is not None:
            answers.add(("diffusion", phases.diffusion_start))
        if phases.equilibrium_start is not None:
            answers.add(("equilibrium", phases.equilibrium_start))
    assert len({kind for kind, _ in answers}) == len(answers)  # one value per transition, ever


def test_offline_and_online_agree_when_the_record_is_long_enough():
    steps, snr, _ = synthetic_run("deep_dip", 5)
    offline, online = detect_phases(steps, snr), detect_phases(steps, snr, online=True)
    assert _pair(offline) == _pair(online)


def test_flat_or_monotone_curves_have_no_transition():
    steps = paper_cadence(50_000)
    rng = np.random.default_rng(0)
    flat = detect_phases(steps, 10.0 ** rng.normal(0.5, 0.2, steps.size))
    assert (flat.diffusion_start, flat.equilibrium_start) == (None, None)
    # A drop into diffusion that never recovers: a diffusion start and no equilibrium.
    log_snr = 1.7 - 3.0 * _step(np.log10(steps), 150, 0.05) + rng.normal(0, 0.2, steps.size)
    stuck = detect_phases(steps, 10.0**log_snr)
    assert within(stuck.diffusion_start, 150, 2.0)
    assert stuck.equilibrium_start is None
    # A burst of alignment that does not persist is not an equilibrium.
    burst = log_snr + 2.5 * np.exp(-(((np.log10(steps) - np.log10(5000)) / 0.05) ** 2))
    assert detect_phases(steps, 10.0**burst).equilibrium_start is None


def test_error_refines_the_equilibrium_start():
    steps, snr, (_, equilibrium) = synthetic_run("plateau_drop", 6)
    error_steps = np.arange(0, 300_001, 100.0)
    # The error falls 20x from 0.99, starting at 80k: later than the SNR jump (65k), as in AC vanilla.
    error = 0.99 - 0.94 * _step(np.log10(np.maximum(error_steps, 1)), 85_000, 0.03)
    snr_only = detect_phases(steps, snr)
    both = detect_phases(steps, snr, error_iterations=error_steps, error=error)
    assert both.error_drop is not None and 80_000 <= both.error_drop <= 90_000
    # Against the constructed truths: the SNR jumps at 65k, the error falls at 85k (its sharpest descent); the
    # reported start lies between them, near their geometric mean (74k), and after the SNR-only estimate.
    assert within(snr_only.equilibrium_start, equilibrium, 1.2)
    assert within(both.equilibrium_start, np.sqrt(65_000 * 85_000), 1.15)
    assert snr_only.equilibrium_start < both.equilibrium_start < 85_000
    # An error that falls far from any SNR re-alignment is not used.
    far = 0.99 - 0.94 * _step(np.log10(np.maximum(error_steps, 1)), 250_000, 0.03)
    unrelated = detect_phases(steps, snr, error_iterations=error_steps, error=far)
    assert unrelated.error_drop is None and unrelated.equilibrium_start == snr_only.equilibrium_start


def test_inputs_equivalent_and_nan_rows_dropped():
    steps, snr, _ = synthetic_run("plateau_drop", 7)
    reference = detect_phases(steps, snr)
    # mean/std norms (with unlogged nan rows interleaved), order, and shuffled rows: the same records.
    std = np.full(steps.size, 0.3)
    padded_steps = np.concatenate([steps, steps + 1])
    padded_mean = np.concatenate([snr * std, np.full(steps.size, np.nan)])
    padded_std = np.concatenate([std, np.full(steps.size, np.nan)])
    shuffle = np.random.default_rng(0).permutation(padded_steps.size)
    from_norms = detect_phases(
        padded_steps[shuffle], mean_norm=padded_mean[shuffle], std_norm=padded_std[shuffle]
    )
    order = snr / np.sqrt(1 + snr**2)
    from_order = detect_phases(steps, order=order)
    for other in (from_norms, from_order):
        assert _pair(other) == _pair(reference)


def test_json_ready_summary():
    steps, snr, _ = synthetic_run("ramp_rba", 8)
    summary = detect_phases(steps, snr).as_dict()
    assert isinstance(summary["diffusion_start"], int) and isinstance(summary["reasons"], list)
    assert "smoothed_log_snr" not in summary


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({}, ValueError),
        ({"mean_norm": [1.0, 2.0]}, ValueError),
        ({"snr": [1.0]}, ValueError),
        ({"snr": [1.0, -1.0]}, ValueError),
        ({"order": [0.5, 1.5]}, ValueError),
        ({"snr": [1.0, 2.0], "error": [0.5, 0.4]}, ValueError),
        ({"snr": [1.0, 2.0], "window_size": 3}, TypeError),
        ({"snr": [1.0, 2.0], "persistence": 0.5}, ValueError),
    ],
)
def test_bad_input(kwargs, error):
    with pytest.raises(error):
        detect_phases([1, 2], **kwargs)


def test_tuning_validates():
    with pytest.raises(ValueError, match="landing"):
        PhaseTuning(landing=1.5)


def test_smoothers():
    # The median ignores a one-record spike; the paper's average of norms does not.
    steps = np.arange(1.0, 101.0)
    snr = np.ones(100)
    snr[50] = 1e6
    _, smoothed = smooth_log_snr(steps, snr)
    assert np.allclose(smoothed, 0.0)
    _, paper = paper_smoothed_snr(steps, snr, np.ones(100), window=10)
    assert paper.max() > 1e4
    # Paper smoothing by hand: a centred moving average of each norm, padded with the end values.
    mean_norm = np.arange(1.0, 7.0)
    std_norm = np.full(6, 2.0)
    _, ratio = paper_smoothed_snr(np.arange(6.0), mean_norm, std_norm, window=2)
    padded = np.concatenate([[1.0, 1.0], mean_norm, [6.0, 6.0]])
    hand = np.convolve(padded, [0.5, 0.5], mode="same")[2:-2] / 2.0
    np.testing.assert_allclose(ratio, hand)


# ----- the authors' logs -----

HAND_LINES = {"allen_cahn_vanilla": (150, 91_700), "allen_cahn_rba": (150, 11_100)}


def _load(shared_data, run):
    folder = shared_data / "paper_logs"
    if not (folder / f"{run}_gradients.csv").is_file():
        pytest.skip(f"paper log {run} not found in {folder}")
    return read_gradient_log(folder / f"{run}_gradients.csv"), read_error_log(folder / f"{run}_errors.csv")


@pytest.mark.parametrize("run", sorted(HAND_LINES))
@pytest.mark.parametrize("online", [False, True])
@pytest.mark.parametrize("use_error", [False, True])
def test_allen_cahn_hand_lines(shared_data, run, online, use_error):
    gradients, errors = _load(shared_data, run)
    kwargs = {"error_iterations": errors["iteration"], "error": errors["rel_l2"]} if use_error else {}
    phases = detect_phases(
        gradients["iteration"], mean_norm=gradients["grad_mean_norm"], std_norm=gradients["grad_std_norm"],
        online=online, **kwargs,
    )
    diffusion, equilibrium = HAND_LINES[run]
    assert within(phases.diffusion_start, diffusion, 2.0), phases.reasons
    assert within(phases.equilibrium_start, equilibrium, 1.5), phases.reasons


CAVITY_HAND_LINES = {"cavity_vanilla": (150, 20_000), "cavity_rba": (150, 20_000)}


@pytest.mark.parametrize("run", sorted(CAVITY_HAND_LINES))
def test_cavity_logs_have_no_equilibrium_jump(shared_data, run):
    # The cavity SNR never falls below O(1) and never jumps back (paper.md: weak markers): a drop is found,
    # no persistent re-alignment.
    gradients, _ = _load(shared_data, run)
    phases = detect_phases(
        gradients["iteration"], mean_norm=gradients["grad_mean_norm"], std_norm=gradients["grad_std_norm"]
    )
    assert phases.diffusion_start is not None and phases.equilibrium_start is None


@pytest.mark.parametrize("run", [
    "cavity_vanilla",
    pytest.param("cavity_rba", marks=pytest.mark.xfail(
        strict=True, reason="the RBA cavity's SNR stays at 100-1000 until ~700 (its data term dominates): the "
                            "detector places the drop at 1,900, not at the authors' 150")),
])
def test_cavity_diffusion_start_against_the_hand_line(shared_data, run):
    gradients, _ = _load(shared_data, run)
    phases = detect_phases(
        gradients["iteration"], mean_norm=gradients["grad_mean_norm"], std_norm=gradients["grad_std_norm"]
    )
    assert within(phases.diffusion_start, CAVITY_HAND_LINES[run][0], 2.0), phases.reasons


def _low_realignment(seed: int):
    """Diffusion at SNR ~0.01 from 150, re-alignment at 20k to SNR ~1.3 (order ~0.8: below the order-0.9 bar,
    2.1 decades above the floor), the short-run shape of pinnkit's Helmholtz RBA runs."""
    steps = paper_cadence(80_000)
    rng = np.random.default_rng(seed)
    log_time = np.log10(steps)
    log_snr = 1.7 - 3.7 * _step(log_time, 150, 0.05) + 2.1 * _step(log_time, 20_000, 0.04)
    return steps, 10.0 ** (log_snr + rng.normal(0, 0.15, steps.size))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_low_realignment_counts_only_with_a_coincident_error_fall(seed):
    steps, snr = _low_realignment(seed)
    error_steps = np.arange(100, 80_001, 100.0)
    falls_at = lambda at: 0.9 - 0.85 * _step(np.log10(error_steps), at, 0.03)  # noqa: E731
    # SNR alone: an order of 0.8 is not the paper's equilibrium (order 0.9).
    assert detect_phases(steps, snr).equilibrium_start is None
    # With the error falling 18x at 25k (within x3 of the re-alignment): the transition, from both measurements.
    both = detect_phases(steps, snr, error_iterations=error_steps, error=falls_at(25_000))
    assert within(both.equilibrium_from_snr, 20_000, 1.3)
    assert within(both.equilibrium_start, np.sqrt(20_000 * 25_000), 1.3)
    assert any("sharp fall of the test error" in reason for reason in both.reasons)
    # An error fall far from it (x3.5 later) corroborates nothing.
    assert detect_phases(steps, snr, error_iterations=error_steps, error=falls_at(70_000)).equilibrium_start is None
    # Online, the answer once given never changes, and equals the offline one on the whole record.
    online = detect_phases(steps, snr, error_iterations=error_steps, error=falls_at(25_000), online=True)
    assert online.equilibrium_start == both.equilibrium_start
    cut = steps <= online.equilibrium_confirmed_at
    keep = error_steps <= online.equilibrium_confirmed_at
    early = detect_phases(steps[cut], snr[cut], error_iterations=error_steps[keep], error=falls_at(25_000)[keep],
                          online=True)
    assert early.equilibrium_start == online.equilibrium_start
