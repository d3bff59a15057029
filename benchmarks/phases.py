"""The phase picture on pinnkit's own runs: where the detector places the transitions, against where the error falls,
per optimizer plan; and switching from Adam to a quasi-Newton method at the detected equilibrium.

1. **Calibration runs** trained here (Helmholtz a1 = 1, a2 = 4, 4x64 tanh, 4000 LHS points, 3000 steps, the SNR over
   B = 100 batches at every row: every 2 steps below 300, every 50 after), Adam with and without RBA, several seeds
   vmapped; plus, when present, every history the reweighting benchmark left in
   ``benchmarks/results/reweighting/histories`` (3x20 nets: Adam and Adam + SSBroyden plans, five reweightings).
   For each run: the **error fall**, defined from the test error alone: ``peak`` = the largest logged error before
   the lowest one, at most 1 (the error of u = 0: an overshoot and back is not learning), ``fall = peak / final``;
   where ``fall >= 10`` the fall's **location** is the first logged step
   at which the error is at or below ``sqrt(peak * final)`` (the middle of the fall in log scale). Then what
   :func:`pinnkit.diagnostics.transitions.history_phases` reports (offline): the diffusion start, the equilibrium
   from the SNR, the combined estimate, and whether they lie within ``TOLERANCE`` (1.5) of the fall's location.
   Counted per plan: runs that fall 10x, of those with a detected equilibrium within the tolerance, and detections
   on runs that do not fall.
2. **Switching at the transition** (``--switch-at equilibrium``; its rule reads the SNR and the training MSE, never
   the test error) against fixed switch steps, Adam + L-BFGS, same seeds and points: the step of the switch, the
   final error and the training seconds.

    python benchmarks/phases.py --json [--seeds 3] [--switch-seeds 2] [--skip-training] [--quick]

Writes ``benchmarks/results/phases.json`` (not with ``--quick`` or ``--skip-training``), rendered into
docs/diagnostics.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from typing import Any

import numpy as np
from _machine import RESULTS, log, stamp, write

from pinnkit import columns
from pinnkit.diagnostics.transitions import history_phases
from pinnkit.engine import LogSchedule, Probes
from pinnkit.experiment import RunConfig, run, run_stacked, setup, summarize
from pinnkit.history import History

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# the training stack and the detector that reads its histories.
MEASURES = ("src/pinnkit/engine", "src/pinnkit/experiment.py", "src/pinnkit/nn.py", "src/pinnkit/derivatives.py",
            "src/pinnkit/problems", "src/pinnkit/reference", "src/pinnkit/optimizers.py", "src/pinnkit/plans.py",
            "src/pinnkit/quasi_newton.py", "src/pinnkit/scaling_rules.py", "src/pinnkit/optimizer_registry.py",
            "src/pinnkit/curvature.py", "src/pinnkit/reweight", "src/pinnkit/sampling.py",
            "src/pinnkit/diagnostics", "src/pinnkit/history.py")

TOLERANCE = 1.5
MIN_FALL = 10.0
UNLEARNED = 1.0  # the relative L2 error of predicting u = 0
REWEIGHTING_HISTORIES = RESULTS / "reweighting" / "histories"


@dataclasses.dataclass(frozen=True)
class Scale:
    width: int = 64
    depth: int = 4
    points: int = 4000
    steps: int = 3000
    snr_batches: int = 100
    switch_points: int = 2000
    switch_steps: int = 3000
    fixed_switches: tuple[int, ...] = (1000, 2000)
    log: LogSchedule = LogSchedule(every=50, dense_until=300, dense_every=2)


FULL = Scale()
QUICK = Scale(width=8, depth=1, points=200, steps=40, snr_batches=10, switch_points=200, switch_steps=40,
              fixed_switches=(20,), log=LogSchedule(every=4, dense_until=8, dense_every=2))


def error_fall(history) -> dict[str, Any]:
    """The fall of the test error, from the error alone (see the module docstring)."""
    steps = np.asarray(history[columns.STEP], float)
    error = np.asarray(history[columns.REL_L2], float)
    keep = np.isfinite(error)
    steps, error = steps[keep], error[keep]
    if error.size < 3:
        return {"fall": None, "location": None, "peak": None, "final": None}
    lowest = int(np.argmin(error))
    after_peak = int(np.argmax(error[: lowest + 1]))
    # An overshoot above 1 (the error of u = 0) and back is not learning: the fall is counted from 1 at most.
    peak = min(float(error[after_peak]), UNLEARNED)
    final = float(error[-1])
    fall = peak / final if final > 0 else math.inf
    location = None
    if fall >= MIN_FALL:
        below = np.flatnonzero(error[after_peak:] <= math.sqrt(peak * final))
        location = int(steps[after_peak + below[0]]) if below.size else None
    return {"fall": fall, "location": location, "peak": peak, "final": final}


def within(found: int | None, truth: int | None) -> bool:
    return found is not None and truth is not None and truth / TOLERANCE <= found <= truth * TOLERANCE


def analyse(history, *, source: str, plan: str, label: str) -> dict[str, Any]:
    """The error fall and the detections of one run."""
    phases = history_phases(history)
    fall = error_fall(history)
    stages = np.asarray(history[columns.STAGE], float) if columns.STAGE in history.columns else None
    switch = None
    if stages is not None and np.any(stages > 0):
        switch = int(np.asarray(history[columns.STEP])[np.argmax(stages > 0)])
    return {
        "source": source, "plan": plan, "run": label, **fall, "switch_step": switch,
        "diffusion_start": phases.diffusion_start, "equilibrium_from_snr": phases.equilibrium_from_snr,
        "error_drop": phases.error_drop, "equilibrium_start": phases.equilibrium_start,
        "equilibrium_within": within(phases.equilibrium_start, fall["location"]),
        "equilibrium_from_snr_within": within(phases.equilibrium_from_snr, fall["location"]),
        "reasons": list(phases.reasons),
    }


def calibration_configs(scale: Scale) -> dict[str, RunConfig]:
    common = dict(problem="helmholtz", width=scale.width, depth=scale.depth, points=scale.points, steps=scale.steps,
                  log=scale.log, probes=Probes(snr_batches=scale.snr_batches))
    return {"adam+rba": RunConfig(optimizer="adam", reweight="rba", **common),
            "adam": RunConfig(optimizer="adam", reweight="none", **common)}


def train_calibration(scale: Scale, seeds: int) -> tuple[list[dict], dict]:
    rows, costs = [], {}
    for name, config in calibration_configs(scale).items():
        log(f"calibration: helmholtz {config.depth}x{config.width}, {name}, {seeds} seeds, {config.steps} steps")
        built = setup(config)
        results = run_stacked(config, built, list(range(seeds)))
        costs[name] = {"train_s": max(float(r.wall_time_s) for r in results),
                       "compile_s": max(float(r.compile_time_s) for r in results), "seeds": seeds}
        for seed, result in enumerate(results):
            row = analyse(result.history, source="trained here", plan=name, label=f"helmholtz {name} seed {seed}")
            log(f"  seed {seed}: error {row['peak']:.3g} -> {row['final']:.3g}, fall at {row['location']}; "
                f"equilibrium {row['equilibrium_start']} (SNR {row['equilibrium_from_snr']})")
            rows.append(row)
    return rows, {"config": {name: config.to_dict() for name, config in calibration_configs(scale).items()},
                  "cost": costs}


def reweighting_rows() -> list[dict]:
    """Every history the reweighting benchmark saved (skipped when absent)."""
    rows = []
    for path in sorted(REWEIGHTING_HISTORIES.glob("*__seed*.csv")):
        problem, plan, scheme, seed = path.stem.split("__")
        rows.append(analyse(History.from_csv(path), source="reweighting benchmark",
                            plan=f"{plan} ({problem})", label=f"{problem} {plan} {scheme} {seed}"))
    return rows


def switching(scale: Scale, seeds: int) -> dict[str, Any]:
    """Adam + L-BFGS switching at the detected equilibrium against fixed switch steps."""
    common = dict(problem="helmholtz", optimizer="adam+lbfgs", reweight="rba", width=scale.width, depth=scale.depth,
                  points=scale.switch_points, steps=scale.switch_steps, log=scale.log,
                  probes=Probes(snr_batches=scale.snr_batches))
    variants = {"at equilibrium": dict(switch_at="equilibrium")}
    variants |= {f"fixed at {step}": dict(switch_step=step) for step in scale.fixed_switches}
    out = []
    for name, extra in variants.items():
        for seed in range(seeds):
            config = RunConfig(**common, **extra, seed=seed)
            log(f"switching: {name}, seed {seed}")
            result = run(config)
            summary = summarize(config, result)
            starts = list(result.stage_starts)
            switch = starts[1] if len(starts) > 1 else None
            # A switch at equilibrium that was never confirmed falls on the last step (the plan's fallback).
            confirmed = switch is not None and (not extra.get("switch_at") or switch < config.steps - 1)
            out.append({"variant": name, "seed": seed, "switch_step": switch if confirmed else None,
                        "rel_l2": summary.rel_l2, "best_rel_l2": summary.best_rel_l2,
                        "train_s": summary.wall_time_s, "compile_s": summary.compile_time_s,
                        "status": summary.status})
            log(f"  switched at {out[-1]['switch_step']}, rel L2 {summary.rel_l2:.3g}, "
                f"{summary.wall_time_s:.0f} s")
    return {"config": RunConfig(**common).to_dict(), "runs": out}


def tally(rows: list[dict]) -> list[dict]:
    """Per plan: runs, runs whose error fell 10x, detections within the tolerance, detections on the others."""
    plans: dict[str, list[dict]] = {}
    for row in rows:
        plans.setdefault(row["plan"], []).append(row)
    out = []
    for plan, members in plans.items():
        falling = [row for row in members if row["location"] is not None]
        flat = [row for row in members if row["location"] is None]
        out.append({
            "source": members[0]["source"], "plan": plan, "runs": len(members), "error_fell_10x": len(falling),
            "equilibrium_within": sum(row["equilibrium_within"] for row in falling),
            "equilibrium_from_snr_within": sum(row["equilibrium_from_snr_within"] for row in falling),
            "equilibrium_elsewhere": sum(row["equilibrium_start"] is not None and not row["equilibrium_within"]
                                         for row in falling),
            "detections_without_fall": sum(row["equilibrium_start"] is not None for row in flat),
            "diffusion_detected": sum(row["diffusion_start"] is not None for row in members),
        })
    return out


# ----- the docs ---------------------------------------------------------------------------------------------------

def _value(value) -> str:
    return "-" if value is None else (f"{value:,}" if isinstance(value, int) else f"{value:.3g}")


def markdown_tally(payload: dict) -> str:
    lines = ["| runs | plan | runs | error fell >= 10x | of those: equilibrium within x1.5 of the fall (SNR alone) "
             "| of those: equilibrium elsewhere | detections on runs whose error did not fall | diffusion detected |",
             "|---|---|---|---|---|---|---|---|"]
    for row in payload["tally"]:
        source = row.get("source", "trained here" if row["plan"] in ("adam", "adam+rba") else "reweighting benchmark")
        lines.append(f"| {source} | {row['plan']} | {row['runs']} | {row['error_fell_10x']} | "
                     f"{row['equilibrium_within']} ({row['equilibrium_from_snr_within']}) | "
                     f"{row['equilibrium_elsewhere']} | {row['detections_without_fall']} | "
                     f"{row['diffusion_detected']} |")
    totals = payload["totals"]
    machine = payload["machine"]
    lines += ["", f"In all: {totals['falling']} runs whose error fell 10x or more, {totals['within']} with the "
                  f"detected equilibrium within x{TOLERANCE:g} of the fall (target: 6 or more); "
                  f"{totals['without_fall']} detections on the {totals['flat']} runs whose error did not fall "
                  "(target: at most 1). "
                  f"`{payload['command']}`, {payload['date']}, {machine['cores']} cores of a {machine['cpu']}."]
    return "\n".join(lines)


def markdown_runs(payload: dict) -> str:
    """The trained runs one by one."""
    lines = ["| run | error: peak -> final (fall) | middle of the fall | diffusion | equilibrium: SNR / error drop / "
             "combined |", "|---|---|---|---|---|"]
    for row in payload["rows"]:
        if row["source"] != "trained here":
            continue
        fall = "-" if row["fall"] is None else f"{row['peak']:.3g} -> {row['final']:.3g} ({row['fall']:.3g}x)"
        lines.append(f"| {row['run']} | {fall} | {_value(row['location'])} | {_value(row['diffusion_start'])} | "
                     f"{_value(row['equilibrium_from_snr'])} / {_value(row['error_drop'])} / "
                     f"{_value(row['equilibrium_start'])} |")
    return "\n".join(lines)


def markdown_switching(payload: dict) -> str:
    data = payload.get("switching")
    if not data:
        return "Not measured."
    config = data["config"]
    lines = [f"Helmholtz, {config['depth']}x{config['width']} tanh, {config['points']} points, Adam + L-BFGS with RBA "
             f"(float64), {config['steps']} steps in all:", "",
             "| switch | seed | switched at step (-: equilibrium never confirmed, Adam throughout) | final rel. L2 | "
             "train s |", "|---|---|---|---|---|"]
    for row in data["runs"]:
        lines.append(f"| {row['variant']} | {row['seed']} | {_value(row['switch_step'])} | {row[columns.REL_L2]:.3g} | "
                     f"{row['train_s']:.0f} |")
    return "\n".join(lines)


def markdown(payload: dict) -> str:
    return "\n\n".join([markdown_tally(payload), markdown_runs(payload), markdown_switching(payload)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per calibration configuration (vmapped)")
    parser.add_argument("--switch-seeds", type=int, default=2, help="seeds per switching variant (0: skip)")
    parser.add_argument("--skip-training", action="store_true",
                        help="only re-analyse the reweighting benchmark's histories")
    parser.add_argument("--quick", action="store_true", help="tiny runs, nothing written")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the Markdown")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    payload = stamp()
    start = time.perf_counter()
    rows: list[dict] = []
    if not args.skip_training:
        trained, payload["calibration"] = train_calibration(scale, args.seeds)
        rows += trained
    reweighted = reweighting_rows()
    if not reweighted:
        log(f"no histories in {REWEIGHTING_HISTORIES} (run benchmarks/reweighting.py): left out")
    rows += reweighted
    payload["rows"] = rows
    payload["tally"] = tally(rows)
    falling = [row for row in rows if row["location"] is not None]
    payload["totals"] = {"falling": len(falling), "within": sum(row["equilibrium_within"] for row in falling),
                         "flat": len(rows) - len(falling),
                         "without_fall": sum(row["equilibrium_start"] is not None for row in rows
                                             if row["location"] is None)}
    if args.switch_seeds > 0 and not args.skip_training:
        payload["switching"] = switching(scale, args.switch_seeds)
    payload["total_s"] = time.perf_counter() - start
    if not (args.quick or args.skip_training):
        log(f"wrote {write('phases', payload)}")
    from pinnkit import jsonio

    print(jsonio.dumps(payload) if args.json else markdown(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
