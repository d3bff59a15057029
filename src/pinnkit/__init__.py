"""pinnkit: train physics-informed neural networks in JAX and watch how they learn.

The public API, re-exported from the modules that define it:

- networks: :mod:`pinnkit.nn` (``MLP``, ``ModifiedMLP``, ``FourierFeatures``);
- problems and references: :mod:`pinnkit.problems` (``get``, ``names``), :mod:`pinnkit.reference`;
- reweighting as optax transforms: ``rba``, ``gradient_aware_rba``, ``sample_weights``, ``weighted_mse``;
- diagnostics: :mod:`pinnkit.diagnostics` (``batch_gradient_snr``, ``adam_snr``, ``residual_homogeneity``,
  ``binned_entropy``, ``saturation``, ``sample_gradient_norms``, ``detect_phases``);
- training: ``fit``, ``fit_stacked``, ``Trainer``, ``History``, ``make_optimizer``, ``paper_schedule``;
- runs and comparisons: ``RunConfig``, ``run``, ``CompareConfig``, ``compare``.
"""

from pinnkit import derivatives, diagnostics, nn, problems, reference
from pinnkit.compare import CompareConfig, compare
from pinnkit.diagnostics import (
    adam_snr,
    batch_gradient_snr,
    binned_entropy,
    detect_phases,
    residual_homogeneity,
    sample_gradient_norms,
    saturation,
)
from pinnkit.experiment import RunConfig, run
from pinnkit.history import History
from pinnkit.optimizers import make_optimizer, paper_schedule
from pinnkit.reweight import RBAState, gradient_aware_rba, rba, sample_weights, weighted_mse
from pinnkit.train import Trainer, TrainResult, fit, fit_stacked

__version__ = "0.1.0"

__all__ = [
    "CompareConfig",
    "History",
    "RBAState",
    "RunConfig",
    "TrainResult",
    "Trainer",
    "adam_snr",
    "batch_gradient_snr",
    "binned_entropy",
    "compare",
    "derivatives",
    "detect_phases",
    "diagnostics",
    "fit",
    "fit_stacked",
    "gradient_aware_rba",
    "make_optimizer",
    "nn",
    "paper_schedule",
    "problems",
    "rba",
    "reference",
    "residual_homogeneity",
    "run",
    "sample_gradient_norms",
    "sample_weights",
    "saturation",
    "weighted_mse",
]
