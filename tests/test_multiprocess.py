"""Several processes, one run: 2 local CPU processes give the 1-process 2-device history; process 0 alone writes;
bad splits, mismatched settings and an unreachable coordinator end every process with exit 2 and one line."""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from pinnkit.multiprocess import (
    CoordinatorUnreachableError,
    first_disagreement,
    initialize,
    is_lost_peer,
    parse_coordinator,
    share_from_main,
)

PINNKIT = [sys.executable, "-c", "from pinnkit_cli.app import main; main()"]
TINY_OPTIONS = {"steps": 30, "points": 200, "width": 8, "depth": 1, "log-every": 10, "snr-batches": 10, "lr": "3e-3"}


def tiny(**changes) -> list[str]:
    """``train`` with the tiny run's options, some changed (``log_every=5``; None leaves an option out)."""
    options = {**TINY_OPTIONS, **{name.replace("_", "-"): value for name, value in changes.items()}}
    return ["train", *(part for name, value in options.items() if value is not None
                       for part in (f"--{name}", str(value)))]


TINY = tiny()
TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(devices: int = 1) -> dict[str, str]:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def read_columns(path: Path, *names: str) -> dict[str, np.ndarray]:
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    return {name: np.array([float(row[name]) for row in rows]) for name in names}


def start_processes(args, count: int, cwd: Path, *, extra=lambda index: []) -> list[subprocess.CompletedProcess]:
    """``count`` processes of ``pinnkit ARGS`` joined through explicit flags (no launcher), all run to their end."""
    coordinator = f"127.0.0.1:{free_port()}"
    running = [subprocess.Popen([*PINNKIT, *args, *extra(index), "--coordinator", coordinator, "--num-processes",
                                 str(count), "--process-id", str(index), "--coordinator-timeout", "60"],
                                cwd=cwd, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for index in range(count)]
    done = []
    for process in running:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return done


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# --- the library, in this process (nothing here joins a run) ---------------------------------------------------

def test_coordinator_addresses_are_parsed_and_bad_ones_refused():
    assert parse_coordinator("127.0.0.1:1234") == ("127.0.0.1", 1234)
    assert parse_coordinator("[::1]:5") == ("::1", 5)
    for bad in ("localhost", ":1234", "host:", "host:0", "host:70000", "host:12a", 1234):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_coordinator(bad)


def test_initialize_refuses_bad_values_before_joining():
    with pytest.raises(ValueError, match=r"process_id must lie in \[0, 2\)"):
        initialize("127.0.0.1:1234", 2, 2)
    with pytest.raises(ValueError, match=r"process_id must lie in \[0, 2\)"):
        initialize("127.0.0.1:1234", 2, -1)
    with pytest.raises(ValueError, match="num_processes must be a positive integer"):
        initialize("127.0.0.1:1234", 0, 0)
    with pytest.raises(ValueError, match="all three"):
        initialize("127.0.0.1:1234", 2)
    with pytest.raises(ValueError, match="HOST:PORT"):
        initialize("127.0.0.1", 2, 1)
    with pytest.raises(ValueError, match="timeout_s"):
        initialize("127.0.0.1:1234", 2, 1, timeout_s=0)
    with pytest.raises(ValueError, match="does not resolve"):
        initialize("no-such-host.invalid:1234", 2, 1, timeout_s=1)


def test_an_unreachable_coordinator_is_named():
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(CoordinatorUnreachableError, match=f"cannot reach the coordinator {address} within 1 s"):
        initialize(address, 2, 1, timeout_s=1)


def test_a_process_on_its_own_agrees_with_itself():
    assert first_disagreement({"steps": 10, "points": [1, 2]}) is None
    assert share_from_main(7) == 7
    assert not is_lost_peer(RuntimeError("Gloo all-reduce failed"))  # only jax's runtime errors


def test_joining_flags_go_together():
    code, _, stderr = run_cli(*TINY, "--coordinator", "127.0.0.1:1", "--num-processes", "2")
    assert code == 2 and lines(stderr) == [lines(stderr)[0]] and "give all three" in stderr
    code, _, stderr = run_cli(*TINY, "--distributed", "--process-id", "0")
    assert code == 2 and "--distributed detects the cluster" in stderr
    code, _, stderr = run_cli(*TINY, "--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2")
    assert code == 2 and "--process-id must lie in [0, 2)" in stderr


def test_the_launcher_refuses_what_it_cannot_run():
    code, _, stderr = run_cli("launch", "--processes", "2", "--", "problems")
    assert code == 2 and "one of train" in stderr
    code, _, stderr = run_cli("launch", "--processes", "2", "--", *TINY, "--process-id", "1")
    assert code == 2 and "--process-id is set by pinnkit launch" in stderr
    code, _, stderr = run_cli("launch", "--processes", "0", "--", *TINY)
    assert code == 2 and "--processes must be a positive number" in stderr


# --- real processes -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_an_unreachable_coordinator_exits_2_naming_it(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    done = subprocess.run([*PINNKIT, *TINY, "--out", tmp_path / "out", "--coordinator", address, "--num-processes",
                           "2", "--process-id", "1", "--coordinator-timeout", "1"],
                          capture_output=True, text=True, env=environment(), timeout=TIMEOUT_S)
    assert done.returncode == 2, done.stderr
    assert lines(done.stderr) == [f"error: cannot reach the coordinator {address} within 1 s: is process 0 running "
                                  "there, and is the address one this host can reach?"]
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def two_ways(tmp_path_factory):
    """The same tiny run as 1 process x 2 devices and, through `pinnkit launch`, as 2 processes x 1 device."""
    root = tmp_path_factory.mktemp("two-ways")
    one = subprocess.run([*PINNKIT, *TINY, "--devices", "2", "--out", root / "one"], capture_output=True, text=True,
                         env=environment(devices=2), timeout=TIMEOUT_S)
    assert one.returncode == 0, one.stderr
    launched = root / "launched"
    launched.mkdir()
    two = subprocess.run([*PINNKIT, "launch", "--processes", "2", "--", *TINY, "--out", "run"], cwd=launched,
                         capture_output=True, text=True, env=environment(), timeout=TIMEOUT_S)
    return root / "one", launched, two


