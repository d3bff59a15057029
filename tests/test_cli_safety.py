"""The command line under faults injected for real: what it deletes (nothing of yours), two runs on one folder,
sizes that cannot fit, signals at any moment, full disks and file-size limits, running out of memory, silent
nonsense, damaged files. Every case: the promised exit code, one line on stderr, no traceback, nothing
half-written or empty left behind (exit codes: :mod:`pinnkit_cli.errors`)."""

from __future__ import annotations

import csv
import importlib
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from pinnkit.checkpoint import list_checkpoints
from pinnkit.engine import MAX_ROWS, MAX_STEPS
from pinnkit.experiment import RunConfig
from pinnkit.outputs import MARKER, filesystem, read_marker
from pinnkit.resources import cgroup_available, check_fits, estimate_run_memory
from pinnkit_cli.app import REPEAT_WINDOW_S
from pinnkit_cli.options import significant

PINNKIT = [sys.executable, "-c", "from pinnkit_cli.app import main; main()"]
TINY = ["--width", "8", "--depth", "1", "--points", "100", "--snr-batches", "0"]
# The issue's size (T), for the signal tests: long enough to be caught in every phase.
T = ["--width", "16", "--depth", "2", "--points", "200", "--snr-batches", "10"]
COMPARE = [*TINY, "--optimizers", "adam", "--reweight", "none", "--param", "grid_size=21"]


# ----- helpers ------------------------------------------------------------------------------------------------


@pytest.fixture
def env():
    # The session's compilation cache (conftest) is inherited: later processes start faster.
    return dict(os.environ, JAX_PLATFORMS="cpu")


def one_line(stderr: str) -> str:
    """The single line of ``stderr`` (asserted: exactly one, no traceback, no raw control characters)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr[-3000:]
    assert "Traceback" not in stderr and "\x00" not in stderr
    return lines[0]


def invoke(*args) -> tuple[int, str]:
    """The console script in-process: (exit code, stderr)."""
    code, _, stderr = run_cli(*args)
    return code, stderr


def spawn(args, cwd, env, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([*PINNKIT, *map(str, args)], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kwargs)


# Sets a resource limit, then becomes the console script (no preexec_fn: forking a process that runs JAX's
# threads and then running Python in the child is what os.fork warns about).
LIMITED = [sys.executable, "-c", "import os, resource, sys; kind, size = int(sys.argv[1]), int(sys.argv[2]); "
           "resource.setrlimit(kind, (size, size)); os.execv(sys.executable, [sys.executable, '-c', "
           "'from pinnkit_cli.app import main; main()', *sys.argv[3:]])"]


def run(args, cwd, env, timeout=300, rlimit: tuple[int, int] | None = None) -> subprocess.CompletedProcess:
    """The console script in a new process (under ``rlimit``: (resource, size) when given)."""
    command = [*LIMITED, str(rlimit[0]), str(rlimit[1])] if rlimit is not None else PINNKIT
    return subprocess.run([*command, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def wait_for(condition, process: subprocess.Popen | None = None, timeout: float = 240.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended ({process.returncode}) before {what}: "
                                 f"{process.stderr.read()[-2000:] if process.stderr else ''}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def listing(root: Path) -> list[str]:
    """Every path under ``root`` (relative), sorted."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(path.relative_to(root)): (None if path.is_dir() else path.read_bytes())
            for path in sorted(root.rglob("*"))}


def no_temporaries(root: Path) -> None:
    assert not [path for path in root.rglob("*") if path.name.endswith(".tmp") or ".pinnkit-staging-" in path.name
                or ".pinnkit-old-" in path.name], listing(root)


def strict_json(path: Path):
    """Parse ``path`` as strict JSON: a bare NaN or Infinity token fails."""
    def refuse(token):
        raise AssertionError(f"{path} holds the non-JSON token {token}")
    return json.loads(path.read_text(), parse_constant=refuse)


class TrainingStarted(AssertionError):
    """Raised instead of training: input that must be refused up front reached training."""


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise TrainingStarted("refused input reached training")

    monkeypatch.setattr(importlib.import_module("pinnkit.experiment"), "fit_stacked", refuse)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory) -> Path:
    """A finished `pinnkit compare` output folder (copy it before changing it)."""
    out = tmp_path_factory.mktemp("comparison") / "run"
    code, _, stderr = run_cli("compare", *COMPARE, "--steps", "20", "--log-every", "10", "--out", out)
    assert code == 0, stderr
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished `pinnkit train` output folder with checkpoints (copy it before changing it)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    code, _, stderr = run_cli("train", *TINY, "--steps", "20", "--log-every", "10", "--checkpoint-every", "10",
                              "--out", out)
    assert code == 0, stderr
    return out


# ----- 1. --overwrite never deletes anything of yours ---------------------------------------------------------


