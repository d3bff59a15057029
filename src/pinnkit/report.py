"""Write a finished comparison to a folder (tables, histories, arrays for figures) and draw its figures.

Layout of a comparison folder::

    results.csv                one row per run
    summary.json               configuration, library versions, the per-(optimizer, reweighting) table, the rows
    histories/<run>.csv        each run's history, written as the run ends (:func:`write_run`)
    histories/<run>.json       its row of results.csv, written with it
    arrays/fields.npz          prediction and reference of the best run on the reference grid
    arrays/weights_<run>.npz   final sample weights of each reweighted run (seed 0) and their points
    figures/*.png              drawn from the files above by :func:`draw_figures` (``pinnkit plot DIR``): error
                               and loss, the phases of each run, the best run's fields, the weights

Every file is written atomically; ``results.csv`` comes after the data it tables and before the figures; the
folder's marker (:mod:`pinnkit.outputs`) says "complete" only once everything is written. The CLI
writes into a folder it has claimed (:mod:`pinnkit.outputs`): a new folder, or a staging folder that replaces an
old output only once complete.
"""

from __future__ import annotations

import csv
import io
import math
import os
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pinnkit import columns, jsonio
from pinnkit.atomic import atomic_open, atomic_write_text
from pinnkit.compare import CompareConfig, CompareRun, aggregate
from pinnkit.history import History
from pinnkit.optimizer_registry import LINE_SEARCH_OPTIMIZERS

__all__ = ["RESULT_COLUMNS", "draw_figures", "load_comparison", "save_comparison", "versions", "write_comparison",
           "write_run"]

RESULT_COLUMNS = [
    "name", "problem", "optimizer", "plan", "reweight", "learning_rate", "seed", "precision", "steps", "rel_l2",
    "best_rel_l2",
    "final_loss", "final_mse", "wall_time_s", "steps_per_s", "compile_time_s", "diffusion_start",
    "equilibrium_start", "line_search_failures", "status",
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


def _rows_csv(rows: Sequence[dict[str, Any]]) -> str:
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=RESULT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ("" if row.get(key) is None else row.get(key)) for key in RESULT_COLUMNS})
    return stream.getvalue()


def write_run(folder: str | os.PathLike, run: CompareRun) -> Path:
    """Write one finished run of a comparison: ``histories/<run>.csv`` and its result row,
    ``histories/<run>.json``, each atomically; returns the history's path."""
    histories = Path(folder) / "histories"
    histories.mkdir(exist_ok=True)
    path = histories / f"{run.name}.csv"
    run.history.to_csv(path)
    atomic_write_text(histories / f"{run.name}.json", jsonio.dumps(dict(run.row, name=run.name), indent=2) + "\n")
    return path


def write_comparison(folder: str | os.PathLike, config: CompareConfig, runs: Sequence[CompareRun], *,
                     figures: bool = True, extra: dict[str, Any] | None = None, runs_written: bool = False) -> Path:
    """Write a comparison's files into an existing folder, each file atomically.

    Args:
        folder: the folder (see the module docstring for the layout).
        config: the comparison's configuration.
        runs: the runs returned by :func:`pinnkit.compare.compare`.
        figures: also draw the figures.
        extra: more entries for summary.json.
        runs_written: each run's files were written already, as it ended (:func:`write_run`).

    Returns:
        The folder.
    """
    from pinnkit import problems
    from pinnkit.reweight import reweighting_on, sample_weights

    folder = Path(folder)
    (folder / "arrays").mkdir(exist_ok=True)
    rows = [dict(run.row, name=run.name) for run in runs]
    if not runs_written:
        for run in runs:
            write_run(folder, run)
    summary = {"config": config.to_dict(), "versions": versions(), "line_search_step": (
        f"one step of a line-search optimizer ({', '.join(LINE_SEARCH_OPTIMIZERS)}) is one iteration: a quasi-Newton "
        "direction plus its zoom line search (up to 20 loss/gradient evaluations)"),
        "best_rel_l2": "the lowest test error of any history row, chosen with hindsight",
        "table": aggregate([run.summary for run in runs]), "runs": rows}
    summary.update(extra or {})
    atomic_write_text(folder / "summary.json", jsonio.dumps(summary, indent=2) + "\n")
    problem = problems.get(config.problem, **dict(config.problem_params))
    finite = [run for run in runs if math.isfinite(run.summary.rel_l2)]
    if finite:
        best = min(finite, key=lambda run: run.summary.rel_l2)
        reference = problem.reference()
        predicted = _prediction(problem, best.result.model, reference)
        grid = reference.grid_points()
        shape = tuple(len(axis) for axis in reference.axes)
        target = np.asarray(problem.error_quantity(reference.values.reshape(len(grid), -1))).reshape(shape)
        _save_arrays(folder / "arrays" / "fields.npz", axis0=reference.axes[0], axis1=reference.axes[1],
                     predicted=predicted, reference=target, run=best.name, input_names=np.array(problem.input_names))
    term = problem.collocation_terms[0]
    for run in runs:
        weights = sample_weights(run.result.opt_state)
        if weights is None or not bool(reweighting_on(run.result.opt_state)) or run.summary.seed != 0:
            continue
        values = weights if not isinstance(weights, dict) else weights[term]
        _save_arrays(folder / "arrays" / f"weights_{run.name}.npz", points=np.asarray(run.result.points[term]),
                     weights=np.asarray(values), input_names=np.array(problem.input_names))
    # results.csv after the data it tables: a folder that has it holds every run's numbers.
    atomic_write_text(folder / "results.csv", _rows_csv(rows))
    if figures:
        draw_figures(folder)
    return folder


