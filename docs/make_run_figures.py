"""Train one real pinnkit run, draw its diagnostics (docs/figures/run_*.png) and write what was measured and detected
to benchmarks/results/run_figures.json (rendered into docs/diagnostics.md by ``docs/render.py`` through
``benchmarks/run_figures.py``).

The run: Helmholtz (the problem's defaults), 4x64 tanh MLP, 4000 Latin-hypercube points, Adam (paper schedule) with
RBA, 3000 steps, SNR over B = 100 batches at every history row (every 2 steps below 300, every 50 after),
information measures every 10 rows. The detector runs as every reader of pinnkit runs it
(:func:`pinnkit.diagnostics.transitions.history_phases`) and, for comparison, with the relaxed setting pinnkit's
runs used before. The run's history is kept in ``benchmarks/results/run_figures/history.csv``; ``--from-history``
redraws and re-detects from it without training.

Usage: python docs/make_run_figures.py [--steps 3000] [--reweight rba] [--no-json] [--from-history]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from pinnkit import columns, jsonio, problems
from pinnkit.diagnostics import detect_phases
from pinnkit.diagnostics.transitions import detect_transitions, history_phases
from pinnkit.engine import LogSchedule, Probes
from pinnkit.experiment import RunConfig, run, summarize
from pinnkit.history import History
from pinnkit.plotting.diagnostics import plot_phase_diagnostics

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
sys.path.insert(0, str(ROOT / "benchmarks"))
import run_figures  # noqa: E402
from _machine import RESULTS, log, stamp, write  # noqa: E402
from paper_logs import FORMER_RELAXED  # noqa: E402

HISTORY = RESULTS / "run_figures" / "history.csv"


def detect(history, online: bool = False, **tuning):
    step = history[columns.STEP]
    return detect_phases(step, mean_norm=history[columns.GRAD_MEAN_NORM], std_norm=history[columns.GRAD_STD_NORM],
                         error_iterations=step, error=history[columns.REL_L2], online=online, **tuning)


def draw_information(history, phases, path: Path) -> list[str]:
    step = history[columns.STEP]
    information = Figure(figsize=(10, 3.8), layout="constrained")
    entropy_axis, saturation_axis = information.subplots(1, 2)
    rows = np.isfinite(history[columns.entropy(0)]) & (step > 0)
    prefix = columns.entropy(0).removesuffix("0]")
    layers = sorted((column[len(prefix):-1] for column in history.columns if column.startswith(prefix)), key=int)
    for index in layers:
        entropy_axis.plot(step[rows], history[columns.entropy(int(index))][rows], marker="o", ms=3,
                          label=f"layer {index}")
        saturation_axis.plot(step[rows], history[columns.saturation(int(index))][rows], marker="o", ms=3)
    for axis, label in ((entropy_axis, "binned entropy H(T) [bits]"), (saturation_axis, "saturation [%]")):
        axis.set_xscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        for line, style in ((phases.diffusion_start, ":"), (phases.equilibrium_start, "--")):
            if line is not None:
                axis.axvline(line, color="k", ls=style, lw=1)
    entropy_axis.legend(fontsize=7)
    information.savefig(path, dpi=110)
    return layers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--reweight", default="rba")
    parser.add_argument("--no-json", dest="json", action="store_false",
                        help="draw only; do not write benchmarks/results/run_figures.json")
    parser.add_argument("--from-history", action="store_true",
                        help=f"re-detect and redraw from {HISTORY.relative_to(ROOT)} (the documented run) without "
                             "training")
    args = parser.parse_args()
    config = RunConfig(problem="helmholtz", reweight=args.reweight, steps=args.steps, points=4000, width=64, depth=4,
                       log=LogSchedule(every=50, dense_until=300, dense_every=2),
                       probes=Probes(snr_batches=100, information_every=10))
    documented = args.steps == 3000 and args.reweight == "rba"
    if args.from_history:
        if not documented:
            parser.error("--from-history redraws the documented run (--steps 3000 --reweight rba)")
        previous = jsonio.loads((RESULTS / "run_figures.json").read_text())
        history = History.from_csv(HISTORY)
        payload = {key: previous[key] for key in ("date", "machine", "versions", "command", "run")}
    else:
        payload = stamp()
        start = time.perf_counter()
        result = run(config)
        log(f"trained in {time.perf_counter() - start:.0f} s: {result.status}")
        history = result.history
        summary = summarize(config, result)
        payload["run"] = {"rel_l2": summary.rel_l2, "best_rel_l2": summary.best_rel_l2,
                          "final_loss": summary.final_loss, "wall_time_s": summary.wall_time_s,
                          "compile_time_s": summary.compile_time_s, "steps_per_s": summary.steps_per_s,
                          "status": summary.status}
        payload["run"]["rows"] = len(history)
    phases = history_phases(history)
    name = f"run_helmholtz_{args.reweight}"
    figure = plot_phase_diagnostics(
        history[columns.STEP], history[columns.SNR], order=history[columns.ORDER], adam_snr=history[columns.ADAM_SNR],
        homogeneity=history[columns.HOMOGENEITY], error_iterations=history[columns.STEP], error=history[columns.REL_L2],
        phases=phases, title=f"pinnkit: Helmholtz, Adam + {args.reweight}, {config.depth}x{config.width}, "
                             f"{config.points} points",
    )
    FIGURES.mkdir(exist_ok=True)
    figure.savefig(FIGURES / f"{name}_diagnostics.png", dpi=110)
    layers = draw_information(history, phases, FIGURES / f"{name}_information.png")
    keys = ("diffusion_start", "equilibrium_start", "equilibrium_from_snr", "error_drop", "diffusion_confirmed_at",
            "equilibrium_confirmed_at", "reasons")
    detections = {
        "detector": {key: phases.as_dict()[key] for key in keys},
        "detector_online": {key: history_phases(history, online=True).as_dict()[key] for key in keys},
        "former_relaxed": {key: detect(history, **FORMER_RELAXED).as_dict()[key] for key in keys},
        "detect_transitions": detect_transitions(history),
    }
    payload |= {
        "config": config.to_dict(),
        "problem_params": {key: value for key, value in
                           problems.get(config.problem, **dict(config.problem_params)).params.items()
                           if key in ("a1", "a2", "k")},
        "detections": detections,
        "facts": run_figures.facts(history, phases, layers),
    }
    if args.json and documented:
        if not args.from_history:
            HISTORY.parent.mkdir(parents=True, exist_ok=True)
            history.to_csv(HISTORY)
        log(f"wrote {write('run_figures', payload)}")
    elif args.json:
        log("not the documented run (--steps 3000 --reweight rba): benchmarks/results/run_figures.json left alone")
    print(run_figures.markdown_setup(payload))
    print(run_figures.markdown_detections(payload))


if __name__ == "__main__":
    main()
