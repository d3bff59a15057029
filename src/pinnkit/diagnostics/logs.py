"""Readers for gradient-diagnostic logs: pinnkit's own history CSV and the paper's converted logs.

A gradient log has an ``iteration`` (or ``step``) column and either ``snr`` or both ``grad_mean_norm`` and
``grad_std_norm``; ``nan`` or empty cells mark values that were not logged. The paper's ``_errors.csv`` files
hold cells such as ``np.float64(0.99)``, which are parsed too.

Files are read as UTF-8, with or without a byte-order mark. A row with more or fewer cells than the header (a
truncated or ragged row) is an error naming the file and line; messages escape control characters and NUL bytes.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_error_log", "read_gradient_log"]

_NUMPY_SCALAR = re.compile(r"^np\.(?:float|int)\d*\((.*)\)$")


class _BadCell(ValueError):
    pass


def _parse_cell(text: str | None) -> float:
    try:
        return float(text)  # the common case; float() accepts what the slow path below would
    except (TypeError, ValueError):
        pass
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


def _show(text: object) -> str:
    """Text for a message: as it is when printable, else quoted with control characters and NUL bytes escaped."""
    text = os.fsdecode(text) if isinstance(text, bytes | os.PathLike) else str(text)
    return text if text.isprintable() else repr(text)


def _cannot_read(path: Path, error: Exception, reader: Any = None) -> ValueError:
    if isinstance(error, csv.Error):
        line = f" (line {reader.line_num})" if reader is not None else ""
        return ValueError(f"{_show(path)}: cannot read it as a CSV file{line}: {_show(str(error))}")
    if isinstance(error, UnicodeDecodeError):
        return ValueError(f"{_show(path)}: cannot read it as a CSV file (not UTF-8: {error.reason} at byte "
                          f"{error.start})")
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return ValueError(f"{_show(path)}: cannot read it as a CSV file ({_show(reason)})")


def _read_header(path: Path) -> list[str]:
    if "\0" in str(path):
        raise ValueError(f"{_show(path)}: cannot read it as a CSV file (the name contains a NUL byte)")
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            header = next(csv.reader(stream, strict=True), None)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise _cannot_read(path, error) from None
    if not header:
        raise ValueError(f"{_show(path)}: empty file, expected a CSV header")
    return [name.strip() for name in header]


def _read_columns(path: str | os.PathLike, required: list[list[str]]) -> dict[str, np.ndarray]:
    """Numeric columns of a CSV; ``required`` lists alternatives (any one name of each group must be
    present)."""
    path = Path(path)
    if "\0" in str(path):
        raise ValueError(f"{_show(path)}: cannot read it as a CSV file (the name contains a NUL byte)")
    reader = None
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            reader = csv.reader(stream, strict=True)
            header = next(reader, None)
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise _cannot_read(path, error, reader) from None
    if not header:
        raise ValueError(f"{_show(path)}: empty file, expected a CSV header")
    header = [name.strip() for name in header]
    duplicated = next((name for index, name in enumerate(header) if name in header[:index]), None)
    if duplicated is not None:
        raise ValueError(f"{_show(path)}: column {duplicated!r} appears twice in the header")
    missing = [" or ".join(group) for group in required if not any(name in header for name in group)]
    if missing:
        found = ", ".join(_show(name) for name in header)
        raise ValueError(f"{_show(path)}: missing column(s) {', '.join(missing)} (found: {found})")
    needed = {name for group in required for name in group}
    lines: list[int] = []
    data: list[list[str]] = []
    ragged: tuple[int, int] | None = None
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            ragged = (line, len(row))
            break
        lines.append(line)
        data.append(row)
    # Column by column (a C loop where every cell is a plain number); errors reported in reading order: the
    # first bad cell of a required column, else the first truncated or ragged row.
    columns: dict[str, list[float]] = {}
    first_bad: tuple[int, int, str] | None = None
    unreadable: set[str] = set()
    for column, name in enumerate(header):
        cells = [row[column] for row in data]
        try:
            columns[name] = list(map(float, [cell or "nan" for cell in cells]))
            continue
        except ValueError:
            pass
        values: list[float] = []
        for position, cell in enumerate(cells):
            try:
                values.append(_parse_cell(cell))
            except _BadCell as error:
                if name not in needed:
                    unreadable.add(name)  # a text column (e.g. a status): left out
                    break
                if first_bad is None or (position, column) < first_bad[:2]:
                    first_bad = (position, column, str(error))
                break
        columns[name] = values
    if first_bad is not None:
        position, column, cell = first_bad
        raise ValueError(f"{_show(path)}: line {lines[position]}, column {header[column]!r}: not a number: "
                         f"{_show(cell[:40])}")
    if ragged is not None:
        raise ValueError(f"{_show(path)}: line {ragged[0]} has {ragged[1]} cells but the header has {len(header)} "
                         "(truncated or ragged row)")
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
        raise ValueError(f"{_show(path)}: missing column(s) snr, or grad_mean_norm and grad_std_norm")
    log = _read_columns(path, needed)
    if "iteration" not in log:
        log["iteration"] = log.pop("step")
    if log["iteration"].size == 0:
        raise ValueError(f"{_show(path)}: no data rows")
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
        raise ValueError(f"{_show(path)}: no data rows")
    return log
