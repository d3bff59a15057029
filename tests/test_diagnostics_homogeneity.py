"""Residual homogeneity phi_R: hand-computed bin means, the actual domain, edge points and empty bins."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit.diagnostics import pointwise_homogeneity, residual_homogeneity


def _phi(bin_means):
    bin_means = np.asarray(bin_means, float)
    return bin_means.mean() / np.sqrt(np.mean(bin_means**2))


def test_two_by_two_grid_against_hand_computation():
    # Domain [0, 2] x [-1, 1] (not the paper's hard-coded AC box). Bin means: 1, (2+4)/2 = 3, 5, 7.
    points = np.array([[0.5, -0.5], [0.5, 0.5], [0.6, 0.6], [1.5, -0.5], [1.5, 0.5]])
    values = np.array([1.0, 2.0, 4.0, 5.0, 7.0])
    phi = residual_homogeneity(points, values, [0.0, -1.0], [2.0, 1.0], bins=2)
    assert float(phi) == pytest.approx(_phi([1.0, 3.0, 5.0, 7.0]), rel=1e-6)


def test_equals_one_over_sqrt_one_plus_cv_squared():
    rng = np.random.default_rng(0)
    points = rng.uniform(size=(4000, 2)) * [3.0, 1.0] + [-1.0, 0.0]
    values = rng.exponential(size=4000)
    phi = float(residual_homogeneity(points, values, [-1.0, 0.0], [2.0, 1.0], bins=(6, 4)))
    # Hand: bin means with numpy's histogram machinery.
    box = [[-1, 2], [0, 1]]
    sums, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=(6, 4), range=box, weights=values)
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=(6, 4), range=box)
    means = (sums / counts).ravel()
    cv = means.std() / means.mean()
    assert phi == pytest.approx(1.0 / np.sqrt(1.0 + cv**2), rel=1e-5)


def test_uniform_values_are_perfectly_homogeneous_and_localised_ones_are_not():
    points = np.stack(np.meshgrid(np.linspace(0, 1, 20), np.linspace(0, 1, 20)), -1).reshape(-1, 2)
    assert float(residual_homogeneity(points, np.full(400, 0.3), [0, 0], [1, 1])) == pytest.approx(1.0)
    spike = np.where((points[:, 0] < 0.1) & (points[:, 1] < 0.1), 1.0, 0.0)
    # Only 1 of 100 bins is non-zero: phi = (1/100) / sqrt(1/100) = 0.1.
    assert float(residual_homogeneity(points, spike, [0, 0], [1, 1])) == pytest.approx(0.1, rel=1e-5)


def test_upper_edge_goes_into_last_bin_and_empty_bins_are_excluded():
    # Three of four bins empty; the point on the upper edge x = 1 joins the last bin.
    points = np.array([[0.8], [1.0]])
    phi = residual_homogeneity(points, np.array([2.0, 4.0]), [0.0], [1.0], bins=4)
    assert float(phi) == pytest.approx(1.0)
    # Two filled bins (means 1 and 3) among four: empty ones do not count as zeros.
    points = np.array([[0.1], [1.0]])
    phi = residual_homogeneity(points, np.array([1.0, 3.0]), [0.0], [1.0], bins=4)
    assert float(phi) == pytest.approx(_phi([1.0, 3.0]), rel=1e-6)


def test_jit_safe_with_static_bins():
    points = jax.random.uniform(jax.random.key(0), (500, 2))
    values = jnp.abs(jax.random.normal(jax.random.key(1), (500,)))
    compiled = jax.jit(lambda p, v: residual_homogeneity(p, v, jnp.zeros(2), jnp.ones(2), bins=5))
    assert float(compiled(points, values)) == pytest.approx(
        float(residual_homogeneity(points, values, [0, 0], [1, 1], bins=5)), rel=1e-6
    )


def test_pointwise_homogeneity():
    assert float(pointwise_homogeneity(jnp.ones(10))) == pytest.approx(1.0)
    values = jnp.array([0.0, 0.0, 0.0, 1.0])  # mean 1/4, rms 1/2
    assert float(pointwise_homogeneity(values)) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "points, values, bins, error",
    [
        (np.zeros((3, 2)), np.zeros(4), 2, ValueError),
        (np.zeros((3, 2)), np.zeros(3), (2, 2, 2), ValueError),
        (np.zeros((3, 2)), np.zeros(3), 0, ValueError),
        (np.zeros((3, 2)), np.zeros(3), "10", TypeError),
    ],
)
def test_bad_input(points, values, bins, error):
    with pytest.raises(error):
        residual_homogeneity(points, values, [0, 0], [1, 1], bins=bins)