def _prediction(problem, model, reference) -> np.ndarray:
    """The model's error quantity on the reference grid, in the model's own precision."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    dtype = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))[0].dtype
    grid = reference.grid_points()
    with jax.enable_x64(dtype == np.float64):
        observed = problem.observe(model, jnp.asarray(grid, dtype))
        values = np.asarray(problem.error_quantity(observed))
    return values.reshape(tuple(len(axis) for axis in reference.axes))


def _save_arrays(path: Path, **arrays) -> None:
    with atomic_open(path, "wb") as stream:
        np.savez(stream, **arrays)


def save_comparison(out_dir: str | os.PathLike, config: CompareConfig, runs: Sequence[CompareRun], *,
                    overwrite: bool = False, figures: bool = True, extra: dict[str, Any] | None = None) -> Path:
    """Write a comparison to a folder that pinnkit claims (see :func:`pinnkit.outputs.claim_output`).

    Args:
        out_dir: destination; it must not exist, unless ``overwrite`` and it holds a finished comparison.
        config: the comparison's configuration.
        runs: the runs returned by :func:`pinnkit.compare.compare`.
        overwrite: replace an existing comparison folder (atomically: the new one is complete first).
        figures: also draw the figures.
        extra: more entries for summary.json.

    Returns:
        The folder.
    """
    from pinnkit.outputs import claim_output

    with claim_output(out_dir, kind="compare", overwrite=overwrite) as claim:
        write_comparison(claim.folder, config, runs, figures=figures, extra=extra)
        return claim.commit()


def load_comparison(folder: str | os.PathLike) -> tuple[list[dict[str, Any]], dict[str, History]]:
    """The result rows and histories of a comparison folder.

    Raises:
        ValueError: naming the file that is missing, truncated or not what pinnkit writes.
    """
    folder = Path(folder)
    results = folder / "results.csv"
    if not results.is_file():
        raise ValueError(f"{str(folder)!r} is not a comparison folder: {results.name} is missing")
    try:
        with results.open(newline="", encoding="utf-8-sig") as stream:
            rows = list(csv.DictReader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"cannot read {results}: {error}") from None
    required = ("name", "optimizer", "reweight", "seed")
    if not rows or any(column not in rows[0] for column in required):
        raise ValueError(f"{results} has no result rows (it needs the columns {list(required)})")
    for line, row in enumerate(rows, start=2):
        if None in row or any(row.get(column) in (None, "") for column in required):
            raise ValueError(f"{results} is truncated or malformed at line {line}")
    histories = {}
    for row in rows:
        path = folder / "histories" / f"{row['name']}.csv"
        if not path.is_file():
            raise ValueError(f"history {path} is missing")
        history = History.from_csv(path)
        if len(history) == 0 or columns.STEP not in history:
            raise ValueError(f"history {path} holds no rows")
        histories[row["name"]] = history
    return rows, histories


def _typed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Result rows read from CSV with their transition steps as integers (or None)."""
    out = []
    for row in rows:
        typed = dict(row)
        for key in ("diffusion_start", "equilibrium_start"):
            value = row.get(key)
            typed[key] = int(float(value)) if value not in (None, "") else None
        out.append(typed)
    return out


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        from pinnkit.outputs import show_path

        raise ValueError(f"cannot read {show_path(path)}: it is truncated or not a pinnkit array file ({error})") \
            from None


# The arrays each figure drawn from arrays/ needs (a file without them is not one pinnkit wrote).
_FIELD_ARRAYS = ("axis0", "axis1", "predicted", "reference", "input_names", "run")
_WEIGHT_ARRAYS = ("points", "weights", "input_names")
# Figures named after a source in arrays/: removed when that source is gone, so that none is stale.
_FIELDS_FIGURE = "fields_best_run.png"
_WEIGHTS_FIGURE = "weights_*.png"


