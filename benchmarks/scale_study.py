"""From the paper's setting down: the smallest configuration whose runs still show fitting -> diffusion ->
equilibrium with the error fall at the equilibrium.

Each configuration is one of the paper's cases (``pinnkit.paper_cases``: raw coordinates, Xavier-normal weights,
Latin-hypercube points, Adam 1e-3 with the paper's decay, RBA from zero weights advanced before each gradient,
consecutive SNR batches) with a smaller network, fewer points, fewer SNR batches and fewer steps. Seeds run
vmapped in one program. For each run: the **error fall** (``benchmarks/phases.py``'s definition, from the test error
alone: the middle, in log scale, of a fall of at least 10x from the peak), the diffusion start and the equilibrium
the detector finds (``history_phases``, offline, the test error corroborating), whether the equilibrium lies within
1.5x of the fall (the coincidence), and the wall time of the configuration (compilation included).

    python benchmarks/scale_study.py [--case helmholtz] [--seeds 2] [--configs 64x4:6400:50:3000 ...]

A configuration is ``WIDTHxDEPTH:POINTS:BATCHES:STEPS``. Writes (merging with what is there)
``benchmarks/results/scale_study.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from _machine import RESULTS, log, stamp, write
from phases import error_fall, within

from pinnkit import columns
from pinnkit.diagnostics.transitions import history_phases
from pinnkit.engine import LogSchedule, Probes
from pinnkit.experiment import run_stacked, setup
from pinnkit.paper_cases import PAPER_CASES

MEASURES = ("src/pinnkit/paper_cases.py", "src/pinnkit/engine", "src/pinnkit/reweight", "src/pinnkit/problems",
            "src/pinnkit/diagnostics", "src/pinnkit/nn.py", "src/pinnkit/experiment.py", "benchmarks/phases.py")

DEFAULT_CONFIGS = {
    "helmholtz": ("64x4:6400:50:3000", "48x4:4000:40:3000", "32x4:2500:25:4000"),
    "allen-cahn": ("64x4:6400:50:6000", "32x4:2500:25:6000"),
}
LOG = LogSchedule(every=50, dense_until=300, dense_every=2)


def parse(text: str) -> dict:
    try:
        shape, points, batches, steps = text.split(":")
        width, depth = shape.split("x")
        return {"width": int(width), "depth": int(depth), "points": int(points), "snr_batches": int(batches),
                "steps": int(steps)}
    except ValueError:
        raise SystemExit(f"bad configuration {text!r}: expected WIDTHxDEPTH:POINTS:BATCHES:STEPS") from None


def study(case_name: str, text: str, seeds: int) -> dict:
    import jax

    sizes = parse(text)
    case = PAPER_CASES[case_name]
    config = case.run_config(steps=sizes["steps"], width=sizes["width"], depth=sizes["depth"],
                             points=sizes["points"], log=LOG,
                             probes=Probes(snr_batches=sizes["snr_batches"], batch_split="contiguous"))
    start = time.perf_counter()
    with jax.enable_x64(config.double_precision):
        built = setup(config)
        results = run_stacked(config, built, list(range(seeds)))
    wall = time.perf_counter() - start
    runs = []
    for seed, result in enumerate(results):
        phases = history_phases(result.history)
        fall = error_fall(result.history)
        runs.append({"seed": seed, **fall, "final_error": float(np.asarray(result.history[columns.REL_L2])[-1]),
                     "diffusion_start": phases.diffusion_start, "equilibrium_start": phases.equilibrium_start,
                     "equilibrium_from_snr": phases.equilibrium_from_snr,
                     "coincides": within(phases.equilibrium_start, fall["location"]),
                     "sequence": phases.diffusion_start is not None and phases.equilibrium_start is not None
                     and phases.diffusion_start < phases.equilibrium_start, "reasons": list(phases.reasons)})
        log(f"  seed {seed}: error {fall['peak']} -> {fall['final']}, fall at {fall['location']}; diffusion "
            f"{phases.diffusion_start}, equilibrium {phases.equilibrium_start}")
    return {"case": case_name, "configuration": text, **sizes, "seeds": seeds, "wall_s": wall,
            "compile_s": max(float(r.compile_time_s) for r in results),
            "train_s": max(float(r.wall_time_s) for r in results),
            "coincidences": sum(run["coincides"] for run in runs), "runs": runs}


def markdown(payload: dict) -> str:
    """The scale-study table of docs/reproduction.md: one row per configuration and seed."""
    lines = ["| case | configuration (width x depth : points : batches : steps) | commit | wall s (all seeds) | seed | "
             "error peak -> final | error fall at | diffusion | equilibrium | within 1.5x |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    shown = lambda value: "-" if value is None else f"{value:,}"  # noqa: E731
    for entry in payload["configurations"].values():
        for run in entry["runs"]:
            commit = (entry["measured"]["provenance"].get("commit") or "?")[:7]
            lines.append(f"| {entry['case']} | {entry['configuration']} | `{commit}` | {entry['wall_s']:.0f} | "
                         f"{run['seed']} | "
                         f"{run['peak']:.3g} -> {run['final']:.3g} | {shown(run['location'])} | "
                         f"{shown(run['diffusion_start'])} | {shown(run['equilibrium_start'])} | "
                         f"{'yes' if run['coincides'] else 'no'} |")
    first = next(iter(payload["configurations"].values()), None)
    if first is not None:
        machine = first["measured"]["machine"]
        lines += ["", f"Measured {first['measured']['date']} on {machine['cores']} cores of a {machine['cpu']} (load "
                      f"average {machine['load_average_at_start'][0]:.1f} at the start of the first configuration; "
                      "other jobs shared the machine, so the wall times are upper bounds)."]
    lines.append("Each configuration was measured at the commit its row names; the line below names the last.")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=sorted(DEFAULT_CONFIGS), default="helmholtz")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--configs", nargs="*", default=None)
    args = parser.parse_args()
    path = RESULTS / "scale_study.json"
    payload = json.loads(path.read_text()) if path.is_file() else {}
    entries = payload.get("configurations", {})
    for text in args.configs or DEFAULT_CONFIGS[args.case]:
        log(f"{args.case} {text}, {args.seeds} seeds")
        entries[f"{args.case} {text}"] = {**study(args.case, text, args.seeds), "measured": stamp()}
        write("scale_study", {**stamp(), "configurations": entries})
    return 0


if __name__ == "__main__":
    sys.exit(main())
