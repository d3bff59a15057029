"""Lid-driven cavity reference: Ghia, Ghia & Shin (1982) centrelines, boundary conditions, pressure, order."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy.integrate import cumulative_trapezoid
from scipy.interpolate import RegularGridInterpolator

from pinnkit.plotting.references import plot_reference
from pinnkit.reference import solve_cavity

# Ghia's Table II gives v(0.9063, 0.5) = -0.23827 at Re = 400, between neighbours -0.22847 (x = 0.9453) and
# -0.44993 (x = 0.8594) on a profile that is smooth there: a misprint (our solution has -0.382 there).
MISPRINTS = {("v_horizontal", 400.0, 0.9063)}


def _ghia(shared_data, re: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    path = shared_data / "ghia1982_cavity_centerlines.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with open(path) as file:
        rows = list(csv.DictReader(line for line in file if not line.startswith("#")))
    profiles = {}
    for profile in ("u_vertical", "v_horizontal"):
        points = [
            (float(row["coord"]), float(row["value"]))
            for row in rows
            if row["profile"] == profile and float(row["re"]) == re
            and (profile, re, float(row["coord"])) not in MISPRINTS
        ]
        assert len(points) >= 16
        profiles[profile] = (np.array([c for c, _ in points]), np.array([v for _, v in points]))
    return profiles


def _centreline_deviation(reference, profiles) -> tuple[float, float]:
    """Max |ours - Ghia| on u(0.5, y) and v(x, 0.5), ours interpolated (cubic) to Ghia's coordinates."""
    x, y = reference.axes
    deviations = []
    for profile, name in (("u_vertical", "u"), ("v_horizontal", "v")):
        coords, values = profiles[profile]
        interpolate = RegularGridInterpolator((x, y), reference.output(name), method="cubic")
        half = np.full_like(coords, 0.5)
        points = np.stack([half, coords] if name == "u" else [coords, half], axis=1)
        deviations.append(float(np.abs(interpolate(points) - values).max()))
    return deviations[0], deviations[1]


@pytest.fixture(scope="module")
def re100():
    return solve_cavity(100.0, num_points=129)


@pytest.fixture(scope="module")
def re1000():
    return solve_cavity(1000.0, num_points=129)


@pytest.mark.slow
def test_re100_centrelines_match_ghia(re100, shared_data):
    du, dv = _centreline_deviation(re100, _ghia(shared_data, 100.0))
    # Ghia's 129 x 129 table is itself good to ~1e-2; we measured 4.3e-3 (u) and 8.4e-3 (v).
    assert du <= 1e-2 and dv <= 1e-2, (du, dv)


@pytest.mark.slow
def test_re400_centrelines_match_ghia(shared_data):
    du, dv = _centreline_deviation(solve_cavity(400.0, num_points=129), _ghia(shared_data, 400.0))
    assert du <= 1e-2 and dv <= 1e-2, (du, dv)


@pytest.mark.slow
def test_re1000_centrelines_match_ghia(re1000, shared_data):
    du, dv = _centreline_deviation(re1000, _ghia(shared_data, 1000.0))
    # Measured 1.4e-2 (u) and 7.9e-3 (v); at 257 points u moves closer to Ghia (2.9e-3) but v moves away
    # (1.3e-2): both grids differ from Ghia by about the accuracy of his table.
    assert du <= 2e-2 and dv <= 2e-2, (du, dv)


def test_layout_and_boundary_conditions(re100):
    assert re100.output_names == ("psi", "u", "v", "p") and re100.values.shape == (129, 129, 4)
    np.testing.assert_allclose(re100.axes[0], np.linspace(0.0, 1.0, 129))
    psi, u, v, p = (re100.output(name) for name in re100.output_names)
    for wall in (psi[0], psi[-1], psi[:, 0], psi[:, -1], v[0], v[-1], v[:, 0], v[:, -1]):
        np.testing.assert_array_equal(wall, 0.0)
    for wall in (u[0, :-1], u[-1, :-1], u[:, 0]):
        np.testing.assert_array_equal(wall, 0.0)
    np.testing.assert_array_equal(u[:, -1], 1.0)
    assert abs(p.mean()) < 1e-12