@pytest.mark.slow
def test_two_processes_give_the_one_process_two_device_history(two_ways):
    one, launched, two = two_ways
    assert two.returncode == 0, two.stderr
    names = ("step", "loss", "rel_l2")
    single, double = read_columns(one / "history.csv", *names), read_columns(launched / "run" / "history.csv", *names)
    np.testing.assert_array_equal(double["step"], single["step"])
    assert double["step"].tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30]
    for name in ("loss", "rel_l2"):
        np.testing.assert_allclose(double[name], single[name], rtol=1e-5, err_msg=name)
    assert len(set(single["loss"])) == len(single["loss"])  # the state moved: not a comparison of constants
    result = json.loads((launched / "run" / "result.json").read_text())
    assert result["config"]["devices"] == 2  # the points were split over both processes' devices


@pytest.mark.slow
def test_only_process_0_writes_one_output_folder(two_ways):
    _, launched, two = two_ways
    assert two.returncode == 0, two.stderr
    assert sorted(path.name for path in launched.iterdir()) == ["run"]
    assert sorted(path.name for path in (launched / "run").iterdir()) == [".pinnkit-output", "history.csv",
                                                                         "result.json"]
    assert "Gloo" not in two.stdout  # gloo's connection notice is kept off stdout (the progress bar is there)
    (line,) = lines(two.stderr)
    assert line.startswith("completed: 30 steps") and line.endswith(str(launched / "run"))


def test_points_that_the_processes_do_not_divide_exit_2_everywhere(tmp_path):
    done = start_processes([*tiny(points=201), "--out", "out"], 2, tmp_path)
    for process in done:
        assert process.returncode == 2, process.stderr
        assert lines(process.stderr) == ["error: --points 201 cannot be split evenly over the 2 device(s) of 2 "
                                         "processes; choose a multiple of 2"]
        assert process.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_processes_started_with_other_settings_exit_2_naming_it(tmp_path):
    done = start_processes([*tiny(steps=None), "--out", "out"], 2, tmp_path,
                           extra=lambda index: ["--steps", "30" if index == 0 else "40"])
    for process in done:
        assert process.returncode == 2, process.stderr
        assert lines(process.stderr) == ["error: the processes were started with different settings: process 1 has "
                                         "another 'steps' than process 0; start every process with the same "
                                         "options"]
    assert list(tmp_path.iterdir()) == []


COMPARE = ["compare", "--optimizers", "adam,sgd", "--reweight", "none,rba", "--steps", "20", "--points", "200",
           "--width", "8", "--depth", "1", "--log-every", "10", "--snr-batches", "10"]
# What a comparison's results.csv holds that depends on when and where it ran, not on what it computed.
TIMES = ("wall_time_s", "steps_per_s", "compile_time_s")


