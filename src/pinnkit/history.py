"""The training history: one row per logged step, columns by name, written to and read from CSV."""

from __future__ import annotations

import csv
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

    def _last_row(self) -> dict[str, float]:
        return {name: column[-1] for name, column in self._columns.items()} if self._length else {}

    def last(self, name: str) -> float:
        """The last non-NaN value of a column (NaN when there is none)."""
        values = self[name] if name in self else np.array([])
        finite = values[~np.isnan(values)]
        return float(finite[-1]) if finite.size else math.nan

    def to_csv(self, path: str | os.PathLike) -> None:
        """Write the history as CSV (atomically), full float precision."""
        lines = [",".join(self._columns)]
        for index in range(self._length):
            lines.append(",".join(_format(self._columns[name][index]) for name in self._columns))
        atomic_write_text(path, "\n".join(lines) + "\n")

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> History:
        """Read a history written by :meth:`to_csv` (ValueError naming the file if it is not one)."""
        path = Path(path)
        try:
            with path.open(newline="") as stream:
                reader = csv.DictReader(stream)
                rows = [{key: _parse(value) for key, value in row.items()} for row in reader]
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise ValueError(f"cannot read history {path}: {error}") from None
        except ValueError as error:
            raise ValueError(f"{path} is not a pinnkit history: {error}") from None
        return cls(rows)


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
