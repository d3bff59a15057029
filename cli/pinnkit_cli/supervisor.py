"""N local processes of one command that live and end together: what ``pinnkit launch`` runs.

Process 0 keeps the terminal (its progress bar and its last line are the run's); the others' output is read
and kept, shown only where it says something process 0 did not. When one process ends with a failure while
others still run (they would wait for it at their next collective), the others are stopped: SIGTERM, then a
second SIGTERM after a grace period (a ``pinnkit`` process leaves at once at a second signal, even inside a
collective), then SIGKILL.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence

__all__ = ["Outcome", "Supervisor", "exit_code_of", "free_port", "this_interpreter_running"]

# Seconds the others get to end by themselves after one ended with a failure (bad input ends every process, each
# a moment apart) before they are stopped.
SETTLE_S = 3.0
# Seconds between a stop's first signal and the second SIGTERM, and between that and SIGKILL.
GRACE_S = 10.0
KILL_AFTER_S = 5.0
_TAIL_LINES = 20


def exit_code_of(returncode: int) -> int:
    """A child's exit status as a shell reports it (killed by signal N: 128 + N).

    Example:
        >>> exit_code_of(-9), exit_code_of(2)
        (137, 2)
    """
    return 128 - returncode if returncode < 0 else returncode


@dataclasses.dataclass
class Outcome:
    """How the processes ended: ``codes[i]`` is process i's exit code; ``cause`` the process whose failure
    stopped the others (None when none did); ``tails[i]`` the last lines process i wrote (not process 0's)."""

    codes: list[int]
    cause: int | None
    tails: list[list[str]]


class Supervisor:
    """Start ``commands[i]`` as process i and watch them until all have ended.

    Args:
        commands: one argument list per process.
        env: the environment of the processes.
        grace_s: how long a stopped process gets before the second SIGTERM.
    """

    def __init__(self, commands: Sequence[Sequence[str]], env: dict[str, str] | None = None, *,
                 grace_s: float = GRACE_S):
        self.commands = [list(command) for command in commands]
        self.env = env
        self.grace_s = grace_s
        self.processes: list[subprocess.Popen] = []
        self._tails = [deque(maxlen=_TAIL_LINES) for _ in self.commands]
        self._readers: list[threading.Thread] = []
        self._stop_started: float | None = None
        self._stop_stage = 0

    def start(self) -> None:
        for index, command in enumerate(self.commands):
            # Process 0 writes to the terminal; the others to pipes read here.
            piped = subprocess.PIPE if index else None
            process = subprocess.Popen(command, env=self.env, stdin=subprocess.DEVNULL, stdout=piped,
                                       stderr=subprocess.STDOUT if index else None, preexec_fn=_end_with_parent)
            self.processes.append(process)
            if index:
                reader = threading.Thread(target=self._drain, args=(process, self._tails[index]), daemon=True)
                reader.start()
                self._readers.append(reader)

    @staticmethod
    def _drain(process: subprocess.Popen, tail: deque) -> None:
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                tail.append(line)

    def signal_all(self, signum: int) -> None:
        """Send ``signum`` to every process still running."""
        for process in self.processes:
            if process.poll() is None:
                try:
                    process.send_signal(signum)
                except ProcessLookupError:  # pragma: no cover - ended in between
                    pass

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Begin stopping the processes still running (``signum`` now; SIGTERM and SIGKILL follow in
        :meth:`wait` for those that do not end)."""
        if self._stop_started is None:
            self._stop_started = time.monotonic()
            self._stop_stage = 1
            self.signal_all(signum)

    def _escalate(self) -> None:
        if self._stop_started is None:
            return
        waited = time.monotonic() - self._stop_started
        if self._stop_stage == 1 and waited > self.grace_s:
            self._stop_stage = 2
            self.signal_all(signal.SIGTERM)  # the second request: a pinnkit process leaves at once
        elif self._stop_stage == 2 and waited > self.grace_s + KILL_AFTER_S:
            self._stop_stage = 3
            self.signal_all(signal.SIGKILL)

    def wait(self, poll_s: float = 0.1) -> Outcome:
        """Until every process has ended; a failure of one while others run stops the others."""
        cause = first_failure = None
        failed_at = 0.0
        while True:
            codes = [process.poll() for process in self.processes]
            if all(code is not None for code in codes):
                break
            if self._stop_started is None:
                failed = [index for index, code in enumerate(codes) if code not in (None, 0)]
                if failed and first_failure is None:
                    first_failure, failed_at = failed[0], time.monotonic()
                elif failed and time.monotonic() - failed_at > SETTLE_S:
                    cause = first_failure
                    self.stop()
            self._escalate()
            time.sleep(poll_s)
        for reader in self._readers:
            reader.join(timeout=5)
        return Outcome([exit_code_of(code) for code in codes], cause, [list(tail) for tail in self._tails])

    def kill_all(self) -> None:
        """SIGKILL every process still running (the launcher itself is leaving)."""
        self.signal_all(signal.SIGKILL)
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass


def _end_with_parent() -> None:
    """In the child, before it runs: SIGTERM when the launcher dies, however it dies (SIGKILL included), so that no
    process of the run is left behind (Linux; elsewhere nothing)."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover
        pass


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (for the coordinator of local processes).

    Example:
        >>> 0 < free_port() < 65536
        True
    """
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def this_interpreter_running(argv: Sequence[str]) -> list[str]:
    """The command line that runs ``pinnkit ARGV`` with this Python (whatever its console script is called)."""
    import sys

    return [sys.executable, "-c", "from pinnkit_cli.app import main; main()", *argv]