@pytest.mark.slow
def test_a_comparison_over_two_processes_writes_the_one_process_results(tmp_path):
    one = subprocess.run([*PINNKIT, *COMPARE, "--out", tmp_path / "one"], capture_output=True, text=True,
                         env=environment(), timeout=TIMEOUT_S)
    assert one.returncode == 0, one.stderr
    launched = tmp_path / "launched"
    launched.mkdir()
    two = subprocess.run([*PINNKIT, "launch", "--processes", "2", "--", *COMPARE, "--out", "two"], cwd=launched,
                         capture_output=True, text=True, env=environment(), timeout=TIMEOUT_S)
    assert two.returncode == 0, two.stderr
    assert sorted(path.name for path in launched.iterdir()) == ["two"]  # process 0's folder only
    with (tmp_path / "one" / "results.csv").open(newline="") as stream:
        single = list(csv.DictReader(stream))
    with (launched / "two" / "results.csv").open(newline="") as stream:
        double = list(csv.DictReader(stream))
    assert len(single) == 4 and [row["name"] for row in double] == [row["name"] for row in single]
    for alone, shared in zip(single, double, strict=True):
        assert {key: value for key, value in shared.items() if key not in TIMES} == \
            {key: value for key, value in alone.items() if key not in TIMES}
    files = lambda root: sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())  # noqa: E731
    assert files(launched / "two") == files(tmp_path / "one")
    for name in (path.name for path in (tmp_path / "one" / "histories").glob("*.csv")):
        names = ("step", "loss", "rel_l2")
        np.testing.assert_array_equal(
            np.array(list(read_columns(launched / "two" / "histories" / name, *names).values())),
            np.array(list(read_columns(tmp_path / "one" / "histories" / name, *names).values())))
    # The best run's field and the RBA weights come from the final states sent to process 0.
    weights = sorted(path.name for path in (tmp_path / "one" / "arrays").glob("weights_*.npz"))
    assert len(weights) == 2
    for name, key in [("fields.npz", "predicted"), *((name, "weights") for name in weights)]:
        np.testing.assert_array_equal(np.load(launched / "two" / "arrays" / name)[key],
                                      np.load(tmp_path / "one" / "arrays" / name)[key], err_msg=name)


# --- slow: a two-stage plan, and a run killed in one process then resumed ---------------------------------------

@pytest.mark.slow
def test_two_processes_give_the_one_process_history_of_an_adam_ssbroyden_plan(tmp_path):
    plan = [*tiny(steps=40, log_every=5), "--optimizer", "adam+ssbroyden"]
    one = subprocess.run([*PINNKIT, *plan, "--devices", "2", "--out", tmp_path / "one"], capture_output=True,
                         text=True, env=environment(devices=2), timeout=TIMEOUT_S)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([*PINNKIT, "launch", "--processes", "2", "--", *plan, "--out", tmp_path / "two"],
                         capture_output=True, text=True, env=environment(), timeout=TIMEOUT_S)
    assert two.returncode == 0, two.stderr
    names = ("step", "stage", "loss", "rel_l2")
    single, double = (read_columns(tmp_path / name / "history.csv", *names) for name in ("one", "two"))
    np.testing.assert_array_equal(double["step"], single["step"])
    assert set(single["stage"]) == {0, 1}  # both stages ran
    for name in ("loss", "rel_l2"):
        np.testing.assert_allclose(double[name], single[name], rtol=1e-5, err_msg=name)


@pytest.mark.slow
def test_a_run_killed_in_one_process_resumes_to_the_uninterrupted_history(tmp_path):
    import shutil
    import signal
    import time

    # Few steps: on a loaded machine each step's all-reduce between processes waits for both to be scheduled.
    run = [*tiny(steps=200, log_every=20), "--checkpoint-every", "40"]
    straight = subprocess.run([*PINNKIT, *run, "--devices", "2", "--out", tmp_path / "straight"], capture_output=True,
                              text=True, env=environment(devices=2), timeout=TIMEOUT_S)
    assert straight.returncode == 0, straight.stderr
    coordinator = f"127.0.0.1:{free_port()}"
    killed = tmp_path / "killed"
    processes = [subprocess.Popen([*PINNKIT, *run, "--out", killed, "--coordinator", coordinator, "--num-processes",
                                   "2", "--process-id", str(index)], env=environment(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for index in range(2)]
    deadline = time.monotonic() + TIMEOUT_S
    while not list(killed.glob("checkpoint-*.eqx")) and time.monotonic() < deadline:
        assert processes[0].poll() is None, processes[0].communicate()[1]
        time.sleep(0.05)
    processes[1].send_signal(signal.SIGKILL)
    _, stderr = processes[0].communicate(timeout=TIMEOUT_S)
    processes[1].communicate(timeout=TIMEOUT_S)
    assert processes[0].returncode == 70, stderr
    assert "error: another process of the run is gone" in lines(stderr)[-1] and "kept" in lines(stderr)[-1]
    assert not (killed / "result.json").exists()
    # Resumed by 2 processes, and (a copy) by 1 process with 2 devices: any layout of the 2 devices continues it.
    shutil.copytree(killed, tmp_path / "copy")
    resumed = subprocess.run([*PINNKIT, "launch", "--processes", "2", "--", "train", "--resume", killed],
                             capture_output=True, text=True, env=environment(), timeout=TIMEOUT_S)
    assert resumed.returncode == 0, resumed.stderr
    alone = subprocess.run([*PINNKIT, "train", "--resume", tmp_path / "copy"], capture_output=True, text=True,
                           env=environment(devices=2), timeout=TIMEOUT_S)
    assert alone.returncode == 0, alone.stderr
    names = ("step", "loss", "rel_l2")
    truth = read_columns(tmp_path / "straight" / "history.csv", *names)
    for folder in (killed, tmp_path / "copy"):
        found = read_columns(folder / "history.csv", *names)
        np.testing.assert_array_equal(found["step"], truth["step"])
        for name in ("loss", "rel_l2"):
            np.testing.assert_allclose(found[name], truth[name], rtol=1e-5, err_msg=f"{folder.name}: {name}")
