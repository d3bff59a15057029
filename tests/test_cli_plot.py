"""`pinnkit plot DIR`: every figure redrawn, or none; figures/ always matches the folder's files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from pinnkit.compare import CompareConfig, compare
from pinnkit.engine import LogSchedule, Probes
from pinnkit.report import write_comparison


@pytest.fixture(scope="module")
def comparison(tmp_path_factory) -> Path:
    """A small comparison folder, figures drawn (copy it before changing it)."""
    folder = tmp_path_factory.mktemp("plot") / "run"
    folder.mkdir()
    config = CompareConfig(optimizers=("adam",), reweights=("none", "rba"), steps=20, points=200, width=8, depth=1,
                           log=LogSchedule(10), probes=Probes(snr_batches=10))
    write_comparison(folder, config, compare(config))
    return folder


@pytest.fixture
def folder(tmp_path, comparison) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(comparison, copy)
    return copy


def figures(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((folder / "figures").iterdir())}


def refused(folder: Path, culprit: str) -> None:
    """plot exits 2 with one line naming ``culprit``, and figures/ is byte for byte as before."""
    before = figures(folder)
    code, stdout, stderr = run_cli("plot", folder)
    assert code == 2, (code, stderr)
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith("error: ") and culprit in stderr, stderr
    assert figures(folder) == before


def mark_figures(folder: Path) -> None:
    for path in (folder / "figures").iterdir():
        path.write_bytes(b"old " + path.name.encode())  # a redrawn figure would no longer say this


@pytest.mark.slow
def test_a_corrupt_array_file_redraws_no_figure(folder):
    # Read after two figures are drawn: they were replaced when it failed.
    fields = folder / "arrays" / "fields.npz"
    fields.write_bytes(fields.read_bytes()[:500])
    mark_figures(folder)
    refused(folder, "fields.npz")


@pytest.mark.parametrize("arrays", [
    {"points": np.zeros((3, 2))},  # no weights, no input names
    {"points": np.zeros((3, 2)), "weights": np.zeros(4), "input_names": np.array(["x", "t"])},
], ids=["missing", "mismatched"])
def test_an_array_file_that_is_not_what_pinnkit_writes_redraws_no_figure(folder, arrays):
    weights = next((folder / "arrays").glob("weights_*.npz"))
    np.savez(weights, **arrays)
    mark_figures(folder)
    refused(folder, weights.name)


@pytest.mark.parametrize("content", [b"{bad", b"[1, 2]"])
def test_a_summary_that_is_not_a_json_object_is_refused(folder, content):
    (folder / "summary.json").write_bytes(content)
    refused(folder, "summary.json")


def test_figures_whose_arrays_are_gone_are_removed(folder):
    assert {"fields_best_run.png", "weights_helmholtz_adam_rba_seed0.png"} <= set(figures(folder))
    (folder / "figures" / "notes.png").write_bytes(b"mine")  # not drawn from arrays/: kept
    shutil.rmtree(folder / "arrays")
    code, stdout, stderr = run_cli("plot", folder)
    assert code == 0, stderr
    assert set(figures(folder)) == {"error_and_loss.png", "phases.png", "notes.png"}
    assert stdout.splitlines() == [str(folder / "figures" / name) for name in ("error_and_loss.png", "phases.png")]


def test_printed_paths_and_messages_escape_control_characters(tmp_path, comparison):
    folder = tmp_path / "a\nb\x1b[31m"
    shutil.copytree(comparison, folder)
    code, stdout, stderr = run_cli("plot", folder)
    assert code == 0, stderr
    assert "\x1b" not in stdout and len(stdout.splitlines()) == 4, stdout
    assert stdout.splitlines()[0] == str(folder / "figures" / "error_and_loss.png").replace(
        "\n", "\\n").replace("\x1b", "\\x1b")
    (folder / "summary.json").write_text("{bad")
    code, stdout, stderr = run_cli("plot", folder)
    assert code == 2 and "\x1b" not in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_a_very_long_path_is_shortened_in_the_message(tmp_path):
    long = tmp_path / "/".join(["d" * 200] * 25)  # 5,000 characters
    code, _, stderr = run_cli("plot", long)
    assert code == 2 and len(stderr) < 400, stderr[:400]
    assert f"({len(str(long))} characters)" in stderr and str(long)[-40:] in stderr
