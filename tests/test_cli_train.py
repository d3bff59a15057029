"""``pinnkit train``: kill -9 then resume is bitwise identical; divergence exits 1; bad checkpoints exit 2."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import run_cli

from pinnkit import nn
from pinnkit.checkpoint import Checkpointer, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from pinnkit.engine import LogSchedule, Probes
from pinnkit.experiment import RunConfig, initial_state
from pinnkit.outputs import claim_output

PINNKIT = [sys.executable, "-c", "from pinnkit_cli.app import main; main()"]
SMALL = ["--width", "16", "--depth", "2", "--points", "300", "--log-every", "20", "--snr-batches", "10",
         "--lr", "3e-3", "--reweight", "rba"]


def invoke(*args):
    """The console script in-process: (exit code, stderr)."""
    code, _, stderr = run_cli(*args)
    return code, stderr


def checkpoint_folder(folder, config, **kwargs):
    """A folder as `pinnkit train --checkpoint-every` leaves it after an interrupt: marker and one checkpoint."""
    claim = claim_output(folder, kind="train")
    model, state = initial_state(config)
    path = save_checkpoint(folder, step=10, model=kwargs.pop("model", model), opt_state=state, config=config,
                           **kwargs)
    claim.abandon()
    return path


def read_column(path: Path, name: str) -> np.ndarray:
    with path.open(newline="") as stream:
        return np.array([float(row[name]) if row[name] else np.nan for row in csv.DictReader(stream)])


@pytest.fixture(scope="module")
def cli_env():
    # The session's compilation cache (conftest) is inherited: the second and third processes start faster. A
    # cached program is the very program the first process compiled, so the comparison stays between identical
    # computations.
    return dict(os.environ, JAX_PLATFORMS="cpu")


@pytest.mark.slow
def test_kill_9_then_resume_ends_bitwise_like_an_uninterrupted_run(tmp_path, cli_env):
    steps = ["--steps", "1000"]
    straight = subprocess.run([*PINNKIT, "train", *SMALL, *steps, "--out", tmp_path / "straight"],
                              capture_output=True, text=True, env=cli_env, timeout=300)
    assert straight.returncode == 0, straight.stderr[-2000:]

    killed_dir = tmp_path / "killed"
    process = subprocess.Popen([*PINNKIT, "train", *SMALL, *steps, "--out", killed_dir, "--checkpoint-every", "100"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env)
    try:
        deadline = time.monotonic() + 240
        while not (killed_dir.is_dir() and list_checkpoints(killed_dir)):
            assert process.poll() is None, "the run ended before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (killed_dir / "result.json").exists()
    interrupted_at = int(latest_checkpoint(killed_dir).stem.split("-")[1])
    assert 100 <= interrupted_at < 1000

    resumed = subprocess.run([*PINNKIT, "train", "--resume", killed_dir], capture_output=True, text=True,
                             env=cli_env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected = json.loads((tmp_path / "straight" / "result.json").read_text())
    got = json.loads((killed_dir / "result.json").read_text())
    assert got["steps"] == expected["steps"] == 1000
    assert got["final_loss"] == expected["final_loss"]  # bitwise: JSON keeps every digit of a float
    assert got["rel_l2"] == expected["rel_l2"]
    assert got["config"] == expected["config"]
    for column in ("step", "loss", "rel_l2", "snr"):
        np.testing.assert_array_equal(read_column(killed_dir / "history.csv", column),
                                      read_column(tmp_path / "straight" / "history.csv", column))


def test_divergence_exits_1_with_one_line_and_keeps_history_and_checkpoint(tmp_path):
    out = tmp_path / "diverged"
    code, stderr = invoke("train", "--optimizer", "sgd", "--lr", "50", "--steps", "40", "--log-every", "1",
                          "--width", "8", "--depth", "1", "--points", "100", "--snr-batches", "0",
                          "--checkpoint-every", "1", "--out", out)
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr
    assert lines[0].startswith("diverged: ") and "became non-finite within steps" in lines[0]
    assert ("loss" in lines[0]) or ("parameters" in lines[0])
    history_loss = read_column(out / "history.csv", "loss")
    last_step = int(read_column(out / "history.csv", "step")[-1])
    assert 1 <= len(history_loss) < 40 and np.all(np.isfinite(history_loss))
    assert f"steps {last_step + 1}-" in lines[0]  # the reported range starts right after the last finite row
    summary = json.loads((out / "result.json").read_text())
    assert summary["status"].startswith("diverged") and summary["steps"] == last_step
    # The newest checkpoint is the last finite state and loads cleanly.
    config = RunConfig.from_dict(summary["config"])
    model, state = initial_state(config)
    saved = load_checkpoint(out, model, state, expected_config=config)
    assert saved.step == last_step and str(saved.path) in lines[0]
    params = jax.tree_util.tree_leaves(saved.model)
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in params if hasattr(leaf, "shape"))
    np.testing.assert_array_equal(saved.history["loss"], history_loss)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A checkpoint folder as `pinnkit train --checkpoint-every` leaves it (no training needed)."""
    folder = tmp_path_factory.mktemp("saved") / "run"
    config = RunConfig(steps=20, points=100, width=8, depth=1, log=LogSchedule(10), probes=Probes(snr_batches=0))
    checkpoint_folder(folder, config, extras={"checkpoint_every": 10})
    return folder


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_damaged_checkpoints_are_refused_with_exit_2(tmp_path, saved_run, damage):
    data = (saved_run / "checkpoint-000010.eqx").read_bytes()
    content = {"truncate": data[: len(data) * 2 // 3], "flip": data[:-40] + bytes([data[-40] ^ 0xFF]) + data[-39:],
               "empty": b"", "garbage": os.urandom(500)}[damage]
    bad = tmp_path / "checkpoint-000010.eqx"
    bad.write_bytes(content)
    for target in (tmp_path, bad):
        code, stderr = invoke("train", "--resume", target)
        assert code == 2 and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
        assert str(bad) in stderr
    assert sorted(entry.name for entry in tmp_path.iterdir()) == [bad.name]  # nothing written


def test_a_checkpoint_of_another_network_is_refused_with_exit_2(tmp_path):
    config = RunConfig(steps=20, points=100, width=8, depth=1, log=LogSchedule(10), probes=Probes(snr_batches=0))
    other = nn.MLP(2, 1, width=5, depth=1, key=jax.random.key(0))
    path = checkpoint_folder(tmp_path / "run", config, model=other)
    code, stderr = invoke("train", "--resume", tmp_path / "run")
    assert code == 2 and str(path) in stderr and "does not match" in stderr
    assert list_checkpoints(tmp_path / "run") == [path]  # kept for the user


def test_resume_keeps_the_saved_configuration_and_refuses_other_options(saved_run):
    for option in (["--steps", "30"], ["--lr", "0.1"], ["--seed", "3"], ["--out", "x"], ["--devices", "1"]):
        code, stderr = invoke("train", "--resume", saved_run, *option)
        assert code == 2 and f"{option[0]} cannot be combined with --resume" in stderr
    code, stderr = invoke("train", "--resume", saved_run / "absent")
    assert code == 2 and "does not exist" in stderr


def test_a_fresh_run_refuses_a_folder_holding_checkpoints(saved_run):
    code, stderr = invoke("train", "--out", saved_run, "--overwrite", "--checkpoint-every", "5")
    assert code == 2 and "holds checkpoints of an unfinished run" in stderr
    assert [path.name for path in list_checkpoints(saved_run)] == ["checkpoint-000010.eqx"]


def test_too_many_devices_or_an_uneven_split_exit_2(tmp_path):
    present = len(jax.devices())
    points = 200 * (present + 1)
    code, stderr = invoke("train", "--devices", present + 1, "--points", points, "--out", tmp_path / "a")
    assert code == 2 and f"--devices {present + 1} exceeds the {present} device(s)" in stderr
    code, stderr = invoke("train", "--devices", 2, "--points", 301, "--out", tmp_path / "b")
    assert code == 2 and "cannot be split evenly over devices=2" in stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # A checkpoint of a run on more devices than present is refused before anything is built.
    config = RunConfig(points=points, devices=present + 1, probes=Probes(snr_batches=0))
    save_checkpoint(tmp_path / "c", step=1, model={"w": np.zeros(1)}, opt_state=(), config=config)
    code, stderr = invoke("train", "--resume", tmp_path / "c")
    assert code == 2 and f"--devices {present + 1} exceeds the {present} device(s) present" in stderr


def test_the_console_script_reports_a_truncated_checkpoint_in_one_line(tmp_path, saved_run, cli_env):
    data = (saved_run / "checkpoint-000010.eqx").read_bytes()
    (tmp_path / "checkpoint-000010.eqx").write_bytes(data[:100])
    done = subprocess.run([*PINNKIT, "train", "--resume", tmp_path], capture_output=True, text=True, env=cli_env,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: checkpoint {tmp_path / 'checkpoint-000010.eqx'} is "
                                                "corrupted or truncated (content hash mismatch)"]


@pytest.mark.slow
def test_a_two_stage_plan_from_the_command_line_switches_where_asked(tmp_path):
    out = tmp_path / "plan"
    code, stderr = invoke("train", "--optimizer", "adam+lbfgs", "--switch-step", "100", "--steps", "300",
                          "--width", "8", "--depth", "2", "--points", "200", "--snr-batches", "10", "--log-every",
                          "50", "--reweight", "rba", "--out", out)
    assert code == 0, stderr
    steps, stage = read_column(out / "history.csv", "step"), read_column(out / "history.csv", "stage")
    assert steps[stage == 0].max() == 100 and steps[stage == 1].min() > 100 and steps[-1] == 300
    summary = json.loads((out / "result.json").read_text())
    assert summary["plan"] == "adam:100,lbfgs:200" and summary["stage_starts"] == [0, 100]
    assert summary["precision"] == "float64"  # a line-search stage: double precision by default
    assert summary["line_search_failures"] == 0


@pytest.mark.slow
def test_reweight_options_are_saved_with_the_run(tmp_path):
    # The run's saved configuration says which options it ran with, and it builds the same run again.
    out = tmp_path / "run"
    code, stderr = invoke("train", "--problem", "burgers", "--width", "8", "--depth", "1", "--points", "100",
                          "--snr-batches", "0", "--steps", "20", "--log-every", "10", "--reweight", "vrba",
                          "--reweight-option", "phi=0.5", "--reweight-option", "eta=0.01", "--out", out)
    assert code == 0, stderr
    saved = json.loads((out / "result.json").read_text())["config"]
    assert saved["reweight_options"] == {"phi": 0.5, "eta": 0.01}
    config = RunConfig.from_dict(saved)
    assert config.reweight_options == {"phi": 0.5, "eta": 0.01}


@pytest.mark.parametrize("options, fragment", [
    (["--reweight", "vrba", "--reweight-option", "phi"], "--reweight-option expects NAME=VALUE"),
    (["--reweight", "vrba", "--reweight-option", "nonsense=1"], "nonsense"),
    (["--reweight", "vrba", "--reweight-option", "phi=2"], "phi"),
    (["--resample-every", "10", "--resample-option", "shape=1"], "shape"),
    (["--resample-every", "10", "--resample-option", "potential=cubic"], "cubic"),
    (["--resample-every", "10", "--resample-option", "phi=2"], "phi"),
    (["--resample-option", "constant=0"], "--resample-every"),
])
def test_bad_reweight_and_resample_options_exit_2_naming_them(tmp_path, options, fragment):
    code, stderr = invoke("train", "--problem", "burgers", "--width", "8", "--depth", "1", "--points", "100",
                          "--steps", "5", *options, "--out", tmp_path / "r")
    assert code == 2
    assert fragment in stderr and "Traceback" not in stderr
    assert not (tmp_path / "r").exists()


def test_resample_options_reach_the_saved_run(tmp_path):
    out = tmp_path / "run"
    code, stderr = invoke("train", "--problem", "burgers", "--width", "8", "--depth", "1", "--points", "100",
                          "--snr-batches", "0", "--steps", "20", "--log-every", "10", "--resample-every", "10",
                          "--resample-option", "potential=exponential", "--resample-option", "constant=0",
                          "--resample-option", "candidates=2000", "--out", out)
    assert code == 0, stderr
    saved = json.loads((out / "result.json").read_text())["config"]["resampling"]
    assert saved["potential"] == "exponential" and saved["constant"] == 0 and saved["candidates"] == 2000
    assert RunConfig.from_dict(json.loads((out / "result.json").read_text())["config"]).resampling.potential \
        == "exponential"


@pytest.mark.slow
def test_line_search_reweight_options_are_saved_and_checked(tmp_path):
    out = tmp_path / "run"
    code, stderr = invoke("train", "--problem", "burgers", "--width", "8", "--depth", "1", "--points", "100",
                          "--snr-batches", "0", "--steps", "20", "--log-every", "10", "--optimizer", "adam+lbfgs",
                          "--reweight", "vrba", "--hold-every", "5", "--line-search-reweight-option", "gamma=0.1",
                          "--line-search-reweight-option", "eta=0.9", "--out", out)
    assert code == 0, stderr
    saved = json.loads((out / "result.json").read_text())["config"]
    assert saved["line_search_reweight_options"] == {"gamma": 0.1, "eta": 0.9}
    code, stderr = invoke("train", "--problem", "burgers", "--width", "8", "--depth", "1", "--points", "100",
                          "--steps", "5", "--reweight", "vrba", "--line-search-reweight-option", "gamma=2",
                          "--out", tmp_path / "bad")
    assert code == 2 and "gamma" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "bad").exists()


