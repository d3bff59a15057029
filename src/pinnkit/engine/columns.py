"""The history's column schema; it moved to :mod:`pinnkit.columns` (beside :class:`pinnkit.History`).

Kept so that ``from pinnkit.engine import columns`` and ``pinnkit.engine.columns.LOSS`` go on working.
"""

from pinnkit.columns import (  # noqa: F401
    ADAM_MEAN_STEP,
    ADAM_SNR,
    DESCRIPTIONS,
    GRAD_MEAN_NORM,
    GRAD_RMS_NORM,
    GRAD_STD_NORM,
    HOMOGENEITY,
    ITERATION,
    LINE_SEARCH_FAILURES,
    LOSS,
    MSE,
    ORDER,
    REL_L2,
    SNR,
    STAGE,
    STEP,
    WALL_TIME,
    __all__,
    describe,
    entropy,
    layer_snr,
    loss_term,
    mse_term,
    order_key,
    saturation,
)
