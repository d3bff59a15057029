"""The phase detector on the authors' training logs, against their hand-placed lines, and on synthetic runs.

1. **Authors' logs** (``paper_logs/`` of the shared data: Allen-Cahn and cavity, vanilla and RBA): the detected
   fitting -> diffusion and diffusion -> equilibrium iterations, offline and online (with the iteration at which
   the online monitor confirmed each), from the SNR alone and with the test-error file, against the lines the
   authors placed by hand (read from ``paper_logs/README.md``): the ratio detected / hand and whether it lies
   within a factor ``DIFFUSION_TOLERANCE`` (2) for the first transition and ``EQUILIBRIUM_TOLERANCE`` (1.5) for
   the second. Plus a few facts of each log the docs discuss, all computed by pinnkit (the smoothed SNR's floor
   after the drop and how far it recovers, the paper's moving-average smoothing on Allen-Cahn RBA). The JSON
   holds only what pinnkit computes: neither the hand-placed lines nor values copied from the logs (the logs are
   external data, read from the shared data folder whenever the script runs).
2. **Synthetic calibration**: the synthetic shapes of ``tests/test_diagnostics_phases.py`` (imported from there,
   so the two stay the same) over ``--seeds`` seeds each, at the nominal noise and at ``--noise`` times it,
   offline and online: how many runs land within the tolerances.

Both are done for every detector configuration in ``configurations()``: the detector every reader uses
(``pinnkit.diagnostics.transitions.DETECTOR``, the defaults of ``PhaseTuning``: ``pinnkit detect``, ``train``,
``compare``, plan switching) and, for comparison, the relaxed configuration pinnkit's runs used before (order 0.6,
rise 1.0, without corroboration). They are read from the library when the script runs and written into the JSON,
so after a change of the detector the script is simply rerun.

    python benchmarks/paper_logs.py --json [--data DIR] [--seeds 12] [--noise 1.5] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import re
import time
from pathlib import Path

import numpy as np
from _machine import log, stamp, write

from pinnkit import columns
from pinnkit.diagnostics import (
    PhaseTuning,
    detect_phases,
    paper_smoothed_snr,
    read_error_log,
    read_gradient_log,
    smooth_log_snr,
)
from pinnkit.diagnostics.transitions import DETECTOR

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# the detector, and the synthetic shapes it imports from the tests.
MEASURES = ("src/pinnkit/diagnostics", "src/pinnkit/history.py", "tests/test_diagnostics_phases.py")

ROOT = Path(__file__).resolve().parents[1]
DIFFUSION_TOLERANCE = 2.0
EQUILIBRIUM_TOLERANCE = 1.5
# The relaxed setting pinnkit's own runs used before one detector served every reader (kept for comparison).
FORMER_RELAXED = {"equilibrium_order": 0.6, "min_rise": 1.0}
RUNS = ("allen_cahn_vanilla", "allen_cahn_rba", "cavity_vanilla", "cavity_rba")


def default_data() -> Path:
    override = os.environ.get("PINNKIT_SHARED_DATA")
    return Path(override) if override else ROOT.parent / "shared" / "data"


def configurations() -> dict[str, dict]:
    """The detector configurations to measure: name -> (what uses it, overrides of PhaseTuning)."""
    return {
        "defaults": {"used_by": "the detector (`DETECTOR`): `pinnkit detect`, `train`, `compare`, plan switching",
                     "overrides": {name: value for name, value in dataclasses.asdict(DETECTOR).items()
                                   if value != getattr(PhaseTuning(), name)}},
        "pinnkit_runs": {"used_by": "former relaxed setting for pinnkit's runs (no longer used)",
                         "overrides": dict(FORMER_RELAXED)},
    }


def hand_lines(folder: Path) -> dict[str, tuple[int, int]]:
    """The authors' hand-placed lines, from the table in paper_logs/README.md (``| run | 150 | 91 700 |``)."""
    lines = {}
    for line in (folder / "README.md").read_text().splitlines():
        match = re.match(r"^\|\s*([a-z_]+)\s*\|\s*([\d ]+)\s*\|\s*([\d ]+)\s*\|\s*$", line)
        if match and match.group(1) in RUNS:
            lines[match.group(1)] = (int(match.group(2).replace(" ", "")), int(match.group(3).replace(" ", "")))
    missing = [run for run in RUNS if run not in lines]
    if missing:
        raise SystemExit(f"{folder / 'README.md'}: no hand-placed lines found for {missing}")
    return lines


