"""Solve every reference, measure it against its independent truth, and draw docs/figures/reference_*.png.

Run from the repository root: ``python docs/make_reference_figures.py`` (about a minute on 2 CPU cores).
External data is read from ``../shared/data`` (or ``$PINNKIT_SHARED_DATA``); checks whose data is missing are
skipped. Timings include JIT compilation (a fresh process).
"""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path

import numpy as np
import scipy.io
from scipy.interpolate import RegularGridInterpolator

from pinnkit.plotting.references import plot_reference
from pinnkit.reference import burgers_cole_hopf, solve_allen_cahn, solve_burgers, solve_cavity

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"
DATA = Path(os.environ.get("PINNKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def timed(solve, *args, **kwargs):
    start = time.perf_counter()
    result = solve(*args, **kwargs)
    return result, time.perf_counter() - start


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def ghia_deviation(reference, re: float) -> tuple[float, float] | None:
    path = DATA / "ghia1982_cavity_centerlines.csv"
    if not path.exists():
        return None
    with open(path) as file:
        rows = [row for row in csv.DictReader(line for line in file if not line.startswith("#"))]
    x, y = reference.axes
    deviations = []
    for profile, name in (("u_vertical", "u"), ("v_horizontal", "v")):
        pairs = [(float(r["coord"]), float(r["value"])) for r in rows
                 if r["profile"] == profile and float(r["re"]) == re
                 and not (profile == "v_horizontal" and re == 400.0 and float(r["coord"]) == 0.9063)]
        coords, values = np.array(pairs).T
        half = np.full_like(coords, 0.5)
        points = np.stack([half, coords] if name == "u" else [coords, half], axis=1)
        interpolate = RegularGridInterpolator((x, y), reference.output(name), method="cubic")
        deviations.append(float(np.abs(interpolate(points) - values).max()))
    return deviations[0], deviations[1]


def main() -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)

    allen_cahn, seconds = timed(solve_allen_cahn)
    _, warm = timed(solve_allen_cahn)
    line = f"allen-cahn 512x201: {seconds:.2f} s (warm {warm:.2f} s)"
    mat = DATA / "allen_cahn_reference.mat"
    if mat.exists():
        error = relative_l2(allen_cahn.values, scipy.io.loadmat(mat)["uu"])
        line += f", rel. L2 vs allen_cahn_reference.mat {error:.2e}"
    print(line)
    plot_reference(allen_cahn, title="Allen-Cahn reference (spectral MOL + Tsit5)").savefig(
        FIGURES / "reference_allen_cahn.png", dpi=110
    )

    burgers, seconds = timed(solve_burgers)
    _, warm = timed(solve_burgers)
    exact = burgers_cole_hopf(*burgers.axes, 0.01 / math.pi)
    print(f"burgers 256x100: {seconds:.2f} s (warm {warm:.2f} s), rel. L2 vs Cole-Hopf "
          f"{relative_l2(burgers.values, exact):.2e}, max abs {np.abs(burgers.values - exact).max():.2e}")
    plot_reference(burgers, title="Burgers reference, nu = 0.01/pi (spectral MOL + Tsit5)").savefig(
        FIGURES / "reference_burgers.png", dpi=110
    )

    for re in (100.0, 400.0, 1000.0):
        cavity, seconds = timed(solve_cavity, re, num_points=129)
        deviation = ghia_deviation(cavity, re)
        ghia = ""
        if deviation is not None:
            ghia = f", max |du| {deviation[0]:.1e}, max |dv| {deviation[1]:.1e} vs Ghia"
        print(f"cavity Re={re:g} 129x129: {seconds:.2f} s, psi_min {cavity.output('psi').min():.5f}{ghia}")
        if re in (100.0, 1000.0):
            title = f"Lid-driven cavity, Re = {re:g} (colour scales clipped to 1-99%)"
            fig = plot_reference(cavity, title=title, axis_names=("x", "y"), robust=True)
            fig.savefig(FIGURES / f"reference_cavity_re{re:g}.png", dpi=110)


if __name__ == "__main__":
    main()
