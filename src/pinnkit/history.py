"""The training history: one row per logged step, columns by name, written to and read from CSV."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from pinnkit.atomic import atomic_write_text

__all__ = ["History", "atomic_write_text"]


class History:
    """Rows of named scalar values; a value missing from a row is NaN.

    Example:
        >>> history = History()
        >>> history.append({"step": 1, "loss": 0.5})
        >>> history.append({"step": 2, "loss": 0.25, "rel_l2": 0.9})
        >>> history["rel_l2"].tolist()
        [nan, 0.9]
    """

    def __init__(self, rows: Iterable[Mapping[str, float]] = ()):
        self._columns: dict[str, list[float]] = {}
        self._length = 0
        for row in rows:
            self.append(row)

    def append(self, row: Mapping[str, float]) -> None:
        """Add one row; new columns are back-filled with NaN."""
        for name in row:
            if name not in self._columns:
                self._columns[name] = [math.nan] * self._length
        for name, column in self._columns.items():
            value = row.get(name, math.nan)
            column.append(math.nan if value is None else float(value))
        self._length += 1

    def __len__(self) -> int:
        return self._length

    def __contains__(self, name: str) -> bool:
        return name in self._columns

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._columns:
            raise KeyError(f"history has no column {name!r}; columns are {self.columns}")
        return np.asarray(self._columns[name], dtype=float)

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def last_row(self) -> dict[str, float]:
        """The last row, every column by name (NaN where it was missing); empty for an empty history.

        Example:
            >>> History([{"step": 1, "loss": 0.5}, {"step": 2}]).last_row()
            {'step': 2.0, 'loss': nan}
        """
        return {name: column[-1] for name, column in self._columns.items()} if self._length else {}

    def last(self, name: str) -> float:
        """The last non-NaN value of a column (NaN when there is none)."""
        values = self[name] if name in self else np.array([])
        finite = values[~np.isnan(values)]
        return float(finite[-1]) if finite.size else math.nan

    def to_csv(self, path: str | os.PathLike) -> None:
        """Write the history as CSV (atomically, UTF-8), full float precision; NaN is an empty cell.

        Args:
            path: the destination file.

        Returns:
            None.

        Example:
            >>> import pathlib, tempfile
            >>> path = pathlib.Path(tempfile.mkdtemp()) / "history.csv"
            >>> History([{"step": 1, "loss": 0.5}, {"step": 2}]).to_csv(path)
            >>> path.read_text()
            'step,loss\\n1,0.5\\n2,\\n'
        """
        header = io.StringIO()
        csv.writer(header, lineterminator="").writerow(self._columns)  # quotes a name holding a comma
        lines = [header.getvalue()]
        for index in range(self._length):
            lines.append(",".join(_format(self._columns[name][index]) for name in self._columns))
        atomic_write_text(path, "\n".join(lines) + "\n")

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> History:
        """Read a history written by :meth:`to_csv`.

        UTF-8, with or without a byte-order mark; empty cells and ``nan`` are NaN; blank lines are skipped. A
        file holding only the header gives an empty history with those columns (the caller decides whether
        that is an error).

        Args:
            path: the CSV file.

        Returns:
            The history.

        Raises:
            ValueError: unreadable file, an empty file, a duplicated column, a row with more or fewer cells
                than the header (a truncated or ragged row) or a cell that is not a number; the message names
                the file (and the line), control characters escaped.

        Example:
            >>> import pathlib, tempfile
            >>> path = pathlib.Path(tempfile.mkdtemp()) / "history.csv"
            >>> _ = path.write_bytes(b"\\xef\\xbb\\xbfstep,loss\\n1,0.5\\n2,\\n")
            >>> History.from_csv(path)["loss"].tolist()
            [0.5, nan]
            >>> _ = path.write_text("step,loss\\n1,0.5\\n2\\n")
            >>> History.from_csv(path)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: history '...history.csv', line 3: 1 cell(s) but the header has 2 (truncated or ragged row)
        """
        path = Path(path)
        shown = _show(path)
        if "\0" in str(path):
            raise ValueError(f"cannot read history {shown}: the name contains a NUL byte")
        reader = None
        try:
            with path.open(encoding="utf-8-sig", newline="") as stream:
                reader = csv.reader(stream, strict=True)  # strict: a cut quoted cell is an error
                header = next(reader, None)
                if header is None:
                    raise ValueError(f"history {shown} is empty: not a pinnkit history (no header)")
                seen: set[str] = set()
                for name in header:
                    if name in seen:
                        raise ValueError(f"history {shown}: column {_show(name)} appears twice in the header")
                    seen.add(name)
                columns: list[list[float]] = [[] for _ in header]
                for row in reader:
                    line = reader.line_num
                    if not row:
                        continue  # a blank line
                    if len(row) != len(header):
                        raise ValueError(
                            f"history {shown}, line {line}: {len(row)} cell(s) but the header has {len(header)} "
                            "(truncated or ragged row)"
                        )
                    for index, cell in enumerate(row):
                        try:
                            columns[index].append(_parse(cell))
                        except ValueError:
                            raise ValueError(
                                f"history {shown}, line {line}, column {_show(header[index])}: not a number: "
                                f"{_show(cell[:40])}"
                            ) from None
        except csv.Error as error:
            line = reader.line_num if reader is not None else 1
            raise ValueError(f"history {shown}, line {line}: malformed CSV ({_show(str(error))})") from None
        except UnicodeDecodeError as error:
            raise ValueError(f"history {shown} is not UTF-8 text ({error.reason} at byte {error.start})") from None
        except OSError as error:
            raise ValueError(f"cannot read history {shown}: {error.strerror or error}") from None
        history = cls()
        history._columns = {name: column for name, column in zip(header, columns, strict=True)}
        history._length = len(columns[0]) if columns else 0
        return history


def _format(value: float) -> str:
    if math.isnan(value):
        return ""
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _parse(value: str | None) -> float:
    if value is None or value == "" or value.lower() == "nan":
        return math.nan
    return float(value)


def _show(text: object) -> str:
    """Quoted for a message, control characters and NUL bytes escaped."""
    return repr(os.fsdecode(text) if isinstance(text, bytes | os.PathLike) else str(text))
