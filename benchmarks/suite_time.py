"""The test suite's wall time: today's fast tier (``pytest``) against the whole suite of an earlier revision, side
by side on the same machine in the same session, and the slow tier (``pytest -m slow``).

The earlier revision's suite runs from a ``git worktree`` with this environment's packages (its own ``src`` and
``cli`` first on the path, the shared reference data where this checkout finds it). Each command runs in a fresh
process; the wall time includes collection and imports. The counts are pytest's own summary line.

    python benchmarks/suite_time.py [--baseline 0a6d339] [--no-slow]

Writes ``benchmarks/results/suite_time.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import ROOT, log, stamp, write

# What its numbers depend on: the tests and all they run.
MEASURES = ("tests", "src/pinnkit", "cli/pinnkit_cli", "pyproject.toml")

BASELINE = "0a6d339"  # main when the quick-start issue was taken up: its whole suite is "today's"
TARGET = 0.4  # the fast tier's wall time at most this fraction of the baseline suite's
SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|deselected|xfailed|errors?)")


def timed_pytest(cwd: Path, python_path: str | None, *arguments: str) -> dict:
    environment = dict(os.environ)
    environment.setdefault("PINNKIT_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
    if python_path is not None:
        environment["PYTHONPATH"] = python_path
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments], cwd=cwd,
                          capture_output=True, text=True, env=environment, timeout=4 * 3600)
    wall = time.perf_counter() - start
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    counts = {kind.rstrip("s") if kind.startswith("error") else kind: int(count)
              for count, kind in SUMMARY.findall(last)}
    return {"command": " ".join(["pytest", *arguments]), "wall_s": wall, "exit_code": done.returncode,
            "counts": counts, "summary": last}


def measure(args) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.baseline],
                       check=True, capture_output=True)
        try:
            revision = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], check=True,
                                      capture_output=True, text=True).stdout.strip()
            log(f"1/3: the whole suite at {revision}")
            out["baseline"] = {"revision": revision, **timed_pytest(tree, f"{tree / 'src'}:{tree / 'cli'}")}
            log(f"  {out['baseline']['wall_s']:.0f} s: {out['baseline']['summary']}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
            shutil.rmtree(tree, ignore_errors=True)
    log("2/3: the fast tier (pytest)")
    out["fast"] = timed_pytest(ROOT, None)
    log(f"  {out['fast']['wall_s']:.0f} s: {out['fast']['summary']}")
    if args.slow:
        log("3/3: the slow tier (pytest -m slow)")
        out["slow"] = timed_pytest(ROOT, None, "-m", "slow")
        log(f"  {out['slow']['wall_s']:.0f} s: {out['slow']['summary']}")
    out["ratio"] = out["fast"]["wall_s"] / out["baseline"]["wall_s"]
    return out


def markdown(payload: dict) -> str:
    machine = payload["machine"]
    base, fast = payload["baseline"], payload["fast"]
    lines = [f"Measured {payload['date']} on {machine['cores']} cores of a {machine['cpu']} (load average at the "
             f"start {machine['load_average_at_start'][0]:.1f}), one command after the other.", "",
             "| command | wall time | pytest's summary |", "|---|---|---|",
             f"| the whole suite at {base['revision']} (`pytest`) | {base['wall_s']:.0f} s | {base['summary']} |",
             f"| the fast tier (`pytest`) | {fast['wall_s']:.0f} s | {fast['summary']} |"]
    if "slow" in payload:
        slow = payload["slow"]
        lines.append(f"| the slow tier (`pytest -m slow`) | {slow['wall_s']:.0f} s | {slow['summary']} |")
    verdict = "met" if payload["ratio"] <= TARGET else "**missed**"
    lines += ["", f"The fast tier takes **{payload['ratio']:.2f}x** the earlier whole suite's time (target: at most "
                  f"{TARGET:g}x: {verdict})."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--no-slow", dest="slow", action="store_false")
    args = parser.parse_args()
    payload = stamp() | measure(args)
    log(f"wrote {write('suite_time', payload)}")
    print(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
