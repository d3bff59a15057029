"""Shared pieces of the convergence and reweighting benchmarks: run a grid, read histories, write docs.

Both benchmarks run :func:`pinnkit.compare.compare` grids (seeds vmapped in one program), reduce each run's
history to a few per-seed curves and numbers, print one JSON object, and rewrite their own section of
``docs/benchmarks.md`` plus their figures. A printed JSON object can be fed back with ``--from-json`` to
redraw the docs without training again.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pinnkit.compare import CompareConfig, CompareRun, compare
from pinnkit.history import History, atomic_write_text

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS_DIR = REPO_ROOT / "docs"
THRESHOLDS = (0.1, 0.01)
LBFGS_STEP = ("one L-BFGS step is one optax.lbfgs iteration: a two-loop-recursion direction plus its zoom "
              "line search (up to 20 loss/gradient evaluations)")
BENCHMARKS_PAGE_SECTIONS = ("## Convergence", "## Reweighting", "## Step time", "## Diagnostics overhead")
PLACEHOLDER = "(to be filled by the lead)"


def log(message: str) -> None:
    """Progress on stderr, so that ``--json`` keeps stdout to one JSON object."""
    print(message, file=sys.stderr, flush=True)


def steps_to_reach(history: History, threshold: float, column: str = "step") -> float | None:
    """The first logged ``column`` value (step or wall seconds) at which rel L2 <= ``threshold``.

    The resolution is the history's logging interval. Returns None when the threshold is never reached.

    Example:
        >>> h = History([{"step": s, "rel_l2": e} for s, e in ((10, 0.5), (20, 0.09), (30, 0.2))])
        >>> steps_to_reach(h, 0.1), steps_to_reach(h, 0.01)
        (20, None)
    """
    if "rel_l2" not in history or len(history) == 0:
        return None
    errors = history["rel_l2"]
    hits = np.flatnonzero(np.isfinite(errors) & (errors <= threshold))
    if hits.size == 0:
        return None
    value = float(history[column][hits[0]])
    return int(value) if column == "step" else value


def run_curve(history: History) -> dict[str, list[float]]:
    """The per-run curve kept in the JSON output: step, wall seconds and rel L2 of each logged row."""
    errors = history["rel_l2"] if "rel_l2" in history else np.full(len(history), math.nan)
    return {"step": history["step"].tolist(), "wall_time_s": history["wall_time_s"].tolist(),
            "rel_l2": errors.tolist()}


def seed_band(curves: Sequence[Mapping[str, Sequence[float]]], x: str = "step"):
    """Mean, min and max of rel L2 over seeds at each logged ``x`` value shared by the seeds.

    Seeds of one vmapped run share their logged steps (and wall clock); a seed that diverged stops early, and
    the band then covers the seeds still alive.

    Example:
        >>> xs, mean, low, high = seed_band([{"step": [1, 2], "rel_l2": [1.0, 0.5]},
        ...                                  {"step": [1, 2], "rel_l2": [3.0, 0.5]}])
        >>> mean.tolist(), low.tolist(), high.tolist()
        ([2.0, 0.5], [1.0, 0.5], [3.0, 0.5])
    """
    grid = sorted({value for curve in curves for value in curve[x]})
    table = np.full((len(curves), len(grid)), np.nan)
    position = {value: index for index, value in enumerate(grid)}
    for row, curve in enumerate(curves):
        for value, error in zip(curve[x], curve["rel_l2"], strict=True):
            table[row, position[value]] = math.nan if error is None else error
    keep = np.isfinite(table).any(axis=0)
    table = table[:, keep]
    with np.errstate(all="ignore"):
        return (np.asarray(grid)[keep], np.nanmean(table, axis=0), np.nanmin(table, axis=0),
                np.nanmax(table, axis=0))


def logging_note(results: Sequence[Mapping[str, Any]]) -> str:
    """How often the histories were logged, read from the curves themselves (e.g. "every 2 steps up to 300,
    then every 50"), per problem.

    Example:
        >>> logging_note([{"problem": "p", "curves": [{"step": [2, 4, 6, 56, 106]}]}])
        'p: every 2 steps up to step 6, then every 50'
    """
    notes = {}
    for entry in results:
        if entry["problem"] in notes or not entry["curves"] or len(entry["curves"][0]["step"]) < 2:
            continue
        steps = np.asarray(entry["curves"][0]["step"], float)
        gaps = np.diff(np.concatenate([[0.0], steps]))
        dense, sparse = gaps[0], gaps.max()
        if sparse == dense:
            notes[entry["problem"]] = f"{entry['problem']}: every {dense:g} steps"
            continue
        until = steps[np.argmax(gaps > dense) - 1]
        notes[entry["problem"]] = (f"{entry['problem']}: every {dense:g} steps up to step {until:g}, "
                                   f"then every {sparse:g}")
    return "; ".join(notes.values())


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and (population) standard deviation of the finite values; (None, None) when there are none."""
    finite = np.array([value for value in values if value is not None and math.isfinite(value)], float)
    if finite.size == 0:
        return None, None
    return float(finite.mean()), float(finite.std())


def summarize_group(runs: Sequence[CompareRun], total_seconds: float) -> dict[str, Any]:
    """One (problem, optimizer, reweighting) group of seeds: errors over seeds, thresholds, times, curves."""
    first = runs[0].row
    final = [run.row["rel_l2"] for run in runs]
    best = [run.row["best_rel_l2"] for run in runs]
    entry: dict[str, Any] = {
        "problem": first["problem"], "optimizer": first["optimizer"], "reweight": first["reweight"],
        "seeds": len(runs), "steps": max(run.row["steps"] for run in runs),
        "final_rel_l2": final, "best_rel_l2": best,
        "status": [run.row["status"] for run in runs],
    }
    entry["final_rel_l2_mean"], entry["final_rel_l2_std"] = mean_std(final)
    entry["best_rel_l2_mean"], entry["best_rel_l2_std"] = mean_std(best)
    for threshold in THRESHOLDS:
        entry[f"steps_to_{threshold:g}"] = [steps_to_reach(run.history, threshold) for run in runs]
        entry[f"seconds_to_{threshold:g}"] = [steps_to_reach(run.history, threshold, "wall_time_s")
                                              for run in runs]
    # The seeds ran together in one vmapped program: this is the wall time of all of them, compile excluded.
    entry["wall_time_s"] = max(run.row["wall_time_s"] for run in runs)
    entry["compile_time_s"] = first["compile_time_s"]
    entry["total_time_s"] = total_seconds
    entry["steps_per_s"] = entry["steps"] / entry["wall_time_s"] if entry["wall_time_s"] > 0 else None
    entry["diffusion_start"] = [run.row.get("diffusion_start") for run in runs]
    entry["equilibrium_start"] = [run.row.get("equilibrium_start") for run in runs]
    if "line_search_failures" in first:
        entry["line_search_failures"] = [run.row.get("line_search_failures") for run in runs]
    entry["curves"] = [run_curve(run.history) for run in runs]
    return entry


def run_grid(config: CompareConfig) -> list[dict[str, Any]]:
    """Run one comparison grid and summarize it per (optimizer, reweighting) group of seeds."""
    log(f"[{time.strftime('%H:%M:%S')}] {config.problem}: optimizers {list(config.optimizers)}, reweights "
        f"{list(config.reweights)}, {config.steps} steps, {config.seeds} seeds, "
        f"{config.depth}x{config.width}, {config.points} points")
    start = time.perf_counter()
    runs = compare(config)
    total = time.perf_counter() - start
    groups: dict[tuple[str, str], list[CompareRun]] = {}
    for run in runs:
        groups.setdefault((run.row["optimizer"], run.row["reweight"]), []).append(run)
    out = []
    for members in groups.values():
        entry = summarize_group(members, total / len(groups))
        log(f"    {entry['optimizer']:>10} / {entry['reweight']:<14} "
            f"final {format_mean_std(entry, 'final_rel_l2')}  best {format_mean_std(entry, 'best_rel_l2')}  "
            f"{entry['wall_time_s']:.0f} s train, "
            f"{entry['compile_time_s']:.0f} s compile")
        out.append(entry)
    log(f"    grid done in {total:.0f} s")
    return out


def json_ready(value: Any) -> Any:
    """``value`` with NaN/inf as None and NumPy scalars as Python ones, ready for ``json.dumps``."""
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_value(value: float | None, digits: int = 3) -> str:
    """A number for a table: 3 significant digits, or an em dash for None."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}g}"


def format_mean_std(entry: Mapping[str, Any], key: str) -> str:
    """``mean ± std`` of ``entry[key + "_mean"]`` and ``entry[key + "_std"]``."""
    mean, std = entry.get(f"{key}_mean"), entry.get(f"{key}_std")
    if mean is None:
        return "—"
    return f"{format_value(mean)} ± {format_value(std, 2)}"


def format_per_seed(values: Sequence[float | None], digits: int = 3) -> str:
    """Per-seed values separated by slashes, "—" where a seed has none (e.g. never reached a threshold)."""
    return " / ".join(format_value(value, digits) if isinstance(value, float) else
                      ("—" if value is None else str(value)) for value in values)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def benchmarks_page_skeleton() -> str:
    """The initial docs/benchmarks.md: one section per benchmark, placeholders for the lead's sections."""
    parts = ["# Benchmarks\n\nMeasured on the development machine (2 CPU cores, shared with other jobs, so "
             "wall times are noisy). Each section gives the exact command line; `--json` prints the raw "
             "numbers.\n"]
    for heading in BENCHMARKS_PAGE_SECTIONS:
        parts.append(f"{heading}\n\n{PLACEHOLDER}\n")
    return "\n".join(parts)


def replace_section(path: Path, heading: str, body: str) -> None:
    """Replace the section ``heading`` (up to the next ``## `` heading) of a markdown file, or append it.

    Example:
        >>> import tempfile
        >>> page = Path(tempfile.mkdtemp()) / "p.md"
        >>> _ = page.write_text("# T\\n\\n## A\\n\\nold\\n\\n## B\\n\\nkeep\\n")
        >>> replace_section(page, "## A", "new")
        >>> page.read_text()
        '# T\\n\\n## A\\n\\nnew\\n\\n## B\\n\\nkeep\\n'
    """
    text = path.read_text() if path.exists() else ""
    section = f"{heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    atomic_write_text(path, text)


def write_benchmarks_section(docs_dir: Path, heading: str, body: str) -> Path:
    """Rewrite one section of ``docs_dir/benchmarks.md``; the page is created, all headings, if absent."""
    page = docs_dir / "benchmarks.md"
    if not page.exists():
        docs_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(page, benchmarks_page_skeleton())
    replace_section(page, heading, body)
    return page


def save_figure(figure, path: Path) -> Path:
    """Save a matplotlib figure (atomically: temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(temporary, dpi=110)
    temporary.replace(path)
    return path


def environment() -> dict[str, Any]:
    """Library versions and the machine's CPU count, for the record."""
    import os

    import jax

    from pinnkit.report import versions

    return {"versions": versions(), "cpu_count": os.cpu_count(), "jax_backend": jax.default_backend()}


def main(
    doc: str,
    run: Callable[[bool], dict[str, Any]],
    write_docs: Callable[[Mapping[str, Any], Path], list[Path]],
    summary_lines: Callable[[Mapping[str, Any]], list[str]],
    argv: Sequence[str] | None = None,
) -> int:
    """The command line both benchmarks share: ``[--json] [--quick] [--docs-dir DIR] [--from-json FILE]``.

    Args:
        doc: the script's docstring (its first line is the help text).
        run: trains everything; ``run(quick)`` returns the JSON payload (with a ``"mode"`` entry).
        write_docs: writes figures and doc sections of a payload into a docs folder.
        summary_lines: the human-readable summary printed on stderr without ``--json``.
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object with every number")
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test scale (~1-2 minutes)")
    parser.add_argument("--docs-dir", type=Path, default=None,
                        help="where to write figures and tables (default: docs/ in full mode; none in quick)")
    parser.add_argument("--from-json", type=Path, default=None,
                        help="redraw the docs from a JSON object printed earlier instead of training")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        try:
            payload = json.loads(args.from_json.read_text())
        except (OSError, ValueError) as error:
            parser.error(f"--from-json {str(args.from_json)!r}: {error}")
    else:
        payload = run(args.quick)
    docs_dir = args.docs_dir or (None if payload["mode"] == "quick" else DOCS_DIR)
    if docs_dir is not None:
        for path in write_docs(payload, docs_dir):
            log(f"wrote {path}")
    if args.json:
        print(json.dumps(json_ready(payload)))
    else:
        log("\n".join(summary_lines(payload)))
    return 0
