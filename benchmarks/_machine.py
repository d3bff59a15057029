"""What every benchmark records beside its numbers: the machine, the package versions, the date; and where it
writes its JSON (``benchmarks/results/<name>.json``, rendered into the docs by ``docs/render.py``)."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("pinnkit", "jax", "jaxlib", "equinox", "optax", "diffrax", "numpy", "torch")


def versions() -> dict[str, str]:
    out = {}
    for package in PACKAGES:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


def machine() -> dict[str, Any]:
    """The CPU model and count, memory, OS and the load when the benchmark started."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    import jax

    return {
        "cpu": model, "cores": os.cpu_count(), "memory_gib": round(memory, 1) if memory else None,
        "system": f"{platform.system()} {platform.release()}", "python": sys.version.split()[0],
        "jax_backend": jax.default_backend(), "load_average_at_start": list(os.getloadavg()),
    }


def stamp() -> dict[str, Any]:
    """The fields every results JSON carries."""
    return {"date": datetime.date.today().isoformat(), "machine": machine(), "versions": versions(),
            "command": "python " + " ".join(sys.argv)}


def write(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` atomically (valid JSON: NaN as null)."""
    from pinnkit import jsonio
    from pinnkit.atomic import atomic_write_text

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    atomic_write_text(path, jsonio.dumps(payload, indent=2) + "\n")
    return path


def log(message: str) -> None:
    """Progress on stderr, so that ``--json`` keeps stdout to one JSON object."""
    print(message, file=sys.stderr, flush=True)