# ----- resume faults: a finished run, a run killed mid-way, checkpoints copied in from another run -------------
TINY = ["--steps", "40", "--points", "64", "--depth", "1", "--log-every", "10", "--snr-batches", "4",
        "--param", "grid_size=21", "--param", "boundary_points_per_side=16", "--checkpoint-every", "10",
        "--keep-checkpoints", "5"]
AUTO = ["--optimizer", "adam+lbfgs", "--switch-step", "20", "--lr", "auto", "--width", "8", *TINY]
# Keys of result.json that time the run (a resumed run trains and compiles at another speed).
TIMINGS = {"wall_time_s", "compile_time_s", "steps_per_s"}


def temporaries(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.name.startswith(".") and
                  entry.name.endswith(".tmp"))


@pytest.fixture(scope="module")
def auto_runs(tmp_path_factory):
    """A finished two-stage --lr auto run, and the same run interrupted right after its step-30 checkpoint."""
    import pinnkit_cli.train_command as train_command

    root = tmp_path_factory.mktemp("auto")
    code, stderr = invoke("train", *AUTO, "--out", root / "straight")
    assert code == 0, stderr
    finished = {name: (root / "straight" / name).read_bytes() for name in ("result.json", "history.csv")}

    class KilledAfter30(Checkpointer):
        def save(self, step, *args):
            path = super().save(step, *args)
            if step >= 30:
                raise KeyboardInterrupt  # as a Ctrl-C right after the write
            return path

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_command, "Checkpointer", KilledAfter30)
        code, stderr = invoke("train", *AUTO, "--out", root / "killed")
    assert code == 130, stderr
    assert [int(path.stem.split("-")[1]) for path in list_checkpoints(root / "killed")] == [10, 20, 30]
    assert not (root / "killed" / "result.json").exists()
    return root, finished


