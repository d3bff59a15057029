"""The scalar outcome of one run as a typed record: :class:`RunSummary` and :func:`summarize`, which makes one.

``pinnkit train`` writes a summary as ``result.json``, ``pinnkit compare`` as each run's row (``results.csv``,
``histories/<run>.json``, the ``runs`` of ``summary.json``). :meth:`RunSummary.to_dict` gives the JSON object those
files hold, key for key; :meth:`RunSummary.from_dict` reads one back.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from pinnkit import columns, jsonio
from pinnkit.engine.result import Outcome, TrainResult

if TYPE_CHECKING:
    from pinnkit.experiment import RunConfig

__all__ = ["RunSummary", "summarize"]

# The fields a summary always has, in the order of its JSON object (the outcome and its message are "status").
_FLOATS = ("rel_l2", "best_rel_l2", "final_loss", "final_mse", "wall_time_s", "compile_time_s", "steps_per_s")
_TRANSITIONS = ("diffusion_start", "equilibrium_start")


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """Errors, losses, times and detected transitions of one finished (or diverged) run; NaN where absent.

    Attributes:
        problem, optimizer, reweight, learning_rate, seed: the run's configuration.
        plan: the optimizer plan spelled out (``"adam:1000,lbfgs:1000"``).
        precision: ``"float32"`` or ``"float64"``.
        steps: steps taken (a diverged run: up to its last finite row).
        rel_l2: the final test error (of the last row that recorded one).
        best_rel_l2: the lowest test error of any row, chosen with hindsight (training cannot see the test
            error): how far the final error is from the best the run passed through.
        final_loss, final_mse: the last recorded objective and unweighted loss.
        wall_time_s, compile_time_s: training and compilation seconds.
        steps_per_s: steps trained in this session over its training time.
        outcome: how the run ended; message: why it stopped early (empty when it completed).
        stage_starts: the step at which each stage of the plan began.
        line_search_failures: line searches without sufficient decrease (None: no line-search stage).
        diffusion_start, equilibrium_start: the detected transitions (None: not found or no SNR recorded).

    Example:
        >>> summary = RunSummary(problem="helmholtz", optimizer="adam", plan="adam", reweight="none",
        ...                      learning_rate=None, seed=0, precision="float32", steps=10, rel_l2=0.5,
        ...                      best_rel_l2=0.4, final_loss=1.0, final_mse=1.0, wall_time_s=2.0,
        ...                      compile_time_s=1.0, steps_per_s=5.0, outcome=Outcome.COMPLETED)
        >>> summary.status, list(summary.to_dict())[14:]
        ('completed', ['steps_per_s', 'status', 'stage_starts', 'diffusion_start', 'equilibrium_start'])
        >>> RunSummary.from_dict(summary.to_dict()) == summary
        True
    """

    problem: str
    optimizer: str
    plan: str
    reweight: str
    learning_rate: float | str | None
    seed: int
    precision: str
    steps: int
    rel_l2: float
    best_rel_l2: float
    final_loss: float
    final_mse: float
    wall_time_s: float
    compile_time_s: float
    steps_per_s: float
    outcome: Outcome
    message: str = ""
    stage_starts: tuple[int, ...] = (0,)
    line_search_failures: int | None = None
    diffusion_start: int | None = None
    equilibrium_start: int | None = None

    @property
    def status(self) -> str:
        """The status text of the JSON files: ``"completed"`` or ``"diverged: <why>"``."""
        return self.outcome.status(self.message)

    @property
    def completed(self) -> bool:
        return self.outcome is Outcome.COMPLETED

    def replace(self, **changes: Any) -> RunSummary:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``result.json`` and of a comparison's rows: the fields in order, the outcome and its
        message as ``"status"``, ``line_search_failures`` only when a line-search stage ran."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            name = field.name
            if name == "outcome":
                out["status"] = self.status
            elif name == "message" or (name == "line_search_failures" and self.line_search_failures is None):
                continue
            elif name == "stage_starts":
                out[name] = list(self.stage_starts)
            else:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        """A summary read back from its JSON object (as :func:`pinnkit.jsonio.loads` gives it: NaN as None).

        Keys that are not fields (``config``, ``learning_rate_search``, ``name``, ...) are ignored.

        Raises:
            ValueError: a field is missing, or the status names no :class:`~pinnkit.engine.Outcome`.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a run summary is a JSON object, got {type(data).__name__}")
        required = [field.name for field in dataclasses.fields(cls)
                    if field.default is dataclasses.MISSING and field.name != "outcome"] + ["status"]
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"a run summary needs the keys {missing}; got {sorted(data)}")
        outcome, message = Outcome.parse(data["status"])
        values: dict[str, Any] = {name: data[name] for name in ("problem", "optimizer", "plan", "reweight",
                                                               "precision", "learning_rate")}
        values.update({name: int(data[name]) for name in ("seed", "steps")})
        values.update({name: jsonio.decode_float(data[name]) for name in _FLOATS})
        values.update({name: _optional_int(data.get(name)) for name in ("line_search_failures", *_TRANSITIONS)})
        if "stage_starts" in data:
            values["stage_starts"] = tuple(int(step) for step in data["stage_starts"])
        return cls(outcome=outcome, message=message, **values)


def _optional_int(value: Any) -> int | None:
    return None if value is None or value == "" else int(float(value))


def summarize(config: RunConfig, result: TrainResult, *, seed: int | None = None) -> RunSummary:
    """The :class:`RunSummary` of a run from its config and result.

    Args:
        config: the run's configuration (:class:`pinnkit.RunConfig`).
        result: what training returned.
        seed: the seed to report (a vmapped run of several seeds shares one config).

    Returns:
        The summary; ``to_dict()`` is its JSON object.

    Example:
        >>> from pinnkit import LogSchedule, Probes, RunConfig, run
        >>> config = RunConfig(steps=20, points=200, width=8, depth=1, log=LogSchedule(10),
        ...                    probes=Probes(snr_batches=10))
        >>> summary = summarize(config, run(config))
        >>> summary.outcome, summary.steps, summary.stage_starts
        (<Outcome.COMPLETED: 'completed'>, 20, (0,))
    """
    from pinnkit.diagnostics.transitions import detect_transitions

    history = result.history
    errors = history[columns.REL_L2] if columns.REL_L2 in history else np.array([math.nan])
    finite = errors[np.isfinite(errors)]
    wall = float(result.wall_time_s)
    done = result.steps - (int(history[columns.STEP][0]) if len(history) else 0)
    failures = None
    if columns.LINE_SEARCH_FAILURES in history:
        failures = int(np.nansum(history[columns.LINE_SEARCH_FAILURES]))
    transitions = detect_transitions(history)
    return RunSummary(
        problem=config.problem,
        optimizer=config.optimizer,
        plan=config.plan_spec().describe(),
        reweight=config.reweight,
        learning_rate=config.learning_rate,
        seed=config.seed if seed is None else seed,
        precision="float64" if config.double_precision else "float32",
        steps=int(result.steps),
        rel_l2=float(finite[-1]) if finite.size else math.nan,
        best_rel_l2=float(finite.min()) if finite.size else math.nan,
        final_loss=history.last(columns.LOSS),
        final_mse=history.last(columns.MSE),
        wall_time_s=wall,
        compile_time_s=float(result.compile_time_s),
        steps_per_s=float(done / wall) if wall > 0 else math.nan,
        outcome=result.outcome,
        message=result.message,
        stage_starts=tuple(result.stage_starts),
        line_search_failures=failures,
        diffusion_start=transitions["diffusion_start"],
        equilibrium_start=transitions["equilibrium_start"],
    )
