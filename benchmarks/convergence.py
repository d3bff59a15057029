"""Optimizer convergence at CPU scale: relative L2 against steps and against seconds, with and without RBA.

For each problem (Helmholtz a1 = 1, a2 = 4; Allen-Cahn), Adam, SGD, L-BFGS and Adam-then-L-BFGS each train the
same architecture from the same initialisations (seeds 0..K-1, vmapped in one program) on the same collocation
points, without reweighting and with RBA. First-order methods use learning rate 1e-3 (x0.9 every 5000 steps;
SGD with heavy-ball momentum 0.9). One L-BFGS step is one ``optax.lbfgs`` iteration, its zoom line search
included; ``adam+lbfgs`` runs Adam for the first part of its budget, then L-BFGS (RBA weights carried over).

Writes ``docs/figures/convergence_<problem>.png`` (error against step and against wall seconds) and the
"## Convergence" section of ``docs/benchmarks.md`` (full mode only, unless ``--docs-dir`` is given).

Usage:
    python benchmarks/convergence.py [--json] [--quick] [--docs-dir DIR] [--from-json FILE]
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import _common as common

from pinnkit.compare import CompareConfig

OPTIMIZERS = ("adam", "sgd", "lbfgs", "adam+lbfgs")
REWEIGHTS = ("none", "rba")
SECTION = "## Convergence"
SEEDS = 3
LOG_EVERY = 50
SNR_BATCHES = 50

# Full mode fits in ~20-30 minutes on 2 shared CPU cores; an L-BFGS iteration costs ~1.5-4 Adam steps.
FULL = {
    "helmholtz": dict(problem_params={"a1": 1.0, "a2": 4.0}, width=32, depth=3, points=1000),
    "allen-cahn": dict(problem_params={}, width=32, depth=3, points=1000),
}
FULL_STEPS = {"adam": 4000, "sgd": 4000, "lbfgs": 4000, "adam+lbfgs": 4000}
# A smoke test of every code path: one problem, every optimizer and reweighting, step counts that are
# multiples of the 10-step logging interval (one compiled chunk per grid).
QUICK = {"helmholtz": dict(problem_params={"a1": 1.0, "a2": 4.0}, width=16, depth=2, points=300)}
QUICK_STEPS = {"adam": 160, "sgd": 160, "lbfgs": 60, "adam+lbfgs": 160}
SWITCH_FRACTION = 0.5  # adam+lbfgs: the share of its budget spent in Adam


def configs(quick: bool) -> list[CompareConfig]:
    """One comparison grid per (problem, optimizer); each covers both reweightings."""
    scales, steps = (QUICK, QUICK_STEPS) if quick else (FULL, FULL_STEPS)
    out = []
    for problem, scale in scales.items():
        for optimizer in OPTIMIZERS:
            budget = steps[optimizer]
            switch = int(budget * SWITCH_FRACTION) if optimizer == "adam+lbfgs" else None
            out.append(CompareConfig(problem=problem, optimizers=(optimizer,), reweights=REWEIGHTS,
                                     seeds=SEEDS, steps=budget, switch_step=switch, log_every=LOG_EVERY,
                                     snr_batches=SNR_BATCHES, **scale))
    return out


def label(entry: Mapping[str, Any]) -> str:
    return f"{entry['optimizer']} + RBA" if entry["reweight"] == "rba" else entry["optimizer"]


def results_table(results: Sequence[Mapping[str, Any]]) -> str:
    """One row per (problem, optimizer, reweighting)."""
    header = ["problem", "optimizer", "steps", "final rel L2", "best rel L2", "steps to 0.1 (per seed)",
              "s to 0.1 (per seed)", "steps to 0.01 (per seed)", "train s (3 seeds)", "ms/step",
              "line-search failures"]
    rows = []
    for entry in results:
        ms = 1000 * entry["wall_time_s"] / entry["steps"] if entry["steps"] else None
        failures = entry.get("line_search_failures")
        rows.append([
            entry["problem"], label(entry), str(entry["steps"]),
            common.format_mean_std(entry, "final_rel_l2"), common.format_mean_std(entry, "best_rel_l2"),
            common.format_per_seed(entry["steps_to_0.1"]), common.format_per_seed(entry["seconds_to_0.1"]),
            common.format_per_seed(entry["steps_to_0.01"]),
            f"{entry['wall_time_s']:.0f}", common.format_value(ms),
            common.format_per_seed(failures) if failures else "—",
        ])
    return common.markdown_table(header, rows)


def figure_for(problem: str, results: Sequence[Mapping[str, Any]]):
    """Relative L2 against step and against wall seconds: mean over seeds, min/max band."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 4.8), layout="constrained")
    by_step, by_time = figure.subplots(1, 2, sharey=True)
    styles = {"none": "-", "rba": "--"}
    for entry in (entry for entry in results if entry["problem"] == problem):
        color = f"C{OPTIMIZERS.index(entry['optimizer'])}"
        for axis, x in ((by_step, "step"), (by_time, "wall_time_s")):
            xs, mean, low, high = common.seed_band(entry["curves"], x)
            axis.plot(xs, mean, styles[entry["reweight"]], color=color, lw=1.4,
                      label=label(entry) if axis is by_step else None)
            axis.fill_between(xs, low, high, color=color, alpha=0.12, lw=0)
    by_step.set_xlabel("step (L-BFGS: one iteration, line search included)")
    by_time.set_xlabel(f"wall seconds ({SEEDS} seeds in one vmapped program, compilation excluded)")
    by_step.set_ylabel("relative L2 error")
    for axis in (by_step, by_time):
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    by_step.legend(fontsize=8, ncol=2)
    figure.suptitle(f"{problem}: mean over seeds (band: min/max)")
    return figure


