"""float32 against float64 for quasi-Newton plans: why line-search stages default to double precision.

The same runs (problem, network, points, seed, plan) in both precisions; for each, the final and best relative L2
error, the final loss, the line searches that ended without sufficient decrease, and the training time.

    python benchmarks/precision.py --json [--quick]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _machine import log, stamp, write

from pinnkit import columns
from pinnkit.engine import LogSchedule, Probes
from pinnkit.experiment import RunConfig, run, summarize

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# the training stack of the quasi-Newton plans in both precisions.
MEASURES = ("src/pinnkit/engine", "src/pinnkit/experiment.py", "src/pinnkit/nn.py", "src/pinnkit/derivatives.py",
            "src/pinnkit/problems", "src/pinnkit/reference", "src/pinnkit/optimizers.py", "src/pinnkit/plans.py",
            "src/pinnkit/quasi_newton.py", "src/pinnkit/scaling_rules.py", "src/pinnkit/optimizer_registry.py",
            "src/pinnkit/curvature.py", "src/pinnkit/reweight", "src/pinnkit/sampling.py")

CASES = [
    dict(problem="burgers", optimizer="adam+ssbroyden", switch_step=1000, steps=3000, width=20, depth=8,
         points=4000),
    dict(problem="helmholtz", optimizer="adam+lbfgs", switch_step=1000, steps=3000, width=32, depth=3, points=2000),
]


def measure(quick: bool) -> dict:
    results = []
    for case in CASES:
        for float64 in (False, True):
            settings = dict(case)
            if quick:
                settings.update(steps=20, switch_step=10, points=200, width=8, depth=2)
            config = RunConfig(**settings, float64=float64, log=LogSchedule(100, dense_until=0),
                               probes=Probes(snr_batches=0))
            log(f"{case['problem']} {case['optimizer']} {'float64' if float64 else 'float32'}")
            result = run(config)
            summary = summarize(config, result)
            history = result.history
            stage_two = history[columns.STAGE] == 1
            results.append({
                "problem": case["problem"], "plan": summary.plan, "precision": summary.precision,
                "width": settings["width"], "depth": settings["depth"], "points": settings["points"],
                "rel_l2": summary.rel_l2, "best_rel_l2": summary.best_rel_l2,
                "final_loss": summary.final_loss, "line_search_failures": summary.line_search_failures,
                "wall_time_s": summary.wall_time_s,
                "loss_at_switch": float(history[columns.LOSS][~stage_two][-1]),
                "loss_stalled_from": _stall(history),
            })
            log(f"  rel L2 {summary.rel_l2:.3g}, loss {summary.final_loss:.3g}")
    return {"runs": results}


def _stall(history) -> int | None:
    """The first row of the quasi-Newton stage after which the loss no longer falls by 1 % per row."""
    steps, loss, stage = history[columns.STEP], history[columns.LOSS], history[columns.STAGE]
    rows = np.flatnonzero(stage == 1)
    for first, second in zip(rows[:-1], rows[1:], strict=True):
        if not loss[second] < 0.99 * loss[first]:
            return int(steps[first])
    return None


def _number(value) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.2e}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.3g}"


def markdown(payload: dict) -> str:
    """The precision table of docs/benchmarks.md."""
    machine = payload["machine"]
    # Results measured before one seed gave one draw in both precisions (float64, then cast) started the two
    # precisions from different networks and points; they say so.
    start = ("the same points and initial network in both precisions (drawn in float64, then cast)"
             if payload.get("same_initial_state") else
             "measured before the two precisions shared one draw: each started from its own network and points")
    lines = [f"Measured {payload['date']} on {machine['cores']} cores of a {machine['cpu']} "
             f"(jax {payload['versions']['jax']}); one seed, {start}.",
             "", "| problem | plan | network | precision | final rel. L2 | best rel. L2 | final loss | loss stalls "
                 "from step | failed line searches | train s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for run_ in payload["runs"]:
        lines.append(
            f"| {run_['problem']} | {run_['plan']} | {run_['depth']}x{run_['width']}, {run_['points']} points | "
            f"{run_['precision']} | {_number(run_[columns.REL_L2])} | {_number(run_['best_rel_l2'])} | "
            f"{_number(run_['final_loss'])} | {run_['loss_stalled_from'] or '-'} | "
            f"{run_[columns.LINE_SEARCH_FAILURES]} | {run_[columns.WALL_TIME]:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run, not written to results/")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    payload = stamp() | measure(args.quick) | {"same_initial_state": True}
    if not args.quick:
        log(f"wrote {write('precision', payload)}")
    print(json.dumps(payload) if args.json else markdown(payload))


if __name__ == "__main__":
    main()