@pytest.mark.parametrize("command", ["compare", "train"])
@pytest.mark.parametrize("target", [".", "", "./", "..", "../..", "{cwd}", "sub/..", "/"])
def test_overwrite_never_touches_the_current_folder_or_its_ancestors(tmp_path, monkeypatch, no_training, command,
                                                                     target):
    cwd = tmp_path / "project" / "work"
    cwd.mkdir(parents=True)
    (cwd / "keep").write_text("mine")
    (tmp_path / "project" / "thesis.tex").write_text("years of work")
    monkeypatch.chdir(cwd)
    before = snapshot(tmp_path)
    options = COMPARE if command == "compare" else TINY
    code, stderr = invoke(command, *options, "--steps", "10", "--out", target.format(cwd=cwd), "--overwrite")
    assert code == 2
    line = one_line(stderr)
    assert line.startswith("error: output folder") and ("current folder" in line or "root" in line)
    assert snapshot(tmp_path) == before and (cwd / "keep").read_text() == "mine"


def test_overwrite_refuses_folders_pinnkit_did_not_write(tmp_path, comparison, no_training):
    # A compare output the user added a file to, a plain folder, and a train output: all kept as they were.
    mine = tmp_path / "mine"
    shutil.copytree(comparison, mine)
    (mine / "figures" / "notes.txt").write_text("mine")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "results.csv").write_text("name\n")
    other = tmp_path / "other"
    shutil.copytree(comparison, other)
    marker = json.loads((other / MARKER).read_text())
    (other / MARKER).write_text(json.dumps({**marker, "kind": "train"}))
    before = snapshot(tmp_path)
    for folder, needle in ((mine, "notes.txt"), (plain, "not a pinnkit output"), (other, "'train' output")):
        code, stderr = invoke("compare", *COMPARE, "--steps", "10", "--out", folder, "--overwrite")
        assert code == 2 and needle in one_line(stderr), stderr
    assert snapshot(tmp_path) == before


def test_overwrite_swaps_in_a_complete_new_output_in_one_step(tmp_path, comparison, monkeypatch):
    target = tmp_path / "run"
    shutil.copytree(comparison, target)
    old_summary = (target / "summary.json").read_bytes()
    swaps = []
    exchange = filesystem.exchange

    def watched(first, second):
        # At the moment of the swap the old output is still whole and the new one is complete.
        assert (second / "summary.json").read_bytes() == old_summary
        assert strict_json(first / "summary.json")["config"]["steps"] == 30
        assert {"results.csv", "summary.json", "histories", "figures", MARKER} <= set(os.listdir(first))
        swaps.append((first, second))
        return exchange(first, second)

    monkeypatch.setattr(filesystem, "exchange", watched)
    code, stderr = invoke("compare", *COMPARE, "--steps", "30", "--log-every", "10", "--out", target, "--overwrite")
    assert code == 0, stderr
    assert len(swaps) == 1 and swaps[0][1] == target.resolve()
    assert strict_json(target / "summary.json")["config"]["steps"] == 30
    assert read_marker(target)["state"] == "complete"
    no_temporaries(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["run"]


# ----- 2. two runs on one folder ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_compare_on_a_busy_folder_is_refused_and_the_first_finishes_intact(tmp_path, env):
    first = spawn(["compare", *COMPARE, "--steps", "2000", "--log-every", "100", "--out", "same"], tmp_path, env)
    try:
        wait_for(lambda: read_marker(tmp_path / "same") is not None, first, what="the first compare claimed 'same'")
        # Paused, it holds the folder for as long as the second ones need, however loaded the machine.
        first.send_signal(signal.SIGSTOP)
        seconds = [spawn(["compare", *COMPARE, "--steps", "10", "--out", "same", *extra], tmp_path, env)
                   for extra in ([], ["--overwrite"])]
        for second in seconds:
            _, stderr = second.communicate(timeout=120)
            assert second.returncode == 2
            line = one_line(stderr)
            assert "in use by another pinnkit run" in line and f"pid {first.pid}" in line
        first.send_signal(signal.SIGCONT)
        _, stderr = first.communicate(timeout=300)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0, stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "same" / "results.csv").open()))
    assert len(rows) == 1 and rows[0]["steps"] == "2000"
    assert strict_json(tmp_path / "same" / "summary.json")["config"]["steps"] == 2000
    code, stderr = invoke("plot", tmp_path / "same")
    assert code == 0, stderr
    assert sorted(os.listdir(tmp_path)) == ["same"]
    no_temporaries(tmp_path)


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "replacing-a-finished-run"])
@pytest.mark.slow
def test_a_second_train_on_a_busy_folder_exits_2_at_once(tmp_path, env, trained, existing):
    if existing:
        shutil.copytree(trained, tmp_path / "same")
    before = snapshot(tmp_path)
    args = ["train", *TINY, "--steps", "1000000", "--log-every", "100", "--checkpoint-every", "100",
            "--keep-checkpoints", "2", "--out", "same", "--overwrite"]
    first = spawn(args, tmp_path, env)
    try:
        # The first run's checkpoints go to the folder itself, or to its staging folder while it replaces one.
        checkpoints = lambda: sorted(tmp_path.glob("same/checkpoint-*.eqx") if not existing else  # noqa: E731
                                     tmp_path.glob(".same.pinnkit-staging-*/checkpoint-*.eqx"))
        wait_for(lambda: checkpoints(), first, what="the first run's first checkpoint")
        # The second run compiles into a cache of its own: whatever it compiled (a run that trained, or set up its
        # training before it asked for the folder) would be there.
        second_cache = tmp_path / "second-cache"
        second_cache.mkdir()
        entries = sorted(os.listdir(tmp_path))
        second = run(args, tmp_path, dict(env, PINNKIT_COMPILATION_CACHE=str(second_cache)))
        assert first.poll() is None, "the first run ended before the second was refused"
        assert second.returncode == 2
        line = one_line(second.stderr)  # that line alone: no progress, no warning
        assert "in use by another pinnkit run" in line and f"pid {first.pid}" in line
        # Refused before it did anything: it printed nothing else, compiled nothing, and wrote nothing (no
        # staging folder, no output folder of its own; the folder still names the first run as its holder).
        assert second.stdout == ""
        assert listing(second_cache) == [], "the refused run compiled"
        assert sorted(os.listdir(tmp_path)) == entries
        written = next(tmp_path.glob(".same.pinnkit-staging-*")) if existing else tmp_path / "same"
        assert read_marker(written)["pid"] == first.pid
        # The first run goes on checkpointing (and pruning only its own checkpoints).
        seen = checkpoints()[-1]
        wait_for(lambda: checkpoints()[-1] != seen, first, what="a later checkpoint of the first run")
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=120)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 130
    line = one_line(stderr)
    kept = tmp_path / ("same.interrupted" if existing else "same")
    held = ", ".join(sorted(path.name for path in kept.iterdir() if not path.name.startswith(".")))
    assert line == f"interrupted; kept {kept} (holding {held})" + (
        f"; {tmp_path / 'same'} is unchanged" if existing else "")
    assert "checkpoint-" in held
    assert 1 <= len(list_checkpoints(kept)) <= 2
    if existing:
        assert {name: content for name, content in snapshot(tmp_path).items() if name.startswith("same/")
                or name == "same"} == before  # the finished run it was replacing is untouched
    no_temporaries(tmp_path)