def within(found, truth: float, factor: float) -> bool:
    return found is not None and truth / factor <= found <= truth * factor


def _ratio(found, truth: float):
    return None if found is None else found / truth


# ----- the authors' logs -----


FACT_ITERATIONS = (150, 700, 2_000, 20_000)
FLOOR_UNTIL = 100_000


def log_facts(gradients: dict, phases) -> dict:
    """Facts of one log the docs discuss, computed with the detector's own smoothing (default window): the smoothed
    SNR at a few iterations; its floor between the detected diffusion start and ``FLOOR_UNTIL`` and the largest
    rise above that floor after it (up to ``FLOOR_UNTIL``)."""
    steps, smoothed = smooth_log_snr(gradients[columns.ITERATION],
                                     gradients[columns.GRAD_MEAN_NORM] / gradients[columns.GRAD_STD_NORM])
    order = lambda log_snr: float(1 / np.sqrt(1 + 10 ** (-2 * log_snr)))  # noqa: E731
    facts: dict = {"smoothed_snr_at": {str(k): float(10 ** smoothed[np.argmin(np.abs(steps - k))])
                                       for k in FACT_ITERATIONS}}
    start = phases.diffusion_start
    if start is not None:
        window = np.flatnonzero((steps >= start) & (steps <= FLOOR_UNTIL))
        low = int(window[np.argmin(smoothed[window])])
        high = low + int(np.argmax(smoothed[low : window[-1] + 1]))
        facts["floor"] = {"until": FLOOR_UNTIL, "snr": float(10 ** smoothed[low]), "order": order(smoothed[low]),
                          "iteration": int(steps[low]), "min_order_in_window": order(smoothed[window].min()),
                          "rise_decades": float(smoothed[high] - smoothed[low]),
                          "rise_to_snr": float(10 ** smoothed[high]), "rise_to_order": order(smoothed[high]),
                          "rise_at": int(steps[high])}
    return facts


def paper_smoothing_check(gradients: dict, low: int = 300, high: int = 10_000) -> dict:
    """The paper's smoothing (moving averages of the norms, then their ratio) against the raw records between
    ``low`` and ``high`` iterations."""
    steps, smoothed = paper_smoothed_snr(gradients[columns.ITERATION], gradients[columns.GRAD_MEAN_NORM],
                                         gradients[columns.GRAD_STD_NORM], window=60)
    raw_steps = gradients[columns.ITERATION]
    raw = gradients[columns.GRAD_MEAN_NORM] / gradients[columns.GRAD_STD_NORM]
    inside = (steps >= low) & (steps <= high)
    raw_inside = (raw_steps >= low) & (raw_steps <= high) & np.isfinite(raw)
    return {"from": low, "to": high, "window": 60, "paper_smoothed_median": float(np.median(smoothed[inside])),
            "raw_quartiles": [float(q) for q in np.percentile(raw[raw_inside], [25, 50, 75])]}


def authors_logs(folder: Path, configs: dict) -> dict:
    hands = hand_lines(folder)
    out: dict = {"runs": {}}
    for run in RUNS:
        gradient_path, error_path = folder / f"{run}_gradients.csv", folder / f"{run}_errors.csv"
        if not gradient_path.is_file():
            out["runs"][run] = {"skipped": f"{gradient_path} not found"}
            continue
        gradients = read_gradient_log(gradient_path)
        errors = read_error_log(error_path) if error_path.is_file() else None
        hand_diffusion, hand_equilibrium = hands[run]
        entry: dict = {"detections": []}
        if errors is None:
            entry["error_file"] = f"{error_path} not found"
        for config_name, config in configs.items():
            for online in (False, True):
                for use_error in (False, True) if errors is not None else (False,):
                    kwargs = dict(config["overrides"])
                    if use_error:
                        kwargs.update(error_iterations=errors[columns.ITERATION], error=errors[columns.REL_L2])
                    phases = detect_phases(gradients[columns.ITERATION], mean_norm=gradients[columns.GRAD_MEAN_NORM],
                                           std_norm=gradients[columns.GRAD_STD_NORM], online=online, **kwargs)
                    summary = phases.as_dict()
                    entry["detections"].append({
                        "configuration": config_name, "online": online, "error_used": use_error,
                        **{key: summary[key] for key in ("diffusion_start", "equilibrium_start", "equilibrium_from_snr",
                                                         "error_drop", "diffusion_confirmed_at",
                                                         "equilibrium_confirmed_at", "diffusion_drop",
                                                         "equilibrium_rise", "reasons")},
                        "diffusion_ratio": _ratio(phases.diffusion_start, hand_diffusion),
                        "equilibrium_ratio": _ratio(phases.equilibrium_start, hand_equilibrium),
                        "diffusion_within": within(phases.diffusion_start, hand_diffusion, DIFFUSION_TOLERANCE),
                        "equilibrium_within": within(phases.equilibrium_start, hand_equilibrium,
                                                     EQUILIBRIUM_TOLERANCE),
                    })
        default_offline = detect_phases(gradients[columns.ITERATION], mean_norm=gradients[columns.GRAD_MEAN_NORM],
                                        std_norm=gradients[columns.GRAD_STD_NORM])
        entry["facts"] = log_facts(gradients, default_offline)
        if run == "allen_cahn_rba":
            entry["paper_smoothing"] = paper_smoothing_check(gradients)
        out["runs"][run] = entry
        log(f"{run}: done")
    return out


