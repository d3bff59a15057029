"""Checkpoint files: exact round trip, rejection of damaged or foreign files, atomic writes, pruning, resume."""

import functools
import math
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnkit import nn
from pinnkit.checkpoint import (
    Checkpointer,
    CheckpointError,
    check_folder,
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from pinnkit.engine import LogSchedule, Probes
from pinnkit.experiment import RunConfig, run
from pinnkit.history import History
from pinnkit.reweight import rba, sample_weights


@functools.cache
def make_state(width=8, seed=0):
    model = nn.MLP(2, 1, width=width, depth=2, key=jax.random.key(seed))
    params = eqx.filter(model, eqx.is_inexact_array)
    optimizer = optax.chain(rba(50), optax.adam(1e-3))
    opt_state = optimizer.init(params)
    # Move every leaf off its initial value so that a loader returning fresh zeros would be caught.
    grads = jax.tree_util.tree_map(lambda leaf: jnp.full_like(leaf, 0.5), params)
    _, opt_state = optimizer.update(grads, opt_state, params, residuals=jnp.linspace(-1.0, 2.0, 50))
    return model, opt_state, optimizer


def sample_history():
    history = History()
    history.append({"step": 10, "loss": 0.1 + 1e-12, "rel_l2": 0.9})
    history.append({"step": 20, "loss": 1 / 3, "snr": 2.5})  # rel_l2 missing: NaN
    history.append({"step": 30, "loss": 1e30, "rel_l2": float("inf"), "snr": -float("inf")})
    return history


def leaves(tree):
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))]


def test_round_trip_restores_every_leaf_bit_for_bit(tmp_path):
    model, opt_state, optimizer = make_state()
    config = RunConfig(steps=30, points=100, probes=Probes(snr_batches=10))
    key = jax.random.key(7)
    path = save_checkpoint(tmp_path, step=20, model=model, opt_state=opt_state, history=sample_history(),
                           config=config, key_data=key, extras={"checkpoint_every": 10})
    assert path == checkpoint_path(tmp_path, 20) and path.name == "checkpoint-000020.eqx"
    like_model, like_state, _ = make_state(seed=3)
    fresh_state = optimizer.init(eqx.filter(like_model, eqx.is_inexact_array))
    loaded = load_checkpoint(tmp_path, like_model, fresh_state, expected_config=config)
    for saved, restored in zip(leaves((model, opt_state)), leaves((loaded.model, loaded.opt_state)), strict=True):
        assert saved.dtype == restored.dtype
        np.testing.assert_array_equal(saved, restored)
    np.testing.assert_array_equal(sample_weights(loaded.opt_state), sample_weights(opt_state))
    assert loaded.step == 20 and loaded.config == config.to_dict()
    assert RunConfig.from_dict(loaded.config) == config
    assert loaded.key_data == np.asarray(jax.random.key_data(key)).tolist()
    assert loaded.extras == {"checkpoint_every": 10}
    history = loaded.history
    assert history.columns == ["step", "loss", "rel_l2", "snr"]
    assert history["loss"].tolist() == [0.1 + 1e-12, 1 / 3, 1e30]  # exact floats, not rounded text
    assert history["rel_l2"][0] == 0.9 and math.isnan(history["rel_l2"][1]) and math.isnan(history["snr"][0])
    assert history["rel_l2"][2] == math.inf and history["snr"][2] == -math.inf


def damaged_copies(path):
    data = path.read_bytes()
    middle = len(data) // 2
    flipped = bytearray(data)
    flipped[middle] ^= 0x01
    header_flip = bytearray(data)
    header_flip[30] ^= 0x04  # inside the JSON header
    return {
        "empty": b"",
        "garbage": b"not a checkpoint at all\n" * 10,
        "truncated-header": data[:20],
        "truncated-half": data[:middle],
        "truncated-end": data[:-1],
        "one-bit-in-leaves": bytes(flipped),
        "one-bit-in-header": bytes(header_flip),
        "appended": data + b"\0",
    }


def test_corrupt_truncated_and_foreign_files_are_rejected_naming_the_file(tmp_path):
    model, opt_state, _ = make_state()
    good = save_checkpoint(tmp_path / "good", step=5, model=model, opt_state=opt_state)
    for name, content in damaged_copies(good).items():
        bad = tmp_path / name / "checkpoint-000005.eqx"
        bad.parent.mkdir()
        bad.write_bytes(content)
        with pytest.raises(CheckpointError, match=str(bad)) as caught:
            load_checkpoint(bad, model, opt_state)
        assert isinstance(caught.value, ValueError), name
        with pytest.raises(ValueError, match="checkpoint"):
            read_checkpoint_info(bad.parent)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        (tmp_path / "nothing").mkdir()
        read_checkpoint_info(tmp_path / "nothing")
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint_info(tmp_path / "missing.eqx")


