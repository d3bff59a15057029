"""Draw the reference solutions into docs/figures/reference_*.png.

Run from the repository root: ``python docs/make_reference_figures.py`` (a few solves of a few seconds each on 2
CPU cores). The accuracy and timing numbers of docs/problems.md come from ``python benchmarks/references.py``,
not from this script.
"""

from __future__ import annotations

from pathlib import Path

from pinnkit.plotting.references import plot_reference
from pinnkit.reference import solve_allen_cahn, solve_burgers, solve_cavity

FIGURES = Path(__file__).resolve().parent / "figures"


def main() -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    figures = {
        "reference_allen_cahn.png": plot_reference(
            solve_allen_cahn(), title="Allen-Cahn reference (spectral MOL + Tsit5)"),
        "reference_burgers.png": plot_reference(
            solve_burgers(), title="Burgers reference, nu = 0.01/pi (spectral MOL + Tsit5)"),
    }
    for reynolds in (100.0, 1000.0):
        figures[f"reference_cavity_re{reynolds:g}.png"] = plot_reference(
            solve_cavity(reynolds), title=f"Lid-driven cavity, Re = {reynolds:g} (colour scales clipped to 1-99%)",
            axis_names=("x", "y"), robust=True)
    for name, figure in figures.items():
        figure.savefig(FIGURES / name, dpi=110)
        print(FIGURES / name)


if __name__ == "__main__":
    main()