# ----- 3. step counts past the documented maximum -------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "compare"])
@pytest.mark.parametrize("args, needle", [
    (["--steps", "99999999999999999999999999"], f"at most {MAX_STEPS:,}"),
    (["--steps", str(MAX_STEPS + 1)], f"at most {MAX_STEPS:,}"),
    (["--steps", str(MAX_STEPS), "--log-every", "1"], f"at most {MAX_ROWS:,}"),
])
def test_huge_step_counts_exit_2_at_once(tmp_path, monkeypatch, caplog, no_training, command, args, needle):
    # At once: refused from the numbers alone, before any JAX work (nothing traced or compiled, so nothing built
    # or trained: see no_training) and before any allocation that grows with the steps.
    import tracemalloc

    import jax

    monkeypatch.chdir(tmp_path)
    tracemalloc.start()
    try:
        with jax.log_compiles(True), caplog.at_level("DEBUG"):
            code, stderr = invoke(command, *(COMPARE if command == "compare" else T), *args, "--out", "o")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and needle in one_line(stderr)
    assert not [record.getMessage() for record in caplog.records if "tracing" in record.getMessage()
                or "Compiling" in record.getMessage()]
    assert peak < 64 << 20, f"the refusal allocated {peak / 2**20:.0f} MiB"
    assert listing(tmp_path) == []


@pytest.mark.slow
def test_huge_step_counts_allocate_nothing_under_a_memory_limit(tmp_path, env):
    for args in (["--steps", "99999999999999999999999999"], ["--steps", "1000000000", "--log-every", "1"]):
        done = run(["train", *T, *args, "--out", "o"], tmp_path, env, rlimit=(resource.RLIMIT_AS, 4 << 30))
        assert done.returncode == 2 and "at most" in one_line(done.stderr)
    assert listing(tmp_path) == []


# ----- 4. signals at any moment -------------------------------------------------------------------------------


SIGNAL_CASES = [
    # (command, signal, seconds after start, compilation cache): import ends after about 2-3 s here, compiling
    # (with a cold cache) after 5-7 s; a warm cache goes straight from import to training.
    ("train", signal.SIGINT, 0.3, "warm"),
    ("train", signal.SIGINT, 1.0, "warm"),
    ("train", signal.SIGINT, 3.0, "cold"),
    ("train", signal.SIGINT, 5.0, "cold"),
    ("train", signal.SIGINT, 6.0, "warm"),
    ("compare", signal.SIGINT, 1.0, "warm"),
    ("compare", signal.SIGINT, 4.0, "cold"),
    ("compare", signal.SIGINT, 8.0, "warm"),
    ("train", signal.SIGTERM, 4.0, "cold"),
    ("compare", signal.SIGTERM, 6.0, "warm"),
]
# More moments (about 3 minutes): every phase with either cache, and the compare case in which the interrupt once
# landed in JAX's garbage-collection callback and was swallowed (the run then finished with exit 0).
SLOW_SIGNAL_CASES = [("train", signal.SIGINT, delay, cache) for delay in (0.1, 0.5, 2.0, 4.0, 6.0, 9.0)
                     for cache in ("warm", "cold")] + [("compare", signal.SIGINT, delay, cache)
                                                       for delay in (2.0, 3.0, 5.0, 6.0, 7.0)
                                                       for cache in ("warm", "cold")]


