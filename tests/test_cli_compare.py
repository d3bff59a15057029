"""``pinnkit compare`` and ``pinnkit plot``: the files tie to the histories, plans and reweightings run, the table
reads in 80 columns."""

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_cli

from pinnkit.history import History

SMALL = ["--points", "400", "--width", "16", "--depth", "2", "--param", "grid_size=41", "--snr-batches", "20",
         "--log-every", "10"]


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "run"
    code, stdout, stderr = run_cli("compare", "--problem", "helmholtz", "--optimizers", "adam,adam+lbfgs",
                                   "--reweight", "none,rba,gradient-aware", "--steps", "30", "--switch-step", "20",
                                   "--lr", "1e-3", "--out", out, *SMALL)  # one rate: the Adam stages must agree
    assert code == 0, stderr
    return out, stdout


def read_rows(path):
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.slow
def test_results_are_the_last_rows_of_the_histories(comparison):
    out, _ = comparison
    rows = read_rows(out / "results.csv")
    assert {(row["optimizer"], row["reweight"]) for row in rows} == {
        (plan, reweight) for plan in ("adam", "adam+lbfgs") for reweight in ("none", "rba", "gradient-aware")}
    for row in rows:
        history = History.from_csv(out / "histories" / f"{row['name']}.csv")
        finite = np.isfinite(history["rel_l2"])
        assert float(row["rel_l2"]) == history["rel_l2"][finite][-1]
        assert float(row["best_rel_l2"]) == history["rel_l2"][finite].min()
        assert float(row["final_loss"]) == history["loss"][-1]
        assert float(row["final_mse"]) == history["mse"][-1]
        assert float(row["wall_time_s"]) == history["wall_time_s"][-1]
        assert int(row["steps"]) == int(history["step"][-1]) == 30
        # float64 for plans with a line search, float32 otherwise.
        assert row["precision"] == ("float64" if "lbfgs" in row["optimizer"] else "float32")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["optimizers"] == ["adam", "adam+lbfgs"]
    assert {"jax", "equinox", "optax", "diffrax"} <= set(summary["versions"])
    figures = {path.name for path in (out / "figures").glob("*.png")}
    assert {"error_and_loss.png", "phases.png", "fields_best_run.png"} <= figures


@pytest.mark.slow
def test_adam_then_lbfgs_switches_and_carries_the_weights(comparison):
    out, _ = comparison
    for reweight in ("rba", "gradient-aware"):
        history = History.from_csv(out / "histories" / f"helmholtz_adam-lbfgs_{reweight}_seed0.csv")
        stage = history["stage"]
        steps = history["step"]
        assert steps[stage == 0].max() == 20 and steps[stage == 1].min() > 20
        assert np.nansum(history["line_search_failures"]) == 0
        # The L-BFGS stage starts from the Adam stage's weights (held through it): the homogeneity of the
        # weights, measured at both rows, is unchanged.
        assert history["homogeneity"][stage == 1][0] == pytest.approx(history["homogeneity"][steps == 20][0])
        # Its Adam stage is the Adam run: one start (the float64 draw, rounded for the float32 run), then the same
        # steps in float64 here and float32 there: the initial errors agree to float32 rounding, and 20 steps on
        # they still agree far below any difference of start.
        adam = History.from_csv(out / "histories" / f"helmholtz_adam_{reweight}_seed0.csv")
        assert history["step"][0] == adam["step"][0] == 0
        assert history["rel_l2"][0] == pytest.approx(adam["rel_l2"][0], rel=1e-6)
        assert history["rel_l2"][steps == 20][0] == pytest.approx(adam["rel_l2"][adam["step"] == 20][0], rel=1e-5)


