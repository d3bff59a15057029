"""Adam SNR against moments computed by hand from the gradients fed to optax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnkit.diagnostics import adam_snr


def _gradients(steps: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"w": rng.normal(size=(3, 2)), "b": rng.normal(size=(2,))} for _ in range(steps)]


def _by_hand(gradients, b1=0.9, b2=0.999, eps=1e-8):
    """Adam's moments from their recursions, in float64, over all parameters."""
    m = v = 0.0
    for t, g in enumerate(gradients, start=1):
        flat = np.concatenate([g["b"].ravel(), g["w"].ravel()])
        m = b1 * m + (1 - b1) * flat
        v = b2 * v + (1 - b2) * flat**2
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    denominator = np.sqrt(v_hat) + eps
    return np.linalg.norm(m_hat) / np.linalg.norm(denominator), np.mean(np.abs(m_hat / denominator))


def _run(optimizer, gradients):
    params = jax.tree_util.tree_map(lambda g: jnp.zeros(g.shape, jnp.float32), gradients[0])
    state = optimizer.init(params)
    update = jax.jit(optimizer.update)
    for g in gradients:
        _, state = update(jax.tree_util.tree_map(jnp.asarray, g), state, params)
    return state


@pytest.mark.parametrize(
    "optimizer",
    [
        optax.adam(1e-3),
        optax.chain(optax.clip_by_global_norm(1e3), optax.adam(1e-3)),
        optax.inject_hyperparams(optax.adam)(learning_rate=1e-3),
    ],
    ids=["adam", "chain", "inject_hyperparams"],
)
def test_adam_snr_equals_hand_computation(optimizer):
    gradients = _gradients(5)
    result = adam_snr(_run(optimizer, gradients))
    snr, mean_step = _by_hand(gradients)
    assert float(result.snr) == pytest.approx(snr, rel=1e-4)
    assert float(result.mean_step) == pytest.approx(mean_step, rel=1e-4)


def test_first_step_snr_is_one_and_custom_betas_are_used():
    gradients = _gradients(1)
    assert float(adam_snr(_run(optax.adam(1e-2), gradients)).snr) == pytest.approx(1.0, abs=1e-4)
    gradients = _gradients(4)
    state = _run(optax.adam(1e-3, b1=0.5, b2=0.9), gradients)
    snr, _ = _by_hand(gradients, b1=0.5, b2=0.9)
    assert float(adam_snr(state, b1=0.5, b2=0.9).snr) == pytest.approx(snr, rel=1e-4)


def test_adam_snr_is_jit_safe():
    state = _run(optax.adam(1e-3), _gradients(3))
    assert float(jax.jit(adam_snr)(state).snr) == pytest.approx(float(adam_snr(state).snr), rel=1e-6)


def test_state_without_adam_is_an_error():
    state = optax.sgd(0.1).init({"w": jnp.zeros(2)})
    with pytest.raises(ValueError, match="ScaleByAdamState"):
        adam_snr(state)
