"""``pinnkit detect``: find the fitting -> diffusion -> equilibrium transitions in a gradient-SNR log."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pinnkit import jsonio
from pinnkit.diagnostics import read_error_log, read_gradient_log
from pinnkit.diagnostics.transitions import history_phases
from pinnkit_cli.errors import begin_work, fail, printable_path


def _print_table(file: Path, summary: dict) -> None:
    # The name is the user's: shown as it is (escaped), never read as rich markup.
    title = Text(f"phases of {printable_path(file.name)}" + (" (online)" if summary["online"] else ""))
    table = Table(title=title)
    table.add_column("transition")
    table.add_column("iteration", justify="right")
    table.add_column("evidence")
    found = lambda value: "-" if value is None else str(value)  # noqa: E731
    table.add_row("fitting -> diffusion", found(summary["diffusion_start"]), summary["diffusion_reason"])
    equilibrium = found(summary["equilibrium_start"])
    table.add_row("diffusion -> equilibrium", equilibrium, summary["equilibrium_reason"])
    Console().print(table)


def detect(
    file: Path = typer.Argument(
        ..., help="Gradient log CSV: iteration (or step), and snr or grad_mean_norm + grad_std_norm; rel_l2."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    errors: Path | None = typer.Option(
        None, "--errors", help="Test-error CSV (iteration, rel_l2), e.g. the paper's <run>_errors.csv."
    ),
    online: bool = typer.Option(
        False, "--online", help="Report what a causal monitor would have known (and when it knew it)."
    ),
) -> None:
    """Detect the diffusion and diffusion-equilibrium transitions of one training run."""
    try:
        log = read_gradient_log(file)
        error_log = read_error_log(errors) if errors is not None else None
    except ValueError as error:
        fail(str(error))
    begin_work()
    try:
        # The same function and configuration as `pinnkit train`/`compare` use on a run's history.
        phases = history_phases(log, online=online, errors=error_log)
    except ValueError as error:
        fail(f"{file}: {error}")
    if phases.iterations.size == 0:
        fail(f"{file}: no usable rows (every SNR value is missing)")
    summary = {"file": str(file), **phases.as_dict()}
    reasons = summary["reasons"]
    summary["diffusion_reason"] = next((r for r in reasons if r.startswith("diffusion")), "")
    summary["equilibrium_reason"] = "; ".join(r for r in reasons if r.startswith(("equilibrium", "error")))
    if json_output:
        typer.echo(jsonio.dumps(summary))
    else:
        _print_table(file, summary)
