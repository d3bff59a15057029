"""Optimizer plans: a run is a sequence of stages, e.g. Adam for 1000 steps, then SSBroyden for the rest.

A :class:`Plan` holds optax transforms (any, for the Python API); a :class:`PlanSpec` holds names and step counts
(what the CLI and configs store) and :func:`build_plan` turns it into a plan. Reweighting weights carry across a
switch (``pinnkit.reweight.transfer_reweighting``); inside a quasi-Newton stage that follows another stage they are
held fixed by default, so that the curvature pairs of the line search all come from one loss.

Plan strings (validated once, by :func:`parse_plan`):

- ``"adam"``: one stage for the whole budget;
- ``"adam+ssbroyden"``: two stages, switching at ``switch_step`` (default: half the budget) or, with
  ``switch_at="equilibrium"``, when the online phase detector confirms diffusion equilibrium;
- ``"adam:2000,lbfgs:3000"``: explicit stage lengths (the last may be left open: ``"adam:2000,lbfgs"``).

The names are those of the optimizer registry (:mod:`pinnkit.optimizer_registry`): an optimizer registered there
can be named in a plan, and its entry says whether its stage is a line search.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from pinnkit.history import History
from pinnkit.optimizer_registry import NAME_PATTERN, OPTIMIZERS, optimizer_spec
from pinnkit.validation import choice, is_integer, positive_int

__all__ = ["Stage", "Plan", "PlanSpec", "parse_plan", "build_plan", "SWITCH_CONDITIONS", "as_plan", "check_hold_every"]

SWITCH_CONDITIONS = ("equilibrium",)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One optimizer for a number of steps.

    Attributes:
        optimizer: any optax transformation.
        steps: steps of this stage; None: the rest of the run (last stage only).
        name: a label for tables and histories.
        switch_when: optional ``history -> bool``, checked after each history row of this stage: the stage ends at
            the first row where it is True (``steps`` is then the most it may take).
        weights_first: a first-order stage advances the reweighting weights before each gradient, as the paper's
            code does (see :class:`pinnkit.engine.steps.Steps`); no effect without reweighting or in a line search.
    """

    optimizer: Any
    steps: int | None = None
    name: str = "optimizer"
    switch_when: Callable[[History], bool] | None = None
    weights_first: bool = False

    def __post_init__(self) -> None:
        if not hasattr(self.optimizer, "init") or not hasattr(self.optimizer, "update"):
            raise TypeError(f"stage {self.name!r}: optimizer must be an optax transformation, got "
                            f"{type(self.optimizer).__name__}")
        positive_int(f"stage {self.name!r}: steps", self.steps, none=True)
        if not isinstance(self.weights_first, bool):
            raise TypeError(f"stage {self.name!r}: weights_first must be a bool, got {self.weights_first!r}")


@dataclasses.dataclass(frozen=True)
class Plan:
    """A sequence of :class:`Stage` s.

    Example:
        >>> import optax
        >>> plan = Plan((Stage(optax.adam(1e-3), 100, "adam"), Stage(optax.lbfgs(), None, "lbfgs")))
        >>> plan.lengths(300), plan.describe(300)
        ([100, 200], 'adam:100,lbfgs:200')
    """

    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a plan needs at least one stage")
        for stage in self.stages[:-1]:
            if stage.steps is None:
                raise ValueError(f"only the last stage may leave its steps open; {stage.name!r} does not say")

    def lengths(self, total: int | None = None) -> list[int]:
        """The planned steps of each stage for a run of ``total`` steps (None: the stages' own sum)."""
        fixed = sum(stage.steps for stage in self.stages if stage.steps is not None)
        open_last = self.stages[-1].steps is None
        if total is None:
            if open_last:
                raise ValueError("the plan's last stage is open: give the total number of steps")
            return [stage.steps for stage in self.stages]
        if open_last:
            if total <= fixed:
                raise ValueError(f"steps={total} leaves nothing for the last stage after {fixed} planned steps")
            return [stage.steps for stage in self.stages[:-1]] + [total - fixed]
        if total != fixed:
            raise ValueError(f"steps={total} differs from the plan's {fixed} steps ({self.describe()})")
        return [stage.steps for stage in self.stages]

    def describe(self, total: int | None = None) -> str:
        lengths = self.lengths(total) if total is not None or self.stages[-1].steps is not None else \
            [stage.steps for stage in self.stages]
        return ",".join(f"{stage.name}:{length}" if length is not None else stage.name
                        for stage, length in zip(self.stages, lengths, strict=True))


def as_plan(optimizer: Any) -> Plan:
    """A plan from a plan, a stage or a bare optax transformation (one stage for the whole run).

    Example:
        >>> import optax
        >>> len(as_plan(optax.adam(1e-3)).stages)
        1
    """
    if isinstance(optimizer, Plan):
        return optimizer
    if isinstance(optimizer, Stage):
        return Plan((optimizer,))
    return Plan((Stage(optimizer, None, "optimizer"),))


