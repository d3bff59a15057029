"""Exit codes that say what happened: bad input (2) is what a command rejects before its work starts; an
exception raised once the work has started is a bug (70), whatever its type; and a failure after a comparison's
runs have finished loses none of them."""

from __future__ import annotations

import csv
import importlib
import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import run_cli

from pinnkit.outputs import read_marker

TINY = ["--width", "8", "--depth", "1", "--points", "100", "--snr-batches", "0"]
COMPARE = ["compare", *TINY, "--optimizers", "adam", "--reweight", "none,rba", "--param", "grid_size=21",
           "--steps", "20", "--log-every", "10"]
RUNS = ("helmholtz_adam_none_seed0", "helmholtz_adam_rba_seed0")


def last_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


def raising(error: Exception):
    def broken(*args, **kwargs):
        raise error

    return broken


@pytest.mark.parametrize("error", [ValueError("operands could not be broadcast"),
                                   TypeError("dot_general requires contracting dimensions to have the same shape")],
                         ids=["ValueError", "TypeError"])
def test_an_error_inside_a_training_step_exits_70(tmp_path, monkeypatch, error):
    from pinnkit.engine import loop

    monkeypatch.setattr(loop.Trainer, "chunk", raising(error))
    out = tmp_path / "run"
    code, _, stderr = run_cli("train", *TINY, "--steps", "20", "--log-every", "10", "--out", out)
    line = last_line(stderr)
    assert code == 70, line
    assert line.startswith(f"internal error: {type(error).__name__}: {error}"), line
    assert "PINNKIT_TRACEBACK=1" in line
    assert not out.exists()  # nothing finished, nothing kept


@pytest.mark.parametrize("error", [ValueError("bad field"), TypeError("unsupported operand")],
                         ids=["ValueError", "TypeError"])
def test_an_error_while_writing_a_training_result_exits_70(tmp_path, monkeypatch, error):
    import pinnkit_cli.train_command as command

    monkeypatch.setattr(command, "summarize", raising(error))
    code, _, stderr = run_cli("train", *TINY, "--steps", "20", "--log-every", "10", "--out", tmp_path / "run")
    assert code == 70 and last_line(stderr).startswith(f"internal error: {type(error).__name__}: {error}")


def test_bad_input_before_the_work_still_exits_2(tmp_path):
    code, _, stderr = run_cli("train", *TINY, "--steps", "20", "--problem", "nonesuch", "--out", tmp_path / "r")
    assert code == 2 and last_line(stderr).startswith("error: ") and "nonesuch" in stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_figure_that_fails_to_draw_keeps_results_and_histories(tmp_path, monkeypatch):
    from pinnkit.plotting import comparison

    error = TypeError("'NoneType' object is not subscriptable")

    monkeypatch.setattr(comparison, "plot_phase_panels", raising(error))
    out = tmp_path / "cmp"
    code, _, stderr = run_cli(*COMPARE, "--out", out)
    line = last_line(stderr)
    assert code == 70, line
    assert line.startswith(f"internal error: {type(error).__name__}: {error}; kept {out} (holding "), line
    assert "results.csv" in line and "histories/ (4 files)" in line
    # Everything but the figures is there and consistent: the table's rows are the runs' own results.
    with (out / "results.csv").open() as stream:
        rows = {row["name"]: row for row in csv.DictReader(stream)}
    assert set(rows) == set(RUNS)
    for name in RUNS:
        saved = json.loads((out / "histories" / f"{name}.json").read_text())
        with (out / "histories" / f"{name}.csv").open() as stream:
            history = list(csv.DictReader(stream))
        assert float(history[-1]["step"]) == 20 == saved["steps"]
        assert float(rows[name]["rel_l2"]) == pytest.approx(saved["rel_l2"], rel=1e-12)
        assert float(history[-1]["rel_l2"]) == pytest.approx(saved["rel_l2"], rel=1e-6)
    assert read_marker(out)["state"] == "interrupted"
    # The kept folder is not complete, but it can be replaced by a new comparison.
    monkeypatch.undo()
    code, _, stderr = run_cli(*COMPARE, "--out", out, "--overwrite")
    assert code == 0, stderr
    assert read_marker(out)["state"] == "complete" and (out / "figures" / "phases.png").is_file()


