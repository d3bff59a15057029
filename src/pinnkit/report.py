"""Write a finished comparison to a folder (tables, histories, arrays for figures) and draw its figures.

Layout of a comparison folder::

    results.csv                one row per run
    summary.json               configuration, library versions, the per-(optimizer, reweighting) table, the rows
    histories/<run>.csv        each run's history
    arrays/fields.npz          prediction and reference of the best run on the reference grid
    arrays/weights_<run>.npz   final sample weights of each reweighted run (seed 0) and their points
    figures/*.png              drawn from the files above by :func:`draw_figures` (``pinnkit plot DIR``)

The folder is assembled under a temporary name beside its destination and renamed into place at the end, so an
interrupted run never leaves a half-written result folder.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pinnkit.atomic import atomic_open, atomic_write_text
from pinnkit.compare import CompareConfig, CompareRun, aggregate
from pinnkit.history import History

__all__ = ["RESULT_COLUMNS", "save_comparison", "draw_figures", "load_comparison", "versions"]

RESULT_COLUMNS = [
    "problem", "optimizer", "reweight", "seed", "steps", "rel_l2", "best_rel_l2", "final_loss", "wall_time_s",
    "steps_per_s", "compile_time_s", "diffusion_start", "equilibrium_start", "line_search_failures", "status",
]


def versions() -> dict[str, str]:
    """Versions of the numerical stack, for the record."""
    out = {}
    for package in ("pinnkit", "jax", "jaxlib", "equinox", "optax", "diffrax", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value


def _rows_csv(rows: Sequence[dict[str, Any]]) -> str:
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=RESULT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ("" if row.get(key) is None else row.get(key)) for key in RESULT_COLUMNS})
    return stream.getvalue()


def save_comparison(out_dir: str | os.PathLike, config: CompareConfig, runs: Sequence[CompareRun], *,
                    overwrite: bool = False, figures: bool = True, extra: dict[str, Any] | None = None) -> Path:
    """Write a comparison to ``out_dir`` (see the module docstring for the layout).

    Args:
        out_dir: destination folder; it must not exist unless ``overwrite``.
        config: the comparison's configuration.
        runs: the runs returned by :func:`pinnkit.compare.compare`.
        overwrite: replace an existing folder.
        figures: also draw the figures.
        extra: more entries for summary.json.

    Returns:
        The folder.
    """
    from pinnkit import problems
    from pinnkit.reweight import sample_weights

    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise ValueError(f"output folder {str(out_dir)!r} exists (pass overwrite=True)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.partial-"))
    try:
        (staging / "histories").mkdir()
        (staging / "arrays").mkdir()
        rows = [dict(run.row, name=run.name) for run in runs]
        atomic_write_text(staging / "results.csv", _rows_csv(rows))
        for run in runs:
            run.history.to_csv(staging / "histories" / f"{run.name}.csv")
        summary = {"config": config.to_dict(), "versions": versions(), "lbfgs_step": (
            "one L-BFGS step is one optax.lbfgs iteration: a two-loop direction plus its zoom line search "
            "(up to 20 loss/gradient evaluations)"), "table": aggregate(rows), "runs": rows}
        summary.update(extra or {})
        atomic_write_text(staging / "summary.json", json.dumps(_json_ready(summary), indent=2) + "\n")
        problem = problems.get(config.problem, **dict(config.problem_params))
        finite = [run for run in runs if math.isfinite(run.row["rel_l2"])]
        if finite:
            best = min(finite, key=lambda run: run.row["rel_l2"])
            reference = problem.reference()
            grid = reference.grid_points()
            observed = np.asarray(problem.observe(best.result.model, np.asarray(grid, np.float32)))
            shape = tuple(len(axis) for axis in reference.axes)
            predicted = np.asarray(problem.error_quantity(observed)).reshape(shape)
            target = np.asarray(problem.error_quantity(reference.values.reshape(len(grid), -1))).reshape(shape)
            np.savez(staging / "arrays" / "fields.npz", axis0=reference.axes[0], axis1=reference.axes[1],
                     predicted=predicted, reference=target, run=best.name,
                     input_names=np.array(problem.input_names))
        points = None
        for run in runs:
            weights = sample_weights(run.result.opt_state)
            if weights is None or run.row["seed"] != 0:
                continue
            if points is None:
                from pinnkit.experiment import build

                _, _, _, sampled, _ = build(config.run_config("adam", "none", 0, steps=1))
                points = np.asarray(sampled[problem.collocation_terms[0]])
            values = weights if not isinstance(weights, dict) else weights[problem.collocation_terms[0]]
            np.savez(staging / "arrays" / f"weights_{run.name}.npz", points=points, weights=np.asarray(values),
                     input_names=np.array(problem.input_names))
        if figures:
            draw_figures(staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def load_comparison(folder: str | os.PathLike) -> tuple[list[dict[str, Any]], dict[str, History]]:
    """The result rows and histories of a comparison folder (ValueError naming what is missing)."""
    folder = Path(folder)
    results = folder / "results.csv"
    if not results.is_file():
        raise ValueError(f"{str(folder)!r} is not a comparison folder: {results.name} is missing")
    with results.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    if not rows or "optimizer" not in rows[0]:
        raise ValueError(f"{results} has no result rows")
    json_rows = json.loads((folder / "summary.json").read_text())["runs"] if (folder / "summary.json").is_file() \
        else rows
    histories = {}
    for row in json_rows:
        name = row["name"]
        path = folder / "histories" / f"{name}.csv"
        if not path.is_file():
            raise ValueError(f"history {path} is missing")
        histories[name] = History.from_csv(path)
    return json_rows, histories


def draw_figures(folder: str | os.PathLike) -> list[Path]:
    """(Re)draw every figure of a comparison folder from its files; returns the written paths."""
    from pinnkit.plotting.comparison import plot_error_curves, plot_fields, plot_snr_curves, plot_weights

    folder = Path(folder)
    rows, histories = load_comparison(folder)
    figures_dir = folder / "figures"
    figures_dir.mkdir(exist_ok=True)
    written = []

    def save(figure, name):
        path = figures_dir / name
        with atomic_open(path, "wb") as stream:
            figure.savefig(stream, format="png", dpi=110)
        written.append(path)

    save(plot_error_curves(rows, histories), "error_and_loss.png")
    save(plot_snr_curves(rows, histories), "snr_and_order.png")
    arrays = folder / "arrays"
    fields = arrays / "fields.npz"
    if fields.is_file():
        data = np.load(fields)
        save(plot_fields((data["axis0"], data["axis1"]), data["predicted"], data["reference"],
                         input_names=tuple(data["input_names"]), title=str(data["run"])), "fields_best_run.png")
    for path in sorted(arrays.glob("weights_*.npz")):
        data = np.load(path)
        run = path.stem.removeprefix("weights_")
        save(plot_weights(data["points"], data["weights"], input_names=tuple(data["input_names"]),
                          title=f"final weights: {run}"), f"weights_{run}.png")
    return written
