"""``pinnkit compare`` and ``pinnkit plot``: optimizers side by side, and their figures redrawn."""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from pinnkit.compare import PRESETS, CompareConfig, aggregate, preset
from pinnkit.compare import compare as run_comparison
from pinnkit.engine import LogSchedule, Probes
from pinnkit.optimizers import OPTIMIZERS, REWEIGHTINGS
from pinnkit.outputs import claim_output
from pinnkit.report import draw_figures, write_comparison, write_run
from pinnkit.resources import check_fits
from pinnkit_cli import processes
from pinnkit_cli.errors import (
    EXIT_DISK,
    EXIT_DIVERGED,
    CliExit,
    begin_work,
    check_signals,
    fail,
    one_line,
    printable_path,
    show_path,
)
from pinnkit_cli.live_help import live_option
from pinnkit_cli.options import parse_learning_rate, parse_list, parse_params, progress_bar, significant
from pinnkit_cli.running import guarded, write_or_exit

__all__ = ["compare", "plot", "results_table"]

TABLE_WIDTH = 80


def plans_help() -> str:
    """The help of ``--optimizers``: the registry's optimizers, read when the command is built."""
    return (f"Comma-separated plans from {', '.join(OPTIMIZERS)} and two-stage plans such as adam+lbfgs; "
            "separate with ';' when a plan gives stage lengths (adam:1000,lbfgs:1000;adam).")


def results_table(summaries, config: CompareConfig) -> tuple[Table, str]:
    """The per-(plan, reweighting) table of the runs' summaries, sized to stay readable in 80 columns, and its
    footnote.

    What is the same for every run (problem, steps, seeds, precision) goes into the title or the footnote.
    """
    entries = aggregate(summaries)
    seeds = entries[0]["seeds"] if entries else 0
    title = f"{config.problem}, {config.steps} steps" + (f", {seeds} seeds (mean, std)" if seeds > 1 else "")
    # One space between columns and none at the edges: the table keeps 80 columns without folding a number.
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0),
                  title_justify="left")
    headers = ["optimizer", "reweight", "rel L2"] + (["std"] if seeds > 1 else []) + \
        ["best*", "MSE", "time", "diff.", "equil."]
    for header in headers:
        table.add_column(header, justify="left" if header in ("optimizer", "reweight") else "right",
                         overflow="fold", no_wrap=True)
    for entry in entries:
        cells = [entry["optimizer"], entry["reweight"], significant(entry["rel_l2"])]
        if seeds > 1:
            cells.append(significant(entry["rel_l2_std"], 1))
        cells += [significant(entry["best_rel_l2"]), significant(entry["final_mse"]),
                  significant(entry["wall_time_s"]), significant(entry["diffusion_start"]),
                  significant(entry["equilibrium_start"])]
        table.add_row(*cells)
    precisions: dict[str, list[str]] = {}
    for entry in entries:
        plans = precisions.setdefault(entry.get("precision", "?"), [])
        if entry["optimizer"] not in plans:
            plans.append(entry["optimizer"])
    note = ("rel L2: final test error; best*: the lowest of any history row (hindsight); MSE: unweighted loss; "
            "time: training seconds; diff./equil.: step where diffusion / diffusion equilibrium began (-: none). "
            + "; ".join(f"{precision}: {', '.join(plans)}" for precision, plans in precisions.items()) + ".")
    return table, note


