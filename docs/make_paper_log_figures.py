"""Draw docs/figures/detector_on_authors_log_<run>.png: the phase detector on the authors' four training logs.

Usage: python docs/make_paper_log_figures.py [--data DIR]   (default: $PINNKIT_SHARED_DATA or ../shared/data)

Reads <run>_gradients.csv and <run>_errors.csv from DIR/paper_logs, detects the phases offline with the test error
and ``detect_phases``'s defaults (what ``pinnkit detect --errors`` reports) and draws them with the authors'
hand-placed lines (read from DIR/paper_logs/README.md). The detection tables of docs/diagnostics.md come from
``python benchmarks/paper_logs.py``, not from this script.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pinnkit import columns
from pinnkit.diagnostics import detect_phases, read_error_log, read_gradient_log
from pinnkit.plotting.diagnostics import plot_phase_diagnostics

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from paper_logs import RUNS, default_data, hand_lines  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="the shared data folder")
    arguments = parser.parse_args()
    folder = arguments.data / "paper_logs"
    if not folder.is_dir():
        raise SystemExit(f"no paper logs in {folder} (pass --data or set PINNKIT_SHARED_DATA)")
    figures = Path(__file__).resolve().parent / "figures"
    figures.mkdir(exist_ok=True)
    hands = hand_lines(folder)
    for run in RUNS:
        gradients = read_gradient_log(folder / f"{run}_gradients.csv")
        errors = read_error_log(folder / f"{run}_errors.csv")
        phases = detect_phases(gradients[columns.ITERATION], mean_norm=gradients[columns.GRAD_MEAN_NORM],
                               std_norm=gradients[columns.GRAD_STD_NORM], error_iterations=errors[columns.ITERATION],
                               error=errors[columns.REL_L2])
        hand_diffusion, hand_equilibrium = hands[run]
        figure = plot_phase_diagnostics(
            gradients[columns.ITERATION], gradients[columns.GRAD_MEAN_NORM] / gradients[columns.GRAD_STD_NORM],
            adam_snr=gradients["adam_m_norm"] / gradients["adam_v_norm"],
            error_iterations=errors[columns.ITERATION], error=errors[columns.REL_L2], phases=phases,
            hand_lines={"hand-placed (paper)": hand_diffusion, None: hand_equilibrium},
            title=f"{run}: detected (offline, with error) vs hand-placed lines",
        )
        path = figures / f"detector_on_authors_log_{run}.png"
        figure.savefig(path, dpi=90)
        print(path)


if __name__ == "__main__":
    main()
