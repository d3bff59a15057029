"""Binned information measures of a hidden layer: entropy H(T) (= I(X;T) for a deterministic net) and
saturation.

Adaptive per-neuron binning, 30 bins per neuron on average (paper.md section 2.7): for the activations
``A`` of shape ``(N, n)``::

    range_j = |min_j - max_j - 1e-6|,   w = sum_j range_j / (n * 30),   n_j = int(range_j / w) + 1
    T[:, j] = digitize(A[:, j], linspace(min_j, max_j + 1e-6, n_j))

Wide-ranging neurons get more bins, all of about the same width ``w``. ``H(T)`` is the entropy (bits) of the
distinct binned rows, at most ``log2 N``; a drop in it is *compression*. The saturation of the layer is the
mean over neurons of the percentage of samples in their lowest or highest occupied bin. Runs outside jit, in
numpy.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import ArrayLike

from pinnkit.validation import positive_int

__all__ = ["binned_entropy", "binned_activations", "saturation"]

_EPS = 1e-6  # widens the top edge so that the maximum falls inside the last bin (as in the paper)


def _activations(activations: ArrayLike, bins_per_neuron: int) -> np.ndarray:
    positive_int("bins_per_neuron", bins_per_neuron)
    array = np.asarray(activations, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"activations must have shape (N, n) with N, n >= 1, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("activations contain nan or inf")
    return array


def binned_activations(
    activations: ArrayLike, bins_per_neuron: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """The paper's adaptive binning of each neuron.

    Args:
        activations: ``(N, n)`` activations of one layer on N samples.
        bins_per_neuron: average number of bins per neuron.

    Returns:
        ``(T, num_edges)``: the ``(N, n)`` int bin indices (``np.digitize`` convention: 1 is the lowest
        occupied bin, ``num_edges[j] - 1`` the highest) and the ``(n,)`` edge counts ``n_j``.

    Example:
        >>> import numpy as np
        >>> T, num_edges = binned_activations(np.array([[0.0], [0.5], [1.0]]), bins_per_neuron=2)
        >>> T[:, 0].tolist(), num_edges.tolist()
        ([1, 1, 2], [3])
    """
    array = _activations(activations, bins_per_neuron)
    low, high = array.min(axis=0), array.max(axis=0)
    ranges = np.abs(low - high - _EPS)
    width = ranges.sum() / (array.shape[1] * bins_per_neuron)
    num_edges = (ranges / width).astype(int) + 1
    binned = np.empty(array.shape, dtype=np.int64)
    for j in range(array.shape[1]):
        edges = np.linspace(low[j], high[j] + _EPS, num_edges[j])
        binned[:, j] = np.digitize(array[:, j], edges)
    return binned, num_edges


def binned_entropy(activations: ArrayLike, bins_per_neuron: int = 30) -> float:
    """Entropy in bits of the distinct binned activation patterns (rows).

    Args:
        activations: ``(N, n)`` activations of one layer on N samples.
        bins_per_neuron: average number of bins per neuron.

    Returns:
        ``H(T) = -sum p log2 p`` over the distinct rows, between 0 and ``log2 N``.

    Example:
        >>> import numpy as np
        >>> binned_entropy(np.array([[0.0], [0.0], [1.0], [1.0]]))   # two equally likely patterns
        1.0
    """
    binned, _ = binned_activations(activations, bins_per_neuron)
    _, counts = np.unique(binned, axis=0, return_counts=True)
    probabilities = counts / counts.sum()
    return float(-np.sum(probabilities * np.log2(probabilities)))


def saturation(activations: ArrayLike, bins_per_neuron: int = 30) -> float:
    """Percentage of samples in each neuron's lowest or highest bin, averaged over the neurons.

    A sample is counted once even when the two bins coincide (a neuron with one or two edges): the paper's
    code counted it twice there.

    Args:
        activations: ``(N, n)`` activations of one layer on N samples.
        bins_per_neuron: average number of bins per neuron.

    Returns:
        The saturation, in percent (0-100).

    Example:
        >>> import numpy as np
        >>> saturation(np.array([[-1.0], [-1.0], [0.0], [1.0]]))   # 3 of 4 samples in an end bin
        75.0
    """
    binned, num_edges = binned_activations(activations, bins_per_neuron)
    outer = (binned == 1) | (binned == (num_edges - 1)[None, :])
    return float(100.0 * np.mean(outer))
