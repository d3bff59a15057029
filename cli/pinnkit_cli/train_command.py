"""``pinnkit train``: train one model and write its history and result; checkpoint, resume, several devices."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from pinnkit import columns, jsonio
from pinnkit.atomic import atomic_write_text
from pinnkit.checkpoint import Checkpointer, CheckpointError, CheckpointInfo, check_folder, read_checkpoint_info
from pinnkit.engine import LogSchedule, Outcome, Probes
from pinnkit.experiment import RunConfig, resolve_learning_rate, run, setup, summarize
from pinnkit.optimizer_registry import describe_optimizers
from pinnkit.outputs import OutputClaim, UnfinishedOutputError, claim_existing, claim_output
from pinnkit.paper_cases import PAPER_PRESETS, paper_case
from pinnkit.resources import check_fits
from pinnkit.reweight import describe_reweightings
from pinnkit.summary import RunSummary
from pinnkit_cli import processes
from pinnkit_cli.errors import EXIT_DIVERGED, CliExit, begin_work, check_signals, fail, printable_path
from pinnkit_cli.live_help import live_option
from pinnkit_cli.options import (
    parse_hold_every,
    parse_learning_rate,
    parse_params,
    parse_resampling,
    progress_bar,
    significant,
)
from pinnkit_cli.running import guarded, write_or_exit


def optimizer_help() -> str:
    """The help of ``--optimizer``: every optimizer of the registry, read when the command is built."""
    return (f"Optimizer or plan. Optimizers: {describe_optimizers()}. Plans: adam+ssbroyden (see --switch-step), "
            "adam:2000,lbfgs:3000.")


# Options that may accompany --preset: they say which run of the case, how long, and where; the case fixes the rest.
PRESET_OPTIONS = ("preset", "reweight", "steps", "seed", "log_every", "snr_batches", "devices", "out", "overwrite",
                  "checkpoint_every", "keep_checkpoints", *processes.OPTIONS)
# Options that may accompany --resume: they change where and how often checkpoints go, and which processes run it,
# not the run itself.
RESUME_OPTIONS = ("resume", "checkpoint_every", "keep_checkpoints", *processes.OPTIONS)
# What an interrupted run needs to be continued: never replaced by --overwrite, kept when a write fails.
CHECKPOINTS = ("checkpoint-*.eqx",)


def train(
    ctx: typer.Context,
    problem: str = typer.Option("helmholtz", help="Problem name (see `pinnkit problems`)."),
    optimizer: str = live_option("adam", help=optimizer_help),
    switch_step: int = typer.Option(None, "--switch-step", help="Where a two-stage plan switches (default: half)."),
    switch_at: str = typer.Option(
        None, "--switch-at", help="'equilibrium': a two-stage plan switches when the online detector confirms "
        "diffusion equilibrium."),
    reweight: str = live_option("none", help=lambda: f"{describe_reweightings()}."),
    reweight_option: list[str] = typer.Option(
        [], "--reweight-option", help="Option of the reweighting transform NAME=VALUE (repeatable), e.g. phi=0.5."),
    line_search_reweight_option: list[str] = typer.Option(
        [], "--line-search-reweight-option", help="Option of the reweighting in line-search stages NAME=VALUE, "
        "over --reweight-option (repeatable), e.g. gamma=0.1 with eta=0.9 to re-target at each advance."),
    hold_every: str = typer.Option(
        "auto", "--hold-every", help="Line-search stages: advance the reweighting weights every N iterations; "
        "'stage': hold them for the stage; 'auto': hold them after a switch, advance every iteration otherwise."),
    steps: int = typer.Option(2000, help="Total training steps (line-search optimizers: iterations)."),
    lr: str = typer.Option(None, "--lr", help="Base learning rate of first-order stages (default 1e-3, paper "
                                             "decay x0.9 / 5000 steps); 'auto': a short search picks it."),
    schedule: str = typer.Option("paper", help="paper or constant."),
    seed: int = typer.Option(0, help="Seed of network, points and SNR batches (0 to 2^32-1)."),
    width: int = typer.Option(64, help="Hidden layer width."),
    depth: int = typer.Option(4, help="Number of hidden layers."),
    architecture: str = typer.Option("mlp", help="mlp or modified-mlp."),
    fourier_features: int = typer.Option(0, "--fourier-features", help="Random Fourier features (0: none)."),
    periodic: bool = typer.Option(False, "--periodic", help="Make the network exactly periodic in the problem's "
                                                            "periodic inputs (Allen-Cahn's x)."),
    resample_every: int = typer.Option(None, "--resample-every", help="Redraw the collocation points by their "
                                       "residual (RAD) every N steps (not with --checkpoint-every)."),
    resample_option: list[str] = typer.Option(
        [], "--resample-option", help="Option of the resampling NAME=VALUE (repeatable), e.g. constant=0 or "
        "potential=exponential (vRBA's density)."),
    points: int = typer.Option(2000, help="Interior collocation points."),
    param: list[str] = typer.Option([], "--param", help="Problem parameter NAME=VALUE (repeatable)."),
    log_every: int = typer.Option(100, help="Record a history row every N steps."),
    snr_batches: int = typer.Option(100, help="Batches for the gradient SNR (0: off; otherwise >= 2)."),
    float64: bool = typer.Option(
        None, "--float64/--float32", help="Precision (default: float64 for plans with a line-search optimizer, "
        "float32 otherwise)."),
    devices: int = typer.Option(1, help="Split the collocation points over N devices (must divide --points)."),
    out: Path = typer.Option(None, help="Output folder (default runs/train-<problem>-<time>)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output folder of a finished `pinnkit train`."),
    checkpoint_every: int = typer.Option(
        None, "--checkpoint-every", help="Write OUT/checkpoint-<step>.eqx at the first history row past every N "
        "steps (default: off; with --resume: the saved value)."),
    keep_checkpoints: int = typer.Option(3, "--keep-checkpoints", help="Checkpoints kept (older ones deleted)."),
    preset: str = typer.Option(
        None, "--preset", help=f"Train one of the paper's cases at its settings ({', '.join(PAPER_PRESETS)}): "
        "its RBA run, or --reweight none for the vanilla one; with --steps, --seed, --log-every, --snr-batches, "
        "--devices and the output options only."),
    resume: Path = typer.Option(
        None, "--resume", help="Continue the run whose checkpoints are in this folder (or from this checkpoint "
        "file) with its saved configuration; only --checkpoint-every/--keep-checkpoints may be given with it."),
    coordinator: str = processes.coordinator_option("The points are split over every process's devices."),
    num_processes: int = processes.num_processes_option(),
    process_id: int = processes.process_id_option(),
    distributed: bool = processes.distributed_option(),
    coordinator_timeout: float = processes.coordinator_timeout_option(),
) -> None:
    """Train one PINN; writes OUT/history.csv and OUT/result.json (and checkpoints with --checkpoint-every).

    Exit codes: 0 done, 1 training diverged (history and last finite checkpoint kept), 2 bad input, 3 a write
    failed (disk full, file too large), 4 out of memory, 130/143 interrupted.
    """
    if checkpoint_every is not None and checkpoint_every < 1:
        fail(f"--checkpoint-every must be a positive number of steps, got {checkpoint_every}")
    if keep_checkpoints < 1:
        fail(f"--keep-checkpoints must be at least 1, got {keep_checkpoints}")
    # Before anything touches JAX: joining a run must precede every computation.
    joined = processes.join(coordinator, num_processes, process_id, distributed, coordinator_timeout)
    resume_from = None
    if resume is not None:
        config, resume_from, saved_every = _resume_setup(ctx, resume)
        folder = resume_from.path.parent
        checkpoint_every = checkpoint_every or saved_every
    elif preset is not None:
        config = _preset_config(ctx, preset)
    else:
        try:
            config = RunConfig(
                problem=problem, problem_params=parse_params(param), optimizer=optimizer, switch_step=switch_step,
                switch_at=switch_at, reweight=reweight,
                reweight_options=parse_params(reweight_option, "--reweight-option"),
                line_search_reweight_options=parse_params(line_search_reweight_option,
                                                          "--line-search-reweight-option"),
                hold_every=parse_hold_every(hold_every), steps=steps,
                learning_rate=_one_learning_rate(lr),
                schedule=schedule,
                seed=seed, width=width, depth=depth, architecture=architecture, fourier_features=fourier_features,
                periodic=periodic, resampling=parse_resampling(resample_every, resample_option),
                points=points, log=LogSchedule(log_every, dense_until=min(300, log_every * 3)),
                probes=Probes(snr_batches=snr_batches), float64=float64, devices=devices,
            )
        except (ValueError, TypeError) as error:
            fail(str(error))
    if joined:
        config = processes.settle_devices(config, devices_given=_source(ctx, "devices") != "DEFAULT",
                                          resumed=resume is not None)
    try:
        check_fits(config)  # sizes and history rows, before anything is built
    except ValueError as error:
        fail(str(error))
    _check_devices(config.devices)
    if joined:
        processes.agree(config, resume_step=resume_from.step if resume_from is not None else None)
        from pinnkit.multiprocess import is_main_process

        if not is_main_process():
            # The others compute the same run and write nothing: process 0 owns the folder.
            processes.await_claim()
            begin_work()
            _train(config, None, checkpoint_every, keep_checkpoints, resume_from)
            return

    def make_claim() -> OutputClaim:
        try:
            if resume is not None:
                return claim_existing(folder, kind="train")
            # Checkpoints of an unfinished run are never replaced: they are the only way to continue it.
            return claim_output(out if out is not None else _default_out(config.problem), kind="train",
                                overwrite=overwrite, protect=CHECKPOINTS)
        except UnfinishedOutputError as error:
            shown = str(out if out is not None else error.entry)
            fail(f"output folder {shown!r} holds checkpoints of an unfinished run; continue it with --resume or "
                 "choose another --out")
        except ValueError as error:
            fail(str(error))

    with guarded(processes.announce_claim(make_claim) if joined else make_claim) as claim:
        _train(config, claim, checkpoint_every, keep_checkpoints, resume_from)


def _train(config: RunConfig, claim: OutputClaim | None, checkpoint_every, keep_checkpoints,
           resume_from: CheckpointInfo | None) -> None:
    """Train and write the results into the claimed folder; without a claim (a process other than 0 of a run
    of several), train the same way and write nothing."""
    writes = claim is not None
    folder = claim.folder if writes else resume_from.path.parent if resume_from is not None else None
    search = None
    previous = None
    if resume_from is not None:
        # What the search found before the interrupt travels in the checkpoints (the config holds only its pick).
        search = resume_from.extras.get("learning_rate_search")
        previous = _previous_summary(folder)
        if (resume_from.step == config.steps and previous is not None and previous.steps == config.steps
                and (folder / "history.csv").is_file()):
            # Finished and its results written: resuming it changes nothing.
            if writes:
                _report(previous, claim.commit())
            return
    if config.learning_rate == "auto":
        # Resolved before training, so that checkpoints store the learning rate the run trains with.
        import jax

        with jax.enable_x64(config.double_precision):
            config, found = resolve_learning_rate(config, setup(config))
        config = processes.main_learning_rate(config)
        search = found.as_dict()
    hook = None
    if checkpoint_every:
        import jax

        extras: dict[str, Any] = {"checkpoint_every": checkpoint_every}
        if search is not None:
            extras["learning_rate_search"] = search
        # The run's randomness is all drawn from this key at set-up; stored so a checkpoint is self-contained.
        # Without a claim the hook is never called (experiment.run calls it in process 0 only), yet passed: every
        # process then takes the same steps around it.
        hook = Checkpointer(
            folder if writes else ".", every=checkpoint_every, config=config, keep=keep_checkpoints,
            key_data=jax.random.key(config.seed), extras=extras,
            on_save=lambda path, history: history.to_csv(path.parent / "history.csv"),
        )
    with progress_bar(quiet=not writes) as progress:
        task = progress.add_task(f"{config.problem} {config.optimizer} {config.reweight}", total=config.steps,
                                 status="")
        try:
            def advance(step: int, row: dict) -> None:
                check_signals()  # a Ctrl-C whose KeyboardInterrupt was swallowed (see check_signals)
                progress.update(task, completed=step,
                                status=f"loss {row[columns.LOSS]:.3e}  rel_l2 {row[columns.REL_L2]:.3e}")

            result = run(config, checkpoint=hook, resume_from=resume_from.path if resume_from else None,
                         callback=advance)
        except CheckpointError as error:
            fail(str(error))
        except Exception as error:
            processes.check_peers(error)
            raise
    diverged = result.outcome is not Outcome.COMPLETED
    if not writes:
        if diverged:
            raise CliExit(EXIT_DIVERGED)  # process 0 says where
        return
    if diverged and hook is not None and result.steps > 0 and hook.last_step != result.steps:
        # The last finite state falls on a history row: keep it as the newest checkpoint.
        write_or_exit(lambda: hook.save(result.steps, result.model, result.opt_state, result.history), claim)
    summary = summarize(config, result)
    if previous is not None and result.compile_time_s == 0.0:
        summary = summary.replace(compile_time_s=previous.compile_time_s)  # a finished run resumed: no compiling
    payload = {**summary.to_dict(), "config": config.to_dict()}
    if search is not None:
        payload["learning_rate_search"] = search
    numbers = f"rel_l2 {significant(summary.rel_l2)}, loss {significant(summary.final_loss)}"

    def write_results() -> None:
        result.history.to_csv(folder / "history.csv")
        atomic_write_text(folder / "result.json", jsonio.dumps(payload, indent=2) + "\n")

    # A failed write leaves no result behind in a new folder (the checkpoints, and their history, stay).
    keep = (*CHECKPOINTS, "history.csv") if hook is not None and hook.last_path is not None else ()
    write_or_exit(write_results, claim, finished=f"the run finished ({numbers})", keep=keep)
    target = claim.commit()
    if diverged:
        kept = f"; last finite checkpoint {printable_path(target / hook.last_path.name)}" \
            if hook is not None and hook.last_path \
            else ""
        raise CliExit(EXIT_DIVERGED, f"{result.status}; history up to step {result.steps} in "
                                     f"{printable_path(target / 'history.csv')}{kept}")
    _report(summary, target)


def _report(summary: RunSummary, target: Path) -> None:
    """The closing line of a run (also of a finished run's summary read back, where JSON's nulls are NaN)."""
    Console(stderr=True).print(
        f"{summary.status}: {summary.steps} steps ({summary.plan}, {summary.precision}), "
        f"rel_l2 {summary.rel_l2:.4e} (best {summary.best_rel_l2:.4e}), loss {summary.final_loss:.4e}, "
        f"{summary.wall_time_s:.1f} s (+{summary.compile_time_s:.1f} s compile) -> {printable_path(target)}",
        highlight=False, soft_wrap=True, markup=False)


def _default_out(problem: str) -> Path:
    base = Path("runs") / f"train-{problem}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, index = base, 1
    while candidate.exists():
        index += 1
        candidate = base.with_name(f"{base.name}-{index}")
    return candidate


def _previous_summary(folder: Path) -> RunSummary | None:
    """The summary of ``result.json`` in ``folder``; None when there is none, or not one pinnkit wrote."""
    found = _previous_result(folder)
    try:
        return RunSummary.from_dict(found) if found is not None else None
    except (ValueError, TypeError):
        return None


def _previous_result(folder: Path) -> dict[str, Any] | None:
    try:
        found = jsonio.loads((folder / "result.json").read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _preset_config(ctx: typer.Context, name: str) -> RunConfig:
    """The paper case's run, with the few options that may change it (see PRESET_OPTIONS)."""
    given = [option for option in ctx.params
             if option not in PRESET_OPTIONS and _given(ctx, option)]
    if given:
        fail(f"--{given[0].replace('_', '-')} cannot be combined with --preset: the paper's case fixes it "
             "(run without --preset to change it)")
    if name not in PAPER_PRESETS:
        fail(f"unknown preset {name!r}; choose one of {', '.join(PAPER_PRESETS)}")
    params = ctx.params
    case = paper_case(name)
    # What is not given keeps the case's own value (its RBA run, the paper's length, its log and probes).
    overrides: dict[str, Any] = {option: params[option] for option in ("reweight", "steps", "devices")
                                 if _given(ctx, option)}
    try:
        if _given(ctx, "log_every"):
            every = params["log_every"]
            overrides["log"] = LogSchedule(every, dense_until=min(300, every * 3))
        if _given(ctx, "snr_batches"):
            overrides["probes"] = dataclasses.replace(case.settings()["probes"], snr_batches=params["snr_batches"])
        return case.run_config(seed=params["seed"], **overrides)
    except (ValueError, TypeError) as error:
        fail(str(error))