def findings(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Measured facts per problem: the lowest final/best errors and the fastest to reach 0.1 in seconds."""
    lines = []
    for problem in dict.fromkeys(entry["problem"] for entry in results):
        members = [entry for entry in results if entry["problem"] == problem
                   and entry["final_rel_l2_mean"] is not None]
        if not members:
            continue
        value = common.format_value
        ranked = sorted(members, key=lambda entry: entry["final_rel_l2_mean"])
        order = ", ".join(f"{label(entry)} {value(entry['final_rel_l2_mean'])}" for entry in ranked)
        best = min(members, key=lambda entry: entry["best_rel_l2_mean"])
        lines.append(f"- {problem}: final error, lowest first: {order}. Lowest best-so-far error: "
                     f"{label(best)} ({value(best['best_rel_l2_mean'])}).")
        timed = []
        for entry in members:
            seconds = [value for value in entry["seconds_to_0.1"] if value is not None]
            if len(seconds) == entry["seeds"]:
                timed.append((max(seconds), entry))
        if timed:
            seconds, fastest = min(timed, key=lambda pair: pair[0])
            lines.append(f"  Every seed below 0.1 soonest in wall time: {label(fastest)} (all seeds by "
                         f"{seconds:.0f} s of training; {len(timed)} of {len(members)} variants got every "
                         "seed there).")
        else:
            lines.append("  No variant got every seed below 0.1.")
        cost = {(entry["optimizer"], entry["reweight"]): entry["wall_time_s"] / entry["steps"]
                for entry in members}
        ratios = [f"{cost[('lbfgs', reweight)] / cost[('adam', reweight)]:.1f}" for reweight in REWEIGHTS
                  if ("lbfgs", reweight) in cost and ("adam", reweight) in cost]
        if ratios:
            lines.append(f"  One L-BFGS iteration cost {' and '.join(ratios)} Adam steps (without / with "
                         "RBA; measured training time per step).")
    return lines


def setup_lines(payload: Mapping[str, Any]) -> list[str]:
    lines = []
    for problem in payload["problems"]:
        grids = [config for config in payload["configs"] if config["problem"] == problem]
        first = grids[0]
        params = ", ".join(f"{key} = {value:g}" for key, value in first["problem_params"].items())
        name = f"{problem} ({params})" if params else problem
        budgets = ", ".join(
            f"{config['optimizers'][0]} {config['steps']}"
            + (f" ({config['switch_step']} Adam + {config['steps'] - config['switch_step']} L-BFGS)"
               if config["switch_step"] else "")
            for config in grids)
        lines.append(f"- {name}: {first['depth']}x{first['width']} tanh MLP, {first['points']} collocation "
                     f"points, {first['seeds']} seeds vmapped in one program, float32; steps: {budgets}.")
    return lines


def benchmarks_section(payload: Mapping[str, Any]) -> str:
    """The body of the "## Convergence" section of docs/benchmarks.md."""
    env = payload["environment"]
    figures = "\n".join(f"![{problem}](figures/convergence_{problem}.png)" for problem in payload["problems"])
    return "\n".join([
        "Adam, SGD (momentum 0.9), L-BFGS and Adam-then-L-BFGS, each without reweighting and with RBA "
        "(`pinnkit.rba` defaults), from the same initialisations on the same points. First-order methods: "
        "learning rate 1e-3, x0.9 every 5000 steps (the library defaults, not tuned per optimizer). L-BFGS: "
        "`optax.lbfgs`, memory 10; " + common.LBFGS_STEP + ". Its RBA weights are frozen within each "
        "iteration and advanced once per iteration.",
        "",
        f"Command: `{payload['command']}` ({payload['mode']} mode; the whole script took "
        f"{payload['total_time_s'] / 60:.1f} min on {env['cpu_count']} CPU cores shared with other jobs, "
        f"jax {env['versions'].get('jax')}, {env['jax_backend']}).",
        "",
        *setup_lines(payload),
        "",
        results_table(payload["results"]),
        "",
        "Errors are mean ± std over seeds. Steps and seconds to 0.1 / 0.01 are read at the first logged "
        f"step at or below the threshold (logged {common.logging_note(payload['results'])}); — where "
        "a seed never reached it. Seconds are training time of the vmapped program (all seeds together, "
        "compilation excluded); the machine was shared with other jobs, so times are noisy.",
        "",
        *findings(payload["results"]),
        "",
        figures,
    ])


def write_docs(payload: Mapping[str, Any], docs_dir: Path) -> list[Path]:
    """Figures and the docs section."""
    written = []
    for problem in payload["problems"]:
        path = docs_dir / "figures" / f"convergence_{problem}.png"
        written.append(common.save_figure(figure_for(problem, payload["results"]), path))
    written.append(common.write_benchmarks_section(docs_dir, SECTION, benchmarks_section(payload)))
    return written


def run(quick: bool) -> dict[str, Any]:
    """Train every grid and gather the JSON payload."""
    start = time.perf_counter()
    grids = configs(quick)
    results = []
    for config in grids:
        results += common.run_grid(config)
    return {
        "benchmark": "convergence", "mode": "quick" if quick else "full",
        "command": "python benchmarks/convergence.py --json" + (" --quick" if quick else ""),
        "lbfgs_step": common.LBFGS_STEP,
        "problems": list(dict.fromkeys(config.problem for config in grids)),
        "configs": [config.to_dict() for config in grids],
        "environment": common.environment(),
        "total_time_s": time.perf_counter() - start,
        "results": results,
    }


if __name__ == "__main__":
    raise SystemExit(common.main(__doc__, run, write_docs, lambda payload: [
        results_table(payload["results"]), *findings(payload["results"])]))
