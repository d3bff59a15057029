"""Fill the generated blocks of README.md and docs/*.md from the JSON that the benchmark scripts write.

Every number in the documentation comes from a script: a benchmark (``benchmarks/*.py``) measures and writes
``benchmarks/results/<name>.json`` (with the machine and the package versions), and this script renders each
``<!-- generated: <name> -->`` ... ``<!-- end generated -->`` block from that JSON with the benchmark's own
``markdown(payload)`` function. Text outside the blocks holds no measured numbers.

Each block ends with a line naming the commit its JSON was measured at (the JSON's ``provenance``: recorded by
``benchmarks/_machine.py`` or backfilled by ``benchmarks/backfill_provenance.py``), with the tree's state then.
Whether the result is stale (the code its script declares in ``MEASURES``, or the script itself, changed since
that commit, committed or not) is reported as a warning on stderr and not written into the blocks: it depends on
the history, not on the tree, so a block holding it would change on commits that touch no block (and could not
be checked in a shallow clone).

    python docs/render.py                  # rewrite the blocks; warn about stale results
    python docs/render.py --check          # exit 1 when a block differs from what its JSON renders (tests run
                                           # this); stale results are warnings only (expected until rerun)
    python docs/render.py --strict-stale   # also exit 1 when a result is stale or its staleness unknown
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- generated: ([a-z0-9_-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)
# What a script measures when it declares no MEASURES (its own file is always added).
DEFAULT_MEASURES = ("src/pinnkit", "cli/pinnkit_cli")
SHOWN = 3  # changed paths and dirty paths named in a line, the rest counted


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


def results_path(name: str, root: Path = ROOT) -> Path:
    return root / "benchmarks" / "results" / f"{name.partition('-')[0]}.json"


def measures(script: Path, root: Path = ROOT) -> tuple[str, ...]:
    """The paths ``script`` declares in ``MEASURES`` (read as a literal, without running the script) or
    :data:`DEFAULT_MEASURES`, then the script itself."""
    paths: tuple[str, ...] = DEFAULT_MEASURES
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "MEASURES" for target in node.targets):
            paths = tuple(ast.literal_eval(node.value))
    return (*paths, script.relative_to(root).as_posix())


def _shown(paths: Sequence[str]) -> str:
    more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return ", ".join(paths[:SHOWN]) + more


def provenance_line(data: dict, result: str) -> str:
    """The line under a block: the commit its JSON ``result`` was measured at and the tree's state then. Only
    what the JSON says (never HEAD), so the block renders the same at every commit of the same tree."""
    prov = data.get("provenance")
    if not prov:
        return f"<sub>No commit recorded in `{result}`.</sub>"
    commit = prov.get("commit")
    if not commit:
        return f"<sub>Measured at an unknown commit ({prov.get('reason', 'no reason given')}); `{result}`.</sub>"
    if str(prov.get("source", "")).startswith("backfilled"):
        return (f"<sub>Measured at or before commit `{commit[:7]}` (backfilled: the commit that last wrote "
                f"`{result}`).</sub>")
    if prov.get("clean"):
        return f"<sub>Measured at commit `{commit[:7]}` (clean tree); `{result}`.</sub>"
    dirty = list(prov.get("dirty_paths") or [])
    count = prov.get("dirty_count", len(dirty))
    listed = _shown(dirty) + (f" and {count - len(dirty)} more" if count > len(dirty) else "")
    return f"<sub>Measured at commit `{commit[:7]}` (dirty: uncommitted changes to {listed}); `{result}`.</sub>"


def render(text: str) -> str:
    def fill(match: re.Match) -> str:
        name = match.group(2)
        data = payload(name)
        body = renderer(name)(data).strip("\n") + "\n"
        line = provenance_line(data, results_path(name).relative_to(ROOT).as_posix())
        return match.group(1) + body + "\n" + line + "\n" + match.group(4)

    return BLOCK.sub(fill, text)


class NoGit(Exception):
    """Staleness cannot be checked at all (no git, or no repository at the root)."""


def git(root: Path, *args: str) -> str:
    """stdout of ``git -C root ARGS``; NoGit without git, CalledProcessError when the command fails."""
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                              timeout=60).stdout
    except OSError as error:
        raise NoGit(f"git not available ({error})") from None


def require_git(root: Path) -> None:
    """NoGit unless ``root`` is the top of a git work tree (a tree inside another repository is not checked)."""
    try:
        top = git(root, "rev-parse", "--show-toplevel").strip()
    except subprocess.CalledProcessError as error:
        raise NoGit(f"{root} is not a git repository ({(error.stderr or '').strip()})") from None
    if Path(top).resolve() != root.resolve():
        raise NoGit(f"{root} is not the top of its git repository ({top})")


@dataclasses.dataclass
class Staleness:
    """What changed in the code a result measures since the commit it was measured at."""

    result: str
    commit: str | None
    commits: list[str] = dataclasses.field(default_factory=list)  # commits since, touching the measured paths
    changed: list[str] = dataclasses.field(default_factory=list)  # measured files that differ now (tracked+new)
    uncommitted: list[str] = dataclasses.field(default_factory=list)  # of those, changed in the work tree
    dirty_measured: list[str] = dataclasses.field(default_factory=list)  # measured paths dirty when it ran
    unknown: str | None = None  # why staleness cannot be told

    @property
    def stale(self) -> bool:
        return bool(self.changed or self.dirty_measured)


def _under(path: str, paths: Sequence[str]) -> bool:
    return any(path == measured or path.startswith(measured.rstrip("/") + "/") for measured in paths)


def staleness(root: Path, result: Path, paths: Sequence[str]) -> Staleness:
    """Whether the code at ``paths`` (relative to ``root``) changed after the commit ``result`` names: a file
    that differs between that commit and the work tree, or a new file there. NoGit without git."""
    relative = result.relative_to(root).as_posix()
    prov = json.loads(result.read_text()).get("provenance") or {}
    commit = prov.get("commit")
    out = Staleness(relative, commit)
    if not commit:
        out.unknown = f"no commit recorded ({prov.get('reason', 'no provenance')})"
        return out
    try:
        git(root, "cat-file", "-e", f"{commit}^{{commit}}")
    except subprocess.CalledProcessError:
        out.unknown = f"commit {commit[:7]} is not in this clone (a shallow clone? git fetch --unshallow)"
        return out
    spec = ["--", *paths]
    out.commits = git(root, "log", "--format=%H", f"{commit}..HEAD", *spec).split()
    untracked = git(root, "ls-files", "--others", "--exclude-standard", *spec).splitlines()
    # Against the work tree, not HEAD: uncommitted edits count, and a change undone since does not.
    out.changed = sorted(set(git(root, "diff", "--name-only", commit, *spec).splitlines()) | set(untracked))
    out.uncommitted = sorted(set(git(root, "diff", "--name-only", "HEAD", *spec).splitlines()) | set(untracked))
    if prov.get("clean") is False:
        out.dirty_measured = [path for path in prov.get("dirty_paths") or [] if _under(path, paths)]
    return out


def warning(names: Sequence[str], state: Staleness) -> str | None:
    """The stderr line for a stale result or one whose staleness is unknown (None when it is fresh)."""
    label = ", ".join(names)
    if state.unknown:
        return f"cannot check staleness: {label}: {state.result}: {state.unknown}"
    if not state.stale:
        return None
    parts = []
    if state.changed:
        since = [f"{len(state.commits)} commit{'s' if len(state.commits) != 1 else ''}"] if state.commits else []
        if state.uncommitted:
            since.append(f"uncommitted: {_shown(state.uncommitted)}")
        parts.append(f"{_shown(state.changed)} changed since ({'; '.join(since)})")
    if state.dirty_measured:
        parts.append(f"measured with uncommitted changes to {_shown(state.dirty_measured)}")
    return f"stale: {label}: {state.result} measured at {state.commit[:7]}; " + "; ".join(parts)


def check_staleness(names: Sequence[str], root: Path = ROOT) -> tuple[list[str], bool]:
    """Warning lines for the results the blocks ``names`` render (one per results file), and whether any is
    stale or unknown. Without git: one line saying so."""
    by_result: dict[str, list[str]] = {}
    for name in names:
        by_result.setdefault(name.partition("-")[0], []).append(name)
    try:
        require_git(root)
    except NoGit as error:
        return [f"cannot check staleness: {error}"], True
    lines = []
    for script, blocks_of in sorted(by_result.items()):
        path = root / "benchmarks" / f"{script}.py"
        state = staleness(root, results_path(script, root), measures(path, root))
        line = warning(blocks_of, state)
        if line:
            lines.append(line)
    return lines, bool(lines)


def blocks(text: str) -> list[str]:
    return [match.group(2) for match in BLOCK.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale blocks instead of rewriting them")
    parser.add_argument("--strict-stale", action="store_true",
                        help="exit 1 when a rendered result is stale (its measured code changed since its commit) "
                             "or its staleness cannot be checked")
    args = parser.parse_args(argv)
    stale = []
    names = []
    for document in DOCUMENTS:
        text = document.read_text()
        names += [name for name in blocks(text) if name not in names]
        new = render(text)
        if new != text:
            stale.append(document.relative_to(ROOT))
            if not args.check:
                document.write_text(new)
    warnings, outdated = check_staleness(names)
    for line in warnings:
        print(line, file=sys.stderr)
    if args.check and stale:
        print("stale generated blocks in: " + ", ".join(map(str, stale)) + " (run python docs/render.py)",
              file=sys.stderr)
        return 1
    if not args.check:
        print("rendered: " + (", ".join(map(str, stale)) if stale else "nothing changed"))
    if args.strict_stale and outdated:
        print("--strict-stale: results above are stale or unchecked (rerun their benchmarks)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
