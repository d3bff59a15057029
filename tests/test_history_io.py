"""History and gradient-log readers: byte-order mark, truncated and ragged rows, header-only files, escaping."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from pinnkit.diagnostics import read_error_log, read_gradient_log
from pinnkit.history import History

CONTROL = ("\x00", "\x1b", "\r", "\x07")


def assert_clean(message: str) -> None:
    """No control character nor NUL byte in a message (a newline would split a one-line CLI error too)."""
    assert not any(char in message for char in (*CONTROL, "\n")), repr(message)


def test_round_trip_keeps_every_value(tmp_path):
    history = History()
    history.append({"step": 0, "loss": 1.0})
    history.append({"step": 2, "loss": math.inf, "rel_l2": 0.1 + 0.2})
    history.append({"step": 2**53 + 2, "loss": -math.inf, "rel_l2": 1e-300})
    path = tmp_path / "history.csv"
    history.to_csv(path)
    again = History.from_csv(path)
    assert again.columns == history.columns and len(again) == 3
    for name in history.columns:
        np.testing.assert_array_equal(again[name], history[name])


def test_odd_column_names_round_trip(tmp_path):
    history = History([{"step": 1, 'loss, "pde"': 0.5, "": 2.0}])
    path = tmp_path / "history.csv"
    history.to_csv(path)
    again = History.from_csv(path)
    assert again.columns == ["step", 'loss, "pde"', ""] and again['loss, "pde"'].tolist() == [0.5]


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "history.csv"
    path.write_bytes("\ufeffstep,loss\n1,0.5\n2,nan\n".encode())
    history = History.from_csv(path)
    assert history.columns == ["step", "loss"]
    np.testing.assert_array_equal(history["loss"], [0.5, np.nan])
    log = tmp_path / "log.csv"
    log.write_bytes("\ufeffiteration,snr\n1,2.0\n".encode())
    assert read_gradient_log(log)["iteration"].tolist() == [1.0]
    errors = tmp_path / "errors.csv"
    errors.write_bytes("\ufeffiteration,rel_l2\n0,np.float64(0.5)\n".encode())
    assert read_error_log(errors)["rel_l2"].tolist() == [0.5]


def test_header_only_gives_an_empty_history_with_its_columns(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("step,loss\n")
    history = History.from_csv(path)
    assert len(history) == 0 and history.columns == ["step", "loss"] and history["loss"].size == 0
    History().to_csv(path)  # no columns at all: one empty line
    assert len(History.from_csv(path)) == 0


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("step,loss\n1,0.5\n\n2,0.25\n")
    assert History.from_csv(path)["loss"].tolist() == [0.5, 0.25]


@pytest.mark.parametrize(
    "content, line, what",
    [
        (b"", None, "empty"),
        (b"step,loss\n1,0.5\n2", 3, "1 cell(s) but the header has 2"),  # truncated last row
        (b"step,loss\n1,0.5,7\n", 2, "3 cell(s)"),  # ragged
        (b"step,loss\n1\n2,0.5\n", 2, "truncated or ragged"),
        (b'step,loss\n1,"0.5\n', 2, "malformed CSV"),  # cut inside a quoted cell
        (b"step,loss\n1,abc\n", 2, "not a number"),
        (b"step,loss\n1,0.5\x00\n", 2, "not a number"),
        (b"step,step\n1,2\n", None, "appears twice"),
        (b"step,loss\n1,\xff\n", None, "not UTF-8"),
    ],
)
def test_bad_history_names_the_file_and_line(tmp_path, content, line, what):
    path = tmp_path / "bad-history.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(what)) as error:
        History.from_csv(path)
    message = str(error.value)
    assert "bad-history.csv" in message
    if line is not None:
        assert f"line {line}" in message
    assert_clean(message)


def test_history_messages_escape_control_characters(tmp_path):
    path = tmp_path / "evil\x1b[31m\nname.csv"
    path.write_bytes(b"step,lo\x1bss\x00\n1,\x07bad\x00\n")
    with pytest.raises(ValueError, match="not a number") as error:
        History.from_csv(path)
    assert_clean(str(error.value))
    with pytest.raises(ValueError, match="cannot read history") as error:
        History.from_csv(tmp_path / "missing\x00\n.csv")
    assert_clean(str(error.value))
    with pytest.raises(ValueError, match="cannot read") as error:
        read_gradient_log(tmp_path / "missing\x00\n.csv")
    assert_clean(str(error.value))


@pytest.mark.parametrize(
    "content, what",
    [
        (b"iteration,snr\n1,2\n3\n", "line 3 has 1 cells but the header has 2"),  # truncated: now refused
        (b"iteration,snr\n1,2,3\n", "line 2 has 3 cells"),
        (b'iteration,snr\n1,"2\n', "line 2"),
        (b"iteration,snr,snr\n1,2,3\n", "appears twice"),
        (b"iteration,snr\n1,\x1b[2J\x00\n", "not a number"),
        (b"iteration,snr\n1,\xff\n", "not UTF-8"),
    ],
)
def test_bad_gradient_logs_name_the_file_and_line(tmp_path, content, what):
    path = tmp_path / "grad\x1blog.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(what)) as error:
        read_gradient_log(path)
    message = str(error.value)
    assert "grad" in message and "log.csv" in message
    assert_clean(message)


def test_gradient_log_header_only_is_still_no_data(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("iteration,snr\n")
    with pytest.raises(ValueError, match="no data rows"):
        read_gradient_log(path)


def test_gradient_log_fast_cell_parsing_agrees(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("iteration,snr,rel_l2\n1, 2.5 ,np.float64(0.5)\n2,nan,\n3,inf,NaN\n4,1e-3,np.float32( 7 )\n")
    log = read_gradient_log(path)
    np.testing.assert_array_equal(log["snr"], [2.5, np.nan, np.inf, 1e-3])
    np.testing.assert_array_equal(log["rel_l2"], [0.5, np.nan, np.nan, 7.0])