@dataclasses.dataclass(frozen=True)
class PlanSpec:
    """A plan by names: ``((name, steps), ...)`` and an optional switch condition for the first switch.

    Example:
        >>> parse_plan("adam+lbfgs", steps=300, switch_step=100).stages
        (('adam', 100), ('lbfgs', 200))
    """

    stages: tuple[tuple[str, int], ...]
    switch_at: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.stages)

    @property
    def steps(self) -> int:
        return sum(count for _, count in self.stages)

    def describe(self) -> str:
        text = ",".join(f"{name}:{count}" for name, count in self.stages)
        return f"{text} (switch at {self.switch_at})" if self.switch_at else text


def parse_plan(text: str, *, steps: int | None = None, switch_step: int | None = None,
               switch_at: str | None = None, known: tuple[str, ...] | None = None) -> PlanSpec:
    """Parse and validate a plan string (see the module docstring).

    Args:
        text: ``"adam"``, ``"adam+ssbroyden"`` or ``"adam:2000,lbfgs:3000"``.
        steps: the run's total steps (required unless every stage gives its length).
        switch_step: where a two-stage ``+`` plan switches (default: half of ``steps``).
        switch_at: ``"equilibrium"``: switch when the online detector confirms diffusion equilibrium (a ``+`` plan
            of two stages; the first stage may take at most ``steps - 1`` steps).
        known: the optimizer names allowed (default: the registry's, :data:`pinnkit.optimizers.OPTIMIZERS`).

    Returns:
        A :class:`PlanSpec`.

    Raises:
        ValueError: naming the bad part.

    Example:
        >>> parse_plan("adam:2000,lbfgs", steps=5000).stages
        (('adam', 2000), ('lbfgs', 3000))
        >>> parse_plan("sgd", steps=10).stages
        (('sgd', 10),)
    """
    known = tuple(known or OPTIMIZERS)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"an optimizer plan must be a non-empty string such as 'adam' or 'adam+lbfgs', got {text!r}")
    if steps is not None:
        steps = positive_int("steps", steps)
    if switch_at is not None:
        choice("switch condition", switch_at, SWITCH_CONDITIONS)
    text = text.strip()
    if "," in text or ":" in text:
        if "+" in text:
            raise ValueError(f"plan {text!r} mixes '+' and ','; write 'adam+lbfgs' or 'adam:2000,lbfgs:3000'")
        if switch_step is not None or switch_at is not None:
            raise ValueError(f"plan {text!r} gives its own stage lengths; --switch-step/--switch-at do not apply")
        parts = [part.strip() for part in text.split(",")]
        stages: list[tuple[str, int | None]] = []
        for index, part in enumerate(parts):
            name, _, count = part.partition(":")
            name = _check_name(name.strip(), known, text)
            if not count.strip():
                if index != len(parts) - 1:
                    raise ValueError(f"plan {text!r}: only the last stage may leave its length open ({part!r})")
                stages.append((name, None))
                continue
            stages.append((name, _positive(count.strip(), f"plan {text!r}: length of {name!r}")))
        fixed = sum(count for _, count in stages if count is not None)
        if stages[-1][1] is None:
            if steps is None:
                raise ValueError(f"plan {text!r} leaves its last stage open: give the total steps")
            if steps <= fixed:
                raise ValueError(f"plan {text!r}: steps={steps} leaves nothing for {stages[-1][0]!r}")
            stages[-1] = (stages[-1][0], steps - fixed)
        elif steps is not None and steps != fixed:
            raise ValueError(f"plan {text!r} adds up to {fixed} steps, not steps={steps}")
        return PlanSpec(tuple(stages))
    names = [_check_name(name.strip(), known, text) for name in text.split("+")]
    if steps is None:
        raise ValueError(f"plan {text!r}: give the total steps")
    if len(names) == 1:
        if switch_step is not None or switch_at is not None:
            raise ValueError(f"--switch-step/--switch-at need a plan of two stages such as 'adam+lbfgs', not {text!r}")
        return PlanSpec(((names[0], steps),))
    if len(names) > 2:
        raise ValueError(f"plan {text!r} has {len(names)} stages: give their lengths, e.g. "
                         f"'{names[0]}:1000,{names[1]}:1000,{names[2]}'")
    if switch_step is not None and switch_at is not None:
        raise ValueError("give --switch-step or --switch-at, not both")
    if steps < 2:
        raise ValueError(f"plan {text!r} needs at least 2 steps, got steps={steps}")
    if switch_at is not None:
        # The first stage may run until one step before the end; the detector usually ends it sooner.
        return PlanSpec(((names[0], steps - 1), (names[1], 1)), switch_at=switch_at)
    if switch_step is None:
        switch_step = steps // 2
    if not is_integer(switch_step) or not 0 < switch_step < steps:
        raise ValueError(f"switch_step must lie strictly between 0 and steps={steps}, got {switch_step!r}")
    return PlanSpec(((names[0], switch_step), (names[1], steps - switch_step)))


