"""Parsing helpers shared by the commands: ``NAME=VALUE`` parameters, lists, progress bars, number formats."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pinnkit.sampling import Resampling
from pinnkit_cli.errors import fail

__all__ = ["parse_hold_every", "parse_learning_rate", "parse_list", "parse_params", "parse_resampling", "parse_value",
           "progress_bar", "significant"]


def parse_params(pairs: Iterable[str], option: str = "--param") -> dict[str, float | int | bool | str]:
    """``["a1=6", "periodic_loss=true"]`` -> ``{"a1": 6, "periodic_loss": True}`` (a name given twice: exit 2);
    ``option`` names the flag in the messages."""
    params: dict[str, float | int | bool | str] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            fail(f"{option} expects NAME=VALUE, got {pair!r}")
        if name in params:
            fail(f"{option} {name} is given twice")
        params[name] = parse_value(text.strip())
    return params


def parse_resampling(every: int | None, pairs: Iterable[str]) -> Resampling | None:
    """``--resample-every N`` with ``--resample-option NAME=VALUE`` pairs -> a :class:`Resampling` (None without
    ``--resample-every``); a name it does not have, or an option without ``--resample-every``: exit 2."""
    options = parse_params(pairs, "--resample-option")
    if every is None:
        if options:
            fail("--resample-option needs --resample-every")
        return None
    known = {field.name for field in dataclasses.fields(Resampling)} - {"every"}
    for name in options:
        if name not in known:
            fail(f"--resample-option {name} is not an option of the resampling (one of {', '.join(sorted(known))})")
    try:
        return Resampling(every, **options)
    except (TypeError, ValueError) as error:
        fail(str(error))


def parse_hold_every(text: str) -> int | str | None:
    """``--hold-every``: ``auto``, ``stage`` (hold for the whole stage) or a positive number of iterations."""
    lowered = text.strip().lower()
    if lowered in ("auto", "stage"):
        return "auto" if lowered == "auto" else None
    try:
        value = int(lowered)
    except ValueError:
        fail(f"--hold-every must be 'auto', 'stage' or a positive integer, got {text!r}")
    if value < 1:
        fail(f"--hold-every must be 'auto', 'stage' or a positive integer, got {text!r}")
    return value


def parse_learning_rate(text: str | None) -> float | str | dict[str, float | str] | None:
    """``--lr``: a positive number, ``auto``, or per first-order optimizer ``adam=3e-3,sgd=auto``."""
    if text is None:
        return None
    if "=" in text:
        rates: dict[str, float | str] = {}
        for part in text.split(","):
            name, _, value = part.partition("=")
            rate = _one_rate(value, text) if name.strip() else None
            if rate is None or name.strip() in rates:
                fail(f"--lr must be a number, 'auto' or name=rate pairs such as adam=3e-3,sgd=auto, got {text!r}")
            rates[name.strip()] = rate
        return rates
    rate = _one_rate(text, text)
    if rate is None:
        fail(f"--lr must be a number, 'auto' or name=rate pairs such as adam=3e-3,sgd=auto, got {text!r}")
    return rate


def _one_rate(value: str, text: str) -> float | str | None:
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return float(value)
    except ValueError:
        return None


def parse_value(text: str) -> float | int | bool | str:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        fail(f"parameter value must be finite, got {text!r}")
    return value


def parse_list(text: str, what: str, choices: Iterable[str] | None = None) -> list[str]:
    """A comma-separated list, each item checked against ``choices`` (when given); empty or repeated: exit 2.

    Items may themselves hold commas inside plan syntax only when ``choices`` is None and items are separated by
    ``;`` (``adam:100,lbfgs:200;adam``).
    """
    separator = ";" if ";" in text or ":" in text else ","
    items = [item.strip() for item in text.split(separator)]
    choices = list(choices) if choices is not None else None
    if not text.strip() or not any(items):
        fail(f"{what} list is empty" + (f"; choose from {choices}" if choices else ""))
    if any(not item for item in items):
        fail(f"{what} list {text!r} has an empty item")
    for item in items:
        if choices is not None and item not in choices:
            fail(f"unknown {what} {item!r}; choose from {choices}")
    repeated = sorted({item for item in items if items.count(item) > 1})
    if repeated:
        fail(f"{what} list names {repeated[0]!r} more than once")
    return items


def significant(value, digits: int = 3) -> str:
    """A number in ``digits`` significant figures, short (``1.23e-5``), ``-`` for None or NaN.

    Example:
        >>> significant(0.000123456), significant(12345.6), significant(1234.4), significant(None), significant(0.5)
        ('1.23e-4', '1.23e+4', '1234', '-', '0.5')
    """
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    value = float(value)
    if not math.isfinite(value):
        return "-" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        return f"{mantissa}e{int(exponent):+d}"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:.0f}"  # 123, 1234: whole numbers, no exponent
    return f"{value:.{digits}g}"


def progress_bar(*, quiet: bool = False) -> Progress:
    """The progress bar of a run (``quiet``: shows nothing, e.g. in the processes other than 0 of a run)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), transient=False, disable=quiet,
    )
