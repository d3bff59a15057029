"""Which of K stacked models are still training, and why each one that stopped did.

A model stops when its loss or its parameters become non-finite; the others go on. Its state stays that of its
last finite row (:func:`pinnkit.engine.stacked.select` keeps it).
"""

from __future__ import annotations

import numpy as np

__all__ = ["Liveness"]


class Liveness:
    """The models of a stacked run still alive, and why each one that stopped did (``""`` while it trains).

    Example:
        >>> liveness = Liveness(2)
        >>> liveness.update(np.array([0.5, np.nan]), np.array([True, True]), first_step=1, last_step=10).tolist()
        [False, True]
        >>> liveness.alive.tolist(), liveness.reasons
        ([True, False], ['', 'loss became non-finite within steps 1-10'])
    """

    def __init__(self, num_models: int):
        self.alive = np.ones(num_models, bool)
        self.reasons = [""] * num_models

    def any(self) -> bool:
        """Whether any model is still training."""
        return bool(self.alive.any())

    def update(self, losses: np.ndarray, finite_params: np.ndarray, *, first_step: int, last_step: int) -> np.ndarray:
        """Stop the models whose loss or parameters became non-finite within steps ``first_step``-``last_step``.

        Returns:
            The models that stopped now (a bool per model).
        """
        finite = np.isfinite(losses) & finite_params
        newly_dead = self.alive & ~finite
        for index in np.flatnonzero(newly_dead):
            quantity = "loss" if not np.isfinite(losses[index]) else "parameters"
            self.reasons[index] = f"{quantity} became non-finite within steps {first_step}-{last_step}"
        self.alive &= ~newly_dead
        return newly_dead
