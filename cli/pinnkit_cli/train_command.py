"""``pinnkit train``: train one model and write its history and result; checkpoint, resume, several devices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from pinnkit.checkpoint import Checkpointer, CheckpointError, list_checkpoints, read_checkpoint_info
from pinnkit.experiment import RunConfig, run, summarize
from pinnkit.history import atomic_write_text
from pinnkit_cli.app import app, fail
from pinnkit_cli.options import check_out_dir, parse_params, prepare_out_dir, progress_bar

# Options that may accompany --resume: they change where and how often checkpoints go, not the run itself.
RESUME_OPTIONS = ("resume", "checkpoint_every", "keep_checkpoints")


@app.command("train")
def train(
    ctx: typer.Context,
    problem: str = typer.Option("helmholtz", help="Problem name (see `pinnkit problems`)."),
    optimizer: str = typer.Option("adam", help="adam, sgd or lbfgs."),
    reweight: str = typer.Option("none", help="none, rba or gradient-aware."),
    steps: int = typer.Option(2000, help="Training steps (L-BFGS: iterations)."),
    lr: float = typer.Option(None, "--lr", help="Base learning rate (default 1e-3; paper decay x0.9 / 5000 steps)."),
    schedule: str = typer.Option("paper", help="paper or constant."),
    seed: int = typer.Option(0, help="Seed of network, points and SNR batches."),
    width: int = typer.Option(64, help="Hidden layer width."),
    depth: int = typer.Option(4, help="Number of hidden layers."),
    points: int = typer.Option(2000, help="Interior collocation points."),
    param: list[str] = typer.Option([], "--param", help="Problem parameter NAME=VALUE (repeatable)."),
    log_every: int = typer.Option(100, help="Record a history row every N steps."),
    snr_batches: int = typer.Option(100, help="Batches for the gradient SNR (0: off)."),
    float64: bool = typer.Option(False, "--float64", help="Train in double precision."),
    devices: int = typer.Option(1, help="Split the collocation points over N devices (must divide --points)."),
    out: Path = typer.Option(None, help="Output folder (default runs/train-<problem>-<time>)."),
    overwrite: bool = typer.Option(False, help="Allow writing into an existing output folder."),
    checkpoint_every: int = typer.Option(
        None, "--checkpoint-every", help="Write OUT/checkpoint-<step>.eqx at the first history row past every N "
        "steps (default: off; with --resume: the saved value)."),
    keep_checkpoints: int = typer.Option(3, "--keep-checkpoints", help="Checkpoints kept (older ones deleted)."),
    resume: Path = typer.Option(
        None, "--resume", help="Continue the run whose checkpoints are in this folder (or from this checkpoint "
        "file) with its saved configuration; only --checkpoint-every/--keep-checkpoints may be given with it."),
) -> None:
    """Train one PINN; writes OUT/history.csv and OUT/result.json (and checkpoints with --checkpoint-every).

    Exit codes: 0 done, 1 training diverged (history and last finite checkpoint kept), 2 bad input.
    """
    if checkpoint_every is not None and checkpoint_every < 1:
        fail(f"--checkpoint-every must be a positive number of steps, got {checkpoint_every}")
    if keep_checkpoints < 1:
        fail(f"--keep-checkpoints must be at least 1, got {keep_checkpoints}")
    if resume is not None:
        config, out_dir, resume_from, saved_every = _resume_setup(ctx, resume)
        checkpoint_every = checkpoint_every or saved_every
    else:
        try:
            config = RunConfig(
                problem=problem, problem_params=parse_params(param), optimizer=optimizer, reweight=reweight,
                steps=steps, learning_rate=lr, schedule=schedule, seed=seed, width=width, depth=depth,
                points=points, log_every=log_every, snr_batches=snr_batches, float64=float64, devices=devices,
            )
        except (ValueError, TypeError) as error:
            fail(str(error))
        _check_devices(config.devices)
        check_out_dir(out, overwrite)
        if out is not None and out.is_dir() and list_checkpoints(out):
            # --overwrite replaces results, never another run's checkpoints: a later --resume would pick them up.
            fail(f"output folder {str(out)!r} holds checkpoints of another run; continue it with --resume or "
                 "choose another --out")
        resume_from = None
        # Checkpoints need the folder during training; without them nothing is created before training ends.
        out_dir = prepare_out_dir(out, f"train-{problem}", overwrite) if checkpoint_every else None
    hook = None
    if checkpoint_every:
        import jax

        # The run's randomness is all drawn from this key at build time; stored so a checkpoint is self-contained.
        hook = Checkpointer(
            out_dir, every=checkpoint_every, config=config, keep=keep_checkpoints,
            key_data=jax.random.key(config.seed), extras={"checkpoint_every": checkpoint_every},
            on_save=lambda path, history: history.to_csv(path.parent / "history.csv"),
        )
    console = Console(stderr=True)
    with progress_bar() as progress:
        task = progress.add_task(f"{config.problem} {config.optimizer} {config.reweight}", total=config.steps,
                                 status="")
        try:
            result = run(config, checkpoint=hook, resume_from=resume_from, callback=lambda step, row: (
                progress.update(task, completed=step,
                                status=f"loss {row['loss']:.3e}  rel_l2 {row['rel_l2']:.3e}")))
        except CheckpointError as error:
            fail(str(error))
    if out_dir is None:
        out_dir = prepare_out_dir(out, f"train-{config.problem}", overwrite)
    diverged = result.status != "completed"
    if diverged and hook is not None and result.steps > 0 and hook.last_step != result.steps:
        # The last finite state falls on a history row: keep it as the newest checkpoint.
        hook.save(result.steps, result.model, result.opt_state, result.history)
    summary = summarize(config, result)
    summary["config"] = config.to_dict()
    result.history.to_csv(out_dir / "history.csv")
    atomic_write_text(out_dir / "result.json", json.dumps(summary, indent=2) + "\n")
    if diverged:
        kept = f"; last finite checkpoint {hook.last_path}" if hook is not None and hook.last_path else ""
        typer.echo(f"{result.status}; history up to step {result.steps} in {out_dir / 'history.csv'}{kept}",
                   err=True)
        raise typer.Exit(code=1)
    console.print(
        f"{result.status}: {summary['steps']} steps, rel_l2 {summary['rel_l2']:.4e} "
        f"(best {summary['best_rel_l2']:.4e}), loss {summary['final_loss']:.4e}, "
        f"{summary['wall_time_s']:.1f} s (+{summary['compile_time_s']:.1f} s compile) -> {out_dir}"
    )


def _resume_setup(ctx: typer.Context, resume: Path) -> tuple[RunConfig, Path, Path, Any]:
    """The saved configuration, output folder, checkpoint file and checkpoint period of a run to resume."""
    given = [name for name in ctx.params
             if name not in RESUME_OPTIONS and _source(ctx, name) in ("COMMANDLINE", "ENVIRONMENT")]
    if given:
        flag = "--" + given[0].replace("_", "-")
        fail(f"{flag} cannot be combined with --resume: a resumed run keeps its saved configuration")
    try:
        info = read_checkpoint_info(resume)
    except CheckpointError as error:
        fail(str(error))
    if info.config is None:
        fail(f"checkpoint {info.path} stores no run configuration")
    try:
        config = RunConfig.from_dict(info.config)
    except (ValueError, TypeError) as error:
        fail(f"checkpoint {info.path} holds an invalid configuration: {error}")
    _check_devices(config.devices, f"checkpoint {info.path} comes from a run on {config.devices} devices; only")
    saved_every = info.extras.get("checkpoint_every")
    if not isinstance(saved_every, int) or saved_every < 1:
        saved_every = None
    return config, info.path.parent, info.path, saved_every


def _source(ctx: typer.Context, name: str) -> str:
    source = ctx.get_parameter_source(name)
    return source.name if source is not None else "DEFAULT"


def _check_devices(requested: int, what: str | None = None) -> None:
    import jax

    present = len(jax.devices())
    if requested > present:
        fail(f"{what or f'--devices {requested} exceeds the'} {present} device(s) present")
