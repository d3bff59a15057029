"""Burgers reference: the method-of-lines solver against the exact Cole-Hopf solution."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pinnkit.reference import burgers_cole_hopf, solve_burgers

VISCOSITY = 0.01 / math.pi


@pytest.fixture(scope="module")
def reference():
    return solve_burgers()


def test_default_grid_is_the_classic_shock_dataset_grid(reference):
    x, t = reference.axes
    np.testing.assert_allclose(x, np.linspace(-1.0, 1.0, 256))
    np.testing.assert_allclose(t, 0.01 * np.arange(100))
    assert reference.values.shape == (256, 100) and reference.output_names == ("u",)


def test_method_of_lines_matches_cole_hopf_through_the_shock(reference):
    exact = burgers_cole_hopf(*reference.axes, VISCOSITY)
    relative_l2 = np.linalg.norm(reference.values - exact) / np.linalg.norm(exact)
    assert relative_l2 <= 1e-8, relative_l2
    # The shock itself (steepest at late times, |x| < 0.05) is as accurate as the rest.
    x, t = reference.axes
    near_shock = np.abs(x) < 0.05
    assert np.abs(reference.values[near_shock][:, t > 0.5] - exact[near_shock][:, t > 0.5]).max() < 1e-7


def test_solution_is_odd_and_vanishes_on_the_walls(reference):
    np.testing.assert_allclose(reference.values, -reference.values[::-1], rtol=0, atol=1e-8)
    np.testing.assert_array_equal(reference.values[[0, -1]], 0.0)


def test_cole_hopf_starts_from_the_initial_condition_with_the_pde_slope():
    # At t -> 0: u = u0 + t (-u0 u0_x + nu u0_xx) + O(t^2), u0 = -sin(pi x).
    x = np.linspace(-0.9, 0.9, 7)
    t = 1e-5
    u = burgers_cole_hopf(x, np.array([0.0, t]), VISCOSITY)
    np.testing.assert_allclose(u[:, 0], -np.sin(np.pi * x), atol=1e-15)
    slope = -np.pi * np.sin(np.pi * x) * np.cos(np.pi * x) + VISCOSITY * np.pi**2 * np.sin(np.pi * x)
    np.testing.assert_allclose((u[:, 1] - u[:, 0]) / t, slope, rtol=0, atol=1e-3)


def test_cole_hopf_quadrature_has_converged():
    x, t = np.linspace(-1.0, 1.0, 41), np.array([0.3, 0.99])
    np.testing.assert_allclose(
        burgers_cole_hopf(x, t, VISCOSITY, num_nodes=100), burgers_cole_hopf(x, t, VISCOSITY, num_nodes=300),
        rtol=0, atol=1e-12,
    )


def test_large_viscosity_decays_like_the_heat_equation():
    # With nu large the nonlinearity is negligible at late times: the mode decays like exp(-nu pi^2 t).
    nu, t = 10.0, np.array([0.05])
    x = np.array([0.5])
    u = burgers_cole_hopf(x, t, nu)[0, 0]
    assert u == pytest.approx(-np.exp(-nu * np.pi**2 * t[0]), rel=1e-2)


def test_custom_output_times_and_viscosity_agree_with_cole_hopf():
    ref = solve_burgers(33, 6, viscosity=0.05, dt=0.1, num_modes=256, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ref.axes[1], 0.1 * np.arange(6))
    exact = burgers_cole_hopf(*ref.axes, 0.05)
    np.testing.assert_allclose(ref.values, exact, rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_x": 1}, "num_x"),
        ({"num_t": 0}, "num_t"),
        ({"num_modes": 101}, "num_modes"),
        ({"viscosity": 0.0}, "viscosity"),
        ({"dt": -0.01}, "dt"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        solve_burgers(**kwargs)


def test_cole_hopf_rejects_negative_time():
    with pytest.raises(ValueError, match="t must be"):
        burgers_cole_hopf(np.zeros(2), np.array([-1.0]), VISCOSITY)