@pytest.mark.slow
def test_the_table_reads_in_80_columns_when_captured(tmp_path):
    out = tmp_path / "table"
    log = tmp_path / "stdout.txt"
    with log.open("w") as stream:
        done = subprocess.run([sys.executable, "-c", "from pinnkit_cli.app import main; main()", "compare",
                               "--optimizers", "adam,adam+lbfgs", "--reweight", "none,gradient-aware", "--steps",
                               "4", "--out", str(out), *SMALL], stdout=stream, stderr=subprocess.PIPE, text=True,
                              timeout=600, env={**__import__("os").environ, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = log.read_text().splitlines()
    assert lines[-1] == str(out)  # a path is the one thing that cannot be folded
    assert all(len(line) <= 80 for line in lines[:-1]), [line for line in lines if len(line) > 80]
    text = "\n".join(lines)
    assert "…" not in text
    rows = read_rows(out / "results.csv")
    for row in rows:
        # Every run's numbers are in the table, in 3 significant figures.
        from pinnkit_cli.options import significant

        shown = significant(float(row["rel_l2"]))
        assert shown in text, (shown, text)
    assert "adam+lbfgs" in text and "gradient-aware" in text


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the empty IEND chunk that closes every PNG, with its CRC


def png_size(path):
    """(width, height) of a complete PNG file, read from its IHDR chunk; AssertionError if it is not one."""
    data = path.read_bytes()
    assert len(data) > len(PNG_SIGNATURE) + 25 + len(PNG_END), (path, len(data))
    assert data[:8] == PNG_SIGNATURE, (path, data[:8])
    assert data[8:16] == b"\x00\x00\x00\x0dIHDR", (path, data[8:16])  # the first chunk: 13 bytes of header
    assert data.endswith(PNG_END), f"{path} is truncated"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.slow
def test_plot_redraws_the_figures(comparison, cli):
    out, _ = comparison
    for path in (out / "figures").glob("*.png"):
        path.unlink()
    code, stdout, stderr = cli("plot", out)
    assert code == 0, stderr
    # The fixture's runs: 2 plans x 3 reweightings, seed 0. Every comparison has the error, phase and field
    # figures; each reweighted run (rba, gradient-aware) has its weights figure, the unweighted ones none.
    weights = {f"weights_helmholtz_{plan}_{reweight}_seed0.png" for plan in ("adam", "adam-lbfgs")
               for reweight in ("rba", "gradient-aware")}
    expected = {"error_and_loss.png", "phases.png", "fields_best_run.png"} | weights
    assert {path.name for path in (out / "figures").iterdir()} == expected
    for name in sorted(expected):
        width, height = png_size(out / "figures" / name)
        # Matplotlib figures at the 110 dpi pinnkit saves them with: a few inches a side.
        assert 200 <= width <= 4000 and 200 <= height <= 4000, (name, width, height)


@pytest.mark.slow
def test_existing_output_folder_is_refused_without_overwrite(comparison, cli):
    out, _ = comparison
    code, _, stderr = cli("compare", "--steps", "5", "--out", out, *SMALL)
    assert code == 2 and "exists" in stderr


@pytest.mark.parametrize("arguments,needle", [
    (["--problem", "heat"], "heat"),
    (["--optimizers", "adam,rmsprop"], "rmsprop"),
    (["--optimizers", ""], "empty"),
    (["--optimizers", "adam,adam"], "more than once"),
    (["--reweight", "softmax"], "softmax"),
    (["--steps", "0"], "steps"),
    (["--seeds", "-1"], "seeds"),
    (["--preset", "huge"], "huge"),
    (["--optimizers", "adam,sgd", "--switch-step", "5"], "two-stage plan"),
    (["--param", "a1=0"], "a1"),
    (["--param", "a1=1", "--param", "a1=2"], "twice"),
])
@pytest.mark.slow
def test_bad_input_exits_2_naming_the_value_and_writes_nothing(tmp_path, arguments, needle):
    out = tmp_path / "never"
    completed = subprocess.run(
        [sys.executable, "-c", "from pinnkit_cli.app import main; main()", "compare", "--out", str(out),
         *arguments], capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 2, completed.stderr
    assert needle in completed.stderr
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.slow
def test_a_comparison_whose_runs_all_diverge_exits_1(tmp_path, cli):
    code, _, stderr = cli("compare", "--optimizers", "sgd", "--reweight", "none", "--lr", "90", "--steps", "30",
                          "--out", tmp_path / "diverged", *SMALL)
    assert code == 1 and "every run diverged" in stderr
    rows = read_rows(tmp_path / "diverged" / "results.csv")
    assert rows[0]["status"].startswith("diverged") and math.isfinite(float(rows[0]["rel_l2"]))


@pytest.mark.slow
def test_reweight_options_reach_every_run_of_a_comparison(tmp_path):
    out = tmp_path / "run"
    code, _, stderr = run_cli("compare", "--problem", "burgers", "--optimizers", "adam", "--reweight", "vrba",
                              "--reweight-option", "phi=0.5", "--steps", "10", "--lr", "1e-3", "--out", out,
                              "--points", "100", "--width", "8", "--depth", "1", "--snr-batches", "0",
                              "--log-every", "5")
    assert code == 0, stderr
    assert json.loads((out / "summary.json").read_text())["config"]["reweight_options"] == {"phi": 0.5}
    # An option one of the reweightings does not take: exit 2 before anything is written.
    code, _, stderr = run_cli("compare", "--problem", "burgers", "--optimizers", "adam", "--reweight", "rba",
                              "--reweight-option", "phi=0.5", "--steps", "10", "--out", tmp_path / "other")
    assert code == 2 and "phi" in stderr
    assert not (tmp_path / "other").exists()
