"""Sample-wise reweighting of PINN residuals as optax transforms: RBA, vRBA and a gradient-aware variant.

Every transform of the family owns per-sample weights ``w`` in its state (``RBAState.weights``) and advances
them from the residuals it is handed; it returns the gradient ``updates`` unchanged, so it chains in front of
any optax optimizer. The training loss reads the weights back (:func:`sample_weights`) and multiplies each
residual by its weight *before* squaring (:func:`weighted_mse`), as the papers do.

Where things live:

* ``states``: the NamedTuple states, whose types declare what ``update`` needs (:data:`EXTRA_ARG_NAMES`);
* ``transform``: the one machine (:func:`reweighting_transform`) that every scheme feeds with a target;
* ``residual`` (:func:`rba`), ``variational`` (:func:`vrba`), ``gradient_aware``: the schemes;
* ``registry``: the schemes by name (:data:`REWEIGHTINGS`, :func:`make_reweighting`, :func:`register_reweighting`);
* ``holding``: :func:`hold_weights` (frozen, or advanced every K-th update), :func:`switchable_weights` (moving
  by a flag of the state: stacked variants with and without reweighting);
* ``stages``: :func:`required_extra_args`, :func:`weights_frozen`, :func:`transfer_reweighting`,
  :func:`carry_weights`; ``loss``: :func:`sample_weights`, :func:`weighted_mse`;
* ``checks``, ``terms``: the hyperparameter checks and the per-term structure of the weights.

Example:
    >>> import jax.numpy as jnp, optax
    >>> from pinnkit.reweight import rba, sample_weights
    >>> optimizer = optax.chain(rba(3, eta=0.1, gamma=0.5), optax.sgd(0.1))
    >>> state = optimizer.init(jnp.zeros(2))
    >>> _, state = optimizer.update(jnp.ones(2), state, residuals=jnp.array([1.0, -2.0, 4.0]))
    >>> sample_weights(state)
    Array([0.025, 0.05 , 0.1  ], dtype=float32)
"""

from pinnkit.reweight.gradient_aware import gradient_aware_rba
from pinnkit.reweight.holding import hold_weights, switchable_weights
from pinnkit.reweight.loss import reweighting_on, sample_weights, weighted_mse
from pinnkit.reweight.registry import (
    REWEIGHTINGS,
    ReweightingSpec,
    check_reweighting_options,
    describe_reweightings,
    make_reweighting,
    register_reweighting,
    registered_reweighting,
    reweighting_options,
    unregister_reweighting,
)
from pinnkit.reweight.residual import rba
from pinnkit.reweight.stages import carry_weights, required_extra_args, transfer_reweighting, weights_frozen
from pinnkit.reweight.states import (
    EXTRA_ARG_NAMES,
    FrozenWeightsState,
    GradientAwareRBAState,
    HeldWeightsState,
    RBAState,
    SwitchableWeightsState,
    Weights,
    family_states,
)
from pinnkit.reweight.transform import normalized, reweighting_transform
from pinnkit.reweight.variational import vrba, vrba_target
from pinnkit.sampling import nearest_points

__all__ = [
    "EXTRA_ARG_NAMES",
    "REWEIGHTINGS",
    "FrozenWeightsState",
    "GradientAwareRBAState",
    "HeldWeightsState",
    "RBAState",
    "ReweightingSpec",
    "SwitchableWeightsState",
    "Weights",
    "carry_weights",
    "check_reweighting_options",
    "describe_reweightings",
    "family_states",
    "gradient_aware_rba",
    "hold_weights",
    "make_reweighting",
    "nearest_points",
    "normalized",
    "rba",
    "register_reweighting",
    "registered_reweighting",
    "required_extra_args",
    "reweighting_on",
    "reweighting_options",
    "reweighting_transform",
    "sample_weights",
    "switchable_weights",
    "transfer_reweighting",
    "unregister_reweighting",
    "vrba",
    "vrba_target",
    "weighted_mse",
    "weights_frozen",
]