def test_an_error_after_some_runs_keeps_the_finished_ones(tmp_path, monkeypatch):
    # The second program breaks (two reweighting schemes are two programs): the first one's history and result
    # were written as it ended.
    compare_module = importlib.import_module("pinnkit.compare")  # the module (pinnkit.compare is the function)

    calls = []
    original = compare_module.run_variants

    def second_breaks(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise TypeError("broken second run")
        return original(*args, **kwargs)

    monkeypatch.setattr(compare_module, "run_variants", second_breaks)
    out = tmp_path / "cmp"
    two_schemes = [*COMPARE[:COMPARE.index("--reweight") + 1], "rba,vrba", *COMPARE[COMPARE.index("--reweight") + 2:]]
    code, _, stderr = run_cli(*two_schemes, "--out", out)
    line = last_line(stderr)
    assert code == 70 and line.startswith("internal error: TypeError: broken second run; kept "), line
    first = "helmholtz_adam_rba_seed0"
    assert sorted(path.name for path in (out / "histories").iterdir()) == [f"{first}.csv", f"{first}.json"]
    assert json.loads((out / "histories" / f"{first}.json").read_text())["status"] == "completed"


def test_an_oserror_inside_a_run_is_an_internal_error_with_its_traceback(tmp_path):
    # An OSError that is no failed write into the output folder (here: a file the run reads vanished) is a bug:
    # exit 70, and PINNKIT_TRACEBACK=1 prints its traceback before the line.
    script = ("import pinnkit_cli.train_command as command\n"
              "def broken(*args, **kwargs):\n    open('/nonexistent/pinnkit-probe')\n"
              "command.run = broken\n"
              "from pinnkit_cli.app import main\nmain()\n")
    env = dict(os.environ, JAX_PLATFORMS="cpu", PINNKIT_TRACEBACK="1")
    done = subprocess.run([sys.executable, "-c", script, "train", *TINY, "--steps", "5", "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 70, done.stderr
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("internal error: FileNotFoundError: ")
    assert not (tmp_path / "run").exists()


# ----- a signal at the very end --------------------------------------------------------------------------------

# Signals sent by the process to itself at the last moments of a command: inside the command after its results
# are complete, as the command returns, and while its last line is printed. Each must end in 130/143 and one line.
LATE_SIGNAL = """
import os, signal, sys
from pinnkit_cli import app

moment, signum = sys.argv[1], getattr(signal, sys.argv[2])
if moment == "in-command":
    import pinnkit_cli.problems_command as command
    import functools
    original = command.list_problems
    @functools.wraps(original)  # typer reads the options from the signature
    def late(*args, **kwargs):
        original(*args, **kwargs)
        os.kill(os.getpid(), signum)
    import pinnkit_cli.commands as commands
    commands.app.registered_commands[0].callback = late
elif moment == "returning":
    original_run = app._run
    def late_run(*args, **kwargs):
        outcome = original_run(*args, **kwargs)
        os.kill(os.getpid(), signum)
        return outcome
    app._run = late_run
elif moment == "last-line":
    original_print = app._print_last
    def late_print(message):
        os.kill(os.getpid(), signum)
        original_print(message)
    app._print_last = late_print
app.main(["problems"])
"""


@pytest.mark.parametrize("moment", ["in-command", "returning", "last-line"])
@pytest.mark.parametrize("signum, expected", [("SIGINT", (130, "interrupted")), ("SIGTERM", (143, "terminated"))])
@pytest.mark.slow
def test_a_signal_in_the_last_moments_exits_with_its_code_and_one_line(tmp_path, moment, signum, expected):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", LATE_SIGNAL, moment, signum], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == expected[0], done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [expected[1]], done.stderr[-2000:]
    assert "helmholtz" in done.stdout  # the command itself ran to its end
    assert done.returncode != -getattr(signal, signum)


# ----- the user's names in success lines ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "compare"])
def test_success_lines_show_an_odd_output_name_escaped_and_never_as_markup(tmp_path, command):
    # rich reads "[/y]" as a closing markup tag (a MarkupError after the work was done, once exit 70); an ESC or a
    # newline in the name would reach the terminal raw.
    out = tmp_path / "r[" / "y]\x1b[31m\nz"
    args = [command, *TINY, "--steps", "10", "--log-every", "10"]
    if command == "compare":
        args += ["--optimizers", "adam", "--reweight", "none", "--param", "grid_size=21"]
    code, stdout, stderr = run_cli(*args, "--out", out)
    assert code == 0, stderr
    shown = str(out).replace("\x1b", "\\x1b").replace("\n", "\\n")
    assert "\x1b" not in stdout + stderr
    assert shown in (stderr if command == "train" else stdout)
    assert out.is_dir()