def test_mismatched_shapes_structure_or_config_are_rejected(tmp_path):
    model, opt_state, _ = make_state(width=8)
    save_checkpoint(tmp_path, step=5, model=model, opt_state=opt_state, config=RunConfig(seed=1))
    wider_model, wider_state, _ = make_state(width=9)
    with pytest.raises(CheckpointError, match="does not match the model"):
        load_checkpoint(tmp_path, wider_model, wider_state)
    # Fewer leaves expected than saved (Adam state without the RBA weights): leftover bytes are caught.
    plain_state = optax.adam(1e-3).init(eqx.filter(model, eqx.is_inexact_array))
    with pytest.raises(CheckpointError, match=r"checkpoint-000005\.eqx"):
        load_checkpoint(tmp_path, model, plain_state)
    with pytest.raises(CheckpointError, match="another configuration.*seed"):
        load_checkpoint(tmp_path, model, opt_state, expected_config=RunConfig(seed=2))
    assert load_checkpoint(tmp_path, model, opt_state, expected_config=RunConfig(seed=1)).step == 5


def test_a_write_killed_midway_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    model, opt_state, _ = make_state()
    first = save_checkpoint(tmp_path, step=10, model=model, opt_state=opt_state)

    def killed(*args):
        raise KeyboardInterrupt("killed between write and rename")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, step=20, model=model, opt_state=opt_state)
    monkeypatch.undo()
    assert list_checkpoints(tmp_path) == [first]
    assert [entry.name for entry in tmp_path.iterdir()] == [first.name]  # no temporary left over
    # A SIGKILL leaves the partial temporary file behind: it is never mistaken for a checkpoint ...
    partial = tmp_path / ".checkpoint-000020.eqx.abc123.tmp"
    partial.write_bytes(first.read_bytes()[:100])
    assert latest_checkpoint(tmp_path) == first
    assert load_checkpoint(tmp_path, model, opt_state).step == 10
    # ... and the next successful save clears it.
    save_checkpoint(tmp_path, step=30, model=model, opt_state=opt_state)
    assert not partial.exists()


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    model, opt_state, _ = make_state()
    for step in (5, 10, 100, 1000):
        save_checkpoint(tmp_path, step=step, model=model, opt_state=opt_state, keep=2)
    assert [path.name for path in list_checkpoints(tmp_path)] == ["checkpoint-000100.eqx", "checkpoint-001000.eqx"]
    assert latest_checkpoint(tmp_path).name == "checkpoint-001000.eqx"  # numeric, not lexical, order
    for keep in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="keep"):
            save_checkpoint(tmp_path, step=2000, model=model, opt_state=opt_state, keep=keep)
    for step in (-1, 2.0, "3"):
        with pytest.raises(ValueError, match="step"):
            save_checkpoint(tmp_path, step=step, model=model, opt_state=opt_state)


def test_checkpointer_saves_on_the_first_row_past_each_multiple(tmp_path):
    model, opt_state, _ = make_state()
    hook = Checkpointer(tmp_path, every=25, keep=None)
    history = History()
    saved = []
    for step in range(10, 110, 10):
        history.append({"step": step})
        if hook(step, model, opt_state, history) is not None:
            saved.append(step)
    assert saved == [30, 50, 80, 100]  # the rows at or just past 25, 50, 75, 100
    # A hook attached to a resumed run counts from the row before its first one.
    resumed = Checkpointer(tmp_path / "resumed", every=25)
    history = History([{"step": 10}, {"step": 20}, {"step": 30}])
    assert resumed(30, model, opt_state, history) is not None
    history.append({"step": 40})
    assert resumed(40, model, opt_state, history) is None
    for every in (0, -3, 2.5):
        with pytest.raises(ValueError, match="every"):
            Checkpointer(tmp_path, every=every)


