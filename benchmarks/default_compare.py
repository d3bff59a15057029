"""The default comparison (``pinnkit compare`` with no options): its results, and its wall time against the
previous version's default comparison, measured side by side on the same machine.

1. ``pinnkit compare`` as a user runs it (a fresh process, an empty compilation cache): total wall time, and
   the rows, figures and per-run compile and training times of that very run (read from its ``summary.json``),
   which are the table the README shows; then the same command again in a new process with the compilation
   cache the first one filled (warm).
2. The previous version's default comparison (``--baseline REV``), from a ``git worktree`` of that revision run
   with this environment's packages, fresh process and empty cache: total wall time.

    python benchmarks/default_compare.py --json [--baseline 5185a42] [--no-baseline]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import log, stamp, write

from pinnkit.optimizers import LINE_SEARCH_OPTIMIZERS
from pinnkit.plans import parse_plan
from pinnkit.summary import RunSummary

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# pinnkit compare runs all of the library and the CLI.
MEASURES = ("src/pinnkit", "cli/pinnkit_cli")

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "5185a42"
# The targets of the quick-start issue for the default comparison's wall time, as fractions of BASELINE's: a fresh
# process with an empty compilation cache, and one with the cache a first run filled.
FRESH_TARGET = 0.2
WARM_TARGET = 0.1


def cli_run(python_path: str | None, out: Path, cache: Path) -> float:
    """Wall seconds of ``pinnkit compare --out OUT`` in a fresh process (an empty compilation cache)."""
    environment = dict(os.environ, PINNKIT_COMPILATION_CACHE=str(cache))
    if python_path is not None:
        environment["PYTHONPATH"] = python_path
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from pinnkit_cli.app import main; main()", "compare", "--out",
                           str(out)], capture_output=True, text=True, env=environment, timeout=7200)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"compare failed ({done.returncode}): {done.stderr[-3000:]}")
    return wall


FIGURES = ("error_and_loss", "phases", "fields_best_run")
DOCS_FIGURES = ROOT / "docs" / "figures"


def the_run(folder: Path, wall: float) -> dict:
    """What the CLI run wrote: its configuration and rows (summary.json), its time by part, its figures."""
    summary = json.loads((folder / "summary.json").read_text())
    for name in FIGURES:  # the README shows this run's figures
        shutil.copyfile(folder / "figures" / f"{name}.png", DOCS_FIGURES / f"compare_default_{name}.png")
    rows = summary["runs"]
    runs = [RunSummary.from_dict(row) for row in rows]
    # Runs stacked as variants of one program report that program's compile and training time each: count every
    # program once (its runs share the plan and both times exactly).
    programs = {(run.optimizer, run.precision, run.compile_time_s, run.wall_time_s) for run in runs}
    compile_s = sum(program[2] for program in programs)
    training_s = sum(program[3] for program in programs)
    return {"config": summary["config"], "rows": rows, "breakdown_s": {
        "compile": compile_s, "training": training_s, "rest": wall - compile_s - training_s, "total": wall},
        "programs": len(programs), "phase_notes": phase_notes(folder, runs)}


def phase_notes(folder: Path, runs: list[RunSummary]) -> dict[str, str]:
    """Per run, from its saved history: where the detector found no equilibrium, its reason; where it found one,
    the test error's fall (``benchmarks/phases.py``'s definition) and whether the equilibrium is within 1.5x of
    it."""
    from phases import error_fall, within

    from pinnkit.compare import run_name
    from pinnkit.diagnostics.transitions import history_phases
    from pinnkit.history import History

    notes = {}
    for run in runs:
        name = run_name(run.problem, run.optimizer, run.reweight, run.seed)
        history = History.from_csv(folder / "histories" / f"{name}.csv")
        key = f"{run.optimizer}/{run.reweight}"
        if run.equilibrium_start is None:
            reasons = [reason for reason in history_phases(history).reasons
                       if reason.startswith(("equilibrium", "diffusion"))]
            notes[key] = reasons[-1] if reasons else ""
            continue
        fall = error_fall(history)
        if fall["location"] is None:
            notes[key] = f"no 10x fall of the test error (it fell {fall['fall']:.1f}x)"
        else:
            verdict = "within" if within(run.equilibrium_start, fall["location"]) else "not within"
            notes[key] = (f"the test error fell {fall['fall']:.0f}x, through the middle of its fall at step "
                          f"{fall['location']}: the equilibrium is {verdict} 1.5x of it")
    return notes


def measure(args) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        log("1/3: pinnkit compare (fresh process, empty cache)")
        current = cli_run(None, scratch / "current", scratch / "cache-current")
        log(f"  {current:.1f} s")
        out = {"cli_wall_s": current, **the_run(scratch / "current", current)}
        log("2/3: pinnkit compare again (fresh process, the cache the first run filled)")
        out["warm_cli_wall_s"] = cli_run(None, scratch / "warm", scratch / "cache-current")
        log(f"  {out['warm_cli_wall_s']:.1f} s")
        if args.baseline:
            log(f"3/3: the default comparison at {args.baseline}")
            tree = scratch / "baseline"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.baseline],
                           check=True, capture_output=True)
            try:
                revision = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], check=True,
                                          capture_output=True, text=True).stdout.strip()
                baseline = cli_run(f"{tree / 'src'}:{tree / 'cli'}", scratch / "old", scratch / "cache-old")
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                               capture_output=True)
                shutil.rmtree(tree, ignore_errors=True)
            log(f"  {baseline:.1f} s")
            out["baseline"] = {"revision": revision, "cli_wall_s": baseline, "ratio": current / baseline,
                               "warm_ratio": out["warm_cli_wall_s"] / baseline}
    return out


def _number(value, digits=3):
    if value is None:
        return "-"
    value = float(value)
    if value != value:
        return "-"
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:.{digits}g}"


def markdown(payload: dict) -> str:
    """The README's table of the default comparison."""
    config, machine = payload["config"], payload["machine"]
    notes = payload.get("phase_notes", {})
    lines = [
        f"`pinnkit compare` (preset `quick`): {config['problem']}, {config['depth']}x{config['width']} tanh MLP, "
        f"{config['points']} collocation points, {config['steps']} steps per run, seed 0; measured "
        f"{payload['date']} on {machine['cores']} cores of a {machine['cpu']} (jax {payload['versions']['jax']}).",
        "", "| optimizer | reweight | precision | learning rate | final rel. L2 | best rel. L2* | final MSE | "
            "train s\u2020 | compile s\u2020 | diffusion | equilibrium | the detector's account |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in map(RunSummary.from_dict, payload["rows"]):
        rate = run.learning_rate
        line_search = all(name in LINE_SEARCH_OPTIMIZERS for name in parse_plan(run.optimizer, steps=run.steps).names)
        rate = "line search" if rate is None and line_search else \
            (_number(rate) if rate is not None else "1e-3")
        note = notes.get(f"{run.optimizer}/{run.reweight}", "")
        lines.append(
            f"| {run.optimizer} | {run.reweight} | {run.precision} | {rate} | {_number(run.rel_l2)} | "
            f"{_number(run.best_rel_l2)} | {_number(run.final_mse)} | {run.wall_time_s:.1f} | "
            f"{run.compile_time_s:.1f} | {run.diffusion_start or '-'} | {run.equilibrium_start or '-'} | {note} |")
    parts = payload["breakdown_s"]
    lines += ["", "\\* the lowest error of any history row, chosen with hindsight (training never sees it). "
                  "\u2020 of the program the row trained in: the runs of one optimizer with and without RBA are "
                  "one vmapped program and report its time each.", "",
              reading(payload["rows"]), "",
              f"Wall time of the whole command in a fresh process with an empty compilation cache: "
              f"**{payload['cli_wall_s']:.0f} s**: compilation {parts['compile']:.0f} s and training "
              f"{parts['training']:.0f} s (over its {payload.get('programs', '?')} programs), the rest "
              f"{parts['rest']:.0f} s (imports, points, reference, learning-rate searches, initialisation, files "
              f"and figures)."]
    if "warm_cli_wall_s" in payload:
        lines.append(f"Again in a new process, with the compilation cache the first run filled: "
                     f"**{payload['warm_cli_wall_s']:.0f} s**.")
    if "baseline" in payload:
        base = payload["baseline"]
        lines.append(f"The previous default comparison (commit {base['revision']}), run on the same machine "
                     f"in the same session, fresh process and empty cache: {base['cli_wall_s']:.0f} s, so this default "
                     f"takes **{base['ratio']:.2f}x** its time fresh (target {FRESH_TARGET:g}x: "
                     f"{'met' if base['ratio'] <= FRESH_TARGET else 'missed'}) and **{base['warm_ratio']:.2f}x** warm "
                     f"(target {WARM_TARGET:g}x: {'met' if base['warm_ratio'] <= WARM_TARGET else 'missed'}).")
    return "\n".join(lines)


def reading(rows: list[dict]) -> str:
    """What the table shows, derived from its rows: the best run against the next best, where RBA helped, and
    which runs have a detected diffusion equilibrium."""
    runs = [RunSummary.from_dict(row) for row in rows]
    name = lambda run: f"{run.optimizer} with {run.reweight}"  # noqa: E731
    finite = sorted((run for run in runs if not math.isnan(run.rel_l2)), key=lambda run: run.rel_l2)
    parts = []
    if len(finite) >= 2:
        best, second = finite[0], finite[1]
        parts.append(f"The lowest final error is {name(best)} ({_number(best.rel_l2)}), "
                     f"{second.rel_l2 / best.rel_l2:.1f}x below the next best, {name(second)} "
                     f"({_number(second.rel_l2)}).")
    by_optimizer: dict[str, dict[str, float]] = {}
    for run in finite:
        by_optimizer.setdefault(run.optimizer, {})[run.reweight] = run.rel_l2
    helped = [optimizer for optimizer, errors in by_optimizer.items()
              if "rba" in errors and "none" in errors and errors["rba"] < errors["none"]]
    hurt = [optimizer for optimizer, errors in by_optimizer.items()
            if "rba" in errors and "none" in errors and errors["rba"] >= errors["none"]]
    if helped or hurt:
        parts.append("RBA lowers the final error of " + (", ".join(helped) or "no optimizer") +
                     (f" and not of {', '.join(hurt)}" if hurt else "") + ".")
    equilibria = [name(run) for run in runs if run.equilibrium_start]
    parts.append("A diffusion equilibrium is detected in " +
                 (", ".join(equilibria) if equilibria else "none of the runs") + ".")
    return " ".join(parts)


def markdown_timing(payload: dict) -> str:
    """The wall-time part alone (docs/benchmarks.md)."""
    parts = payload["breakdown_s"]
    machine = payload["machine"]
    lines = [f"Measured {payload['date']} on {machine['cores']} cores of a {machine['cpu']} (load average at the "
             f"start {machine['load_average_at_start'][0]:.1f}; jax {payload['versions']['jax']}).", "",
             "| | wall time |", "|---|---|",
             f"| `pinnkit compare`, fresh process, empty compilation cache | {payload['cli_wall_s']:.0f} s |"]
    if "warm_cli_wall_s" in payload:
        lines.append(f"| `pinnkit compare` again, the cache filled | {payload['warm_cli_wall_s']:.0f} s |")
    if "baseline" in payload:
        base = payload["baseline"]
        lines.append(f"| the previous default comparison (commit {base['revision']}), fresh, empty cache | "
                     f"{base['cli_wall_s']:.0f} s |")
        lines.append(f"| ratio fresh / warm | **{base['ratio']:.2f}x** / **{base['warm_ratio']:.2f}x** |")
        lines += ["", f"Targets (the quick-start issue): at most {FRESH_TARGET:g}x fresh: "
                      f"{'met' if base['ratio'] <= FRESH_TARGET else '**missed**'}; at most {WARM_TARGET:g}x warm: "
                      f"{'met' if base['warm_ratio'] <= WARM_TARGET else '**missed**'}."]
    lines += ["", f"The fresh run by part, as its runs report it: compilation {parts['compile']:.0f} s, training "
                  f"{parts['training']:.0f} s, the rest (imports, set-up, learning-rate searches, files and figures) "
                  f"{parts['rest']:.0f} s."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="revision of the previous version")
    parser.add_argument("--no-baseline", dest="baseline", action="store_const", const=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    payload = stamp() | measure(args)
    log(f"wrote {write('default_compare', payload)}")
    print(json.dumps(payload) if args.json else markdown(payload))


if __name__ == "__main__":
    main()
