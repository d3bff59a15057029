"""Readers for gradient-diagnostic logs: pinnkit's own history CSV and the paper's converted logs.

A gradient log has an ``iteration`` (or ``step``) column and either ``snr`` or both ``grad_mean_norm`` and
``grad_std_norm``; ``nan`` or empty cells mark values that were not logged. The paper's ``_errors.csv`` files
hold cells such as ``np.float64(0.99)``, which are parsed too.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np

__all__ = ["read_error_log", "read_gradient_log"]

_NUMPY_SCALAR = re.compile(r"^np\.(?:float|int)\d*\((.*)\)$")


class _BadCell(ValueError):
    pass


def _parse_cell(text: str | None) -> float:
    text = (text or "").strip()
    if text == "" or text.lower() == "nan":
        return float("nan")
    match = _NUMPY_SCALAR.match(text)
    if match:
        text = match.group(1).strip()
    try:
        return float(text)
    except ValueError:
        raise _BadCell(text) from None


def _read_header(path: Path) -> list[str]:
    try:
        with path.open(newline="") as stream:
            header = next(csv.reader(stream), None)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path}: cannot read it as a CSV file ({error})") from None
    if not header:
        raise ValueError(f"{path}: empty file, expected a CSV header")
    return [name.strip() for name in header]


def _read_columns(path: str | os.PathLike, required: list[list[str]]) -> dict[str, np.ndarray]:
    """Numeric columns of a CSV; ``required`` lists alternatives (any one name of each group must be
    present)."""
    path = Path(path)
    try:
        with path.open(newline="") as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path}: cannot read it as a CSV file ({error})") from None
    if not header:
        raise ValueError(f"{path}: empty file, expected a CSV header")
    header = [name.strip() for name in header]
    missing = [" or ".join(group) for group in required if not any(name in header for name in group)]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header)})")
    needed = {name for group in required for name in group}
    columns: dict[str, list[float]] = {name: [] for name in header}
    unreadable: set[str] = set()
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) > len(header):
            raise ValueError(f"{path}: line {line} has {len(row)} cells but the header has {len(header)}")
        row = row + [""] * (len(header) - len(row))
        for name, cell in zip(header, row, strict=True):
            try:
                columns[name].append(_parse_cell(cell))
            except _BadCell as error:
                if name in needed:
                    raise ValueError(f"{path}: line {line}, column {name!r}: not a number: {error}") from None
                unreadable.add(name)  # a text column (e.g. a status): left out
                columns[name].append(float("nan"))
    return {name: np.asarray(values, float) for name, values in columns.items() if name not in unreadable}


def read_gradient_log(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a gradient-diagnostics CSV into numeric columns.

    ``step`` (pinnkit's history) is renamed ``iteration``. Optional columns (``rel_l2``, ``grad_rms_norm``,
    Adam norms ...) come along; a column holding text is left out.

    Args:
        path: the CSV file.

    Returns:
        A dict of 1-D float arrays, one per column, always with ``iteration`` and either ``snr`` or
        ``grad_mean_norm`` and ``grad_std_norm``.

    Raises:
        ValueError: unreadable file, missing columns or a non-numeric cell in a required column (the message
            names the file).

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
        >>> _ = path.write_text("step,snr\\n2,50.0\\n4,nan\\n")
        >>> log = read_gradient_log(path)
        >>> log["iteration"].tolist(), log["snr"].tolist()
        ([2.0, 4.0], [50.0, nan])
    """
    path = Path(path)
    header = _read_header(path)
    needed = [["iteration", "step"]]
    if "snr" in header:
        needed.append(["snr"])
    elif "grad_mean_norm" in header or "grad_std_norm" in header:
        needed += [["grad_mean_norm"], ["grad_std_norm"]]
    else:
        raise ValueError(f"{path}: missing column(s) snr, or grad_mean_norm and grad_std_norm")
    log = _read_columns(path, needed)
    if "iteration" not in log:
        log["iteration"] = log.pop("step")
    if log["iteration"].size == 0:
        raise ValueError(f"{path}: no data rows")
    return log


def read_error_log(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a test-error CSV (the paper's ``<run>_errors.csv``: ``iteration, rel_l2, loss``).

    Args:
        path: the CSV file; ``step`` is accepted for ``iteration``; ``np.float64(x)`` cells are parsed.

    Returns:
        A dict of 1-D float arrays with at least ``iteration`` and ``rel_l2``.

    Raises:
        ValueError: unreadable file, missing columns or a non-numeric cell (the message names the file).

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "errors.csv"
        >>> _ = path.write_text("iteration,rel_l2,loss\\n0,np.float64(1.04),np.float64(0.23)\\n")
        >>> read_error_log(path)["rel_l2"].tolist()
        [1.04]
    """
    path = Path(path)
    log = _read_columns(path, [["iteration", "step"], ["rel_l2"]])
    if "iteration" not in log:
        log["iteration"] = log.pop("step")
    if log["iteration"].size == 0:
        raise ValueError(f"{path}: no data rows")
    return log
