"""Readers name history columns through :mod:`pinnkit.columns`, never by spelling them.

A string literal equal to a column name (``"rel_l2"``, ``"step"``, ``"snr[layers[0].weight]"``) used as a key
(``history["rel_l2"]``, ``"snr" in history``, ``row.get("loss")``, ``history.last("mse")``) in the plotting
package, the report, the transition detector, a benchmark script or a docs script fails this test: a renamed column
would otherwise go on being read under its old name. Dict displays are not keys read back and are left alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

from pinnkit import columns

ROOT = Path(__file__).resolve().parent.parent
SCANNED = sorted([*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "docs").glob("*.py"),
                  *(ROOT / "src" / "pinnkit" / "plotting").glob("*.py"),
                  ROOT / "src" / "pinnkit" / "report.py", ROOT / "src" / "pinnkit" / "diagnostics" / "transitions.py"])
NAMES = {value for name, value in vars(columns).items() if name.isupper() and isinstance(value, str)}
# Per-layer columns are made by functions of pinnkit.columns (per-term ones too, but "loss_" also starts names
# that are not columns, such as a benchmark's "loss_over_mse").
PREFIXES = (columns.layer_snr("").removesuffix("]"), columns.entropy(0).removesuffix("0]"),
            columns.saturation(0).removesuffix("0]"))
# Methods whose first argument names a column: a mapping's or a History's.
KEY_METHODS = {"get", "pop", "last", "setdefault"}


def is_column(node: ast.AST) -> bool:
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return False
    return node.value in NAMES or node.value.startswith(PREFIXES)


def spelled_columns(source: str) -> list[tuple[int, str]]:
    """(line, literal) of every column name spelled as a key in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        keys: list[ast.AST] = []
        if isinstance(node, ast.Subscript):
            keys = [node.slice]
        elif isinstance(node, ast.Compare) and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            keys = [node.left]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in KEY_METHODS and node.args):
            keys = [node.args[0]]
        found += [(key.lineno, key.value) for key in keys if is_column(key)]
    return found


def test_the_scan_finds_a_spelled_column():
    source = ('h = {}\nh["rel_l2"]\n"snr" in h\nh.get("snr[layers[0].weight]")\nh.last("mse")\nh[columns.STEP]\n'
              '{"step": 1}\nh["loss_over_mse"]\n')
    assert sorted(spelled_columns(source)) == [(2, "rel_l2"), (3, "snr"), (4, "snr[layers[0].weight]"), (5, "mse")]


def test_readers_name_history_columns_through_the_constants():
    assert len(SCANNED) > 10
    spelled = {str(path.relative_to(ROOT)): hits for path in SCANNED
               if (hits := spelled_columns(path.read_text(encoding="utf-8")))}
    assert not spelled, f"history columns spelled instead of named through pinnkit.columns: {spelled}"
