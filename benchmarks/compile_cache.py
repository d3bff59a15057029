"""Compile once: the compile time of a second identical ``pinnkit train`` against the first.

The CLI keeps JAX's persistent compilation cache in the user's cache folder (``$PINNKIT_COMPILATION_CACHE``,
default ``$XDG_CACHE_HOME/pinnkit/jax``). This script points it at a fresh folder, runs the same
``pinnkit train --steps 50`` twice and reads each run's ``compile_time_s`` from its ``result.json``; a third run
with the cache off shows what the first run would cost without it.

    python benchmarks/compile_cache.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import log, stamp, write

from pinnkit import columns
from pinnkit.summary import RunSummary

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# compile times depend on every traced program the CLI's train command builds.
MEASURES = ("src/pinnkit", "cli/pinnkit_cli")

COMMAND = ["train", "--steps", "50", "--problem", "helmholtz", "--width", "64", "--depth", "4", "--points", "2000"]


def run_once(folder: Path, name: str, cache: str) -> dict:
    out = folder / name
    environment = dict(os.environ, PINNKIT_COMPILATION_CACHE=cache)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from pinnkit_cli.app import main; main()", *COMMAND, "--out",
                           str(out)], capture_output=True, text=True, env=environment, timeout=1800)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"pinnkit train failed ({done.returncode}): {done.stderr[-2000:]}")
    result = RunSummary.from_dict(json.loads((out / "result.json").read_text()))
    log(f"{name}: compile {result.compile_time_s:.2f} s, process wall {wall:.1f} s")
    return {"compile_time_s": result.compile_time_s, "process_wall_s": wall, columns.REL_L2: result.rel_l2}


def measure() -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        cache = str(folder / "cache")
        first = run_once(folder, "first", cache)
        second = run_once(folder, "second", cache)
        uncached = run_once(folder, "uncached", "off")
    return {"train_command": "pinnkit " + " ".join(COMMAND), "first": first, "second": second, "cache_off": uncached,
            "ratio": second["compile_time_s"] / first["compile_time_s"],
            "same_result": first[columns.REL_L2] == second[columns.REL_L2]}


def markdown(payload: dict) -> str:
    """The compile-cache line of docs/benchmarks.md."""
    machine = payload["machine"]
    return "\n".join([
        f"`{payload['train_command']}`, three times in fresh processes ({machine['cores']} cores of a "
        f"{machine['cpu']}; jax {payload['versions']['jax']}; {payload['date']}):", "",
        "| run | compile s | process wall s |", "|---|---|---|",
        f"| first (empty cache) | {payload['first']['compile_time_s']:.2f} | "
        f"{payload['first']['process_wall_s']:.1f} |",
        f"| second (cache filled by the first) | {payload['second']['compile_time_s']:.2f} | "
        f"{payload['second']['process_wall_s']:.1f} |",
        f"| cache off | {payload['cache_off']['compile_time_s']:.2f} | {payload['cache_off']['process_wall_s']:.1f} |",
        "", f"The second run compiles in **{payload['ratio']:.2f}x** the first one's time"
            + (", with a bitwise identical result." if payload["same_result"] else "."),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    payload = stamp() | measure()
    log(f"wrote {write('compile_cache', payload)}")
    print(json.dumps(payload) if args.json else markdown(payload))


if __name__ == "__main__":
    main()
