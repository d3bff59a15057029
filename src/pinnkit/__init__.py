"""pinnkit: train physics-informed neural networks in JAX and watch how they learn.

The public API, re-exported from the modules that define it:

- networks: :mod:`pinnkit.nn` (``MLP``, ``ModifiedMLP``, ``FourierFeatures``);
- problems and references: :mod:`pinnkit.problems` (``get``, ``names``), :mod:`pinnkit.reference`;
- reweighting as optax transforms: ``rba``, ``vrba``, ``gradient_aware_rba``, ``hold_weights``,
  ``transfer_reweighting``, ``sample_weights``, ``weighted_mse``;
- diagnostics: :mod:`pinnkit.diagnostics` (``batch_gradient_snr``, ``adam_snr``, ``residual_homogeneity``,
  ``binned_entropy``, ``saturation``, ``sample_gradient_norms``, ``detect_phases``);
- training (:mod:`pinnkit.engine`): ``fit``, ``fit_stacked``, ``Trainer``, ``LogSchedule``, ``Probes``,
  ``History``; optimizers and plans: ``make_optimizer``, ``paper_schedule``, ``Plan``, ``Stage``, ``parse_plan``,
  ``build_plan``; dense quasi-Newton methods: ``bfgs``, ``ssbfgs``, ``ssbroyden``;
- runs and comparisons: ``RunConfig``, ``run``, ``CompareConfig``, ``compare``.
"""

from pinnkit import derivatives, diagnostics, engine, nn, problems, reference
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
from pinnkit.diagnostics.transitions import detect_transitions, history_phases
from pinnkit.engine import LogSchedule, Probes, Trainer, TrainResult, fit, fit_stacked
from pinnkit.experiment import RunConfig, run
from pinnkit.history import History
from pinnkit.optimizers import make_optimizer, paper_schedule
from pinnkit.plans import Plan, Stage, build_plan, parse_plan
from pinnkit.quasi_newton import bfgs, ssbfgs, ssbroyden
from pinnkit.reweight import (
    RBAState,
    gradient_aware_rba,
    hold_weights,
    rba,
    sample_weights,
    transfer_reweighting,
    vrba,
    weighted_mse,
)

__version__ = "0.1.0"

__all__ = [
    "CompareConfig",
    "History",
    "LogSchedule",
    "Plan",
    "Probes",
    "Stage",
    "RBAState",
    "RunConfig",
    "TrainResult",
    "Trainer",
    "adam_snr",
    "build_plan",
    "batch_gradient_snr",
    "bfgs",
    "binned_entropy",
    "compare",
    "derivatives",
    "detect_phases",
    "detect_transitions",
    "diagnostics",
    "engine",
    "fit",
    "fit_stacked",
    "gradient_aware_rba",
    "history_phases",
    "hold_weights",
    "make_optimizer",
    "nn",
    "paper_schedule",
    "parse_plan",
    "problems",
    "rba",
    "reference",
    "residual_homogeneity",
    "run",
    "sample_gradient_norms",
    "sample_weights",
    "saturation",
    "ssbfgs",
    "ssbroyden",
    "transfer_reweighting",
    "vrba",
    "weighted_mse",
]
