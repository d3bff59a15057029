"""The default comparison (``pinnkit compare`` with no options): its results, and its wall time against the
previous version's default comparison, measured side by side on the same machine.

1. ``pinnkit compare`` as a user runs it (a fresh process, an empty compilation cache): total wall time, and
   the rows, figures and per-run compile and training times of that very run (read from its ``summary.json``),
   which are the table the README shows.
2. The previous version's default comparison (``--baseline REV``), from a ``git worktree`` of that revision run
   with this environment's packages: total wall time.

    python benchmarks/default_compare.py --json [--baseline 142c21d] [--no-baseline]
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

from pinnkit.summary import RunSummary

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# pinnkit compare runs all of the library and the CLI.
MEASURES = ("src/pinnkit", "cli/pinnkit_cli")

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "142c21d"
# The engine issue's target for the default comparison's wall time, as a fraction of BASELINE's.
ENGINE_TARGET = 0.6


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
    compile_s = sum(run.compile_time_s for run in runs)
    training_s = sum(run.wall_time_s for run in runs)
    return {"config": summary["config"], "rows": rows, "breakdown_s": {
        "compile": compile_s, "training": training_s, "rest": wall - compile_s - training_s, "total": wall}}


def measure(args) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        log("1/2: pinnkit compare (fresh process, empty cache)")
        current = cli_run(None, scratch / "current", scratch / "cache-current")
        log(f"  {current:.1f} s")
        out = {"cli_wall_s": current, **the_run(scratch / "current", current)}
        if args.baseline:
            log(f"2/2: the default comparison at {args.baseline}")
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
            out["baseline"] = {"revision": revision, "cli_wall_s": baseline, "ratio": current / baseline}
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
    lines = [
        f"`pinnkit compare` (preset `quick`): {config['problem']}, {config['depth']}x{config['width']} tanh MLP, "
        f"{config['points']} collocation points, {config['steps']} steps per run, seed 0; measured "
        f"{payload['date']} on {machine['cores']} cores of a {machine['cpu']} (jax {payload['versions']['jax']}).",
        "", "| optimizer | reweight | precision | learning rate | final rel. L2 | best rel. L2* | final MSE | "
            "train s | compile s | diffusion | equilibrium |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in map(RunSummary.from_dict, payload["rows"]):
        rate = run.learning_rate
        rate = "line search" if rate is None and run.optimizer in ("lbfgs", "bfgs", "ssbfgs", "ssbroyden") else \
            (_number(rate) if rate is not None else "1e-3")
        lines.append(
            f"| {run.optimizer} | {run.reweight} | {run.precision} | {rate} | {_number(run.rel_l2)} | "
            f"{_number(run.best_rel_l2)} | {_number(run.final_mse)} | {run.wall_time_s:.1f} | "
            f"{run.compile_time_s:.1f} | {run.diffusion_start or '-'} | {run.equilibrium_start or '-'} |")
    parts = payload["breakdown_s"]
    lines += ["", "\\* the lowest error of any history row, chosen with hindsight (training never sees it).", "",
              reading(payload["rows"]), "",
              f"Wall time of the whole command in a fresh process with an empty compilation cache: "
              f"**{payload['cli_wall_s'] / 60:.1f} min**: compilation {parts['compile']:.0f} s and training "
              f"{parts['training']:.0f} s (summed over the runs, as each run reports them), the rest "
              f"{parts['rest']:.0f} s (imports, points, reference, learning-rate searches, initialisation, files "
              f"and figures)."]
    if "baseline" in payload:
        base = payload["baseline"]
        lines.append(f"The previous version's default comparison (commit {base['revision']}), run on the same machine "
                     f"in the same session: {base['cli_wall_s'] / 60:.1f} min, so this default takes "
                     f"**{base['ratio']:.2f}x** its time.")
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
    if "baseline" in payload:
        base = payload["baseline"]
        lines.append(f"| the previous version's default comparison (commit {base['revision']}) | "
                     f"{base['cli_wall_s']:.0f} s |")
        lines.append(f"| ratio | **{base['ratio']:.2f}x** |")
        lines += ["", f"Target (the engine issue): at most {ENGINE_TARGET:g}x: "
                      f"{'met' if base['ratio'] <= ENGINE_TARGET else '**missed**'}."]
    lines += ["", f"The same run by part, as its runs report it: compilation {parts['compile']:.0f} s, training "
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
