"""Train one real pinnkit run and draw its diagnostics (docs/figures/run_*.png), printing what was detected.

The run: Helmholtz (a1 = 1, a2 = 4), 4x64 tanh MLP, 4000 Latin-hypercube points, Adam (paper schedule) with RBA,
3000 steps, SNR over B = 100 batches every 2 steps below 300 and every 50 after, information measures every 10
history rows. About 2-3 minutes on 2 CPU cores.

Usage: python docs/make_run_figures.py [--steps 3000] [--reweight rba]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from pinnkit.diagnostics import detect_phases
from pinnkit.experiment import EQUILIBRIUM_ORDER, EQUILIBRIUM_RISE, RunConfig, run, summarize
from pinnkit.plotting.diagnostics import plot_phase_diagnostics

FIGURES = Path(__file__).resolve().parent / "figures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--reweight", default="rba")
    args = parser.parse_args()
    config = RunConfig(problem="helmholtz", reweight=args.reweight, steps=args.steps, points=4000,
                       information_every=10)
    result = run(config)
    history = result.history
    step = history["step"]
    phases = detect_phases(step, mean_norm=history["grad_mean_norm"], std_norm=history["grad_std_norm"],
                           error_iterations=step, error=history["rel_l2"], equilibrium_order=EQUILIBRIUM_ORDER,
                           min_rise=EQUILIBRIUM_RISE)
    name = f"run_helmholtz_{args.reweight}"
    figure = plot_phase_diagnostics(
        step, history["snr"], order=history["order"], adam_snr=history["adam_snr"],
        homogeneity=history["homogeneity"], error_iterations=step, error=history["rel_l2"], phases=phases,
        title=f"pinnkit: Helmholtz, Adam + {args.reweight}, 4x64, 4000 points",
    )
    FIGURES.mkdir(exist_ok=True)
    figure.savefig(FIGURES / f"{name}_diagnostics.png", dpi=110)

    information = Figure(figsize=(10, 3.8), layout="constrained")
    entropy_axis, saturation_axis = information.subplots(1, 2)
    rows = np.isfinite(history["entropy[0]"])
    layers = sorted(column for column in history.columns if column.startswith("entropy["))
    for column in layers:
        index = column[len("entropy["):-1]
        entropy_axis.plot(step[rows], history[column][rows], marker="o", ms=3, label=f"layer {index}")
        saturation_axis.plot(step[rows], history[f"saturation[{index}]"][rows], marker="o", ms=3)
    for axis, label in ((entropy_axis, "binned entropy H(T) [bits]"), (saturation_axis, "saturation [%]")):
        axis.set_xscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        for line, style in ((phases.diffusion_start, ":"), (phases.equilibrium_start, "--")):
            if line is not None:
                axis.axvline(line, color="k", ls=style, lw=1)
    entropy_axis.legend(fontsize=7)
    information.savefig(FIGURES / f"{name}_information.png", dpi=110)
    summary = summarize(config, result)
    print(json.dumps({
        "rel_l2": summary["rel_l2"], "best_rel_l2": summary["best_rel_l2"], "wall_time_s": summary["wall_time_s"],
        "diffusion_start": phases.diffusion_start, "equilibrium_start": phases.equilibrium_start,
        "equilibrium_from_snr": phases.equilibrium_from_snr, "error_drop": phases.error_drop,
        "reasons": phases.reasons,
    }, indent=2))


if __name__ == "__main__":
    main()
