"""Allen-Cahn reference: against the standard Chebfun dataset and the exact heat-equation limit."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.io

from pinnkit.reference import solve_allen_cahn


def test_matches_the_standard_dataset(shared_data):
    path = shared_data / "allen_cahn_reference.mat"
    if not path.exists():
        pytest.skip(f"{path} not found")
    data = scipy.io.loadmat(path)
    expected = data["uu"]  # x by t
    ref = solve_allen_cahn()
    np.testing.assert_allclose(ref.axes[0], data["x"].ravel(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(ref.axes[1], data["tt"].ravel(), rtol=0, atol=1e-14)
    assert ref.values.shape == expected.shape == (512, 201)
    relative_l2 = np.linalg.norm(ref.values - expected) / np.linalg.norm(expected)
    assert relative_l2 <= 1e-6, relative_l2


def test_without_reaction_it_is_the_exact_heat_equation_solution():
    # u_t = d u_xx, periodic: every Fourier mode decays as exp(-d k^2 t), k = pi m.
    diffusion, num_x = 0.05, 32
    ref = solve_allen_cahn(num_x, 5, diffusion=diffusion, reaction=0.0, t_final=0.5)
    x, t = ref.axes
    initial = x**2 * np.cos(np.pi * x)
    coefficients = np.fft.rfft(initial)
    wavenumbers = np.pi * np.arange(coefficients.size)
    decay = np.exp(-diffusion * np.outer(wavenumbers**2, t))
    exact = np.fft.irfft(coefficients[:, None] * decay, n=num_x, axis=0)
    np.testing.assert_allclose(ref.values, exact, rtol=0, atol=1e-9)


def test_without_diffusion_each_point_follows_the_logistic_ode():
    # u_t = r (u - u^3) pointwise: u(t) = u0 e^{rt} / sqrt(1 + u0^2 (e^{2rt} - 1)).
    reaction = 5.0
    ref = solve_allen_cahn(16, 4, diffusion=1e-300, reaction=reaction, t_final=0.6)
    x, t = ref.axes
    u0 = (x**2 * np.cos(np.pi * x))[:, None]
    growth = np.exp(reaction * t)[None, :]
    exact = u0 * growth / np.sqrt(1.0 + u0**2 * (growth**2 - 1.0))
    np.testing.assert_allclose(ref.values, exact, rtol=0, atol=1e-8)


def test_grid_and_output_layout():
    ref = solve_allen_cahn(8, 3, t_final=0.2, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ref.axes[0], -1.0 + 2.0 * np.arange(8) / 8)
    np.testing.assert_allclose(ref.axes[1], [0.0, 0.1, 0.2])
    assert ref.output_names == ("u",) and ref.values.shape == (8, 3)
    np.testing.assert_allclose(ref.values[:, 0], ref.axes[0] ** 2 * np.cos(np.pi * ref.axes[0]))


def test_float64_is_not_left_switched_on():
    before = jax.config.jax_enable_x64
    solve_allen_cahn(8, 2, t_final=0.1, rtol=1e-6, atol=1e-6)
    assert jax.config.jax_enable_x64 == before


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_x": 7}, "num_x"),
        ({"num_x": 2}, "num_x"),
        ({"num_t": 1}, "num_t"),
        ({"diffusion": -1.0}, "diffusion"),
        ({"t_final": 0.0}, "t_final"),
        ({"rtol": float("nan")}, "rtol"),
        ({"reaction": float("inf")}, "reaction"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        solve_allen_cahn(**kwargs)
