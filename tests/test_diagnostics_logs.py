"""Log readers: pinnkit history CSV, the paper's gradient and error files, and bad files."""

from __future__ import annotations

import numpy as np
import pytest

from pinnkit.diagnostics import read_error_log, read_gradient_log


def test_history_format_with_step_and_snr(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("step,loss,snr,rel_l2,status\n0,1.0,50,,ok\n2,0.5,nan,0.9,ok\n4,0.25,0.1,0.8,ok\n")
    log = read_gradient_log(path)
    assert log["iteration"].tolist() == [0.0, 2.0, 4.0]
    np.testing.assert_array_equal(log["snr"], [50.0, np.nan, 0.1])
    np.testing.assert_array_equal(log["rel_l2"], [np.nan, 0.9, 0.8])
    assert "status" not in log  # a text column is left out


def test_paper_error_cells(tmp_path):
    path = tmp_path / "errors.csv"
    rows = ["iteration,rel_l2,loss", "0,np.float64(1.0405370539),np.float64(0.23)", "100,np.float64(0.5),nan"]
    path.write_text("\n".join(rows) + "\n")
    log = read_error_log(path)
    assert log["rel_l2"].tolist() == [1.0405370539, 0.5]
    assert log["iteration"].tolist() == [0.0, 100.0]


def test_shared_paper_logs(shared_data):
    folder = shared_data / "paper_logs"
    if not (folder / "allen_cahn_vanilla_gradients.csv").is_file():
        pytest.skip(f"paper logs not found in {folder}")
    log = read_gradient_log(folder / "allen_cahn_vanilla_gradients.csv")
    # Logged every 2 iterations below 300 (odd rows are Adam-only: nan norms), every 100 after.
    finite = np.isfinite(log["grad_mean_norm"])
    steps = log["iteration"][finite]
    assert np.all(np.diff(steps[steps < 300]) == 2) and np.all(np.diff(steps[steps >= 300]) == 100)
    # The order identity holds in the authors' data: rms^2 = mean^2 + std^2.
    mean, std, rms = (log[name][finite] for name in ("grad_mean_norm", "grad_std_norm", "grad_rms_norm"))
    np.testing.assert_allclose(rms**2, mean**2 + std**2, rtol=1e-3)
    errors = read_error_log(folder / "allen_cahn_vanilla_errors.csv")
    assert errors["iteration"][0] == 0 and errors["rel_l2"][0] == pytest.approx(1.0405370539)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("iteration,loss\n1,2\n", "snr, or grad_mean_norm"),
        ("iteration,grad_mean_norm\n1,2\n", "grad_std_norm"),
        ("epoch,snr\n1,2\n", "iteration or step"),
        ("iteration,snr\n1,abc\n", "not a number"),
        ("iteration,snr\n", "no data rows"),
        ("iteration,snr\n1,2,3\n", "cells"),
    ],
)
def test_bad_gradient_logs_name_the_file_and_problem(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        read_gradient_log(path)
    assert "bad.csv" in str(error.value)


def test_missing_file_and_missing_error_column(tmp_path):
    with pytest.raises(ValueError, match="nothere.csv"):
        read_gradient_log(tmp_path / "nothere.csv")
    path = tmp_path / "errors.csv"
    path.write_text("iteration,loss\n0,1\n")
    with pytest.raises(ValueError, match="rel_l2"):
        read_error_log(path)