def test_sign_convention_u_is_psi_y_and_the_vortex_turns_clockwise(re100):
    psi, u, v = (re100.output(name) for name in ("psi", "u", "v"))
    h = 1.0 / 128
    np.testing.assert_allclose(u[1:-1, 1:-1], (psi[1:-1, 2:] - psi[1:-1, :-2]) / (2 * h), atol=1e-12)
    np.testing.assert_allclose(v[1:-1, 1:-1], -(psi[2:, 1:-1] - psi[:-2, 1:-1]) / (2 * h), atol=1e-12)
    # Dragged by the lid: psi < 0 inside, flow to the right at the top and back to the left below.
    assert psi[1:-1, 1:-1].max() < 1e-3 and psi.min() < -0.1
    assert u[64, 120] > 0.3 and u[64, 30] < -0.1


def _line_integral_deviation(reference, reynolds: float) -> tuple[float, float]:
    """Pressure differences along both centrelines against the line integrals of the momentum equation.

    grad p = -(u . grad) u + nu laplace(u), evaluated with central differences of the velocities (another
    discretisation than the solver's Poisson problem); returns the max deviation relative to the range of p.
    """
    x = reference.axes[0]
    n, h = x.size, x[1] - x[0]
    u, v, p = (reference.output(name) for name in ("u", "v", "p"))
    u_x, u_y = np.gradient(u, h)
    v_x, v_y = np.gradient(v, h)

    def laplace(field):
        out = np.zeros_like(field)
        out[1:-1, 1:-1] = (
            field[2:, 1:-1] + field[:-2, 1:-1] + field[1:-1, 2:] + field[1:-1, :-2] - 4 * field[1:-1, 1:-1]
        ) / h**2
        return out

    force_x = -(u * u_x + v * u_y) + laplace(u) / reynolds
    force_y = -(u * v_x + v * v_y) + laplace(v) / reynolds
    mid = n // 2
    inner = slice(1, n - 1)
    horizontal = cumulative_trapezoid(force_x[inner, mid], x[inner], initial=0.0)
    along_x = p[inner, mid] - p[inner, mid][0]
    # Vertically stop below y = 0.9: the lid corners' singularity pollutes the top rows.
    top = np.searchsorted(x, 0.9)
    vertical = cumulative_trapezoid(force_y[mid, 1:top], x[1:top], initial=0.0)
    along_y = p[mid, 1:top] - p[mid, 1]
    return (
        float(np.abs(along_x - horizontal).max() / np.ptp(along_x)),
        float(np.abs(along_y - vertical).max() / np.ptp(along_y)),
    )


@pytest.mark.parametrize("which", ["re100", "re1000"])
def test_pressure_gradient_balances_the_momentum_equation(which, request):
    reference = request.getfixturevalue(which)
    reynolds = 100.0 if which == "re100" else 1000.0
    horizontal, vertical = _line_integral_deviation(reference, reynolds)
    # Measured 2.1% / 1.8% (Re 100) and 1.3% / 2.0% (Re 1000); a wrong sign or scale would give >= 100%.
    assert horizontal < 0.05 and vertical < 0.05, (horizontal, vertical)


@pytest.mark.slow
def test_grid_refinement_is_second_order():
    # The minimum of psi (the main vortex strength) converges at the scheme's order: errors shrink ~4x per
    # halving of h, so successive differences do too.
    minima = [solve_cavity(100.0, num_points=n).output("psi").min() for n in (17, 33, 65)]
    ratio = (minima[0] - minima[1]) / (minima[1] - minima[2])
    assert 3.0 < ratio < 5.5, (minima, ratio)


def test_plot_reference_draws_every_output(re100):
    fig = plot_reference(re100, title="cavity", axis_names=("x", "y"), robust=True)
    assert len(fig.axes) == 8  # four maps, four colour bars
    titles = [ax.get_title() for ax in fig.axes]
    assert {"psi", "u", "v", "p"} <= set(titles)
    with pytest.raises(ValueError, match="2-D"):
        plot_reference(type(re100)((re100.axes[0],), re100.values[:, 0, 1], ("u",)))


@pytest.mark.parametrize(
    "kwargs, message",
    [({"reynolds": -1.0}, "reynolds"), ({"num_points": 3}, "num_points"), ({"tol": 0.0}, "tol"),
     ({"continuation_factor": 1.0}, "continuation_factor")],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        solve_cavity(**kwargs)
