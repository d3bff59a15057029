"""Learning-dynamics diagnostics: batch-gradient SNR and order, Adam SNR, residual homogeneity, binned
information, per-sample gradient norms, log readers and automatic phase detection (see
docs/diagnostics.md)."""

from pinnkit.diagnostics.adam import AdamSNR, adam_snr
from pinnkit.diagnostics.homogeneity import pointwise_homogeneity, residual_homogeneity
from pinnkit.diagnostics.information import binned_activations, binned_entropy, saturation
from pinnkit.diagnostics.logs import read_error_log, read_gradient_log
from pinnkit.diagnostics.phases import (
    Phases,
    PhaseTuning,
    detect_phases,
    detect_phases_online,
    paper_smoothed_snr,
    smooth_log_snr,
)
from pinnkit.diagnostics.sample_gradients import sample_gradient_norms
from pinnkit.diagnostics.snr import (
    GradientSNR,
    batch_gradient_snr,
    batch_gradients,
    contiguous_batches,
    gradient_leaf_names,
    make_batches,
    order_from_snr,
    snr_from_order,
)

__all__ = [
    "AdamSNR",
    "GradientSNR",
    "PhaseTuning",
    "Phases",
    "adam_snr",
    "batch_gradient_snr",
    "batch_gradients",
    "binned_activations",
    "binned_entropy",
    "detect_phases",
    "detect_phases_online",
    "gradient_leaf_names",
    "contiguous_batches",
    "make_batches",
    "order_from_snr",
    "paper_smoothed_snr",
    "pointwise_homogeneity",
    "read_error_log",
    "read_gradient_log",
    "residual_homogeneity",
    "sample_gradient_norms",
    "saturation",
    "smooth_log_snr",
    "snr_from_order",
]
