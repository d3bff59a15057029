"""What a history row records: pure functions of (model, optimizer state, points) and what the step computed.

One probe per row evaluates the residuals once at the row's parameters (after the row's step, as the paper
measures) and derives everything from that evaluation: the loss and its terms, the unweighted MSE, the
batch-gradient SNR (B batch gradients in one vmapped pass), the test error, Adam's SNR (read from the state)
and the residual homogeneity. For a first-order optimizer the evaluation's gradient is also the gradient of the
next step (``pending``), so the row costs about one batched gradient, not one extra.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from pinnkit import diagnostics
from pinnkit.engine import columns
from pinnkit.engine.steps import Evaluation, Steps
from pinnkit.problems.base import Points
from pinnkit.reweight import reweighting_on, sample_weights
from pinnkit.validation import choice, integer

__all__ = ["Probes", "probe", "information"]


# How the SNR batches are formed (Probes.batch_split).
BATCH_SPLITS = ("random", "contiguous")


@dataclasses.dataclass(frozen=True)
class Probes:
    """The diagnostics a run records at each history row.

    Attributes:
        snr_batches: B, the number of fixed random batches of the collocation points for the batch-gradient SNR
            (0: not recorded; at least 2 otherwise, since one batch has no spread).
        batch_constraints: each batch loss carries the whole constraint terms (the paper's choice; then the mean
            of the batch gradients is the full gradient and recording the SNR costs no extra gradient).
        batch_split: ``"random"`` (a random partition from the run's SNR key) or ``"contiguous"`` (consecutive
            slices of the points in their array order, as the paper's code forms them; the same in distribution
            on randomly ordered points, and the exact batches of another code whose points are handed in).
        homogeneity_bins: bins per dimension of the residual-homogeneity grid.
        information_every: record the entropy and saturation of each hidden layer every this many rows (0: never).
        information_points: collocation points the information measures use.

    Example:
        >>> Probes(snr_batches=50).snr_batches
        50
    """

    snr_batches: int = 100
    batch_constraints: bool = True
    batch_split: str = "random"
    homogeneity_bins: int = 10
    information_every: int = 0
    information_points: int = 2048

    def __post_init__(self) -> None:
        # snr_batches is the CLI's --snr-batches: its messages name the flag too.
        for name, minimum in (("snr_batches", 0), ("homogeneity_bins", 1), ("information_every", 0),
                              ("information_points", 1)):
            label = "snr_batches (--snr-batches)" if name == "snr_batches" else name
            integer(label, getattr(self, name), minimum=minimum)
        if self.snr_batches == 1:
            raise ValueError("snr_batches (--snr-batches) must be 0 (off) or at least 2: one batch has no spread, "
                             "its SNR is infinite")
        choice("batch_split", self.batch_split, BATCH_SPLITS)
        if not isinstance(self.batch_constraints, bool):
            raise TypeError(f"batch_constraints must be a bool, got {self.batch_constraints!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def probe(steps: Steps, error_fn: Callable, bins: int, params, opt_state, points: Points):
    """The row quantities at ``params`` and, for first-order optimizers, the evaluation the next step reuses.

    Args:
        steps: the step functions of the set-up.
        error_fn: ``model -> relative L2 error`` (``problem.relative_l2_fn(reference)``).
        bins: bins per dimension for the residual homogeneity.
        params: the parameters.
        opt_state: the optimizer state.
        points: the problem's points.

    Returns:
        ``(row, pending)``: a dict column -> scalar (``layer_snr`` as one array) and an :class:`Evaluation` (None
        for line-search optimizers, whose next step reads the line search's own cache).
    """
    gradient = not steps.line_search
    if steps.batches is not None:
        evaluation = steps.evaluate_batches(params, opt_state, points, gradient=gradient)
    else:
        evaluation = steps.evaluate(params, opt_state, points, gradient=gradient)
    row: dict[str, jax.Array] = {columns.LOSS: evaluation.loss}
    row.update({columns.loss_term(term): value for term, value in evaluation.terms.items()})
    mse = {term: jnp.mean(value**2) for term, value in evaluation.residuals.items()}
    row[columns.MSE] = sum(mse.values())
    row.update({columns.mse_term(term): value for term, value in mse.items()})
    row[columns.REL_L2] = error_fn(steps.model_of(params))
    if evaluation.snr is not None:
        stats = evaluation.snr
        row.update({columns.SNR: stats.snr, columns.ORDER: stats.order, columns.GRAD_MEAN_NORM: stats.mean_norm,
                    columns.GRAD_STD_NORM: stats.std_norm, columns.GRAD_RMS_NORM: stats.rms_norm,
                    "layer_snr": stats.layer_snr})
    if steps.has_adam:
        adam = diagnostics.adam_snr(opt_state)
        row[columns.ADAM_SNR] = adam.snr
        row[columns.ADAM_MEAN_STEP] = adam.mean_step
    row[columns.HOMOGENEITY] = _homogeneity(steps, opt_state, points, evaluation, bins)
    pending = evaluation if gradient else None
    return row, pending


def _homogeneity(steps: Steps, opt_state, points: Points, evaluation: Evaluation, bins: int) -> jax.Array:
    term = steps.collocation_terms[0]
    raw = sample_weights(opt_state)
    # No weights (or weights switched off, held at 1): how evenly the (combined) residual magnitude spreads over
    # the domain.
    spread = sum(jnp.abs(evaluation.residuals[name]) for name in steps.collocation_terms)
    if raw is None:
        values = spread
    else:
        values = jnp.where(reweighting_on(opt_state), raw[term] if isinstance(raw, dict) else raw, spread)
    lower, upper = steps.problem.domain
    return diagnostics.residual_homogeneity(points[term], values, lower, upper, bins=bins)


def information(model, points: Points, term: str, count: int) -> dict[str, float]:
    """Binned entropy and saturation of every hidden layer on the first ``count`` collocation points.

    Example:
        >>> import jax, pinnkit
        >>> model = pinnkit.nn.MLP(2, 1, width=4, depth=2, key=jax.random.key(0))
        >>> sorted(information(model, {"pde": jax.numpy.zeros((8, 2))}, "pde", 8))
        ['entropy[0]', 'entropy[1]', 'saturation[0]', 'saturation[1]']
    """
    x = points[term][:count]
    layers = jax.vmap(model.activations)(x)
    out = {}
    for index, activations in enumerate(layers):
        activations = np.asarray(activations)
        out[columns.entropy(index)] = float(diagnostics.binned_entropy(activations))
        out[columns.saturation(index)] = float(diagnostics.saturation(activations))
    return out
