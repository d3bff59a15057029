"""Give every results JSON written before benchmarks recorded their commit a ``provenance`` naming one.

The benchmarks that wrote ``benchmarks/results/*.json`` before ``_machine.stamp()`` recorded the commit cannot all be
rerun (several take an hour). The honest commit to name is the one that last wrote the file: the code measured was
at or before it. For each results file without a ``provenance`` this adds

    "provenance": {"commit": <git log --format=%H -1 -- FILE>, "clean": null,
                   "source": "backfilled: the commit that last wrote this file; the code measured was at or before it"}

as the last key, keeping the rest of the file byte for byte (the file's own indentation). It never overwrites a
provenance, and it leaves alone a file whose content differs from that commit's (a fresh, uncommitted result: its
benchmark should record its own provenance) or that git has never seen. Running it again changes nothing.

    python benchmarks/backfill_provenance.py [--check]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SOURCE = "backfilled: the commit that last wrote this file; the code measured was at or before it"


def git(*args: str, root: Path = ROOT) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def with_key(text: str, data: dict[str, Any], key: str, value: Any) -> str:
    """``text`` (the JSON of ``data``) with ``key: value`` appended as the last key, in the file's own format."""
    for indent in (2, 1, 4, None):
        for ending in ("\n", ""):
            if json.dumps(data, indent=indent) + ending == text:
                return json.dumps(data | {key: value}, indent=indent) + ending
    raise ValueError("the file is not in a json.dumps format this script can reproduce byte for byte")


def backfill(path: Path, root: Path = ROOT, write: bool = True) -> str:
    """Add the backfilled provenance to ``path`` (when ``write``); return what was done, in words."""
    relative = path.relative_to(root).as_posix()
    text = path.read_text()
    data = json.loads(text)
    if "provenance" in data:
        return f"{relative}: has a provenance ({data['provenance'].get('source')}); left as it is"
    commit = git("log", "--format=%H", "-1", "--", relative, root=root).strip()
    if not commit:
        return f"{relative}: no commit wrote it; left without a provenance (rerun its benchmark)"
    committed = git("show", f"{commit}:{relative}", root=root)
    if committed != text:
        return (f"{relative}: differs from {commit[:7]}, the commit that last wrote it (an uncommitted result?); "
                "left without a provenance (its benchmark records one)")
    new = with_key(text, data, "provenance", {"commit": commit, "clean": None, "source": SOURCE})
    if write:
        from pinnkit.atomic import atomic_write_text

        atomic_write_text(path, new)
    return f"{relative}: {'backfilled' if write else 'would backfill'} commit {commit[:7]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="say what would be done; write nothing")
    args = parser.parse_args(argv)
    try:
        git("rev-parse", "--git-dir")
    except (OSError, subprocess.SubprocessError) as error:
        print(f"cannot backfill: no git repository at {ROOT} ({error})", file=sys.stderr)
        return 1
    for path in sorted(RESULTS.glob("*.json")):
        print(backfill(path, write=not args.check))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