def _resume_setup(ctx: typer.Context, resume: Path) -> tuple[RunConfig, CheckpointInfo, Any]:
    """The saved configuration, the checkpoint (its folder is the output folder) and the checkpoint period of a run
    to resume."""
    given = [name for name in ctx.params
             if name not in RESUME_OPTIONS and _given(ctx, name)]
    if given:
        flag = "--" + given[0].replace("_", "-")
        fail(f"{flag} cannot be combined with --resume: a resumed run keeps its saved configuration")
    try:
        info = read_checkpoint_info(resume)
    except CheckpointError as error:
        fail(str(error))
    except OSError as error:  # a name too long for the file system, a folder that cannot be read, ...
        fail(f"cannot read {str(resume)!r}: {error.strerror or error}")
    if info.config is None:
        fail(f"checkpoint {info.path} stores no run configuration")
    try:
        config = RunConfig.from_dict(info.config)
    except (ValueError, TypeError) as error:
        fail(f"checkpoint {info.path} holds an invalid configuration: {error}")
    # A checkpoint copied in from another run must not continue (or overwrite) this folder's run.
    previous = _previous_result(info.path.parent)
    result_config = previous.get("config") if previous is not None else None
    try:
        check_folder(info, expected={"result.json": result_config if isinstance(result_config, dict) else None})
    except CheckpointError as error:
        fail(str(error))
    saved_every = info.extras.get("checkpoint_every")
    if not isinstance(saved_every, int) or saved_every < 1:
        saved_every = None
    return config, info, saved_every


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave option ``name`` (on the command line or through the environment)."""
    return _source(ctx, name) in ("COMMANDLINE", "ENVIRONMENT")


def _source(ctx: typer.Context, name: str) -> str:
    source = ctx.get_parameter_source(name)
    return source.name if source is not None else "DEFAULT"


def _check_devices(requested: int) -> None:
    import jax

    present = len(jax.devices())
    if requested > present:
        fail(f"--devices {requested} exceeds the {present} device(s) present")


__all__ = ["train"]


def _one_learning_rate(text: str | None):
    rate = parse_learning_rate(text)
    if isinstance(rate, dict):
        fail(f"--lr {text}: rates per optimizer are for compare; train runs one plan (give a number or 'auto')")
    return rate
