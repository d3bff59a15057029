"""Binned entropy and saturation against known discrete distributions and constructed cases."""

from __future__ import annotations

import numpy as np
import pytest

from pinnkit.diagnostics import binned_activations, binned_entropy, saturation


@pytest.mark.parametrize("clusters", [2, 4, 8])
def test_equally_populated_separated_clusters_give_log2_k_bits(clusters):
    # k unevenly spaced levels, each bin-widths apart from the next, 50 samples each, shuffled.
    centres = np.cumsum(np.arange(1, clusters + 1, dtype=float))
    values = np.random.default_rng(clusters).permutation(np.repeat(centres, 50))
    assert binned_entropy(values[:, None]) == pytest.approx(np.log2(clusters), abs=1e-12)


def test_unequal_clusters_give_their_shannon_entropy():
    values = np.concatenate([np.full(30, -1.0), np.full(10, 0.0), np.full(60, 1.0)])
    p = np.array([0.3, 0.1, 0.6])
    assert binned_entropy(values[:, None]) == pytest.approx(-np.sum(p * np.log2(p)), abs=1e-12)


def test_distinct_rows_give_log2_n():
    # 64 samples whose (neuron 0, neuron 1) bins form 64 distinct patterns (8 x 8 grid, far apart).
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 8), np.linspace(-1, 1, 8)), -1).reshape(-1, 2)
    assert binned_entropy(grid) == pytest.approx(np.log2(64), abs=1e-12)


def test_constant_layer_has_zero_entropy_and_full_saturation():
    activations = np.full((20, 3), 0.7)
    assert binned_entropy(activations) == 0.0
    assert saturation(activations) == pytest.approx(100.0)


def test_adaptive_bins_follow_the_paper():
    # Ranges 2 + 1e-6 and 1 + 1e-6, w = (3 + 2e-6) / 60: range / w = 39.99999... and 20.000007, truncated,
    # plus one: 40 and 21 edges (39 and 20 bins, indices 1..39 and 1..20).
    activations = np.stack([np.linspace(-1, 1, 100), np.linspace(0, 1, 100)], axis=1)
    binned, edges = binned_activations(activations)
    assert edges.tolist() == [40, 21]
    assert binned[:, 0].min() == 1 and binned[:, 0].max() == 39
    assert binned[:, 1].min() == 1 and binned[:, 1].max() == 20


def test_saturation_of_a_constructed_layer():
    # Neuron 0: 40 of 100 samples at each extreme (80 % saturated). Neuron 1: uniform over 30 bins of
    # equal width, so one 30th of the samples in each end bin.
    neuron0 = np.concatenate([np.full(40, -1.0), np.linspace(-0.5, 0.5, 20), np.full(40, 1.0)])
    neuron1 = np.linspace(0.0, 2.0, 100)
    activations = np.stack([neuron0, neuron1], axis=1)
    binned, edges = binned_activations(activations)
    expected1 = 100.0 * np.mean((binned[:, 1] == 1) | (binned[:, 1] == edges[1] - 1))
    assert 80.0 > expected1 > 0.0
    assert saturation(activations) == pytest.approx((80.0 + expected1) / 2)
    # And the end-bin count of neuron 1 by hand: edges are linspace(0, 2 + 1e-6, n).
    hand = np.digitize(neuron1, np.linspace(0.0, 2.0 + 1e-6, edges[1]))
    assert expected1 == pytest.approx(100.0 * np.mean((hand == 1) | (hand == edges[1] - 1)))


def test_tanh_saturation_rises_with_gain():
    x = np.linspace(-1, 1, 400)[:, None] * np.ones((1, 4))
    assert saturation(np.tanh(10 * x)) > saturation(np.tanh(0.5 * x))


@pytest.mark.parametrize("activations", [np.zeros(5), np.zeros((0, 3)), np.array([[np.nan]])])
def test_bad_activations(activations):
    with pytest.raises(ValueError):
        binned_entropy(activations)
