"""The numbers of docs/diagnostics.md's "a real pinnkit run": what ``docs/make_run_figures.py`` measured.

``python docs/make_run_figures.py`` trains the run, draws its figures and writes ``benchmarks/results/run_figures.json``
(with :func:`facts` computed here); ``docs/render.py`` renders the page's blocks from it with the ``markdown_*``
functions below. This file trains nothing itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pinnkit import columns

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# the script that trains the run and the library it trains and detects with.
MEASURES = ("docs/make_run_figures.py", "src/pinnkit/engine", "src/pinnkit/experiment.py", "src/pinnkit/nn.py",
            "src/pinnkit/derivatives.py", "src/pinnkit/problems", "src/pinnkit/reference",
            "src/pinnkit/optimizers.py", "src/pinnkit/plans.py", "src/pinnkit/quasi_newton.py",
            "src/pinnkit/scaling_rules.py", "src/pinnkit/optimizer_registry.py", "src/pinnkit/curvature.py",
            "src/pinnkit/reweight", "src/pinnkit/sampling.py", "src/pinnkit/diagnostics", "src/pinnkit/history.py")

ORDER = lambda log_snr: float(1 / np.sqrt(1 + 10 ** (-2 * log_snr)))  # noqa: E731




def _row(steps: np.ndarray, step: float | None) -> int | None:
    return None if step is None else int(np.argmin(np.abs(steps - step)))


def facts(history, phases, layers: list[str]) -> dict[str, Any]:
    """What the page says about the run, from its history and the detection (``phases``, the detector)."""
    steps = np.asarray(history[columns.STEP], float)
    error = np.asarray(history[columns.REL_L2], float)
    homogeneity = np.asarray(history[columns.HOMOGENEITY], float)
    smoothed = np.asarray(phases.smoothed_log_snr, float)
    smoothed_steps = np.asarray(phases.iterations, float)
    out: dict[str, Any] = {"rows": int(steps.size), "error_initial": float(error[0]), "error_final": float(error[-1]),
                           "error_best": float(np.nanmin(error))}
    out["smoothed_snr_first"] = float(10 ** smoothed[0])
    diffusion, equilibrium = phases.diffusion_start, phases.equilibrium_start
    if diffusion is not None:
        start = _row(smoothed_steps, diffusion)
        until = _row(smoothed_steps, equilibrium) if equilibrium is not None else smoothed.size - 1
        floor = start + int(np.argmin(smoothed[start : until + 1]))
        out["smoothed_snr_at_diffusion"] = float(10 ** smoothed[start])
        out["smoothed_snr_floor"] = float(10 ** smoothed[floor])
        out["floor_step"] = int(smoothed_steps[floor])
        row = _row(steps, diffusion)
        out["homogeneity_at_diffusion"] = float(homogeneity[row])
        out["error_at_diffusion"] = float(error[row])
    if equilibrium is not None:
        row = _row(steps, equilibrium)
        out["error_at_equilibrium"] = float(error[row])
        after = smoothed[_row(smoothed_steps, equilibrium):]
        out["smoothed_snr_after_equilibrium_median"] = float(10 ** np.median(after))
        out["smoothed_order_after_equilibrium"] = [ORDER(np.percentile(after, 10)), ORDER(np.percentile(after, 90))]
    out["homogeneity_final"] = float(homogeneity[-1])
    out["homogeneity_max"] = float(np.nanmax(homogeneity))
    information = {}
    for layer in layers:
        saturation = np.asarray(history[f"saturation[{layer}]"], float)
        entropy = np.asarray(history[f"entropy[{layer}]"], float)
        rows = np.isfinite(saturation)
        information[layer] = {
            "saturation_first": float(saturation[rows][0]), "saturation_max": float(saturation[rows].max()),
            "saturation_final": float(saturation[rows][-1]), "entropy_first": float(entropy[rows][0]),
            "entropy_min": float(entropy[rows].min()), "entropy_final": float(entropy[rows][-1])}
    out["information"] = information
    return out


def _step(value) -> str:
    return "none" if value is None else f"{value:,}"


def markdown_setup(payload: dict) -> str:
    """How the run was set up and what it cost."""
    run, machine = payload["run"], payload["machine"]
    config = payload["config"]
    log, probes = config["log"], config["probes"]
    return (f"`{payload['command']}` ({payload['date']}, {machine['cores']} cores of a {machine['cpu']}, load average "
            f"{machine['load_average_at_start'][0]:.1f} at the start; jax {payload['versions']['jax']}) trains "
            f"{config['problem']} ({', '.join(f'{k} = {v:g}' for k, v in payload['problem_params'].items())}) with a "
            f"{config['depth']}x{config['width']} {config['activation']} MLP on {config['points']} "
            f"{config['sampling'].upper()} points, {config['optimizer']} ({config['schedule']} schedule) + "
            f"{config['reweight'].upper()}, {config['steps']} steps, recording a history row every "
            f"{log['dense_every']} steps below {log['dense_until']} and every {log['every']} after "
            f"({run['rows']} rows), each with the SNR over B = {probes['snr_batches']} batches, and the entropy and "
            f"saturation of each hidden layer every {probes['information_every']} rows. Training took "
            f"{run[columns.WALL_TIME]:.0f} s "
            f"(compilation {run['compile_time_s']:.0f} s); final relative L2 **{run[columns.REL_L2]:.3g}** (best "
            f"{run['best_rel_l2']:.3g}).")


def markdown_detections(payload: dict) -> str:
    """What the detector reports on the run, and what the former relaxed setting reported."""
    lines = ["| quantity | the detector (`pinnkit train`/`compare`/`detect`) | former relaxed setting (order 0.6, "
             "rise 1.0) |", "|---|---|---|"]
    tuned, former = payload["detections"]["detector"], payload["detections"]["former_relaxed"]
    for key, label in (("diffusion_start", "fitting -> diffusion"), ("error_drop", "sharp fall of the test error"),
                       ("equilibrium_from_snr", "equilibrium from the SNR"),
                       ("equilibrium_start", "diffusion -> equilibrium (SNR and error combined)")):
        lines.append(f"| {label} | **{_step(tuned[key])}** | {_step(former[key])} |")
    online = payload["detections"]["detector_online"]
    cells = []
    for name in ("diffusion", "equilibrium"):
        start, confirmed = online[f"{name}_start"], online[f"{name}_confirmed_at"]
        cells.append(f"{name} {_step(start)}, confirmed at step {_step(confirmed)}" if start is not None
                     else f"{name} not confirmed by the end of the run")
    lines.append("| online (what a monitor knew during the run) | " + "; ".join(cells) + " | |")
    lines += ["", "The detector's account (offline): " + "; ".join(tuned["reasons"]) + "."]
    return "\n".join(lines)


def markdown_facts(payload: dict) -> str:
    """The run's phases in numbers."""
    f = payload["facts"]
    tuned = payload["detections"]["detector"]
    parts = [f"The smoothed SNR starts at {f['smoothed_snr_first']:.3g}"]
    if "smoothed_snr_floor" in f:
        parts.append(f"is at {f['smoothed_snr_at_diffusion']:.3g} when diffusion starts (step "
                     f"{tuned['diffusion_start']:,}; test error {f['error_at_diffusion']:.3g}, initially "
                     f"{f['error_initial']:.3g}) and reaches its floor {f['smoothed_snr_floor']:.3g} at step "
                     f"{f['floor_step']:,}")
    text = ", ".join(parts) + "."
    if "error_at_equilibrium" in f:
        low, high = f["smoothed_order_after_equilibrium"]
        text += (f" From the equilibrium start (step {tuned['equilibrium_start']:,}, error "
                 f"{f['error_at_equilibrium']:.3g}) the smoothed SNR has a median of "
                 f"{f['smoothed_snr_after_equilibrium_median']:.3g} (order "
                 f"{low:.2f}-{high:.2f}, 10th-90th percentile) and the error falls to {f['error_final']:.3g}.")
    if "homogeneity_at_diffusion" in f:
        text += (f" The residual homogeneity (of the RBA weights) is {f['homogeneity_at_diffusion']:.2f} at the "
                 f"diffusion start, at most {f['homogeneity_max']:.2f}, and {f['homogeneity_final']:.2f} at the end.")
    lines = [text, "", "| hidden layer | saturation [%]: first row, max, last | binned entropy [bits]: first row, "
             "min, last |", "|---|---|---|"]
    for layer, values in f["information"].items():
        lines.append(f"| {layer} | {values['saturation_first']:.1f}, {values['saturation_max']:.1f}, "
                     f"{values['saturation_final']:.1f} | {values['entropy_first']:.2f}, {values['entropy_min']:.2f}, "
                     f"{values['entropy_final']:.2f} |")
    return "\n".join(lines)


def markdown_summary(payload: dict) -> str:
    """One sentence for a page that points to the run (e.g. README.md)."""
    tuned, run = payload["detections"]["detector"], payload["run"]
    config = payload["config"]
    return (f"With {config['points']} points and {config['steps']} steps the same configuration enters equilibrium at "
            f"step {_step(tuned['equilibrium_start'])} (SNR alone: {_step(tuned['equilibrium_from_snr'])}) and ends at "
            f"{run[columns.REL_L2]:.3g} ([docs/diagnostics.md](docs/diagnostics.md)).")


def markdown(payload: dict) -> str:
    return markdown_setup(payload)
