"""The history's columns: one schema that the engine writes and every reader (CLI, report, plots, detector,
benchmarks) imports instead of spelling names. It sits beside :class:`pinnkit.History`, outside the engine, so
that a reader names a column without importing the engine.

Every quantity of a row is measured at the parameters AFTER the row's step (the paper's diagnostics run after
``optimizer.step()``); row 0 is the initial state. The SNR of a row is the batch-gradient SNR at those
parameters (which is also the gradient of the next step), with the reweighting weights of the optimizer state
at that point.
"""

from __future__ import annotations

__all__ = [
    "ADAM_MEAN_STEP", "ADAM_SNR", "DESCRIPTIONS", "GRAD_MEAN_NORM", "GRAD_RMS_NORM", "GRAD_STD_NORM",
    "HOMOGENEITY", "ITERATION", "LINE_SEARCH_FAILURES", "LOSS", "MSE", "ORDER", "REL_L2", "SNR", "STAGE", "STEP",
    "WALL_TIME",
    "entropy", "layer_snr", "loss_term", "mse_term", "order_key", "saturation", "describe",
]

STEP = "step"
STAGE = "stage"
WALL_TIME = "wall_time_s"
LOSS = "loss"
MSE = "mse"
REL_L2 = "rel_l2"
SNR = "snr"
ORDER = "order"
GRAD_MEAN_NORM = "grad_mean_norm"
GRAD_STD_NORM = "grad_std_norm"
GRAD_RMS_NORM = "grad_rms_norm"
ADAM_SNR = "adam_snr"
ADAM_MEAN_STEP = "adam_mean_step"
HOMOGENEITY = "homogeneity"
LINE_SEARCH_FAILURES = "line_search_failures"
# Not a column of pinnkit's history: the step column of a gradient or error log read by pinnkit.diagnostics.logs
# (the authors' logs; a pinnkit history's ``step`` is renamed so).
ITERATION = "iteration"


def loss_term(term: str) -> str:
    """The weighted loss of one term, e.g. ``loss_pde``."""
    return f"loss_{term}"


def mse_term(term: str) -> str:
    """The unweighted mean squared residual of one term, e.g. ``mse_bc``."""
    return f"mse_{term}"


def layer_snr(name: str) -> str:
    """The batch-gradient SNR of one weight matrix, e.g. ``snr[layers[0].weight]``."""
    return f"snr[{name}]"


def entropy(layer: int) -> str:
    return f"entropy[{layer}]"


def saturation(layer: int) -> str:
    return f"saturation[{layer}]"


DESCRIPTIONS: dict[str, str] = {
    STEP: "optimizer steps done (L-BFGS/BFGS family: iterations, line search included); 0 is the initial state",
    STAGE: "index of the plan stage that took the row's step (0 for single-optimizer runs)",
    WALL_TIME: "training seconds up to the row, compilation and row measurements excluded",
    LOSS: "the objective being minimised: the sum over terms of mean((w r)^2), w the reweighting weights "
          "(w = 1 without reweighting)",
    "loss_<term>": "one term of the objective",
    MSE: "the unweighted loss: the sum over terms of mean(r^2), comparable across reweighting schemes",
    "mse_<term>": "one term of the unweighted loss",
    REL_L2: "relative L2 error against the reference solution on its whole grid (test error)",
    SNR: "batch-gradient SNR ||mean_b g_b|| / ||std_b g_b|| over B fixed batches of the collocation points "
         "(weight matrices only)",
    ORDER: "gradient order ||mean_b g_b|| / ||rms_b g_b|| = snr / sqrt(1 + snr^2)",
    GRAD_MEAN_NORM: "||mean_b g_b||",
    GRAD_STD_NORM: "||std_b g_b|| (ddof 0)",
    GRAD_RMS_NORM: "||rms_b g_b||",
    "snr[<layer>]": "batch-gradient SNR of one weight matrix",
    ADAM_SNR: "Adam's step-wise SNR ||m_hat|| / ||sqrt(v_hat) + eps|| (Adam stages only)",
    ADAM_MEAN_STEP: "mean |m_hat / (sqrt(v_hat) + eps)|: Adam's mean step over its learning rate",
    HOMOGENEITY: "residual homogeneity phi_R of the reweighting weights (|residuals| without reweighting) over "
                 "a 10^d grid of the domain",
    LINE_SEARCH_FAILURES: "line searches in the steps since the previous row that ended without sufficient "
                          "decrease",
    "entropy[<i>]": "binned entropy H(T_i) of hidden layer i, bits",
    "saturation[<i>]": "percentage of samples in the outermost activation bins of hidden layer i",
}


_ORDER = (STEP, STAGE, WALL_TIME, LOSS, "loss_", MSE, "mse_", REL_L2, SNR, ORDER, GRAD_MEAN_NORM, GRAD_STD_NORM,
          GRAD_RMS_NORM, "snr[", ADAM_SNR, ADAM_MEAN_STEP, HOMOGENEITY, LINE_SEARCH_FAILURES, "entropy[",
          "saturation[")


def order_key(column: str) -> tuple[int, str]:
    """Sort key that puts a row's columns in the schema's order (per-term and per-layer columns grouped).

    Example:
        >>> sorted(["rel_l2", "loss_pde", "step", "loss"], key=order_key)
        ['step', 'loss', 'loss_pde', 'rel_l2']
    """
    probe = "snr[" if column == "layer_snr" else column  # the probe's array of per-layer SNRs
    for rank, name in enumerate(_ORDER):
        if probe == name or (name.endswith(("_", "[")) and probe.startswith(name)):
            return rank, column
    return len(_ORDER), column


def describe(column: str) -> str:
    """The description of a column (per-term and per-layer columns included).

    Example:
        >>> describe("mse_bc")
        'one term of the unweighted loss'
    """
    if column in DESCRIPTIONS:
        return DESCRIPTIONS[column]
    for prefix, key in (("loss_", "loss_<term>"), ("mse_", "mse_<term>"), ("snr[", "snr[<layer>]"),
                        ("entropy[", "entropy[<i>]"), ("saturation[", "saturation[<i>]")):
        if column.startswith(prefix):
            return DESCRIPTIONS[key]
    raise KeyError(f"unknown history column {column!r}")
