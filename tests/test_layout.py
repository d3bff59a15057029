"""The layout rules the code keeps: small modules, no private names across modules, outcomes not compared as text.

These read the source with ``ast``; each fails with the offending file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = sorted((ROOT / "src" / "pinnkit").rglob("*.py"))
CLI = sorted((ROOT / "cli" / "pinnkit_cli").rglob("*.py"))
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))
MAX_LINES = 700


# NamedTuple's public API is spelled with a leading underscore to stay out of the field names' way.
NAMEDTUPLE_API = {"_fields", "_replace", "_asdict", "_make", "_field_defaults"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__")) \
        and name not in NAMEDTUPLE_API


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _where(path: Path, node: ast.AST) -> str:
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return f"{shown}:{node.lineno}"


def private_imports(path: Path) -> list[str]:
    """``from pinnkit... import _x`` and ``module._x`` on an imported pinnkit module, in ``path``."""
    found = []
    modules: set[str] = set()
    tree = _tree(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("pinnkit", "pinnkit_cli"):
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{_where(path, node)} imports {alias.name} from {node.module}")
                else:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("pinnkit", "pinnkit_cli"):
                    modules.add((alias.asname or alias.name).split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name) \
                and node.value.id in modules:
            found.append(f"{_where(path, node)} reads {node.value.id}.{node.attr}")
    return found


def test_the_rules_catch_what_they_look_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from pinnkit.engine.loop import _unstack\nfrom pinnkit import history\n"
                      "history._last\nif result.status == 'completed':\n    pass\n")
    assert len(private_imports(sample)) == 2
    assert len(completed_comparisons(sample)) == 1


@pytest.mark.parametrize("path", LIBRARY, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_library_module_is_over_the_line_limit(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (limit {MAX_LINES}): split it"


def test_no_private_name_crosses_a_module():
    found = [line for path in LIBRARY + CLI + BENCHMARKS for line in private_imports(path)]
    assert not found, "\n".join(found)


def completed_comparisons(path: Path) -> list[str]:
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                if isinstance(operand, ast.Constant) and operand.value == "completed":
                    found.append(f"{_where(path, node)} compares with the string 'completed'")
    return found


def test_outcomes_are_compared_as_enums_not_strings():
    found = [line for path in LIBRARY + CLI + BENCHMARKS for line in completed_comparisons(path)]
    assert not found, "\n".join(found)