def _check_name(name: str, known: tuple[str, ...], text: str) -> str:
    if not NAME_PATTERN.match(name or "-"):
        raise ValueError(f"plan {text!r}: {name!r} is not an optimizer name")
    if name not in known:
        raise ValueError(f"unknown optimizer {name!r} in plan {text!r}; choose from {list(known)}")
    return name


def _positive(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} must be a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{what} must be a positive integer, got {text!r}")
    return value


def build_plan(spec: PlanSpec, *, reweight: str = "none", num_samples: int | Mapping[str, int] | None = None,
               reweight_options: Mapping[str, Any] | None = None, hold_every: int | None | str = "auto",
               line_search_reweight_options: Mapping[str, Any] | None = None, weights_first: bool = False,
               **optimizer_options: Any) -> Plan:
    """The optax transforms of a :class:`PlanSpec`.

    Args:
        spec: the plan by names.
        reweight: ``"none"`` or a reweighting name (``pinnkit.optimizers.REWEIGHTINGS``).
        num_samples: the number of reweighted samples (required with reweighting).
        reweight_options: options of the reweighting transform (``eta``, ``gamma``, ...).
        hold_every: in line-search stages, advance the reweighting weights once every this many iterations
            (None: hold them for the whole stage). ``"auto"``: hold them in a line-search stage that follows
            another stage (the weights come in from it), advance every iteration in a plan's first stage (weights
            that start at zero would otherwise never move).
        line_search_reweight_options: options that replace ``reweight_options``'s in line-search stages (the
            weights, step count and stored SNR still come in from the stage before). vRBA's authors re-target
            the weights almost at once there (``gamma=0.1, eta=0.9``) at each redraw of the points; with
            ``hold_every`` a multiple of the redraw interval that is ``{"gamma": 0.1, "eta": 0.9}``.
        weights_first: first-order stages advance the weights before each gradient (the paper code's order,
            :attr:`Stage.weights_first`).
        **optimizer_options: passed to :func:`pinnkit.optimizers.make_optimizer` (``learning_rate``,
            ``schedule``, ``per_model``, ...). In a plan with a first-order stage, ``learning_rate`` is that
            stage's base rate and the line-search stages do without it (their line search picks the step); a
            plan of line-search stages only takes it as the scale of their direction.

    Returns:
        A :class:`Plan`.

    Example:
        >>> plan = build_plan(parse_plan("adam+lbfgs", steps=10), reweight="rba", num_samples=50)
        >>> [stage.name for stage in plan.stages], plan.lengths()
        (['adam', 'lbfgs'], [5, 5])
    """
    from pinnkit.optimizers import make_optimizer

    check_hold_every(hold_every)
    first_order = any(not optimizer_spec(name).line_search for name, _ in spec.stages)
    stages = []
    for index, (name, count) in enumerate(spec.stages):
        hold: int | None = 1
        options = dict(reweight_options or {})
        if optimizer_spec(name).line_search:
            hold = (None if index > 0 else 1) if hold_every == "auto" else hold_every
            options.update(line_search_reweight_options or {})
        stage_options = dict(optimizer_options)
        if optimizer_spec(name).line_search and first_order:
            stage_options.pop("learning_rate", None)
        optimizer = make_optimizer(name, reweight=reweight, num_samples=num_samples,
                                   reweight_options=options, hold_every=hold, **stage_options)
        switch_when = None
        if index == 0 and spec.switch_at == "equilibrium":
            switch_when = equilibrium_confirmed
        last = index == len(spec.stages) - 1
        stages.append(Stage(optimizer, None if (last and spec.switch_at) else count, name, switch_when,
                            weights_first=weights_first and not optimizer_spec(name).line_search))
    return Plan(tuple(stages))


def check_hold_every(hold_every: Any) -> None:
    """Raise ``ValueError`` unless ``hold_every`` is ``"auto"``, None or a positive integer (see :func:`build_plan`).

    Example:
        >>> check_hold_every(0)
        Traceback (most recent call last):
        ...
        ValueError: hold_every must be 'auto', None or a positive integer, got 0
    """
    if hold_every != "auto" and hold_every is not None and (not is_integer(hold_every) or hold_every < 1):
        raise ValueError(f"hold_every must be 'auto', None or a positive integer, got {hold_every!r}")


def equilibrium_confirmed(history: History) -> bool:
    """Whether the online phase detector has confirmed diffusion equilibrium on ``history`` (a stage switch rule).

    The rule steers training, so it never sees the test error: a sharp fall of the training MSE (``mse``) is what
    may corroborate a low re-alignment of the SNR (:func:`pinnkit.diagnostics.transitions.history_phases`).

    Example:
        >>> equilibrium_confirmed(History([{"step": 1, "snr": 1.0}]))
        False
    """
    from pinnkit.diagnostics.transitions import detect_transitions

    if "snr" not in history or len(history) < 5:
        return False
    found = detect_transitions(history, online=True, error_column="mse")
    return found["equilibrium_start"] is not None
