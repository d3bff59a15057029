"""A reweighting scheme defined only here, registered once, is known to the optimizers, plans and both commands."""

import json

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import run_cli

from pinnkit import optimizers
from pinnkit.optimizers import make_optimizer
from pinnkit.reweight import (
    REWEIGHTINGS,
    ReweightingSpec,
    check_reweighting_options,
    make_reweighting,
    register_reweighting,
    registered_reweighting,
    reweighting_options,
    reweighting_transform,
    sample_weights,
    unregister_reweighting,
)

HELP = "every sample weighted alike, a test double"


def constant_weights(num_samples, *, eta=0.1, gamma=0.5):
    """Weights that move toward eta / (1 - gamma) whatever the residuals: the shared machine, target 1."""
    return reweighting_transform(num_samples, eta=eta, gamma=gamma, init="zeros", name="evenweights",
                                 target_fn=lambda abs_residuals, *, count: jnp.ones_like(abs_residuals))


@pytest.fixture
def registered():
    with registered_reweighting(ReweightingSpec("evenweights", constant_weights, HELP)) as spec:
        yield spec


def test_the_built_in_names_and_their_order_are_unchanged():
    assert REWEIGHTINGS == ("none", "rba", "vrba", "gradient-aware")
    assert optimizers.REWEIGHTINGS is REWEIGHTINGS
    assert list(REWEIGHTINGS[1:]) == ["rba", "vrba", "gradient-aware"]


def test_a_registered_scheme_is_a_reweighting_everywhere_until_it_is_removed(registered):
    assert REWEIGHTINGS[-1] == "evenweights" and "evenweights" in optimizers.REWEIGHTINGS
    assert reweighting_options("evenweights") == ("eta", "gamma")
    with pytest.raises(TypeError, match="evenweights takes no option 'phi'; its options are eta, gamma"):
        check_reweighting_options("evenweights", ["phi"])
    assert make_reweighting("evenweights", 3).init(None).weights.shape == (3,)
    unregister_reweighting("evenweights")
    try:
        assert "evenweights" not in REWEIGHTINGS
        with pytest.raises(ValueError, match="unknown reweighting 'evenweights'"):
            make_reweighting("evenweights", 3)
    finally:
        register_reweighting(registered)  # the fixture removes it again


def test_the_registry_refuses_clashes_and_keeps_the_built_in_schemes(registered):
    with pytest.raises(ValueError, match="registered already"):
        register_reweighting(ReweightingSpec("evenweights", constant_weights, HELP))
    with pytest.raises(ValueError, match="'none'"):
        ReweightingSpec("none", constant_weights, HELP)
    with pytest.raises(TypeError, match="does not take"):
        ReweightingSpec("other", constant_weights, HELP, {"phi": 1.0})
    with pytest.raises(ValueError, match="built in"):
        unregister_reweighting("rba")


def test_defaults_register_a_variant_under_its_own_name():
    with registered_reweighting(ReweightingSpec("slow-constant", constant_weights, HELP, {"gamma": 0.9})):
        transform = make_reweighting("slow-constant", 2)
        _, state = transform.update(None, transform.init(None), residuals=jnp.ones(2))
        np.testing.assert_allclose(state.weights, [0.1, 0.1])  # eta * 1; gamma only matters from update 2
        _, state = transform.update(None, state, residuals=jnp.ones(2))
        np.testing.assert_allclose(state.weights, [0.19, 0.19], rtol=1e-6)  # 0.9 * 0.1 + 0.1


def test_make_optimizer_builds_and_updates_with_it(registered):
    optimizer = make_optimizer("adam", reweight="evenweights", num_samples=4)
    params = {"w": jnp.zeros(3)}
    state = optimizer.init(params)
    updates, state = optimizer.update({"w": jnp.ones(3)}, state, params, residuals=jnp.arange(4.0))
    np.testing.assert_allclose(sample_weights(state), np.full(4, 0.1), rtol=1e-6)  # eta * 1 from zeros
    assert np.all(np.asarray(optax.apply_updates(params, updates)["w"]) < 0)


@pytest.mark.parametrize("command", ["train", "compare"])
def test_the_help_of_both_commands_names_it(registered, command):
    code, out, _ = run_cli(command, "--help")
    assert code == 0
    text = " ".join(out.split())  # the help is wrapped to the terminal's width
    assert "evenweights" in text
    if command == "train":
        assert f"evenweights ({HELP})" in text


def test_the_help_forgets_it_once_it_is_removed():
    _, out, _ = run_cli("train", "--help")
    assert "evenweights" not in out and "vrba (variational RBA" in " ".join(out.split())


def test_train_accepts_it_checks_its_options_and_runs(registered, tmp_path):
    small = ["train", "--problem", "burgers", "--width", "8", "--depth", "1", "--points", "100", "--snr-batches",
             "0", "--log-every", "1"]
    code, _, stderr = run_cli(*small, "--steps", "2", "--reweight", "evenweights", "--reweight-option", "phi=1",
                              "--out", tmp_path / "refused")
    assert code == 2 and "evenweights takes no option 'phi'; its options are eta, gamma" in stderr
    out = tmp_path / "run"
    code, _, stderr = run_cli(*small, "--steps", "2", "--reweight", "evenweights", "--reweight-option", "eta=0.2",
                              "--out", out)
    assert code == 0, stderr
    config = json.loads((out / "result.json").read_text())["config"]
    assert config["reweight"] == "evenweights" and config["reweight_options"] == {"eta": 0.2}
