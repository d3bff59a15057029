"""Draw docs/figures/detector_on_authors_log_<run>.png and print the detection table for the authors' logs.

Usage: python docs/make_paper_log_figures.py [--data DIR]   (default: $PINNKIT_SHARED_DATA or ../shared/data)

Reads <run>_gradients.csv and <run>_errors.csv from DIR/paper_logs for the four shared runs, detects the
phases (offline and online, SNR only and with the test error), prints a markdown table against the authors'
hand-placed lines and saves one figure per run next to this script.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pinnkit.diagnostics import detect_phases, read_error_log, read_gradient_log
from pinnkit.plotting.diagnostics import plot_phase_diagnostics

HAND_LINES = {
    "allen_cahn_vanilla": (150, 91_700),
    "allen_cahn_rba": (150, 11_100),
    "cavity_vanilla": (150, 20_000),
    "cavity_rba": (150, 20_000),
}


def default_data() -> Path:
    override = os.environ.get("PINNKIT_SHARED_DATA")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "shared" / "data"


def _cell(found: int | None, hand: int) -> str:
    return "none" if found is None else f"{found:,} ({found / hand:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="the shared data folder")
    arguments = parser.parse_args()
    folder = arguments.data / "paper_logs"
    if not folder.is_dir():
        raise SystemExit(f"no paper logs in {folder} (pass --data or set PINNKIT_SHARED_DATA)")
    figures = Path(__file__).resolve().parent / "figures"
    figures.mkdir(exist_ok=True)
    header = ["run", "mode", "error used", "diffusion (hand)", "found (ratio)"]
    header += ["equilibrium (hand)", "found (ratio)"]
    print("| " + " | ".join(header) + " |")
    print("|---|---|---|---|---|---|---|")
    for run, (hand_diffusion, hand_equilibrium) in HAND_LINES.items():
        gradients = read_gradient_log(folder / f"{run}_gradients.csv")
        errors = read_error_log(folder / f"{run}_errors.csv")
        snr = gradients["grad_mean_norm"] / gradients["grad_std_norm"]
        shown = None
        for online in (False, True):
            for use_error in (False, True):
                kwargs = {}
                if use_error:
                    kwargs = {"error_iterations": errors["iteration"], "error": errors["rel_l2"]}
                phases = detect_phases(gradients["iteration"], snr, online=online, **kwargs)
                print(
                    f"| {run} | {'online' if online else 'offline'} | {'yes' if use_error else 'no'} "
                    f"| {hand_diffusion:,} | {_cell(phases.diffusion_start, hand_diffusion)} "
                    f"| {hand_equilibrium:,} | {_cell(phases.equilibrium_start, hand_equilibrium)} |"
                )
                if not online and use_error:
                    shown = phases
        figure = plot_phase_diagnostics(
            gradients["iteration"], snr,
            adam_snr=gradients["adam_m_norm"] / gradients["adam_v_norm"],
            error_iterations=errors["iteration"], error=errors["rel_l2"],
            phases=shown,
            hand_lines={"hand-placed (paper)": hand_diffusion, None: hand_equilibrium},
            title=f"{run}: detected (offline, with error) vs hand-placed lines",
        )
        figure.savefig(figures / f"detector_on_authors_log_{run}.png", dpi=90)


if __name__ == "__main__":
    main()