@pytest.fixture(scope="module")
def resumed_midway(auto_runs):
    """The interrupted run continued with --resume, after a kill -9 left the temporaries of cut writes."""
    root, _ = auto_runs
    killed = root / "killed"
    for name in (".history.csv.k9w3x_.tmp", ".result.json.a1b2c3.tmp", ".checkpoint-000040.eqx.zz9.tmp"):
        (killed / name).write_bytes(b"cut short by kill -9")
    code, stderr = invoke("train", "--resume", killed)
    return killed, code, stderr


@pytest.mark.slow
def test_resuming_a_finished_run_changes_nothing(auto_runs):
    root, finished = auto_runs
    folder = root / "straight"
    summary = json.loads(finished["result.json"])
    assert summary["stage_starts"] == [0, 20] and "learning_rate_search" in summary
    for _ in range(2):
        code, stderr = invoke("train", "--resume", folder)
        assert code == 0, stderr
        for name, content in finished.items():
            assert (folder / name).read_bytes() == content, name
    # Also from the final checkpoint file itself.
    code, stderr = invoke("train", "--resume", latest_checkpoint(folder))
    assert code == 0, stderr
    assert (folder / "result.json").read_bytes() == finished["result.json"]


@pytest.mark.slow
def test_resuming_mid_run_keeps_the_stage_starts_and_the_learning_rate_search(auto_runs, resumed_midway):
    _, finished = auto_runs
    killed, code, stderr = resumed_midway
    assert code == 0, stderr
    expected = json.loads(finished["result.json"])
    got = json.loads((killed / "result.json").read_text())
    assert got["stage_starts"] == [0, 20]
    assert got["learning_rate_search"] == expected["learning_rate_search"]
    assert {key: value for key, value in got.items() if key not in TIMINGS} == \
        {key: value for key, value in expected.items() if key not in TIMINGS}