def draw_figures(folder: str | os.PathLike) -> list[Path]:
    """(Re)draw every figure of a comparison folder from its files, all of them or none; returns their paths.

    Every input is read and checked first (``results.csv``, the histories, ``summary.json`` when present, every
    ``arrays/*.npz``) and every figure is drawn in memory; only then are the figures replaced, each atomically,
    and the figures of arrays that are gone (``fields_best_run.png`` without ``arrays/fields.npz``,
    ``weights_<run>.png`` without ``arrays/weights_<run>.npz``) removed, so that ``figures/`` matches the files.

    Raises:
        ValueError: an input is missing, damaged or not what pinnkit writes (the message names it); nothing in
            ``figures/`` was changed.
        OSError: a figure could not be written.
    """
    folder = Path(folder)
    figures_dir = folder / "figures"
    try:
        drawn = _draw_in_memory(folder)
    except OSError as error:  # a file that cannot be read (permissions, ...) is bad input, like a damaged one
        from pinnkit.outputs import show_path

        where = error.filename if error.filename is not None else folder
        raise ValueError(f"cannot read {show_path(where)}: {error.strerror or error}") from None
    figures_dir.mkdir(exist_ok=True)
    written = []
    for name, image in drawn.items():
        path = figures_dir / name
        with atomic_open(path, "wb") as stream:
            stream.write(image)
        written.append(path)
    for path in _stale_figures(figures_dir, drawn):
        path.unlink(missing_ok=True)
    return written


def _draw_in_memory(folder: Path) -> dict[str, bytes]:
    """Every figure of ``folder`` as PNG bytes, by file name, from inputs all checked before the first is drawn."""
    from pinnkit.plotting.comparison import plot_error_curves, plot_fields, plot_phase_panels, plot_weights

    rows, histories = load_comparison(folder)
    _check_summary(folder / "summary.json")
    arrays = folder / "arrays"
    fields = arrays / "fields.npz"
    field_data = _load_figure_arrays(fields, _FIELD_ARRAYS) if fields.is_file() else None
    weight_data = {path.stem.removeprefix("weights_"): _load_figure_arrays(path, _WEIGHT_ARRAYS)
                   for path in sorted(arrays.glob("weights_*.npz"))}
    makers = {"error_and_loss.png": lambda: plot_error_curves(rows, histories),
              "phases.png": lambda: plot_phase_panels(_typed(rows), histories)}
    if field_data is not None:
        makers[_FIELDS_FIGURE] = lambda data=field_data: plot_fields(
            (data["axis0"], data["axis1"]), data["predicted"], data["reference"],
            input_names=tuple(data["input_names"]), title=str(data["run"]))
    for run, data in weight_data.items():
        makers[f"weights_{run}.png"] = lambda run=run, data=data: plot_weights(
            data["points"], data["weights"], input_names=tuple(data["input_names"]), title=f"final weights: {run}")
    images = {}
    for name, make in makers.items():
        figure = make()
        stream = io.BytesIO()
        figure.savefig(stream, format="png", dpi=110)
        images[name] = stream.getvalue()
    return images


def _check_summary(path: Path) -> None:
    """A ``summary.json`` that is there must be a JSON object (older folders may have none: no figure needs it)."""
    from pinnkit.outputs import show_path

    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return
    try:
        data = jsonio.loads(content)
    except ValueError as error:
        raise ValueError(f"{show_path(path)} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{show_path(path)} holds a JSON {type(data).__name__}, not an object")


def _load_figure_arrays(path: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays of ``path`` that a figure needs; ValueError naming the file when it lacks one."""
    from pinnkit.outputs import show_path

    data = _load_arrays(path)
    missing = [name for name in names if name not in data]
    if missing:
        raise ValueError(f"{show_path(path)} is not a pinnkit array file: it has no {', '.join(missing)}")
    # Shapes the figures need: a mismatch would otherwise fail deep inside matplotlib, as if pinnkit had a bug.
    if "axis0" in names:
        grid = (data["axis0"].size, data["axis1"].size)
        wrong = [name for name in ("predicted", "reference") if data[name].shape != grid]
        reason = f"{wrong[0]} has shape {data[wrong[0]].shape}, the grid is {grid}" if wrong else ""
    else:
        points, weights = data["points"], data["weights"]
        reason = "" if points.ndim == 2 and points.shape[1] >= 2 and weights.shape == points.shape[:1] else \
            f"points of shape {points.shape} and weights of shape {weights.shape} do not match"
    if not reason and (data["input_names"].size < 2 or any(data[name].dtype.kind not in "biuf"
                                                          for name in names if name not in ("input_names", "run"))):
        reason = "it holds non-numeric arrays or fewer than two input names"
    if reason:
        raise ValueError(f"{show_path(path)} is not a pinnkit array file: {reason}")
    return data


def _stale_figures(figures_dir: Path, drawn: dict[str, bytes]) -> list[Path]:
    """The figures pinnkit draws from ``arrays/`` that were not drawn now: their source is gone."""
    candidates = [figures_dir / _FIELDS_FIGURE, *figures_dir.glob(_WEIGHTS_FIGURE)]
    return [path for path in candidates if path.name not in drawn and path.is_file() and not path.is_symlink()]
