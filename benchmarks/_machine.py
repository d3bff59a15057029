"""What every benchmark records beside its numbers: the machine, the package versions, the date, the commit of the
code it ran (``provenance``); and where it writes its JSON (``benchmarks/results/<name>.json``, rendered into the
docs by ``docs/render.py``)."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
# Benchmark outputs, not code: a results file written by an earlier benchmark does not make the tree dirty.
OUTPUTS = "benchmarks/results/"
MAX_DIRTY_PATHS = 50
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


def _git(root: Path, *args: str) -> str:
    """stdout of ``git -C root ARGS``; raises OSError (no git) or CalledProcessError (not a repository ...)."""
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def provenance(root: Path = ROOT) -> dict[str, Any]:
    """The commit of the tree at ``root`` and whether it was clean (``git status --porcelain`` empty, leaving out
    ignored files and anything under ``benchmarks/results/``), with the dirty paths when not. Without git or a
    repository: ``commit`` None and the ``reason``; never raises."""
    out: dict[str, Any] = {"commit": None, "clean": None, "dirty_paths": [], "source": "recorded"}
    try:
        out["commit"] = _git(root, "rev-parse", "--verify", "HEAD^{commit}").strip()
        # -z: paths verbatim (no quoting); untracked files one by one, so that OUTPUTS can be left out exactly.
        status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    except OSError as error:
        return out | {"reason": f"git not available: {error}"}
    except subprocess.SubprocessError as error:
        stderr = (getattr(error, "stderr", None) or "").strip().splitlines()
        out["commit"] = None
        return out | {"reason": f"no git commit: {stderr[0] if stderr else error}"}
    paths = []
    entries = iter(status.split("\0"))
    for entry in entries:
        if not entry:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":
            next(entries, None)  # a rename's or copy's source path follows as its own entry
        if not path.startswith(OUTPUTS):
            paths.append(path)
    out["clean"] = not paths
    out["dirty_paths"] = sorted(paths)[:MAX_DIRTY_PATHS]
    if len(paths) > MAX_DIRTY_PATHS:
        out["dirty_count"] = len(paths)
    return out


def stamp(root: Path = ROOT) -> dict[str, Any]:
    """The fields every results JSON carries (``root``: the repository whose commit ``provenance`` records)."""
    return {"date": datetime.date.today().isoformat(), "machine": machine(), "versions": versions(),
            "command": "python " + " ".join(sys.argv), "provenance": provenance(root)}


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
