"""``pinnkit train``: train one model and write its history and result."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from pinnkit.experiment import RunConfig, run, summarize
from pinnkit.history import atomic_write_text
from pinnkit_cli.app import app, fail
from pinnkit_cli.options import check_out_dir, parse_params, prepare_out_dir, progress_bar


@app.command("train")
def train(
    problem: str = typer.Option("helmholtz", help="Problem name (see `pinnkit problems`)."),
    optimizer: str = typer.Option("adam", help="adam, sgd or lbfgs."),
    reweight: str = typer.Option("none", help="none, rba or gradient-aware."),
    steps: int = typer.Option(2000, help="Training steps (L-BFGS: iterations)."),
    lr: float = typer.Option(None, "--lr", help="Base learning rate (default 1e-3; paper decay x0.9 / 5000 steps)."),
    schedule: str = typer.Option("paper", help="paper or constant."),
    seed: int = typer.Option(0, help="Seed of network, points and SNR batches."),
    width: int = typer.Option(64, help="Hidden layer width."),
    depth: int = typer.Option(4, help="Number of hidden layers."),
    points: int = typer.Option(4000, help="Interior collocation points."),
    param: list[str] = typer.Option([], "--param", help="Problem parameter NAME=VALUE (repeatable)."),
    log_every: int = typer.Option(100, help="Record a history row every N steps."),
    snr_batches: int = typer.Option(100, help="Batches for the gradient SNR (0: off)."),
    float64: bool = typer.Option(False, "--float64", help="Train in double precision."),
    out: Path = typer.Option(None, help="Output folder (default runs/train-<problem>-<time>)."),
    overwrite: bool = typer.Option(False, help="Allow writing into an existing output folder."),
) -> None:
    """Train one PINN; writes OUT/history.csv and OUT/result.json."""
    try:
        config = RunConfig(
            problem=problem, problem_params=parse_params(param), optimizer=optimizer, reweight=reweight,
            steps=steps, learning_rate=lr, schedule=schedule, seed=seed, width=width, depth=depth, points=points,
            log_every=log_every, snr_batches=snr_batches, float64=float64,
        )
    except (ValueError, TypeError) as error:
        fail(str(error))
    check_out_dir(out, overwrite)
    console = Console(stderr=True)
    with progress_bar() as progress:
        task = progress.add_task(f"{problem} {optimizer} {reweight}", total=steps, status="")
        result = run(config, callback=lambda step, row: progress.update(
            task, completed=step, status=f"loss {row['loss']:.3e}  rel_l2 {row['rel_l2']:.3e}"))
    out_dir = prepare_out_dir(out, f"train-{problem}", overwrite)
    summary = summarize(config, result)
    summary["config"] = config.to_dict()
    result.history.to_csv(out_dir / "history.csv")
    atomic_write_text(out_dir / "result.json", json.dumps(summary, indent=2) + "\n")
    console.print(
        f"{result.status}: {summary['steps']} steps, rel_l2 {summary['rel_l2']:.4e} "
        f"(best {summary['best_rel_l2']:.4e}), loss {summary['final_loss']:.4e}, "
        f"{summary['wall_time_s']:.1f} s (+{summary['compile_time_s']:.1f} s compile) -> {out_dir}"
    )
    if result.status != "completed":
        raise typer.Exit(code=1)
