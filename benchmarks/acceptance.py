"""Run the quasi-Newton acceptance command through the installed CLI and record its error (rendered in the docs).

The command (the quasi-Newton issue's check on a clean install):

    pinnkit train --problem burgers --optimizer adam+ssbroyden --switch-step 1000 --steps 6000 --float64
                  --width 20 --depth 8 --points 4000 --out <temporary folder>

must end at a relative L2 error <= 1e-3 on the reference grid. The script runs it as a user would (a subprocess of
the ``pinnkit`` console script), reads ``result.json``, and writes ``benchmarks/results/acceptance.json``.

    python benchmarks/acceptance.py [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import log, stamp, write

from pinnkit import columns
from pinnkit.summary import RunSummary

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# the CLI's train command and the training stack behind it.
MEASURES = ("src/pinnkit/engine", "src/pinnkit/experiment.py", "src/pinnkit/nn.py", "src/pinnkit/derivatives.py",
            "src/pinnkit/problems", "src/pinnkit/reference", "src/pinnkit/optimizers.py", "src/pinnkit/plans.py",
            "src/pinnkit/quasi_newton.py", "src/pinnkit/scaling_rules.py", "src/pinnkit/optimizer_registry.py",
            "src/pinnkit/curvature.py", "src/pinnkit/reweight", "src/pinnkit/sampling.py",
            "src/pinnkit/lr_search.py", "cli/pinnkit_cli")

ARGS = ["train", "--problem", "burgers", "--optimizer", "adam+ssbroyden", "--switch-step", "1000", "--steps", "6000",
        "--float64", "--width", "20", "--depth", "8", "--points", "4000"]
THRESHOLD = 1e-3


def pinnkit_command() -> list[str]:
    """The installed console script (or the module entry point when it is not on PATH)."""
    found = shutil.which("pinnkit")
    return [found] if found else [sys.executable, "-c", "from pinnkit_cli.app import main; main()"]


def markdown(payload: dict) -> str:
    machine = payload["machine"]
    verdict = "met" if payload[columns.REL_L2] <= payload["threshold"] else "NOT met"
    return (f"`pinnkit {' '.join(payload['args'])}` ended at rel. L2 **{payload[columns.REL_L2]:.2e}** (required <= "
            f"{payload['threshold']:.0e}: {verdict}), exit code {payload['exit_code']}, {payload['seconds']:.0f} s "
            f"in all ({machine['cores']} cores of a {machine['cpu']}, jax {payload['versions']['jax']}, "
            f"{payload['date']}).\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    payload = stamp() | {"args": ARGS, "threshold": THRESHOLD}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        start = time.perf_counter()
        done = subprocess.run([*pinnkit_command(), *ARGS, "--out", str(out)], capture_output=True, text=True)
        payload["seconds"] = time.perf_counter() - start
        payload["exit_code"] = done.returncode
        if done.returncode != 0:
            raise SystemExit(f"the command failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
        result = RunSummary.from_dict(json.loads((out / "result.json").read_text()))
    payload[columns.REL_L2] = result.rel_l2
    payload["final_loss"] = result.final_loss
    log(f"wrote {write('acceptance', payload)}")
    print(json.dumps(payload) if args.json else markdown(payload))


if __name__ == "__main__":
    sys.exit(main())
