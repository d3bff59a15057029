"""Fill the generated blocks of README.md and docs/*.md from the JSON that the benchmark scripts write.

Every number in the documentation comes from a script: a benchmark (``benchmarks/*.py``) measures and writes
``benchmarks/results/<name>.json`` (with the machine and the package versions), and this script renders each
``<!-- generated: <name> -->`` ... ``<!-- end generated -->`` block from that JSON with the benchmark's own
``markdown(payload)`` function. Text outside the blocks holds no measured numbers.

    python docs/render.py            # rewrite the blocks
    python docs/render.py --check    # exit 1 when a block differs from what its JSON renders (tests run this)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- generated: ([a-z0-9_-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def renderer(name: str) -> Callable[[dict], str]:
    """The ``markdown`` function that renders block ``name``: ``benchmarks/<script>.py`` for a name
    ``<script>`` or ``<script>-<part>`` (then the function ``markdown_<part>``)."""
    script, _, part = name.partition("-")
    path = ROOT / "benchmarks" / f"{script}.py"
    if not path.is_file():
        raise SystemExit(f"block {name!r}: no script {path.relative_to(ROOT)}")
    spec = importlib.util.spec_from_file_location(f"_render_{script}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look the module up by name
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    function = f"markdown_{part.replace('-', '_')}" if part else "markdown"
    if not hasattr(module, function):
        raise SystemExit(f"block {name!r}: {path.relative_to(ROOT)} has no {function}()")
    return getattr(module, function)


def payload(name: str) -> dict:
    """The JSON a block renders from: ``benchmarks/results/<script>.json``."""
    script = name.partition("-")[0]
    path = RESULTS / f"{script}.json"
    if not path.is_file():
        raise SystemExit(f"block {name!r}: {path.relative_to(ROOT)} is missing; run benchmarks/{script}.py")
    return json.loads(path.read_text())


def render(text: str) -> str:
    def fill(match: re.Match) -> str:
        name = match.group(2)
        body = renderer(name)(payload(name)).strip("\n") + "\n"
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(fill, text)


def blocks(text: str) -> list[str]:
    return [match.group(2) for match in BLOCK.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale blocks instead of rewriting them")
    args = parser.parse_args(argv)
    stale = []
    for document in DOCUMENTS:
        text = document.read_text()
        new = render(text)
        if new != text:
            stale.append(document.relative_to(ROOT))
            if not args.check:
                document.write_text(new)
    if args.check and stale:
        print("stale generated blocks in: " + ", ".join(map(str, stale)) + " (run python docs/render.py)",
              file=sys.stderr)
        return 1
    if not args.check:
        print("rendered: " + (", ".join(map(str, stale)) if stale else "nothing changed"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