# ----- synthetic calibration -----


def load_synthetic():
    """The synthetic shapes of tests/test_diagnostics_phases.py (``SHAPES``, ``synthetic_run``)."""
    path = ROOT / "tests" / "test_diagnostics_phases.py"
    spec = importlib.util.spec_from_file_location("_synthetic_phase_shapes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic(configs: dict, seeds: int, noises: list[float]) -> dict:
    shapes = load_synthetic()
    out: dict = {"source": "tests/test_diagnostics_phases.py", "seeds_per_shape": seeds, "noise_levels": noises,
                 "shapes": {}, "totals": []}
    for shape in sorted(shapes.SHAPES):
        rows = []
        for noise in noises:
            for config_name, config in configs.items():
                for online in (False, True):
                    diffusion_ok = equilibrium_ok = both_ok = 0
                    for seed in range(seeds):
                        steps, snr, (diffusion, equilibrium) = shapes.synthetic_run(shape, seed, noise)
                        phases = detect_phases(steps, snr, online=online, **config["overrides"])
                        first = within(phases.diffusion_start, diffusion, DIFFUSION_TOLERANCE)
                        second = within(phases.equilibrium_start, equilibrium, EQUILIBRIUM_TOLERANCE)
                        diffusion_ok += first
                        equilibrium_ok += second
                        both_ok += first and second
                    rows.append({"noise": noise, "configuration": config_name, "online": online,
                                 "diffusion_within": diffusion_ok, "equilibrium_within": equilibrium_ok,
                                 "both_within": both_ok, "runs": seeds})
        truth = shapes.SHAPES[shape][1]
        out["shapes"][shape] = {"truth": list(truth), "cadence": shapes.SHAPES[shape][2], "results": rows}
        log(f"synthetic {shape}: done")
    for noise in noises:
        for config_name in configs:
            for online in (False, True):
                matching = [row for entry in out["shapes"].values() for row in entry["results"]
                            if row["noise"] == noise and row["configuration"] == config_name
                            and row["online"] == online]
                out["totals"].append({
                    "noise": noise, "configuration": config_name, "online": online,
                    "runs": sum(row["runs"] for row in matching),
                    **{key: sum(row[key] for row in matching)
                       for key in ("diffusion_within", "equilibrium_within", "both_within")}})
    return out


def measure(args) -> dict:
    configs = configurations()
    resolved = {name: {**config, "tuning": dataclasses.asdict(PhaseTuning(**config["overrides"]))}
                for name, config in configs.items()}
    out: dict = {"configurations": resolved,
                 "tolerances": {"diffusion": DIFFUSION_TOLERANCE, "equilibrium": EQUILIBRIUM_TOLERANCE}}
    folder = Path(args.data) / "paper_logs"
    if (folder / "README.md").is_file():
        out["authors_logs"] = authors_logs(folder, configs)
    else:
        out["authors_logs"] = {"skipped": f"{folder} not found (pass --data or set PINNKIT_SHARED_DATA)"}
    start = time.perf_counter()
    out["synthetic"] = synthetic(configs, args.seeds, [1.0, args.noise])
    out["synthetic"]["seconds"] = time.perf_counter() - start
    return out


# ----- rendering -----


def _header(payload: dict) -> str:
    machine = payload["machine"]
    return (f"`{payload['command']}`, {payload['date']}, on {machine['cores']} cores of a {machine['cpu']}; pinnkit "
            f"{payload['versions'].get('pinnkit', '?')}, numpy {payload['versions'].get('numpy', '?')} (the detector "
            "is numpy code on the logged records: no timing enters its answers).")


def _found(value, ratio, ok) -> str:
    if value is None:
        return "none"
    return f"{value:,} ({ratio:.2f}{'' if ok else ', outside'})"


def markdown_tuning(payload: dict) -> str:
    """The detector's parameters in each configuration."""
    configs = payload["configurations"]
    names = list(configs)
    lines = ["| parameter | " + " | ".join(configs[name]["used_by"] for name in names) + " |",
             "|---|" + "---|" * len(names)]
    for field in configs[names[0]]["tuning"]:
        values = [configs[name]["tuning"][field] for name in names]
        cells = [f"**{value:g}**" if field in configs[name]["overrides"] else f"{value:g}"
                 for name, value in zip(names, values, strict=True)]
        lines.append(f"| `{field}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _detection_table(payload: dict, config: str) -> list[str]:
    logs = payload["authors_logs"]
    tolerance = payload["tolerances"]
    lines = ["| run | mode | error file | diffusion found (ratio to the hand line) | equilibrium found (ratio) | "
             "confirmed online at (diffusion / equilibrium) |", "|---|---|---|---|---|---|"]
    for run, entry in logs["runs"].items():
        if "skipped" in entry:
            lines.append(f"| {run} | skipped: {entry['skipped']} | | | | |")
            continue
        for row in entry["detections"]:
            if row["configuration"] != config:
                continue
            confirmed = "-"
            if row["online"]:
                confirmed = " / ".join("-" if value is None else f"{value:,}"
                                       for value in (row["diffusion_confirmed_at"], row["equilibrium_confirmed_at"]))
            lines.append(
                f"| {run} | {'online' if row['online'] else 'offline'} | {'yes' if row['error_used'] else 'no'} | "
                f"{_found(row['diffusion_start'], row['diffusion_ratio'], row['diffusion_within'])} | "
                f"{_found(row['equilibrium_start'], row['equilibrium_ratio'], row['equilibrium_within'])} | "
                f"{confirmed} |")
    lines += ["", "Ratio = detected / the authors' hand-placed line (the table in `paper_logs/README.md` of the "
                  f"shared data, read when the script runs); \"outside\" marks a ratio beyond the tolerances (a factor "
                  f"{tolerance['diffusion']:g} for the diffusion start, {tolerance['equilibrium']:g} for the "
                  f"equilibrium). {_header(payload)}"]
    return lines


def markdown_logs(payload: dict) -> str:
    """Detections on the authors' logs with the detector (what `pinnkit detect`, `train` and `compare` report)."""
    if "skipped" in payload["authors_logs"]:
        return f"Not measured: {payload['authors_logs']['skipped']}."
    return "\n".join(_detection_table(payload, "defaults"))


def markdown_logs_runs(payload: dict) -> str:
    """Detections on the authors' logs with the former relaxed setting (for comparison)."""
    if "skipped" in payload["authors_logs"]:
        return f"Not measured: {payload['authors_logs']['skipped']}."
    return "\n".join(_detection_table(payload, "pinnkit_runs"))


def markdown_facts(payload: dict) -> str:
    """What the logs show around the transitions (detector smoothing; diffusion start from the defaults)."""
    logs = payload["authors_logs"]
    if "skipped" in logs:
        return f"Not measured: {logs['skipped']}."
    until = next((entry["facts"]["floor"]["until"] for entry in logs["runs"].values()
                  if "floor" in entry.get("facts", {})), None)
    some = next(entry["facts"] for entry in logs["runs"].values() if "facts" in entry)
    at = list(some["smoothed_snr_at"])
    header = ["run", "smoothed SNR at " + " / ".join(f"{int(k):,}" for k in at),
              f"its floor from the diffusion start to {until:,} (order; iteration)",
              "largest rise above the floor after it (to SNR, order; iteration)"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for run, entry in logs["runs"].items():
        facts = entry.get("facts")
        if not facts:
            continue
        floor = facts.get("floor")
        floor_text = rise_text = "-"
        if floor:
            floor_text = f"{floor[columns.SNR]:.3g} ({floor[columns.ORDER]:.2g}; {floor[columns.ITERATION]:,})"
            rise_text = (f"{floor['rise_decades']:.2f} decades (to {floor['rise_to_snr']:.3g}, "
                         f"{floor['rise_to_order']:.2g}; {floor['rise_at']:,})")
        lines.append(f"| {run} | " + " / ".join(f"{value:.3g}" for value in facts["smoothed_snr_at"].values())
                     + f" | {floor_text} | {rise_text} |")
    check = logs["runs"].get("allen_cahn_rba", {}).get("paper_smoothing")
    if check:
        q1, q2, q3 = check["raw_quartiles"]
        lines += ["", f"On Allen-Cahn RBA between iterations {check['from']:,} and {check['to']:,}, the paper's "
                      f"smoothing (moving averages of the two norms over {check['window']} records, then their ratio) "
                      f"has a median of {check['paper_smoothed_median']:.3g}, while the raw records' quartiles are "
                      f"{q1:.3g}, {q2:.3g} and {q3:.3g}."]
    return "\n".join(lines)


def markdown_reasons(payload: dict) -> str:
    """The detector's own account of each decision (defaults, offline, with the error file)."""
    logs = payload["authors_logs"]
    if "skipped" in logs:
        return f"Not measured: {logs['skipped']}."
    lines = []
    for run, entry in logs["runs"].items():
        row = next((row for row in entry.get("detections", []) if row["configuration"] == "defaults"
                    and not row["online"] and row["error_used"]), None)
        if row is not None:
            lines.append(f"- **{run}**: " + "; ".join(row["reasons"]) + ".")
    return "\n".join(lines)


def markdown_synthetic(payload: dict) -> str:
    """The synthetic calibration: runs within the tolerances, per shape and in total."""
    synth = payload["synthetic"]
    configs = payload["configurations"]
    tolerance = payload["tolerances"]
    lines = [f"| configuration | noise | mode | runs | diffusion within x{tolerance['diffusion']:g} | equilibrium "
             f"within x{tolerance['equilibrium']:g} | both |", "|---|---|---|---|---|---|---|"]
    for row in synth["totals"]:
        lines.append(f"| {configs[row['configuration']]['used_by'].split(':')[0]} | x{row['noise']:g} | "
                     f"{'online' if row['online'] else 'offline'} | {row['runs']} | {row['diffusion_within']} | "
                     f"{row['equilibrium_within']} | {row['both_within']} |")
    shapes = synth["shapes"]
    low, high = synth["noise_levels"][0], synth["noise_levels"][-1]
    lines += ["", f"{len(shapes)} shapes x {synth['seeds_per_shape']} seeds, from `{synth['source']}`. Per shape "
                  f"(diffusion / equilibrium within tolerance, of {synth['seeds_per_shape']}):", "",
              f"| shape | truth (diffusion, equilibrium) | configuration | offline, x{low:g} | online, x{low:g} | "
              f"offline, x{high:g} | online, x{high:g} |", "|---|---|---|---|---|---|---|"]
    for name, entry in shapes.items():
        truth = entry["truth"]
        for config in configs:
            picked = {(row["noise"], row["online"]): row for row in entry["results"]
                      if row["configuration"] == config}
            cells = [f"{picked[key]['diffusion_within']} / {picked[key]['equilibrium_within']}"
                     for key in ((low, False), (low, True), (high, False), (high, True))]
            lines.append(f"| `{name}` | {truth[0]:,}, {truth[1]:,} | {configs[config]['used_by'].split(':')[0]} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(payload: dict) -> str:
    return markdown_logs(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(default_data()), help="the shared data folder")
    parser.add_argument("--seeds", type=int, default=12, help="synthetic runs per shape")
    parser.add_argument("--noise", type=float, default=1.5, help="the stronger noise level, x the nominal")
    parser.add_argument("--quick", action="store_true", help="2 seeds per shape, not written to results/")
    parser.add_argument("--json", action="store_true", help="print the JSON object")
    args = parser.parse_args()
    if args.quick:
        args.seeds = 2
    payload = stamp() | measure(args)
    if not args.quick:
        log(f"wrote {write('paper_logs', payload)}")
    print(json.dumps(payload) if args.json else markdown(payload))


if __name__ == "__main__":
    main()
