import csv
import json
import math
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import pinnkit_cli.commands  # noqa: F401  (registers the commands)
from pinnkit_cli.app import app

runner = CliRunner()
SMALL = ["--points", "400", "--width", "16", "--depth", "2", "--param", "grid_size=41"]


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "run"
    result = runner.invoke(app, ["compare", "--problem", "helmholtz", "--optimizers", "adam,sgd,lbfgs",
                                 "--reweight", "rba", "--steps", "30", "--out", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_compare_writes_every_file_with_finite_errors(comparison):
    out, output = comparison
    with (out / "results.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert {(row["optimizer"], row["reweight"]) for row in rows} == {(o, "rba") for o in ("adam", "sgd", "lbfgs")}
    for column in ("problem", "optimizer", "reweight", "seed", "steps", "rel_l2", "best_rel_l2", "final_loss",
                   "wall_time_s", "diffusion_start", "equilibrium_start"):
        assert column in rows[0]
    for row in rows:
        assert math.isfinite(float(row["rel_l2"])) and float(row["best_rel_l2"]) <= float(row["rel_l2"]) + 1e-12
        assert int(row["steps"]) == 30
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["optimizers"] == ["adam", "sgd", "lbfgs"]
    assert {"jax", "equinox", "optax", "diffrax"} <= set(summary["versions"])
    assert len(list((out / "histories").glob("*.csv"))) == 3
    figures = {path.name for path in (out / "figures").glob("*.png")}
    assert {"error_and_loss.png", "snr_and_order.png", "fields_best_run.png"} <= figures
    assert any(name.startswith("weights_") for name in figures)
    assert "lbfgs" in output and "helmholtz" in output


def test_plot_redraws_the_figures(comparison):
    out, _ = comparison
    for path in (out / "figures").glob("*.png"):
        path.unlink()
    result = runner.invoke(app, ["plot", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "figures" / "error_and_loss.png").is_file()


def test_existing_output_folder_is_refused_without_overwrite(comparison):
    out, _ = comparison
    result = runner.invoke(app, ["compare", "--steps", "5", "--out", str(out), *SMALL])
    assert result.exit_code == 2
    assert "exists" in result.output


@pytest.mark.parametrize("arguments,needle", [
    (["--problem", "heat"], "heat"),
    (["--optimizers", "adam,rmsprop"], "rmsprop"),
    (["--reweight", "softmax"], "softmax"),
    (["--steps", "0"], "steps"),
    (["--seeds", "-1"], "seeds"),
    (["--preset", "huge"], "huge"),
])
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