@pytest.mark.slow
def test_resuming_a_run_from_a_middle_checkpoint_matches_one_run(tmp_path):
    config = RunConfig(steps=40, points=200, width=8, depth=2, log=LogSchedule(10), probes=Probes(snr_batches=10),
                       reweight="rba")
    straight = run(config, checkpoint=Checkpointer(tmp_path, every=20, config=config, keep=None))
    assert [path.name for path in list_checkpoints(tmp_path)] == ["checkpoint-000020.eqx", "checkpoint-000040.eqx"]
    resumed = run(config, resume_from=tmp_path / "checkpoint-000020.eqx")
    assert resumed.steps == 40 and resumed.status == "completed"
    for column in ("step", "loss", "rel_l2", "snr", "homogeneity"):
        np.testing.assert_array_equal(resumed.history[column], straight.history[column])
    np.testing.assert_array_equal(sample_weights(resumed.opt_state), sample_weights(straight.opt_state))
    # The finished checkpoint resumes to itself without training.
    finished = run(config, resume_from=tmp_path)
    np.testing.assert_array_equal(finished.history["loss"], straight.history["loss"])
    with pytest.raises(ValueError, match="another configuration"):
        run(RunConfig.from_dict({**config.to_dict(), "seed": 5}), resume_from=tmp_path)


def test_a_checkpoint_renamed_or_copied_to_another_step_is_refused(tmp_path):
    model, opt_state, _ = make_state()
    path = save_checkpoint(tmp_path / "a", step=40, model=model, opt_state=opt_state)
    renamed = tmp_path / "b" / "checkpoint-000030.eqx"
    renamed.parent.mkdir()
    renamed.write_bytes(path.read_bytes())
    for target in (renamed, renamed.parent):
        with pytest.raises(CheckpointError, match=rf"{renamed}.*step 40.*30"):
            read_checkpoint_info(target)
        with pytest.raises(CheckpointError, match="step 40"):
            load_checkpoint(target, model, opt_state)
    # A name without a step is not checked against one.
    other = tmp_path / "b" / "saved.eqx"
    other.write_bytes(path.read_bytes())
    assert read_checkpoint_info(other).step == 40


def test_a_checkpoint_of_another_configuration_than_its_folder_is_refused(tmp_path):
    model, opt_state, _ = make_state()
    mine, theirs = RunConfig(seed=1, width=16), RunConfig(seed=1, width=8)
    save_checkpoint(tmp_path, step=10, model=model, opt_state=opt_state, config=mine)
    save_checkpoint(tmp_path, step=20, model=model, opt_state=opt_state, config=mine)
    check_folder(read_checkpoint_info(tmp_path))  # one run: accepted
    check_folder(read_checkpoint_info(tmp_path), expected={"result.json": mine.to_dict()})
    with pytest.raises(CheckpointError, match=r"checkpoint-000020\.eqx .*than result\.json \(width: 16 here, 8"):
        check_folder(read_checkpoint_info(tmp_path), expected={"result.json": theirs.to_dict()})
    copied = save_checkpoint(tmp_path, step=30, model=model, opt_state=opt_state, config=theirs)
    with pytest.raises(CheckpointError, match=rf"{copied} .*than checkpoint-000010\.eqx beside it \(width: 8 here"):
        check_folder(read_checkpoint_info(tmp_path))
    # A damaged neighbour is skipped: it is not what is loaded.
    (tmp_path / "checkpoint-000010.eqx").write_bytes(b"garbage")
    (tmp_path / "checkpoint-000020.eqx").unlink()
    check_folder(read_checkpoint_info(tmp_path))


def test_an_interrupt_just_after_a_checkpoint_became_visible_still_prunes_the_old_ones(tmp_path, monkeypatch):
    # A Ctrl-C that lands after the rename that publishes a new checkpoint, before the old ones are pruned, used to
    # leave keep + 1 checkpoints behind (a test that interrupted a run as a checkpoint appeared found it under load).
    import contextlib

    from pinnkit import checkpoint as module

    model = {"w": jnp.ones(2)}
    for step in (10, 20):
        save_checkpoint(tmp_path, step=step, model=model, opt_state=(), keep=2)
    real = module.atomic_open

    @contextlib.contextmanager
    def interrupted_after_rename(*args, **kwargs):
        with real(*args, **kwargs) as stream:
            yield stream
        raise KeyboardInterrupt  # the rename is done: the new checkpoint is visible

    monkeypatch.setattr(module, "atomic_open", interrupted_after_rename)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, step=30, model=model, opt_state=(), keep=2)
    assert [path.name for path in list_checkpoints(tmp_path)] == ["checkpoint-000020.eqx", "checkpoint-000030.eqx"]