def _signal_run(tmp_path, env, command, signum, delay, cache):
    if cache == "cold":  # a cache of its own: this process compiles everything
        env = dict(env, PINNKIT_COMPILATION_CACHE=str(tmp_path / "cold-cache"))
    work = tmp_path / "work"
    work.mkdir()
    args = ["train", *T, "--steps", "100000", "--log-every", "100", "--out", "x"] if command == "train" else \
        ["compare", *T, "--param", "grid_size=21", "--optimizers", "adam,sgd", "--reweight", "none,rba",
         "--steps", "20000", "--out", "x"]
    process = spawn(args, work, env)
    try:
        time.sleep(delay)
        assert process.poll() is None, f"it ended before the signal: {process.stderr.read()[-2000:]}"
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    expected = {signal.SIGINT: (130, "interrupted"), signal.SIGTERM: (143, "terminated")}[signum]
    assert (process.returncode, one_line(stderr)) == expected, stderr[-3000:]
    assert listing(work) == []  # no checkpoints asked for: no folder left behind


@pytest.mark.parametrize("command, signum, delay, cache", SIGNAL_CASES,
                         ids=[f"{c}-{signal.Signals(s).name}-{d}s-{k}" for c, s, d, k in SIGNAL_CASES])
@pytest.mark.slow
def test_a_signal_at_any_moment_exits_cleanly(tmp_path, env, command, signum, delay, cache):
    _signal_run(tmp_path, env, command, signum, delay, cache)


@pytest.mark.slow
@pytest.mark.parametrize("command, signum, delay, cache", SLOW_SIGNAL_CASES,
                         ids=[f"{c}-{d}s-{k}" for c, _, d, k in SLOW_SIGNAL_CASES])
def test_a_signal_at_any_moment_exits_cleanly_more_moments(tmp_path, env, command, signum, delay, cache):
    _signal_run(tmp_path, env, command, signum, delay, cache)


