"""``pinnkit compare`` and ``pinnkit plot``: optimizers side by side, and their figures redrawn."""

from __future__ import annotations

import math
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from pinnkit.compare import OPTIMIZER_CHOICES, PRESETS, aggregate, compare, preset
from pinnkit.optimizers import REWEIGHTINGS
from pinnkit.report import draw_figures, save_comparison
from pinnkit_cli.app import app, fail
from pinnkit_cli.options import check_out_dir, parse_list, parse_params, progress_bar


def _number(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}e}" if isinstance(value, float) else str(value)


def results_table(rows, title: str) -> Table:
    table = Table(title=title)
    for column in ("problem", "optimizer", "reweight", "seeds", "rel L2", "best rel L2", "final loss",
                   "wall s", "steps/s", "diffusion", "equilibrium"):
        table.add_column(column, justify="right" if column not in ("problem", "optimizer", "reweight") else "left")
    for row in aggregate(rows):
        spread = lambda key, row=row: (f"{row[key]:.3e} ± {row[key + '_std']:.1e}" if row["seeds"] > 1
                                       else _number(row[key]))
        table.add_row(
            row["problem"], row["optimizer"], row["reweight"], str(row["seeds"]), spread("rel_l2"),
            spread("best_rel_l2"), _number(row["final_loss"]), f"{row['wall_time_s']:.1f}",
            f"{row['steps_per_s']:.1f}", _number(row["diffusion_start"]), _number(row["equilibrium_start"]),
        )
    return table


@app.command("compare")
def compare_command(
    problem: str = typer.Option(None, help="Problem name (default: the preset's, helmholtz for quick)."),
    optimizers: str = typer.Option(None, help=f"Comma-separated, from {','.join(OPTIMIZER_CHOICES)}."),
    reweight: str = typer.Option(None, help=f"Comma-separated, from {','.join(REWEIGHTINGS)}."),
    steps: int = typer.Option(None, help="Steps per run (L-BFGS: iterations, line search included)."),
    seeds: int = typer.Option(None, help="Seeds per configuration, run vmapped together."),
    width: int = typer.Option(None, help="Hidden layer width."),
    depth: int = typer.Option(None, help="Number of hidden layers."),
    points: int = typer.Option(None, help="Interior collocation points."),
    switch_step: int = typer.Option(None, help="adam+lbfgs: Adam steps before L-BFGS (default: half)."),
    lr: float = typer.Option(None, "--lr", help="Base learning rate of first-order methods."),
    param: list[str] = typer.Option([], "--param", help="Problem parameter NAME=VALUE (repeatable)."),
    preset_name: str = typer.Option("quick", "--preset", help=f"One of {', '.join(PRESETS)}."),
    out: Path = typer.Option(None, help="Output folder (default runs/<problem>-<time>)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output folder."),
    float64: bool = typer.Option(False, "--float64", help="Train in double precision."),
) -> None:
    """Run optimizers (x reweighting x seeds) side by side on one problem; table, files and figures."""
    if preset_name not in PRESETS:
        fail(f"unknown preset {preset_name!r}; choose from {sorted(PRESETS)}")
    for name, value in (("steps", steps), ("seeds", seeds), ("width", width), ("depth", depth),
                        ("points", points)):
        if value is not None and value <= 0:
            fail(f"--{name} must be positive, got {value}")
    try:
        config = preset(
            preset_name, problem=problem, steps=steps, seeds=seeds, width=width, depth=depth, points=points,
            switch_step=switch_step, learning_rate=lr, float64=float64 or None,
            optimizers=tuple(parse_list(optimizers, OPTIMIZER_CHOICES, "optimizer")) if optimizers else None,
            reweights=tuple(parse_list(reweight, REWEIGHTINGS, "reweighting")) if reweight else None,
            problem_params=parse_params(param) or None,
        )
    except (ValueError, TypeError) as error:
        fail(str(error))
    check_out_dir(out, overwrite)
    out = out or Path("runs") / f"{config.problem}-{time.strftime('%Y%m%d-%H%M%S')}"
    console = Console()
    runs_total = len(config.optimizers) * len(config.reweights)
    with progress_bar() as progress:
        overall = progress.add_task("comparison", total=runs_total * config.steps, status="")
        done: dict[str, int] = {}

        def advance(label: str, step: int, total: int) -> None:
            done[label] = step
            progress.update(overall, completed=sum(done.values()), status=f"{label} step {step}/{total}")

        runs = compare(config, callback=advance)
    save_comparison(out, config, runs, overwrite=overwrite)
    console.print(results_table([run.row for run in runs], f"{config.problem}: {config.steps} steps per run"))
    console.print("One L-BFGS step = one optax.lbfgs iteration including its zoom line search. "
                  f"Files: {out}/results.csv, summary.json, histories/, figures/")


@app.command("plot")
def plot_command(folder: Path = typer.Argument(..., help="A folder written by `pinnkit compare`.")) -> None:
    """Redraw the figures of a finished comparison."""
    if not folder.is_dir():
        fail(f"{str(folder)!r} is not a folder")
    try:
        written = draw_figures(folder)
    except (ValueError, KeyError, OSError) as error:
        fail(str(error))
    for path in written:
        typer.echo(str(path))
