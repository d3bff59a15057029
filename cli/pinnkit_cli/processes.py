"""The command line's side of a multi-process run: join it, settle the device count, agree, share process 0's word.

Every process of a run parses the same command line, checks it the same way and fails the same way (exit 2 with
one line, in every process) before training; each collective step below is taken by all of them, so that no
process waits for one that has left. Process 0 alone claims and writes the output folder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import typer

from pinnkit.experiment import RunConfig
from pinnkit_cli.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, CliExit, fail, one_line

__all__ = ["agree", "agree_on", "announce_claim", "await_claim", "check_peers", "coordinator_option",
           "coordinator_timeout_option", "distributed_option", "join", "main_learning_rate", "num_processes_option",
           "process_id_option", "settle_devices"]

# The options of `pinnkit train` that join a run; also allowed with --resume and --preset.
OPTIONS = ("coordinator", "num_processes", "process_id", "distributed", "coordinator_timeout")


# The joining options, one definition for every command that takes them (fresh objects for each signature).
def coordinator_option(shared: str) -> Any:
    """``--coordinator``; ``shared`` says what the processes share out in this command."""
    return typer.Option(None, "--coordinator", help="HOST:PORT of process 0 in a run of several processes (with "
                        f"--num-processes and --process-id; see `pinnkit launch`). {shared}")


def num_processes_option() -> Any:
    return typer.Option(None, "--num-processes", help="Processes of the run (with --coordinator).")


def process_id_option() -> Any:
    return typer.Option(None, "--process-id", help="This process's number, 0 to N-1; process 0 writes.")


def distributed_option() -> Any:
    return typer.Option(False, "--distributed", help="Join a run of several processes detected from the cluster "
                        "(SLURM, Open MPI).")


def coordinator_timeout_option() -> Any:
    return typer.Option(300.0, "--coordinator-timeout", help="Seconds to wait for the coordinator and the other "
                        "processes.")


def join(coordinator: str | None, num_processes: int | None, process_id: int | None, distributed: bool,
         timeout_s: float) -> bool:
    """Join the run the options describe (nothing without them); whether this process is one of several."""
    explicit = [value is not None for value in (coordinator, num_processes, process_id)]
    if not distributed and not any(explicit):
        return False
    if distributed and any(explicit):
        fail("--distributed detects the cluster; it cannot be combined with --coordinator, --num-processes or "
             "--process-id")
    if any(explicit) and not all(explicit):
        fail("--coordinator, --num-processes and --process-id go together: give all three (or --distributed to "
             "detect the cluster)")
    if not timeout_s > 0:
        fail(f"--coordinator-timeout must be a positive number of seconds, got {timeout_s:g}")
    from pinnkit.multiprocess import initialize, process_count

    try:
        initialize(coordinator, num_processes, process_id, timeout_s=timeout_s)
    except (ValueError, ConnectionError) as error:
        fail(str(error).replace("num_processes", "--num-processes").replace("process_id", "--process-id"))
    return process_count() > 1


def settle_devices(config: RunConfig, *, devices_given: bool, resumed: bool) -> RunConfig:
    """The config with its points split over every device of every process (``--devices`` may only say so)."""
    import jax

    total, processes = jax.device_count(), jax.process_count()
    spread = f"the {total} device(s) of {processes} processes"
    if resumed:
        if config.devices != total:
            fail(f"the checkpoint's run splits its points over {config.devices} device(s); this run has {spread} "
                 f"(resume with {config.devices} device(s) in all)")
        return config
    if devices_given and config.devices != total:
        fail(f"--devices {config.devices}: across processes the points are split over all {spread}; give "
             f"--devices {total} or leave it out")
    if config.points % total:
        fail(f"--points {config.points} cannot be split evenly over {spread}; choose a multiple of {total}")
    try:
        return dataclasses.replace(config, devices=total)
    except (ValueError, TypeError) as error:
        fail(str(error))


def agree(config: RunConfig, **extra: Any) -> None:
    """Exit 2, in every process, unless every process has the same run configuration (and ``extra`` settings)."""
    agree_on({**config.to_dict(), **{f"({name})": value for name, value in extra.items()}})


def agree_on(settings: dict[str, Any], what: str = "settings") -> None:
    """Exit 2, in every process, unless every process has the same ``settings`` (JSON-ready)."""
    from pinnkit.multiprocess import first_disagreement, quiet_stdout

    with quiet_stdout():  # the first collective: gloo announces its connections on stdout
        found = first_disagreement(settings)
    if found is not None:
        fail(f"the processes were started with different {what}: {found}; start every process with the same "
             "options")


def announce_claim(make_claim: Callable[[], Any]) -> Callable[[], Any]:
    """``make_claim`` for process 0 that tells the others whether it took the output folder (they wait for it)."""
    from pinnkit.multiprocess import share_from_main

    def claim():
        taken = False
        try:
            found = make_claim()
            taken = True
            return found
        finally:
            share_from_main(int(taken))

    return claim


def await_claim() -> None:
    """For the processes other than 0: wait until process 0 has taken the output folder; exit 2 if it could not."""
    from pinnkit.multiprocess import share_from_main

    if not share_from_main(0):
        raise CliExit(EXIT_BAD_INPUT, "error: process 0 could not take the output folder (its message says why)")


def check_peers(error: BaseException) -> None:
    """Exit 70 with a line that says so when ``error`` is another process of the run gone (not a bug here)."""
    from pinnkit.multiprocess import is_lost_peer

    if is_lost_peer(error):
        raise CliExit(EXIT_INTERNAL, f"error: another process of the run is gone ({one_line(error)[:200]})") \
            from None


def main_learning_rate(config: RunConfig) -> RunConfig:
    """The config with process 0's learning rate: each process's own search may end elsewhere (a GPU's sums
    are not always reproducible), and every process must train with the rate process 0 records."""
    from pinnkit.multiprocess import process_count, share_from_main

    if process_count() == 1 or not isinstance(config.learning_rate, float):
        return config
    return dataclasses.replace(config, learning_rate=share_from_main(config.learning_rate))