def compare(
    problem: str = typer.Option(None, help="Problem name (default: the preset's, helmholtz for quick)."),
    optimizers: str = live_option(None, help=plans_help),
    reweight: str = live_option(None, help=lambda: f"Comma-separated, from {','.join(REWEIGHTINGS)}."),
    reweight_option: list[str] = typer.Option(
        [], "--reweight-option", help="Option of the reweighting transforms NAME=VALUE (repeatable), e.g. "
        "phi=0.5 (every reweighting given must accept it)."),
    steps: int = typer.Option(None, help="Steps per run (line-search optimizers: iterations)."),
    seeds: int = typer.Option(None, help="Seeds per configuration, run vmapped together."),
    width: int = typer.Option(None, help="Hidden layer width."),
    depth: int = typer.Option(None, help="Number of hidden layers."),
    points: int = typer.Option(None, help="Interior collocation points."),
    switch_step: int = typer.Option(None, "--switch-step", help="Two-stage plans: where they switch (default: "
                                                                "half the steps)."),
    switch_at: str = typer.Option(None, "--switch-at", help="'equilibrium': two-stage plans switch when the "
                                                            "online detector confirms diffusion equilibrium."),
    lr: str = typer.Option(None, "--lr", help="Base learning rate of first-order methods; 'auto': a short search "
                                             "per first-order optimizer and reweighting picks it from the "
                                             "training loss; or per optimizer: adam=3e-3,sgd=auto."),
    param: list[str] = typer.Option([], "--param", help="Problem parameter NAME=VALUE (repeatable)."),
    log_every: int = typer.Option(None, "--log-every", help="Steps between history rows (default 50)."),
    snr_batches: int = typer.Option(None, "--snr-batches", help="Batches of the gradient SNR (0: off)."),
    preset_name: str = typer.Option("quick", "--preset", help=f"One of {', '.join(PRESETS)}."),
    out: Path = typer.Option(None, help="Output folder (default runs/<problem>-<time>)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output folder of a finished `pinnkit compare`."),
    float64: bool = typer.Option(
        None, "--float64/--float32", help="Precision of every run (default: float64 for plans with a line-search "
        "optimizer, float32 otherwise)."),
    coordinator: str = processes.coordinator_option("Each process runs its share of the grid's cells."),
    num_processes: int = processes.num_processes_option(),
    process_id: int = processes.process_id_option(),
    distributed: bool = processes.distributed_option(),
    coordinator_timeout: float = processes.coordinator_timeout_option(),
) -> None:
    """Run optimizer plans (x reweighting x seeds) side by side on one problem; table, files and figures.

    Exit codes: 0 done, 1 every run diverged, 2 bad input, 3 a write failed, 4 out of memory, 130/143 interrupted.
    """
    # Before anything touches JAX: joining a run must precede every computation.
    joined = processes.join(coordinator, num_processes, process_id, distributed, coordinator_timeout)
    if preset_name not in PRESETS:
        fail(f"unknown preset {preset_name!r}; choose from {sorted(PRESETS)}")
    for name, value in (("steps", steps), ("seeds", seeds), ("width", width), ("depth", depth),
                        ("points", points), ("log-every", log_every)):
        if value is not None and value <= 0:
            fail(f"--{name} must be positive, got {value}")
    overrides = dict(
        problem=problem, steps=steps, seeds=seeds, width=width, depth=depth, points=points, switch_step=switch_step,
        switch_at=switch_at, learning_rate=parse_learning_rate(lr), float64=float64,
        optimizers=tuple(parse_list(optimizers, "optimizer")) if optimizers is not None else None,
        reweights=tuple(parse_list(reweight, "reweighting", REWEIGHTINGS)) if reweight is not None else None,
        problem_params=parse_params(param) or None,
        reweight_options=parse_params(reweight_option, "--reweight-option") or None,
    )
    try:
        if log_every is not None:
            overrides["log"] = LogSchedule(log_every, dense_until=min(300, 3 * log_every))
        if snr_batches is not None:
            overrides["probes"] = Probes(snr_batches=snr_batches)
        config = preset(preset_name, **overrides)
        for plan in config.optimizers:
            for name in config.reweights:
                check_fits(config.run_config(plan, name), models=config.seeds)
    except (ValueError, TypeError) as error:
        fail(str(error))
    if joined:
        processes.agree_on(config.to_dict(), what="comparison")
        from pinnkit.multiprocess import is_main_process

        if not is_main_process():
            # The others run their cells and hand them to process 0, which owns the folder.
            processes.await_claim()
            begin_work()
            from pinnkit.compare_processes import compare_across_processes

            compare_across_processes(config, callback=lambda label, step, total: check_signals())
            return

    def make_claim():
        try:
            return claim_output(out if out is not None else _default_out(config.problem), kind="compare",
                                overwrite=overwrite)
        except ValueError as error:
            fail(str(error))

    with guarded(processes.announce_claim(make_claim) if joined else make_claim) as claim:
        claim.preserve("histories")  # a later failure (a figure, a full disk, Ctrl-C) keeps the finished runs
        runs_total = len(config.optimizers) * len(config.reweights)
        if joined:
            from pinnkit.compare_processes import cells_of, compare_across_processes
            from pinnkit.multiprocess import process_count

            runs_total = len(cells_of(config, 0, process_count()))
        with progress_bar() as progress:
            steps_each = config.total_steps / (len(config.optimizers) * len(config.reweights))
            overall = progress.add_task("comparison", total=round(runs_total * steps_each), status="")
            done: dict[str, int] = {}

            def advance(label: str, step: int, total: int) -> None:
                check_signals()  # a Ctrl-C whose KeyboardInterrupt was swallowed (see check_signals)
                done[label] = step
                progress.update(overall, completed=sum(done.values()), status=f"{label} step {step}/{total}")

            saved: set[str] = set()

            def save(run) -> None:
                write_or_exit(lambda: write_run(claim.folder, run), claim,
                              finished=f"run {run.name} finished but could not be saved")
                saved.add(run.name)

            if joined:
                runs = compare_across_processes(config, callback=advance, on_run=save)
                for run in runs:  # the other processes' runs, as they arrived
                    if run.name not in saved:
                        save(run)
            else:
                runs = run_comparison(config, callback=advance, on_run=save)
        # Whatever fails now (a write, a figure), the runs' histories and results stay (see claim.preserve).
        write_or_exit(lambda: write_comparison(claim.folder, config, runs, runs_written=True, figures=False),
                      claim, finished=f"the comparison finished ({_outcome(runs)}) but its results could not all "
                                      "be saved")
        write_or_exit(lambda: draw_figures(claim.folder), claim,
                      finished=f"the comparison finished ({_outcome(runs)}) and its results are saved, but not its "
                               "figures (`pinnkit plot` on the kept folder draws them)")
        target = claim.commit()
    console = Console(width=max(TABLE_WIDTH, Console().width))
    table, note = results_table([run.summary for run in runs], config)
    console.print(table)
    console.print(note, soft_wrap=False)
    console.print("Files (results.csv, summary.json, histories/, figures/) in:")
    console.print(printable_path(target), soft_wrap=True, highlight=False, markup=False)
    if not any(run.summary.completed for run in runs):
        raise CliExit(EXIT_DIVERGED, "every run diverged")


