"""Several processes, one run: joining JAX's distributed runtime, agreeing on a configuration, leaving together.

A multi-process run is JAX's multi-controller model: every process runs the same program on the same data (the
same seed draws the same points and networks everywhere), ``jax.devices()`` lists the devices of all processes,
and a mesh over them makes one global array of the collocation points (see :mod:`pinnkit.distributed`). Every
process computes the same history; process 0 alone writes (:func:`is_main_process`).

:func:`initialize` wraps ``jax.distributed.initialize`` with checks made before it: jax ends the process
(SIGABRT, with a stack trace) when it cannot reach the coordinator, so the coordinator is probed here first and an
unreachable one is a Python exception naming it. :func:`first_disagreement` compares a configuration across
processes at start-up; :func:`leave` shuts the runtime down, which every process must do before it exits (a
process whose coordinator left without it aborts).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from pinnkit.validation import is_integer

__all__ = [
    "CoordinatorUnreachableError", "first_disagreement", "initialize", "is_lost_peer", "is_main_process", "leave",
    "parse_coordinator", "process_count", "quiet_stdout", "share_from_main",
]

# How long jax's shutdown barrier waits for the others (its default is 300 s), and how long a leaving process waits
# there at most: a peer that died never arrives.
SHUTDOWN_TIMEOUT_S = 60
LEAVE_WAIT_S = 30.0
# What jax's errors say when a collective lost a process (gloo on CPU; NCCL and the coordination service).
_LOST_PEER_SIGNS = ("Gloo", "gloo", "Connection reset by peer", "Connection closed by peer", "NCCL", "heartbeat",
                    "coordination service")


class CoordinatorUnreachableError(ConnectionError):
    """The coordinator (process 0's address) did not accept a connection in time."""


def parse_coordinator(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPv6]:PORT`` too) split into its host and port.

    Raises:
        ValueError: when ``address`` is not of that form or the port is not in 1-65535.

    Example:
        >>> parse_coordinator("node-0:1234"), parse_coordinator("[::1]:80")
        (('node-0', 1234), ('::1', 80))
    """
    if not isinstance(address, str):
        raise ValueError(f"the coordinator must be HOST:PORT, got {address!r}")
    host, colon, port = address.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"the coordinator must be HOST:PORT with a port in 1-65535, got {address!r}")
    return host, int(port)


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
               *, timeout_s: float = 300.0) -> None:
    """Join this process to a multi-process run (``jax.distributed.initialize``); call before any JAX computation.

    With no arguments, jax detects the cluster (SLURM, Open MPI, Cloud TPU, ...). Otherwise give all three: process
    ``process_id`` of ``num_processes``, process 0 serving the coordinator at ``coordinator`` (``HOST:PORT``, an
    address of process 0's host that the others reach). On CPU the collectives between processes go through gloo.

    Args:
        coordinator: ``HOST:PORT`` of process 0.
        num_processes: how many processes take part.
        process_id: this process's number, in ``[0, num_processes)``.
        timeout_s: how long to wait for the coordinator and the other processes.

    Raises:
        ValueError: for a bad or incomplete set of values, a coordinator host that does not resolve, a coordinator
            port already in use on process 0's host, or no cluster to detect.
        CoordinatorUnreachableError: when the coordinator accepts no connection within ``timeout_s``.

    Example:
        >>> initialize("node-0:1234", num_processes=2, process_id=2)
        Traceback (most recent call last):
        ...
        ValueError: process_id must lie in [0, 2) (num_processes=2), got 2
    """
    import jax

    given = [value is not None for value in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise ValueError("give all three of coordinator, num_processes and process_id, or none of them "
                         "(to detect the cluster)")
    if not (isinstance(timeout_s, int | float) and not isinstance(timeout_s, bool) and timeout_s > 0):
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    if all(given):
        host, port = parse_coordinator(coordinator)
        if not is_integer(num_processes) or num_processes < 1:
            raise ValueError(f"num_processes must be a positive integer, got {num_processes!r}")
        if not is_integer(process_id) or not 0 <= process_id < num_processes:
            raise ValueError(f"process_id must lie in [0, {num_processes}) (num_processes={num_processes}), "
                             f"got {process_id!r}")
        num_processes, process_id = int(num_processes), int(process_id)
        if jax.distributed.is_initialized():
            _check_joined(num_processes, process_id)
            return
        _resolve(host, coordinator)
        if process_id == 0:
            _check_port_free(port, coordinator)
        else:
            _wait_for(host, port, coordinator, timeout_s)
    elif jax.distributed.is_initialized():
        return
    if jax.config.jax_cpu_collectives_implementation is None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # jax 0.10's default; kept explicit
    # jax's preemption service takes SIGTERM for itself (and the process then ignores it); pinnkit's own handling
    # (exit 143, checkpoints kept) is what a stopped run should do.
    jax.config.update("jax_enable_preemption_service", False)
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=max(1, int(timeout_s)),
                                   shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_S)
    except ValueError as error:
        if not any(given) and "should be defined" in str(error):
            raise ValueError("no cluster to detect (SLURM, Open MPI, Cloud TPU): give the coordinator HOST:PORT, "
                             "the number of processes and this process's id") from None
        raise


def _check_joined(num_processes: int, process_id: int) -> None:
    import jax

    if (jax.process_count(), jax.process_index()) != (num_processes, process_id):
        raise RuntimeError(f"this process already joined a run as process {jax.process_index()} of "
                           f"{jax.process_count()}; it cannot join as process {process_id} of {num_processes}")


def _resolve(host: str, coordinator: str) -> None:
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        raise ValueError(f"the coordinator host of {coordinator!r} does not resolve to an address") from None


def _check_port_free(port: int, coordinator: str) -> None:
    # Process 0 serves the coordinator on every address of its host (jax binds [::]:PORT); a port already taken
    # would otherwise end the process inside jax.
    for family, address in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue  # no IPv6 on this host
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError as error:
                if error.errno == getattr(os, "EADDRINUSE", 98) or "in use" in str(error):
                    raise ValueError(f"the coordinator port {port} ({coordinator!r}) is already in use on this "
                                     "host; choose another") from None
                continue
            return


def _wait_for(host: str, port: int, coordinator: str, timeout_s: float) -> None:
    """Until the coordinator accepts a TCP connection (process 0 may start later than this one)."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=max(0.1, min(1.0, left))):
                return
        except OSError:
            if left <= 0:
                raise CoordinatorUnreachableError(
                    f"cannot reach the coordinator {coordinator} within {timeout_s:g} s: is process 0 running "
                    "there, and is the address one this host can reach?") from None
            time.sleep(min(0.2, max(0.0, left)))


def process_count() -> int:
    """The number of processes of the run (1 without :func:`initialize`).

    Example:
        >>> process_count()
        1
    """
    import jax

    return jax.process_count()


def is_main_process() -> bool:
    """Whether this process writes the run's outputs (process 0; also a process on its own).

    Example:
        >>> is_main_process()
        True
    """
    import jax

    return jax.process_index() == 0


def _digest(value: Any) -> int:
    from pinnkit import jsonio

    text = jsonio.dumps(value, sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def first_disagreement(values: Mapping[str, Any]) -> str | None:
    """Where the processes disagree on ``values`` (JSON-ready, e.g. ``RunConfig.to_dict()``), or None.

    Every process must call it (two small all-gathers of 32-bit digests, one per entry) and gets the same answer:
    ``"process 1 has another 'steps'"`` names the first entry, in sorted order, where some process differs from
    process 0. A single process always agrees.

    Example:
        >>> first_disagreement({"steps": 10}) is None
        True
    """
    import jax

    if jax.process_count() == 1:
        return None
    from jax.experimental import multihost_utils

    names = sorted(values)
    digests = np.array([_digest(names), *(_digest(values[name]) for name in names)], dtype=np.uint32)
    # The lengths first: processes that run other versions of the code may hold other entries.
    lengths = np.asarray(multihost_utils.process_allgather(np.array([digests.size], np.uint32))).reshape(-1)
    if len(set(lengths.tolist())) > 1:
        other = int(np.flatnonzero(lengths != lengths[0])[0])
        return f"process {other} holds other settings than process 0 (another version of pinnkit?)"
    gathered = np.asarray(multihost_utils.process_allgather(digests)).reshape(len(lengths), -1)
    for index, name in enumerate(["the names of its settings", *names]):
        differing = np.flatnonzero(gathered[:, index] != gathered[0, index])
        if differing.size:
            return f"process {int(differing[0])} has another {name!r} than process 0"
    return None


def share_from_main(value: int | float) -> int | float:
    """Process 0's ``value`` (a number) in every process (a broadcast; every process must call it). Alone:
    ``value``.

    Example:
        >>> share_from_main(3), share_from_main(0.25)
        (3, 0.25)
    """
    import jax

    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    kind = np.int32 if is_integer(value) else np.float64
    with jax.enable_x64(True):  # a float64 learning rate arrives as it left
        shared = np.asarray(multihost_utils.broadcast_one_to_all(np.array(value, kind)))
    return int(shared) if kind is np.int32 else float(shared)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence file descriptor 1 (C++ code writes there directly): gloo prints a line on stdout each time its
    processes connect, and a command's stdout is its output."""
    import sys

    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def leave(wait_s: float = LEAVE_WAIT_S) -> None:
    """Leave the multi-process run at the shutdown barrier where every process meets (nothing without one), waiting
    there at most ``wait_s`` seconds.

    A process that exits without it takes the coordinator (process 0) or its heartbeats away, and jax aborts the
    others. Call it last, on every path out; a peer that died never arrives, hence the bound.

    Example:
        >>> leave()
    """
    import sys
    import threading

    if "jax" not in sys.modules:
        return
    import jax

    if not jax.distributed.is_initialized():
        return

    def shut_down() -> None:
        with contextlib.suppress(Exception):
            jax.distributed.shutdown()

    barrier = threading.Thread(target=shut_down, name="pinnkit-leave", daemon=True)
    barrier.start()
    barrier.join(timeout=wait_s)


def is_lost_peer(error: BaseException) -> bool:
    """Whether ``error`` says that another process of the run is gone (a collective's connection broke).

    Example:
        >>> is_lost_peer(ValueError("Connection reset by peer"))
        False
    """
    if type(error).__name__ not in ("XlaRuntimeError", "JaxRuntimeError"):
        return False
    text = str(error)
    return any(sign in text for sign in _LOST_PEER_SIGNS)
