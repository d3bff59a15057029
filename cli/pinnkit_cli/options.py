"""Parsing helpers shared by the commands: ``NAME=VALUE`` parameters, output folders, progress bars."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pinnkit_cli.app import fail


def parse_params(pairs: Iterable[str]) -> dict[str, float | int | bool | str]:
    """``["a1=6", "periodic_loss=true"]`` -> ``{"a1": 6, "periodic_loss": True}``."""
    params: dict[str, float | int | bool | str] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name or not text:
            fail(f"--param expects NAME=VALUE, got {pair!r}")
        params[name.strip()] = parse_value(text.strip())
    return params


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


def parse_list(text: str, choices: Iterable[str], what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    choices = list(choices)
    if not items:
        fail(f"{what} list is empty; choose from {choices}")
    for item in items:
        if item not in choices:
            fail(f"unknown {what} {item!r}; choose from {choices}")
    return items


def prepare_out_dir(out: Path | None, default_name: str, overwrite: bool) -> Path:
    """Create the output folder (refusing an existing one unless ``overwrite``); exit 2 when it cannot be written."""
    if out is None:
        out = Path("runs") / f"{default_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and not overwrite:
        fail(f"output folder {str(out)!r} exists; pass --overwrite or choose another --out")
    if out.exists() and not out.is_dir():
        fail(f"output path {str(out)!r} is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(f"cannot create output folder {str(out)!r}: {error.strerror or error}")
    if not os.access(out, os.W_OK):
        fail(f"output folder {str(out)!r} is not writable")
    return out


def check_out_dir(out: Path | None, overwrite: bool) -> None:
    """Validate an output folder choice without creating anything (so bad input leaves nothing behind)."""
    if out is None:
        return
    if out.exists() and not overwrite:
        fail(f"output folder {str(out)!r} exists; pass --overwrite or choose another --out")
    if out.exists() and not out.is_dir():
        fail(f"output path {str(out)!r} is not a folder")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        fail(f"output folder {str(out)!r} cannot be created: {str(parent)!r} is not a writable folder")


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), transient=False,
    )
