"""Run the README's Python example exactly as written and record what it prints (rendered back into the README).

The example is the first ``python`` code block under the README's "Use it from Python" heading. Its printed
lines, the wall time and the machine go to ``benchmarks/results/readme_example.json``; ``docs/render.py`` puts the
output under the example. The tests run the same block at a smaller size (``tests/test_docs.py``).

    python benchmarks/readme_example.py [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import time
from pathlib import Path

from _machine import log, stamp, write

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# the library the README's example calls. README.md itself is not listed: it also holds the
# generated blocks, so every render would mark this result stale.
MEASURES = ("src/pinnkit",)

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = "## Use it from Python"


def example_code(text: str | None = None) -> str:
    """The README's example: the first python block under :data:`HEADING`."""
    text = README.read_text() if text is None else text
    section = text.split(HEADING, 1)
    if len(section) != 2:
        raise SystemExit(f"{README.name} has no {HEADING!r} section")
    match = re.search(r"```python\n(.*?)```", section[1], re.S)
    if match is None:
        raise SystemExit(f"{README.name}: no python block under {HEADING!r}")
    return match.group(1)


def run_example(code: str) -> str:
    """Execute the example in a fresh namespace; return what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md example", "exec"), {"__name__": "__readme__"})
    return printed.getvalue()


def markdown(payload: dict) -> str:
    machine = payload["machine"]
    return ("```text\n" + payload["output"].rstrip("\n") + "\n```\n\n"
            f"Printed by the example as written (`{payload['command']}`, {payload['date']}, {machine['cores']} cores "
            f"of a {machine['cpu']}, jax {payload['versions']['jax']}): {payload['seconds']:.0f} s in all, "
            "compilation included.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    payload = stamp()
    start = time.perf_counter()
    payload["output"] = run_example(example_code())
    payload["seconds"] = time.perf_counter() - start
    log(f"wrote {write('readme_example', payload)}")
    print(json.dumps(payload) if args.json else markdown(payload))


if __name__ == "__main__":
    sys.exit(main())