def test_no_temporaries_remain_after_a_resumed_run(resumed_midway):
    killed, code, stderr = resumed_midway
    assert code == 0, stderr
    assert temporaries(killed) == []


@pytest.fixture(scope="module")
def two_widths(tmp_path_factory):
    """Finished runs of width 8 and 16 (checkpoints at 10, 20, 30, 40 each)."""
    root = tmp_path_factory.mktemp("widths")
    for width in (8, 16):
        code, stderr = invoke("train", "--width", width, *TINY, "--out", root / f"w{width}")
        assert code == 0, stderr
    return root


def refused(folder: Path, path: Path, *fragments: str) -> None:
    before = sorted(entry.name for entry in folder.iterdir())
    code, stderr = invoke("train", "--resume", folder)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in stderr, stderr
    assert str(path) in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert sorted(entry.name for entry in folder.iterdir()) == before  # nothing written, nothing removed


@pytest.mark.slow
def test_a_checkpoint_whose_step_differs_from_its_name_is_refused(tmp_path, two_widths):
    folder = tmp_path / "run"
    shutil.copytree(two_widths / "w16", folder)
    for step in (30, 40):
        (folder / f"checkpoint-0000{step}.eqx").unlink()
    (folder / "result.json").unlink()
    copied = folder / "checkpoint-000030.eqx"
    shutil.copyfile(two_widths / "w8" / "checkpoint-000040.eqx", copied)  # really step 40 of the width-8 run
    refused(folder, copied, "step 40", "000030")


def test_a_checkpoint_of_another_configuration_than_its_folder_is_refused(tmp_path, two_widths):
    folder = tmp_path / "run"
    shutil.copytree(two_widths / "w16", folder)
    (folder / "checkpoint-000040.eqx").unlink()
    (folder / "result.json").unlink()
    copied = folder / "checkpoint-000040.eqx"
    shutil.copyfile(two_widths / "w8" / "checkpoint-000040.eqx", copied)  # name and step agree; the run does not
    refused(folder, copied, "width: 8 here, 16 there", "checkpoint-000010.eqx")


def test_a_checkpoint_of_another_configuration_than_the_result_is_refused(tmp_path, two_widths):
    folder = tmp_path / "run"
    shutil.copytree(two_widths / "w16", folder)
    for path in list_checkpoints(folder):
        path.unlink()
    copied = folder / "checkpoint-000040.eqx"
    shutil.copyfile(two_widths / "w8" / "checkpoint-000040.eqx", copied)
    refused(folder, copied, "width: 8 here, 16 there", "result.json")