def _outcome(runs) -> str:
    """The best final error of a comparison, for the line that says its results could not be saved."""
    count = f"{len(runs)} run" + ("s" if len(runs) != 1 else "")
    finished = [run for run in runs if run.summary.completed]
    if not finished:
        return f"{count}, none completed"

    def error(run) -> float:
        value = run.summary.rel_l2
        return value if math.isfinite(value) else math.inf

    best = min(finished, key=error)
    return f"{count}; best rel_l2 {significant(best.summary.rel_l2)} ({best.name})"


def _default_out(problem: str) -> Path:
    base = Path("runs") / f"{problem}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, index = base, 1
    while candidate.exists():
        index += 1
        candidate = base.with_name(f"{base.name}-{index}")
    return candidate


def plot(folder: Path = typer.Argument(..., help="A folder written by `pinnkit compare`.")) -> None:
    """Redraw the figures of a finished comparison: all of them, or none when an input is damaged.

    Exit codes: 0 done, 2 bad input (figures/ unchanged), 3 a figure could not be written.
    """
    try:
        is_folder = folder.is_dir()
    except OSError as error:  # a name too long for the file system, ...
        fail(f"cannot read {show_path(folder)}: {error.strerror or error}")
    if not is_folder:
        fail(f"{show_path(folder)} is not a folder")
    for path in [folder / "results.csv", *sorted((folder / "histories").glob("*.csv"))]:
        _check_complete(path)
    begin_work()  # the inputs are read and checked by draw_figures (ValueError); anything else is a bug
    try:
        written = draw_figures(folder)  # reads and checks every input before it replaces any figure
    except (ValueError, KeyError) as error:
        fail(str(error))
    except OSError as error:  # inputs that cannot be read are ValueErrors: this is a figure being written
        raise CliExit(EXIT_DISK, f"error: cannot write the figures of {show_path(folder)}: "
                                 f"{error.strerror or one_line(error)}") from None
    for path in written:
        typer.echo(printable_path(path))  # a newline or ESC in the folder's name must not reach the terminal


def _check_complete(path: Path) -> None:
    """Exit 2 when a CSV file pinnkit wrote was cut short: every file it writes ends with a newline and has as
    many fields in each row as in its header (the readers accept a row cut short: its missing cells read as
    empty). Anything else wrong with the file is left to the reader to report."""
    from pinnkit_cli.errors import show_path

    try:
        data = path.read_bytes()
    except OSError:
        return
    if not data:
        return
    if not data.endswith(b"\n"):
        fail(f"{show_path(path)} is truncated: its last line is incomplete")
    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        header = next(reader, [])
        for line, row in enumerate(reader, start=2):
            if row and len(row) != len(header):
                fail(f"{show_path(path)} is truncated or malformed at line {line}: {len(row)} fields, the header has "
                     f"{len(header)}")
    except (UnicodeDecodeError, csv.Error):
        return
