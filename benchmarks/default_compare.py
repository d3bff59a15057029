"""The default comparison (``pinnkit compare`` with no options): its results, and its wall time against the
previous version's default comparison, measured side by side on the same machine.

1. ``pinnkit compare`` as a user runs it (a fresh process, an empty compilation cache): total wall time.
2. The same grid through the Python API with timers: set-up (points, reference, learning-rate searches, model
   initialisation, everything not below), compilation, training, reporting (files and figures); its results are
   the table the README shows.
3. The previous version's default comparison (``--baseline REV``, default: the commit before the engine was
   split), from a ``git worktree`` of that revision run with this environment's packages: total wall time.

    python benchmarks/default_compare.py --json [--baseline 142c21d] [--no-baseline]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import log, stamp, write

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "142c21d"


def cli_wall(python_path: str | None, out: Path, cache: Path) -> float:
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


def timed_grid(folder: Path) -> dict:
    """The default grid through the library, timed by part; its rows."""

    from pinnkit.compare import compare, preset
    from pinnkit.report import write_comparison

    config = preset("quick")
    start = time.perf_counter()
    runs = compare(config)
    grid = time.perf_counter() - start
    start = time.perf_counter()
    folder.mkdir()
    write_comparison(folder, config, runs)
    reporting = time.perf_counter() - start
    # The README shows this run's figures.
    for name in FIGURES:
        shutil.copyfile(folder / "figures" / f"{name}.png", DOCS_FIGURES / f"compare_default_{name}.png")
    compile_s = sum(run.row["compile_time_s"] for run in runs)
    training_s = sum(run.row["wall_time_s"] for run in runs)
    rows = [{key: value for key, value in run.row.items() if key != "learning_rate_search"} | {
        "learning_rate_search": run.row.get("learning_rate_search")} for run in runs]
    return {"config": config.to_dict(), "rows": rows, "breakdown_s": {
        "set_up_and_rest": grid - compile_s - training_s, "compile": compile_s, "training": training_s,
        "reporting": reporting, "total": grid + reporting}}


def measure(args) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        log("1/3: pinnkit compare (fresh process, empty cache)")
        current = cli_wall(None, scratch / "current", scratch / "cache-current")
        log(f"  {current:.1f} s")
        log("2/3: the same grid, timed by part")
        timed = timed_grid(scratch / "timed")
        log(f"  {timed['breakdown_s']}")
        out = {"cli_wall_s": current, **timed}
        if args.baseline:
            log(f"3/3: the default comparison at {args.baseline}")
            tree = scratch / "baseline"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.baseline],
                           check=True, capture_output=True)
            try:
                revision = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], check=True,
                                          capture_output=True, text=True).stdout.strip()
                baseline = cli_wall(f"{tree / 'src'}:{tree / 'cli'}", scratch / "old", scratch / "cache-old")
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
    for row in payload["rows"]:
        rate = row.get("learning_rate")
        rate = "line search" if rate is None and row["optimizer"] in ("lbfgs", "bfgs", "ssbfgs", "ssbroyden") else \
            (_number(rate) if rate is not None else "1e-3")
        lines.append(
            f"| {row['optimizer']} | {row['reweight']} | {row['precision']} | {rate} | {_number(row['rel_l2'])} | "
            f"{_number(row['best_rel_l2'])} | {_number(row['final_mse'])} | {row['wall_time_s']:.1f} | "
            f"{row['compile_time_s']:.1f} | {row['diffusion_start'] or '-'} | {row['equilibrium_start'] or '-'} |")
    parts = payload["breakdown_s"]
    lines += ["", "\\* the lowest error of any history row, chosen with hindsight (training never sees it).", "",
              f"Wall time of the whole command in a fresh process with an empty compilation cache: "
              f"**{payload['cli_wall_s'] / 60:.1f} min**. Timed by part through the library: set-up and the rest "
              f"(points, reference, learning-rate searches, initialisation) {parts['set_up_and_rest']:.0f} s, "
              f"compilation {parts['compile']:.0f} s, training {parts['training']:.0f} s, reporting "
              f"{parts['reporting']:.0f} s."]
    if "baseline" in payload:
        base = payload["baseline"]
        lines.append(f"The previous version's default comparison (commit {base['revision']}), run on the same machine "
                     f"in the same session: {base['cli_wall_s'] / 60:.1f} min, so the new default takes "
                     f"**{base['ratio']:.2f}x** its time.")
    return "\n".join(lines)


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
    lines += ["", f"The same grid through the library, by part: set-up and the rest (points, reference, learning-rate "
                  f"searches, initialisation) {parts['set_up_and_rest']:.0f} s, compilation {parts['compile']:.0f} s, "
                  f"training {parts['training']:.0f} s, reporting (files and figures) {parts['reporting']:.0f} s."]
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