@pytest.mark.slow
def test_the_issue_command_under_timeout_exits_130(tmp_path, env):
    # The report: `timeout --preserve-status -s INT 6 pinnkit train T --steps 5000 --log-every 100 --out x` used
    # to end in a segmentation fault (exit 139).
    if shutil.which("timeout") is None:
        pytest.skip("no timeout(1) here")
    env = dict(env, PINNKIT_COMPILATION_CACHE=str(tmp_path / "cold-cache"))  # 6 s: still compiling or training
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(["timeout", "--preserve-status", "-s", "INT", "6", *PINNKIT, "train", *T, "--steps",
                           "50000", "--log-every", "100", "--out", "x"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert (done.returncode, one_line(done.stderr)) == (130, "interrupted")
    assert listing(work) == []


STUCK = """
import hashlib, signal, sys
from pinnkit_cli import app
signal.signal(signal.SIGINT, app._on_signal)
signal.signal(signal.SIGTERM, app._on_signal)
app._phase[0] = "running"
app._watch_signals()
print("ready", flush=True)
hashlib.pbkdf2_hmac("sha256", b"x", b"y", 2**31 - 1)  # a C loop deaf to signals, like a long XLA compilation
"""


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process ``pid`` has used, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_inside_the_c_call(process: subprocess.Popen) -> None:
    """Once STUCK said "ready": wait until it is inside its C call, seen as 0.2 s of CPU time spent since (all
    it does after that line), however long the machine takes to give it that time."""
    if not Path(f"/proc/{process.pid}/stat").is_file():  # no /proc: half a second is plenty on an idle machine
        time.sleep(0.5)
        return
    start = cpu_seconds(process.pid)
    wait_for(lambda: cpu_seconds(process.pid) >= start + 0.2, process, what="the C call")


@pytest.mark.parametrize("signum, expected", [(signal.SIGINT, (130, "interrupted")),
                                              (signal.SIGTERM, (143, "terminated"))], ids=["SIGINT", "SIGTERM"])
def test_a_second_signal_ends_a_process_stuck_in_a_long_c_call(tmp_path, env, signum, expected):
    process = subprocess.Popen([sys.executable, "-c", STUCK], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        wait_inside_the_c_call(process)
        process.send_signal(signum)
        time.sleep(REPEAT_WINDOW_S + 0.5)
        assert process.poll() is None  # the first waits for the C call to return (Python's handler cannot run)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert (process.returncode, one_line(stderr)) == expected


def test_a_signal_delivered_twice_at_once_is_one_request(tmp_path, env):
    # timeout(1) sends its signal to the process and then to the process group: two copies within microseconds.
    # Taken as a second Ctrl-C they ended the process at once and left its claimed output folder behind.
    process = subprocess.Popen([sys.executable, "-c", STUCK], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        wait_inside_the_c_call(process)
        for _ in range(3):  # apart enough to be delivered one by one, not merged by the kernel
            process.send_signal(signal.SIGINT)
            time.sleep(0.05)
        time.sleep(REPEAT_WINDOW_S / 2)
        assert process.poll() is None, "copies of one signal were taken for a second Ctrl-C"
        time.sleep(REPEAT_WINDOW_S)
        process.send_signal(signal.SIGINT)  # a real second Ctrl-C still ends it at once
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert (process.returncode, one_line(stderr)) == (130, "interrupted")


@pytest.mark.slow
def test_an_interrupted_run_keeps_its_checkpoints_and_resumes(tmp_path, env):
    out = tmp_path / "run"
    process = spawn(["train", *TINY, "--steps", "3000", "--log-every", "50", "--checkpoint-every", "100",
                     "--out", out], tmp_path, env)
    try:
        wait_for(lambda: list_checkpoints(out) if out.is_dir() else [], process, what="a checkpoint")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    saved = list_checkpoints(out)
    held = ", ".join(sorted(path.name for path in out.iterdir() if not path.name.startswith(".")))
    assert (process.returncode, one_line(stderr)) == (130, f"interrupted; kept {out} (holding {held})")
    assert saved and read_marker(out)["state"] == "interrupted" and not (out / "result.json").exists()
    no_temporaries(tmp_path)
    # Its checkpoints are the only way to continue it: --overwrite is refused, nothing is touched.
    before = snapshot(out)
    code, stderr = invoke("train", *TINY, "--steps", "20", "--out", out, "--overwrite", "--checkpoint-every", "5")
    assert code == 2 and "holds checkpoints of an unfinished run" in one_line(stderr)
    assert snapshot(out) == before
    code, stderr = invoke("train", "--resume", out)
    assert code == 0, stderr
    assert strict_json(out / "result.json")["steps"] == 3000 and read_marker(out)["state"] == "complete"


# ----- 5. a full disk, a file-size limit ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_failed_final_write_exits_3_and_leaves_nothing(tmp_path, env):
    # 2 KiB: the marker (1 KiB) fits, history.csv (about 3.6 KiB) does not.
    done = run(["train", *TINY, "--steps", "50", "--log-every", "10", "--out", "o"], tmp_path, env,
               rlimit=(resource.RLIMIT_FSIZE, 2048))
    assert done.returncode == 3
    line = one_line(done.stderr)
    assert line.startswith(f"error: cannot write to {str(tmp_path / 'o')!r}: File too large; the run finished (")
    assert "rel_l2 " in line and "loss " in line
    assert listing(tmp_path) == []


def test_a_failed_checkpoint_write_exits_3_and_leaves_nothing(tmp_path, env):
    done = run(["train", *TINY, "--steps", "50", "--log-every", "10", "--checkpoint-every", "10", "--out", "o"],
               tmp_path, env, rlimit=(resource.RLIMIT_FSIZE, 2048))
    assert done.returncode == 3
    assert one_line(done.stderr) == f"error: cannot write to {str(tmp_path / 'o')!r}: File too large"
    assert listing(tmp_path) == []


@pytest.mark.slow
def test_a_failed_compare_write_exits_3_and_keeps_the_finished_runs(tmp_path, env):
    # 8 KiB: the marker and the run's history and result fit, the figures do not.
    done = run(["compare", *COMPARE, "--steps", "20", "--log-every", "10", "--out", "o"], tmp_path, env,
               rlimit=(resource.RLIMIT_FSIZE, 8192))
    assert done.returncode == 3
    line = one_line(done.stderr)
    out = tmp_path / "o"
    assert line.startswith(f"error: cannot write to {str(out)!r}: File too large; the comparison "
                           "finished (1 run; best rel_l2 ")
    assert f"; kept {out} (holding " in line and "histories/ (2 files)" in line, line  # a csv and a json
    name = "helmholtz_adam_none_seed0"
    saved = strict_json(out / "histories" / f"{name}.json")
    history = list(csv.DictReader((out / "histories" / f"{name}.csv").open()))
    assert saved["name"] == name and saved["steps"] == 20 and saved["status"] == "completed"
    assert float(history[-1]["step"]) == 20 and float(history[-1]["rel_l2"]) == saved["rel_l2"]
    assert f"best rel_l2 {significant(saved['rel_l2'])} (" in line
    assert read_marker(out)["state"] == "interrupted"
    no_temporaries(tmp_path)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (skipped where mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"cannot mount a tmpfs here: {error}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True, timeout=30)


@pytest.mark.slow
def test_a_full_disk_exits_3_and_keeps_only_finished_runs(tiny_disk, env):
    # 500 history rows (about 100 KiB) and a comparison's figures do not fit in 64 KiB. A training run without
    # checkpoints leaves nothing; a comparison keeps the runs it finished (written as each one ended).
    for command, args in (("train", ["train", *TINY, "--steps", "500", "--log-every", "1"]),
                          ("compare", ["compare", *COMPARE, "--steps", "20", "--log-every", "10"])):
        done = run([*args, "--out", "o"], tiny_disk, env)
        assert done.returncode == 3, done.stderr[-2000:]
        line = one_line(done.stderr)
        assert line.startswith(f"error: cannot write to {str(tiny_disk / 'o')!r}: No space left on device; the ")
        if command == "train":
            assert listing(tiny_disk) == []
        else:
            assert f"; kept {tiny_disk / 'o'} (holding " in line and "histories/ (2 files)" in line, line
            history = tiny_disk / "o" / "histories" / "helmholtz_adam_none_seed0.csv"
            assert float(list(csv.DictReader(history.open()))[-1]["step"]) == 20
            assert read_marker(tiny_disk / "o")["state"] == "interrupted"
            no_temporaries(tiny_disk)
            shutil.rmtree(tiny_disk / "o")


# ----- 6. sizes that cannot fit, names that cannot exist, running out of memory -------------------------------


SIZE_CASES = [(command, args, needle) for command in ("train", "compare") for args, needle in [
    (["--width", "100000000"], "of memory"),
    (["--points", "10000000000"], "of memory"),
    (["--param", "grid_size=1000000"], "of memory"),
    (["--param", "boundary_points_per_side=100000000000"], "of memory"),
    (["--out", "x" * 300], "bytes long; the file system allows"),
    (["--out", "deep/" + "y" * 300 + "/out"], "bytes long; the file system allows"),
]] + [("train", ["--seed", "18446744073709551616"], "seed must be at most 4,294,967,295")]


@pytest.mark.parametrize("command, args, needle", SIZE_CASES,
                         ids=[f"{command}-{args[0]}-{len(args[1])}" for command, args, _ in SIZE_CASES])
def test_sizes_that_cannot_fit_exit_2_up_front(tmp_path, monkeypatch, no_training, command, args, needle):
    monkeypatch.chdir(tmp_path)
    code, stderr = invoke(command, *(COMPARE[:-2] if command == "compare" else TINY), "--steps", "10", "--out", "o",
                          *args)
    assert code == 2 and needle in one_line(stderr)
    assert "File name too long" not in stderr
    assert listing(tmp_path) == []


@pytest.mark.parametrize("args", [["train", "--resume", "z" * 300], ["plot", "z" * 300], ["detect", "z" * 300]])
def test_input_names_too_long_exit_2(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    code, stderr = invoke(*args)
    assert code == 2 and one_line(stderr).startswith("error: ")


@pytest.mark.slow
def test_running_out_of_memory_at_run_time_exits_4(tmp_path, env):
    # The up-front estimate counts the machine's memory, not an address-space limit (ulimit -v): under one, a
    # run the estimate accepts fails its allocation while running.
    args = ["--width", "64", "--depth", "4", "--points", "150000", "--snr-batches", "0", "--steps", "20",
            "--log-every", "10"]
    config = RunConfig(width=64, depth=4, points=150000)
    try:
        check_fits(config)
    except ValueError:
        pytest.skip("this machine has too little memory for the estimate to accept the run")
    assert estimate_run_memory(config) > 3 << 30
    done = run(["train", *args, "--out", "o"], tmp_path, env, rlimit=(resource.RLIMIT_AS, 3 << 30))
    assert done.returncode == 4, done.stderr[-3000:]
    assert one_line(done.stderr).startswith("error: out of memory (RESOURCE_EXHAUSTED")
    assert listing(tmp_path) == []


def test_a_control_group_limit_counts_as_the_memory_available(tmp_path):
    # A fake /proc/self and cgroup trees: v2 with a limit on the parent level, v1 with one on the process's.
    proc = tmp_path / "proc"
    proc.mkdir()
    v2, v1 = tmp_path / "unified", tmp_path / "memory"
    (v2 / "user" / "job").mkdir(parents=True)
    (v1 / "box").mkdir(parents=True)
    (proc / "cgroup").write_text("4:memory:/box\n0::/user/job\n")
    (proc / "mountinfo").write_text(
        f"41 31 0:38 / {v2} rw,relatime - cgroup2 cgroup2 rw\n"
        f"35 31 0:32 / {v1} rw,relatime - cgroup cgroup rw,memory\n"
        f"36 31 0:33 / {tmp_path} rw,relatime - cgroup cgroup rw,cpu\n")
    files = {
        v2 / "user" / "job": {"memory.max": "max\n", "memory.current": "100\n"},
        v2 / "user": {"memory.max": f"{8 << 30}\n", "memory.current": f"{3 << 30}\n",
                      "memory.stat": f"anon 5\ninactive_file {1 << 30}\n"},
        v1 / "box": {"memory.limit_in_bytes": f"{16 << 30}\n", "memory.usage_in_bytes": f"{2 << 30}\n",
                     "memory.stat": "total_inactive_file 0\n"},
        v1: {"memory.limit_in_bytes": "9223372036854771712\n", "memory.usage_in_bytes": "1\n"},
    }
    for folder, contents in files.items():
        for name, text in contents.items():
            (folder / name).write_text(text)
    assert cgroup_available(proc) == (8 << 30) - (3 << 30) + (1 << 30)  # the least headroom over all levels
    (v2 / "user" / "memory.max").write_text("max\n")
    assert cgroup_available(proc) == (16 << 30) - (2 << 30)
    (v1 / "box" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_available(proc) is None
    assert cgroup_available(tmp_path / "absent") is None


# ----- 7. silent nonsense is refused --------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["compare", "--optimizers", ""],
    ["compare", "--optimizers", "adam,adam"],
    ["compare", "--reweight", "none,none"],
    ["compare", "--switch-step", "5"],
    ["train", "--switch-step", "5"],
    ["train", "--switch-at", "equilibrium"],
    *[[command, *extra] for command in ("train", "compare") for extra in (
        ["--param", "a1=0"], ["--param", "a1=1e308"], ["--lr", "1e308"], ["--snr-batches", "1"],
        ["--param", "a1=1", "--param", "a1=2"], ["--param", "a1=nan"])],
])
def test_silent_nonsense_exits_2(tmp_path, monkeypatch, no_training, args):
    monkeypatch.chdir(tmp_path)
    command, *rest = args
    base = COMPARE if command == "compare" else TINY  # the options given after these win
    code, stderr = invoke(command, *base, "--steps", "10", *rest, "--out", "o")
    assert code == 2
    line = one_line(stderr)
    assert line.startswith("error: ") and "diverged" not in line
    assert listing(tmp_path) == []


def test_a_compare_in_which_every_run_diverged_exits_1_with_valid_json(tmp_path):
    out = tmp_path / "out"
    code, stderr = invoke("compare", *TINY, "--param", "grid_size=21", "--optimizers", "sgd", "--reweight", "none",
                          "--seeds", "2", "--lr", "50", "--steps", "40", "--log-every", "1", "--out", out)
    assert code == 1 and one_line(stderr) == "every run diverged"
    summary = strict_json(out / "summary.json")
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert summary and len(rows) == 2 and all(row["status"].startswith("diverged") for row in rows)
    assert read_marker(out)["state"] == "complete"


def test_result_json_is_valid_json_when_values_are_not_finite(tmp_path):
    out = tmp_path / "out"
    code, stderr = invoke("train", *TINY, "--optimizer", "sgd", "--lr", "50", "--steps", "40", "--log-every", "1",
                          "--out", out)
    assert code == 1 and one_line(stderr).startswith("diverged")
    result = strict_json(out / "result.json")
    assert result["status"].startswith("diverged")
    # The same codec writes the values that have no JSON spelling: NaN as null, infinities as strings.
    from pinnkit import jsonio

    (tmp_path / "x.json").write_text(jsonio.dumps({"a": math.nan, "b": -math.inf, "c": np.float32("nan")}))
    assert strict_json(tmp_path / "x.json") == {"a": None, "b": "-inf", "c": None}


# ----- 8. damaged files, huge logs, resumed timings, permissions, parse errors --------------------------------


HISTORY = "histories/helmholtz_adam_none_seed0.csv"


@pytest.mark.parametrize("damage, culprit", [
    ("truncated-npz", "arrays/fields.npz"),
    ("header-only-history", HISTORY),
    ("truncated-history", HISTORY),
    ("truncated-results", "results.csv"),
    ("short-row-results", "results.csv"),
    ("nul-in-results", "results.csv"),
])
def test_plot_names_the_damaged_file_in_one_line(tmp_path, comparison, damage, culprit):
    folder = tmp_path / "run"
    shutil.copytree(comparison, folder)
    path = folder / culprit
    data = path.read_bytes()
    path.write_bytes({"truncated-npz": data[:1000], "header-only-history": data.split(b"\n")[0] + b"\n",
                      "truncated-history": data[: len(data) * 2 // 3],
                      "truncated-results": data[: len(data) * 2 // 3],
                      "short-row-results": b",".join(data.split(b",")[:-3]) + b"\n",
                      "nul-in-results": data[:30] + b"\x00\x00" + data[30:]}[damage])
    code, stderr = invoke("plot", folder)
    assert code == 2
    assert str(path) in one_line(stderr)


@pytest.mark.parametrize("change", ["no-summary", "byte-order-mark"])
def test_plot_redraws_without_a_summary_and_through_a_byte_order_mark(tmp_path, comparison, change):
    folder = tmp_path / "run"
    shutil.copytree(comparison, folder)
    for path in (folder / "figures").glob("*.png"):
        path.unlink()
    if change == "no-summary":
        (folder / "summary.json").unlink()
    else:
        (folder / "results.csv").write_bytes(b"\xef\xbb\xbf" + (folder / "results.csv").read_bytes())
    code, stdout, stderr = run_cli("plot", folder)
    assert code == 0, stderr
    assert {"error_and_loss.png", "fields_best_run.png"} <= set(os.listdir(folder / "figures"))


def test_detect_reads_a_byte_order_mark_and_escapes_nul_bytes(tmp_path):
    steps = np.arange(0, 4000, 2)
    snr = 10 * np.exp(-steps / 300) + 0.05 + 0.01 * np.sin(steps)
    text = "step,snr\n" + "".join(f"{step},{value}\n" for step, value in zip(steps, snr, strict=True))
    (tmp_path / "plain.csv").write_text(text)
    (tmp_path / "bom.csv").write_text(text, encoding="utf-8-sig")
    results = []
    for name in ("plain.csv", "bom.csv"):
        code, stdout, stderr = run_cli("detect", tmp_path / name, "--json")
        assert code == 0, stderr
        results.append({key: value for key, value in json.loads(stdout).items() if key != "file"})
    assert results[0] == results[1]
    (tmp_path / "nul.csv").write_bytes(b"st\x00ep,snr\n1,\x00x\n2,3\n")
    (tmp_path / "nul-value.csv").write_bytes(b"step,snr\n1,\x00\x00x\n2,3\n")
    for name in ("nul.csv", "nul-value.csv"):
        code, stderr = invoke("detect", tmp_path / name)
        assert code == 2 and "\\x00" in one_line(stderr)


@pytest.mark.slow
def test_detect_on_a_million_rows(tmp_path):
    # A million rows with known transitions: a plateau (SNR 50) to iteration 150, a diffusion (SNR 0.03) to
    # 400 000, then an equilibrium (SNR 5) to the end, where the test error (logged every 100 rows, as pinnkit's
    # runs log it) falls from 0.9 to 0.05. The transitions lie past 2^16 and 2^18 rows: a reader that stopped
    # early, or a detector that looked at a sample, would miss them.
    rows = 1_000_000
    steps = np.arange(rows)
    rng = np.random.default_rng(0)
    log_snr = np.where(steps < 150, 1.7, np.where(steps < 400_000, -1.5, 0.7)) + rng.normal(0, 0.2, rows)
    error = np.where(steps % 100 == 0, np.where(steps < 400_000, 0.9, 0.05), np.nan)
    path = tmp_path / "big.csv"
    with path.open("w") as stream:
        stream.write("iteration,snr,rel_l2\n")
        np.savetxt(stream, np.c_[steps, 10.0**log_snr, error], fmt=["%d", "%.6g", "%.6g"], delimiter=",")
    code, stdout, stderr = run_cli("detect", path, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    # Within x2 of 150 and x1.5 of 400 000 (the tolerances of tests/test_detect_cli.py); the error's fall is
    # on a logged row, 400 000 itself.
    assert None not in (summary["diffusion_start"], summary["equilibrium_start"]), summary["reasons"]
    assert 75 <= summary["diffusion_start"] <= 300, summary["reasons"]
    assert 400_000 / 1.5 <= summary["equilibrium_start"] <= 400_000 * 1.5, summary["reasons"]
    assert summary["error_drop"] == 400_000, summary["reasons"]


def test_resuming_a_finished_run_keeps_its_compile_time(tmp_path, trained):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    before = strict_json(out / "result.json")
    assert before["compile_time_s"] > 0
    code, stderr = invoke("train", "--resume", out)
    assert code == 0, stderr
    after = strict_json(out / "result.json")
    assert after["compile_time_s"] == before["compile_time_s"] and after["steps"] == before["steps"]


@pytest.mark.parametrize("mask", [0o022, 0o077], ids=["umask-022", "umask-077"])
@pytest.mark.slow
def test_outputs_follow_the_umask(tmp_path, comparison, mask):
    previous = os.umask(mask)
    try:
        for args in (["train", *TINY, "--steps", "20", "--log-every", "10", "--checkpoint-every", "10",
                      "--out", tmp_path / "train"],
                     ["compare", *COMPARE, "--steps", "20", "--log-every", "10", "--out", tmp_path / "compare"]):
            code, stderr = invoke(*args)
            assert code == 0, stderr
        shutil.copytree(comparison, tmp_path / "replaced")
        for path in [tmp_path / "replaced", *(tmp_path / "replaced").rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)
        code, stderr = invoke("compare", *COMPARE, "--steps", "20", "--log-every", "10", "--out",
                              tmp_path / "replaced", "--overwrite")
        assert code == 0, stderr
    finally:
        os.umask(previous)
    for top in ("train", "compare", "replaced"):
        for path in [tmp_path / top, *(tmp_path / top).rglob("*")]:
            expected = (0o777 if path.is_dir() else 0o666) & ~mask
            assert path.stat().st_mode & 0o777 == expected, (path, oct(path.stat().st_mode))


@pytest.mark.parametrize("args, needle", [
    (["train", "--bogus"], "No such option: --bogus"),
    (["train", "--steps", "abc"], "Invalid value for '--steps'"),
    (["compare", "--width", "1.5"], "Invalid value for '--width'"),
])
@pytest.mark.slow
def test_parse_errors_are_one_line_with_exit_2(tmp_path, env, args, needle):
    code, stderr = invoke(*args)
    assert code == 2 and needle in one_line(stderr)
    done = run(args, tmp_path, env, timeout=120)
    assert done.returncode == 2 and needle in one_line(done.stderr)
    assert listing(tmp_path) == []


def test_an_internal_error_exits_70_with_one_line_and_leaves_nothing(tmp_path):
    script = ("import pinnkit_cli.train_command as command\n"
              "def broken(*args, **kwargs):\n    raise ZeroDivisionError('division by zero')\n"
              "command._train = broken\n"
              "from pinnkit_cli.app import main\nmain()\n")
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-c", script, "train", "--width", "8", "--depth", "1", "--points", "100",
                           "--steps", "5", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 70, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("internal error: ZeroDivisionError"), done.stderr
    assert not out.exists()
