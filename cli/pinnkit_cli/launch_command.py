"""``pinnkit launch --processes N -- train ...``: a run of N processes on this machine, to try multi-process
training without a cluster (under SLURM, start ``pinnkit train --distributed`` with ``srun`` instead)."""

from __future__ import annotations

import signal

import typer

from pinnkit_cli.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, SIGNALS_RECEIVED, CliExit, Terminated, fail, one_line
from pinnkit_cli.supervisor import Supervisor, free_port, this_interpreter_running

__all__ = ["launch"]

# The commands that run across processes, and the options the launcher sets itself.
COMMANDS = ("train", "compare")
JOINING = ("--coordinator", "--num-processes", "--process-id", "--distributed")


def launch(
    ctx: typer.Context,
    processes: int = typer.Option(..., "--processes", help="How many local processes run the command."),
    port: int = typer.Option(None, "--port", help="Port of the coordinator on 127.0.0.1 (default: a free one)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds the processes wait for each other to start."),
) -> None:
    """Run `pinnkit COMMAND ...` in N local processes that train as one (JAX's distributed runtime; CPU
    collectives through gloo): process 0 writes, the points are split over every process's devices.

    Exit code: the first failing process's (each process's own line says why); when one process fails while
    others run, the others are stopped. Ctrl-C/SIGTERM stop every process (130/143).
    """
    command = list(ctx.args)
    if command[:1] == ["--"]:
        command = command[1:]
    if processes < 1:
        fail(f"--processes must be a positive number, got {processes}")
    if not command or command[0] not in COMMANDS:
        fail(f"give the command to run after --, one of {', '.join(COMMANDS)} (pinnkit launch --processes 2 -- "
             "train ...)")
    joining = [argument for argument in command if argument.split("=", 1)[0] in JOINING]
    if joining:
        fail(f"{joining[0].split('=', 1)[0]} is set by pinnkit launch; leave it out")
    if port is not None and not 0 < port < 65536:
        fail(f"--port must lie in 1-65535, got {port}")
    coordinator = f"127.0.0.1:{port if port is not None else free_port()}"
    supervisor = Supervisor([
        this_interpreter_running([*command, "--coordinator", coordinator, "--num-processes", str(processes),
                                  "--process-id", str(index), "--coordinator-timeout", f"{timeout:g}"])
        for index in range(processes)])
    try:
        supervisor.start()
        outcome = supervisor.wait()
    except (KeyboardInterrupt, Terminated):
        # Processes of this process group had a Ctrl-C from the terminal too: copies within a second are one
        # request to a pinnkit process.
        supervisor.stop(signal.SIGINT if SIGNALS_RECEIVED[:1] == [signal.SIGINT] else signal.SIGTERM)
        try:
            supervisor.wait()
        except BaseException:
            supervisor.kill_all()
            raise
        raise CliExit(EXIT_INTERRUPTED if SIGNALS_RECEIVED[:1] == [signal.SIGINT] else EXIT_TERMINATED) from None
    except BaseException:
        supervisor.kill_all()
        raise
    codes = outcome.codes
    if outcome.cause is not None:
        cause = outcome.cause
        said = outcome.tails[cause][-1:] if cause else []
        raise CliExit(codes[cause], one_line(
            f"error: process {cause} of {processes} ended with exit code {codes[cause]}"
            + (f" ({said[0][:300]})" if said else "") + "; stopped the others"))
    if codes[0]:
        raise CliExit(codes[0])  # process 0 said why
    failed = next((index for index, code in enumerate(codes) if code), None)
    if failed is not None:
        said = outcome.tails[failed][-1:]
        raise CliExit(codes[failed], one_line(f"error: process {failed} of {processes} ended with exit code "
                                              f"{codes[failed]}" + (f" ({said[0][:300]})" if said else "")))
