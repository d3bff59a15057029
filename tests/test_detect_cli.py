"""``pinnkit detect``: JSON and table output, the error file, bad input (exit 2, one line, no traceback)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli


class Result:
    def __init__(self, code, stdout, stderr):
        self.exit_code, self.stdout, self.stderr = code, stdout, stderr
        self.output = stdout + stderr


def invoke(*args: str) -> Result:
    return Result(*run_cli("detect", *args))


def _synthetic_log(path: Path, with_error: bool = False) -> None:
    """A plateau (SNR 50), a drop at 150 to 0.03, a persistent jump to 5 at 20k, paper cadence."""
    steps = np.concatenate([np.arange(2, 300, 2), np.arange(300, 60_001, 100)])
    rng = np.random.default_rng(0)
    log_snr = np.where(steps < 150, 1.7, np.where(steps < 20_000, -1.5, 0.7)) + rng.normal(0, 0.2, steps.size)
    lines = ["step,snr,rel_l2" if with_error else "iteration,snr"]
    for step, value in zip(steps, 10.0**log_snr, strict=True):
        error = 0.9 if step < 20_000 else 0.05
        logged_error = error if step % 100 == 0 else "nan"
        lines.append(f"{step},{value},{logged_error}" if with_error else f"{step},{value}")
    path.write_text("\n".join(lines) + "\n")


def test_json_output_is_one_object_with_the_transitions(tmp_path):
    path = tmp_path / "log.csv"
    _synthetic_log(path)
    result = invoke(str(path), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert 75 <= summary["diffusion_start"] <= 300
    assert 20_000 / 1.5 <= summary["equilibrium_start"] <= 20_000 * 1.5
    assert summary["online"] is False and summary["error_drop"] is None


def test_rel_l2_column_and_online_flag(tmp_path):
    # The truth of _synthetic_log: the SNR drops at 150 and jumps at 20 000, where the error falls from 0.9 to
    # 0.05 (18x, far past the detector's factor 2). The error is logged every 100 steps, and 20 000 is one of
    # them: the first record of the fall is 20 000 itself, with no tolerance to give.
    path = tmp_path / "history.csv"
    _synthetic_log(path, with_error=True)
    result = invoke(str(path), "--json", "--online")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["online"] is True
    assert summary["error_drop"] == 20_000, summary["reasons"]
    assert None not in (summary["diffusion_start"], summary["equilibrium_start"], summary["diffusion_confirmed_at"],
                        summary["equilibrium_confirmed_at"]), summary["reasons"]
    # The onsets, as in test_json_output_is_one_object_with_the_transitions: within x2 of 150, x1.5 of 20 000.
    assert 75 <= summary["diffusion_start"] <= 300, summary["reasons"]
    assert 20_000 / 1.5 <= summary["equilibrium_start"] <= 20_000 * 1.5, summary["reasons"]
    # Online, each transition is known only once it has happened, and by the last record (60 000) at the latest.
    assert summary["diffusion_start"] <= summary["diffusion_confirmed_at"] <= 60_000
    assert max(summary["equilibrium_start"], summary["error_drop"]) <= summary["equilibrium_confirmed_at"] <= 60_000


def test_table_output(tmp_path):
    path = tmp_path / "log.csv"
    _synthetic_log(path)
    result = invoke(str(path))
    assert result.exit_code == 0
    assert "fitting -> diffusion" in result.stdout and "diffusion -> equilibrium" in result.stdout


def test_paper_log_with_error_file(shared_data):
    folder = shared_data / "paper_logs"
    if not (folder / "allen_cahn_rba_gradients.csv").is_file():
        pytest.skip(f"paper logs not found in {folder}")
    gradients, errors = folder / "allen_cahn_rba_gradients.csv", folder / "allen_cahn_rba_errors.csv"
    result = invoke(str(gradients), "--errors", str(errors), "--json")
    summary = json.loads(result.stdout)
    assert 75 <= summary["diffusion_start"] <= 300  # hand line 150
    assert 11_100 / 1.5 <= summary["equilibrium_start"] <= 11_100 * 1.5


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot read"),
        ("iteration,loss\n1,2\n", "missing column"),
        ("iteration,snr\n1,nan\n2,\n", "no usable"),
    ],
)
def test_bad_input_fails_with_exit_code_2(tmp_path, content, message):
    path = tmp_path / "log.csv"
    if content is not None:
        path.write_text(content)
    result = invoke(str(path), "--json")
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def _console_script() -> str | None:
    local = Path(sys.executable).parent / "pinnkit"
    return str(local) if local.is_file() else shutil.which("pinnkit")


def test_installed_console_script_reports_bad_file_without_traceback(tmp_path):
    script = _console_script()
    if script is None:
        pytest.skip("the pinnkit console script is not installed")
    bad = tmp_path / "bad.csv"
    bad.write_text("iteration,loss\n1,2\n")
    completed = subprocess.run([script, "detect", str(bad)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.strip().count("\n") == 0 and "bad.csv" in completed.stderr
    assert "Traceback" not in completed.stderr + completed.stdout


def test_detect_reports_what_train_and_compare_report(tmp_path):
    # One detector for every reader: the CLI on a history file gives the transitions that `pinnkit train` and
    # `pinnkit compare` write into their results (pinnkit.diagnostics.detect_transitions).
    from pinnkit.diagnostics.transitions import detect_transitions
    from pinnkit.history import History

    path = tmp_path / "history.csv"
    _synthetic_log(path, with_error=True)
    history = History.from_csv(path)
    expected = detect_transitions(history)
    assert expected["diffusion_start"] is not None and expected["equilibrium_start"] is not None
    summary = json.loads(invoke(str(path), "--json").stdout)
    assert {key: summary[key] for key in expected} == expected
