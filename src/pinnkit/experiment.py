"""One training run described by plain data, and the one set-up path every run and comparison goes through.

:class:`RunConfig` holds everything that defines a run; :func:`setup` builds what runs of one problem share (the
problem, the points, the reference, the SNR batch key) once; :func:`init_models` builds K networks stacked for
vmapped training; :func:`run` trains (or resumes) one config. The same config, seed included, gives the same
history.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from pinnkit import columns, nn, problems
from pinnkit.engine import LogSchedule, Outcome, Probes, TrainResult, fit_stacked
from pinnkit.engine.loop import resume_position
from pinnkit.engine.schedule import MAX_ROWS, MAX_STEPS
from pinnkit.engine.stacked import stack, unstack
from pinnkit.multiprocess import is_main_process
from pinnkit.optimizers import (
    FIRST_ORDER_OPTIMIZERS,
    LINE_SEARCH_OPTIMIZERS,
    REWEIGHTINGS,
    SCHEDULES,
    check_reweighting_options,
    make_reweighting,
)
from pinnkit.plans import Plan, PlanSpec, build_plan, check_hold_every, parse_plan
from pinnkit.problems.base import SAMPLERS, Points, Problem
from pinnkit.sampling import Resampling
from pinnkit.summary import summarize  # re-exported: summarize was defined here
from pinnkit.validation import integer
from pinnkit.variants import Variant, set_variant_numbers

__all__ = [
    "ARCHITECTURES", "RunConfig", "Setup", "init_models", "initial_state", "model_for", "plan_for",
    "resolve_learning_rate", "resolve_learning_rates", "run", "run_stacked", "run_variants", "setup", "summarize",
]

ARCHITECTURES = ("mlp", "modified-mlp")
MAX_SEED = 2**32 - 1


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run.

    Attributes:
        problem: a name from ``pinnkit.problems.names()``.
        problem_params: parameters of the problem (e.g. ``{"a1": 6.0}``).
        optimizer: an optimizer plan (``"adam"``, ``"adam+ssbroyden"``, ``"adam:2000,lbfgs:3000"``; see
            :mod:`pinnkit.plans`).
        switch_step: where a two-stage ``+`` plan switches (default: half the steps).
        switch_at: ``"equilibrium"``: a two-stage plan switches when the online detector confirms diffusion
            equilibrium.
        reweight: ``"none"``, ``"rba"``, ``"vrba"`` or ``"gradient-aware"``.
        reweight_options: options of the reweighting transform (``{"eta": 1e-3, "gamma": 0.999}``, ...).
        hold_every: in line-search stages, advance the reweighting weights every this many iterations (None: hold
            them for the stage; ``"auto"``: hold them after a switch, advance every iteration in a first stage).
        weights_first: first-order stages advance the reweighting weights from the residuals before each gradient,
            which then uses the advanced weights (the paper code's order); default: after it (an optax chain's
            order, one step behind). See :class:`pinnkit.engine.steps.Steps`.
        line_search_reweight_options: options over ``reweight_options`` in line-search stages
            (``{"gamma": 0.1, "eta": 0.9}``: re-target the weights at each advance; see
            :func:`pinnkit.plans.build_plan`).
        steps: total training steps (one line-search step is one iteration, its line search included).
        learning_rate: base learning rate of first-order stages (None: 1e-3; ``"auto"``: a short search, see
            :mod:`pinnkit.lr_search`, picks it from the training loss).
        schedule: ``"paper"`` (x0.9 every 5000 steps) or ``"constant"``.
        seed: the seed of the network, the points and the SNR batches.
        width, depth: hidden layer width and count.
        architecture: ``"mlp"`` or ``"modified-mlp"``.
        activation: hidden activation.
        fourier_features: random Fourier features (0: none).
        normalize_inputs: map the domain onto [-1, 1] before the first layer (the paper feeds raw coordinates).
        periodic: make the network exactly periodic in the problem's periodic inputs (Allen-Cahn's x), through a
            (cos, sin) embedding; needs ``normalize_inputs``.
        points: interior collocation points.
        sampling: ``"lhs"`` or ``"uniform"``.
        log: when history rows are recorded.
        probes: what a row records.
        resampling: redraw the collocation points by their residual (RAD, :class:`pinnkit.sampling.Resampling`)
            every so many steps; None: fixed points.
        float64: train in double precision (None: double for plans with a line-search stage, whose tolerances sit
            below single precision's epsilon, single otherwise).
        devices: split the collocation points over this many devices.
    """

    problem: str = "helmholtz"
    problem_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    optimizer: str = "adam"
    switch_step: int | None = None
    switch_at: str | None = None
    reweight: str = "none"
    reweight_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    hold_every: int | None | str = "auto"
    weights_first: bool = False
    line_search_reweight_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    steps: int = 2000
    learning_rate: float | str | None = None
    schedule: str = "paper"
    seed: int = 0
    width: int = 64
    depth: int = 4
    architecture: str = "mlp"
    activation: str = "tanh"
    fourier_features: int = 0
    normalize_inputs: bool = True
    periodic: bool = False
    points: int = 2000
    sampling: str = "lhs"
    log: LogSchedule = LogSchedule(every=50, dense_until=300)
    probes: Probes = Probes()
    resampling: Resampling | None = None
    float64: bool | None = None
    devices: int = 1

    def __post_init__(self) -> None:
        if self.problem not in problems.names():
            raise ValueError(f"unknown problem {self.problem!r}; choose one of {problems.names()}")
        if not isinstance(self.problem_params, Mapping):
            raise TypeError(f"problem_params must be a mapping, got {type(self.problem_params).__name__}")
        for name in ("reweight_options", "line_search_reweight_options"):
            if not isinstance(getattr(self, name), Mapping):
                raise TypeError(f"{name} must be a mapping, got {type(getattr(self, name)).__name__}")
        if self.reweight not in REWEIGHTINGS:
            raise ValueError(f"unknown reweighting {self.reweight!r}; choose one of {list(REWEIGHTINGS)}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}; choose one of {list(ARCHITECTURES)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {list(SCHEDULES)}")
        if self.sampling not in SAMPLERS:
            raise ValueError(f"unknown sampling {self.sampling!r}; choose one of {sorted(SAMPLERS)}")
        if self.activation not in nn.ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {sorted(nn.ACTIVATIONS)}")
        integer("steps", self.steps, minimum=1, maximum=MAX_STEPS)
        integer("seed", self.seed, minimum=0, maximum=MAX_SEED)
        for name in ("width", "depth", "points", "devices"):
            integer(name, getattr(self, name), minimum=1)
        integer("fourier_features", self.fourier_features, minimum=0)
        if not isinstance(self.log, LogSchedule):
            raise TypeError(f"log must be a LogSchedule, got {type(self.log).__name__}")
        rows = self.log.count(self.steps)
        if rows > MAX_ROWS:
            raise ValueError(f"the log schedule would record {rows:,} history rows; at most {MAX_ROWS:,} "
                             "(record less often)")
        if not isinstance(self.probes, Probes):
            raise TypeError(f"probes must be Probes, got {type(self.probes).__name__}")
        if self.resampling is not None and not isinstance(self.resampling, Resampling):
            raise TypeError(f"resampling must be a Resampling or None, got {type(self.resampling).__name__}")
        if self.resampling is not None and self.resampling.candidates < self.points:
            raise ValueError(f"resampling draws points={self.points} from {self.resampling.candidates} candidates: "
                             "give more candidates")
        if self.probes.snr_batches > self.points:
            raise ValueError(f"snr_batches={self.probes.snr_batches} exceeds points={self.points}")
        if self.points % self.devices:
            raise ValueError(f"points={self.points} cannot be split evenly over devices={self.devices}")
        # The problem's parameters are checked where a problem is made; with periodic=True, here (it asks the
        # problem which inputs are periodic), otherwise last.
        problem = self.make_problem() if self.periodic else None
        if problem is not None:
            if not problem.periodic_axes:
                raise ValueError(f"periodic=True: problem {self.problem!r} has no periodic input")
            if not self.normalize_inputs:
                raise ValueError("periodic=True needs normalize_inputs=True (the period is the domain's width)")
        if not isinstance(self.weights_first, bool):
            raise TypeError(f"weights_first must be a bool, got {self.weights_first!r}")
        if self.float64 is not None and not isinstance(self.float64, bool):
            raise TypeError(f"float64 must be a bool or None, got {self.float64!r}")
        spec = self.plan_spec()  # validates the plan, its switch and the names once
        if self.learning_rate == "auto":
            if not any(name in FIRST_ORDER_OPTIMIZERS for name in spec.names):
                raise ValueError(f"learning_rate='auto' searches a first-order stage; plan {self.optimizer!r} has none")
        elif self.learning_rate is not None:
            from pinnkit.optimizers import check_learning_rate

            check_learning_rate(self.learning_rate)
        if self.reweight != "none":
            make_reweighting(self.reweight, self.points, **dict(self.reweight_options))
            if self.line_search_reweight_options:
                check_reweighting_options(self.reweight, self.line_search_reweight_options,
                                          flag="--line-search-reweight-option")
                try:
                    make_reweighting(self.reweight, self.points,
                                     **{**self.reweight_options, **self.line_search_reweight_options})
                except (TypeError, ValueError) as error:  # a value out of range, with the merged options
                    raise type(error)(f"line_search_reweight_options (--line-search-reweight-option): {error}") \
                        from None
        else:
            for name in ("reweight_options", "line_search_reweight_options"):
                if getattr(self, name):
                    raise ValueError(f"{name} given without a reweighting")
        check_hold_every(self.hold_every)
        if problem is None:
            self.make_problem()

    def plan_spec(self) -> PlanSpec:
        """The validated optimizer plan."""
        return parse_plan(self.optimizer, steps=self.steps, switch_step=self.switch_step, switch_at=self.switch_at)

    def make_problem(self) -> Problem:
        """The problem with the config's parameters.

        Example:
            >>> RunConfig(problem="helmholtz", problem_params={"a1": 2.0}).make_problem().a1
            2.0
        """
        return problems.get(self.problem, **dict(self.problem_params))

    @property
    def double_precision(self) -> bool:
        """Whether the run trains in float64 (``float64`` or, when None, whether the plan has a line search)."""
        if self.float64 is not None:
            return self.float64
        return any(name in LINE_SEARCH_OPTIMIZERS for name in self.plan_spec().names)

    @property
    def dtype(self) -> Any:
        """The float dtype of the run's points and networks (see :attr:`double_precision`).

        Example:
            >>> RunConfig(optimizer="adam+lbfgs").dtype
            <class 'jax.numpy.float64'>
        """
        return jnp.float64 if self.double_precision else jnp.float32

    def to_dict(self) -> dict[str, Any]:
        out = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        out.update(problem_params=dict(self.problem_params), reweight_options=dict(self.reweight_options),
                   line_search_reweight_options=dict(self.line_search_reweight_options),
                   log=self.log.to_dict(), probes=self.probes.to_dict(),
                   resampling=self.resampling.to_dict() if self.resampling is not None else None)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        if not isinstance(data, Mapping):
            raise TypeError(f"a run configuration must be a mapping, got {type(data).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown run configuration key {sorted(unknown)[0]!r}")
        data = dict(data)
        if isinstance(data.get("log"), Mapping):
            data["log"] = LogSchedule(**data["log"])
        if isinstance(data.get("probes"), Mapping):
            data["probes"] = Probes(**data["probes"])
        if isinstance(data.get("resampling"), Mapping):
            data["resampling"] = Resampling(**data["resampling"])
        return cls(**data)


@dataclasses.dataclass(frozen=True, eq=False)
class Setup:
    """What the runs of one problem share: built once per problem, seed and precision.

    Attributes:
        problem: the problem.
        points: the collocation and constraint points.
        reference: the reference solution.
        snr_key: the key of the SNR batch split.
        dtype: the float dtype of points and networks.
    """

    problem: Problem
    points: Points
    reference: Any
    snr_key: jax.Array
    dtype: Any


def _keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    model_key, points_key, snr_key = jax.random.split(jax.random.key(seed), 3)
    return model_key, points_key, snr_key


def _drawn_in_float64(draw: Callable[[Any], Any], dtype) -> Any:
    """``draw(jnp.float64)`` made under ``jax.enable_x64(True)``, its float array leaves then cast to ``dtype``.

    Every random draw of a run's set-up goes through here, so that a float32 and a float64 run of one seed start
    from the same network and points (float32: the float64 draw rounded), whatever precision JAX is in.
    """
    target = jnp.dtype(dtype if dtype is not None else jnp.zeros(()).dtype)
    with jax.enable_x64(True):
        tree = draw(jnp.float64)
        return jax.tree_util.tree_map(
            lambda leaf: leaf.astype(target) if eqx.is_inexact_array(leaf) else leaf, tree)


def setup(config: RunConfig) -> Setup:
    """The problem, points, reference and SNR key of a config (points and batches from ``config.seed``).

    Call it inside ``jax.enable_x64(config.double_precision)``, as :func:`run` does. The points are drawn in
    float64 whatever the precision, then cast: a float32 run gets the float64 run's points, rounded.

    Example:
        >>> built = setup(RunConfig(steps=10, points=200, probes=Probes(snr_batches=10)))
        >>> built.points["pde"].shape
        (200, 2)
    """
    problem = config.make_problem()
    dtype = config.dtype
    _, points_key, snr_key = _keys(config.seed)
    points = _drawn_in_float64(
        lambda wide: problem.sample(points_key, config.points, method=config.sampling, dtype=wide), dtype)
    return Setup(problem, points, problem.reference(), snr_key, dtype)


def model_for(config: RunConfig, problem: Problem, key: jax.Array, dtype=None):
    """The network of a config, initialised from ``key``.

    Example:
        >>> import jax, pinnkit
        >>> config = RunConfig(width=8, depth=2)
        >>> model_for(config, pinnkit.problems.get("helmholtz"), jax.random.key(0)).layers[0].weight.shape
        (8, 2)
    """
    network = nn.MLP if config.architecture == "mlp" else nn.ModifiedMLP
    return network(
        len(problem.input_names), len(problem.output_names), width=config.width, depth=config.depth,
        activation=config.activation, domain=problem.domain if config.normalize_inputs else None,
        fourier_features=config.fourier_features or None, key=key, dtype=dtype,
        periodic=problem.periodic_axes if config.periodic else (),
    )


def plan_for(config: RunConfig, *, per_model: bool = False) -> Plan:
    """The optimizer plan of a config: its stages' optax transforms, reweighting and learning rate included
    (a ``learning_rate="auto"`` must have been resolved, :func:`resolve_learning_rate`). ``per_model``: built for
    stacked variants (:mod:`pinnkit.variants`).

    Example:
        >>> [stage.name for stage in plan_for(RunConfig(optimizer="adam+lbfgs", steps=10)).stages]
        ['adam', 'lbfgs']
    """
    return build_plan(config.plan_spec(), reweight=config.reweight, num_samples=config.points,
                      reweight_options=config.reweight_options, hold_every=config.hold_every,
                      line_search_reweight_options=config.line_search_reweight_options,
                      weights_first=config.weights_first, learning_rate=config.learning_rate,
                      schedule=config.schedule, per_model=per_model)


def init_models(config: RunConfig, problem: Problem, seeds: Sequence[int], dtype=None):
    """K networks of one architecture, initialised from ``seeds`` (the model key of each seed's run), stacked.

    The networks are drawn in float64 whatever ``dtype``, then cast to it: one seed, one initial network (rounded
    for float32).

    Returns:
        ``(model, params)``: one model (the structure) and the K models' parameters along a leading axis.

    Example:
        >>> import pinnkit
        >>> model, params = init_models(RunConfig(width=8, depth=1), pinnkit.problems.get("helmholtz"), [0, 1])
        >>> params.layers[0].weight.shape
        (2, 8, 2)
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    models = [_drawn_in_float64(lambda wide, seed=seed: model_for(config, problem, _keys(seed)[0], wide), dtype)
              for seed in seeds]
    params = [eqx.filter(model, eqx.is_inexact_array) for model in models]
    return models[0], jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *params)


def resolve_learning_rate(config: RunConfig, built: Setup, seed: int | None = None) -> tuple[RunConfig, Any]:
    """The config with ``learning_rate="auto"`` replaced by the pick of a short search (and the search), or the
    config unchanged (and None). Call inside the config's precision.

    The search trains the network of ``seed`` (default: the config's) with each candidate for min(300, the first
    stage's steps) steps, with the run's reweighting, and keeps the lowest final unweighted training loss.
    """
    rates, searches = resolve_learning_rates(config, built, (config.reweight,), seed)
    if searches is None:
        return config, None
    return dataclasses.replace(config, learning_rate=rates[config.reweight]), searches[config.reweight]


def resolve_learning_rates(config: RunConfig, built: Setup, reweights: Sequence[str], seed: int | None = None
                           ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """:func:`resolve_learning_rate` for the variants of a run that differ in their reweighting (``"none"`` and
    ``config.reweight``), searched together as one vmapped program.

    Returns:
        The learning rate of each reweighting, and the searches (None: ``config.learning_rate`` was not
        ``"auto"``, and every reweighting keeps it).
    """
    if config.learning_rate != "auto":
        return {reweight: config.learning_rate for reweight in reweights}, None
    from pinnkit.lr_search import SEARCH_STEPS, search_learning_rates

    spec = config.plan_spec()
    name, stage_steps = next((name, count) for name, count in spec.stages if name in FIRST_ORDER_OPTIMIZERS)
    model, _ = init_models(config, built.problem, [config.seed if seed is None else seed], built.dtype)
    found = search_learning_rates(
        built.problem, model, built.points, optimizer=name, steps=min(SEARCH_STEPS, stage_steps),
        schedule=config.schedule,
        reweights=tuple(reweights), num_samples=config.points, reweight_options=config.reweight_options,
        reference=built.reference)
    return {reweight: search.learning_rate for reweight, search in found.items()}, found


def run_stacked(config: RunConfig, built: Setup, seeds: Sequence[int], *, callback=None, checkpoint=None,
                opt_state=None, start_step: int = 0, histories=None, params=None) -> list[TrainResult]:
    """Train the config for several seeds at once on a shared set-up (inside the config's precision; a
    ``learning_rate="auto"`` must have been resolved, :func:`resolve_learning_rate`)."""
    if config.learning_rate == "auto":
        raise ValueError("resolve learning_rate='auto' first (pinnkit.experiment.resolve_learning_rate)")
    return _fit_stacked(config, built, seeds, plan_for(config), callback=callback, checkpoint=checkpoint,
                        opt_state=opt_state, start_step=start_step, histories=histories, params=params)


def run_variants(config: RunConfig, built: Setup, variants: Sequence[Variant], *, callback=None
                 ) -> list[TrainResult]:
    """Train runs of ``config`` that differ only in their seed, their first-order learning rate and whether they
    reweight, as one stacked program (:mod:`pinnkit.variants`; inside the config's precision).

    ``config.reweight`` is the stack's reweighting: each variant's ``reweight`` is it or ``"none"`` (its weights
    held at 1). A variant's ``learning_rate`` None takes ``config.learning_rate`` (which must be resolved).

    Raises:
        ValueError: a variant's reweighting is neither, or no variant is given.

    Example:
        >>> from pinnkit.variants import Variant
        >>> config = RunConfig(reweight="rba", steps=10, points=100, width=8, depth=1, log=LogSchedule(10),
        ...                    probes=Probes(snr_batches=10))
        >>> with jax.enable_x64(False):
        ...     results = run_variants(config, setup(config), [Variant(0, "none"), Variant(0, "rba", 1e-2)])
        >>> [result.status for result in results]
        ['completed', 'completed']
    """
    if not variants:
        raise ValueError("variants must not be empty")
    if config.learning_rate == "auto" and any(variant.learning_rate is None for variant in variants):
        raise ValueError("resolve learning_rate='auto' first (pinnkit.experiment.resolve_learning_rates)")
    for variant in variants:
        if variant.reweight not in ("none", config.reweight):
            raise ValueError(f"a variant of a {config.reweight!r} stack reweights with {config.reweight!r} or "
                             f"'none', got {variant.reweight!r}")
    reweighting = None if config.reweight == "none" else [variant.reweight != "none" for variant in variants]
    rates = [variant.learning_rate if variant.learning_rate is not None else config.learning_rate
             for variant in variants]

    def stage_state(index, state, first):
        del index
        return set_variant_numbers(state, reweighting=reweighting, learning_rates=rates, fresh=first)

    if config.learning_rate == "auto":  # every variant has its own: the built rate is a placeholder
        config = dataclasses.replace(config, learning_rate=next(rate for rate in rates if rate is not None))
    return _fit_stacked(config, built, [variant.seed for variant in variants], plan_for(config, per_model=True),
                        callback=callback, stage_state=stage_state)


def _fit_stacked(config: RunConfig, built: Setup, seeds: Sequence[int], plan: Plan, *, callback=None,
                 checkpoint=None, opt_state=None, start_step: int = 0, histories=None, params=None,
                 stage_state=None) -> list[TrainResult]:
    model, initial = init_models(config, built.problem, seeds, built.dtype)
    params = initial if params is None else params
    mesh = None
    if config.devices > 1:
        from pinnkit.distributed import data_mesh

        mesh = data_mesh(config.devices)
    resampling_key = jax.random.fold_in(jax.random.key(config.seed), 1) if config.resampling is not None else None
    return fit_stacked(
        built.problem, model, plan, built.points, params, steps=config.steps, opt_state=opt_state, log=config.log,
        probes=config.probes, snr_key=built.snr_key, start_step=start_step, histories=histories,
        reference=built.reference, callback=callback, checkpoint=checkpoint, mesh=mesh,
        resampling=config.resampling, resampling_key=resampling_key, stage_state=stage_state)


def run(
    config: RunConfig,
    *,
    callback: Callable[[int, dict], Any] | None = None,
    checkpoint: Callable[[int, Any, Any, Any], Any] | None = None,
    resume_from: str | os.PathLike | None = None,
) -> TrainResult:
    """Train one run from its config, or continue it from a checkpoint.

    Args:
        config: the run.
        callback: called as ``callback(step, row)`` after each history row.
        checkpoint: called as ``checkpoint(step, model, opt_state, history)`` after each history row
            (e.g. ``pinnkit.checkpoint.Checkpointer``); in a multi-process run, in process 0 only.
        resume_from: a checkpoint file or folder saved from this same config; training continues from its step
            and ends as one uninterrupted run would (same chunks, same history).

    Returns:
        A :class:`pinnkit.TrainResult` covering all ``config.steps`` steps.

    Raises:
        ValueError: when ``resume_from`` is unreadable, corrupted, or saved from another configuration.

    Example:
        >>> result = run(RunConfig(steps=20, points=200, width=8, depth=1, log=LogSchedule(10),
        ...                        probes=Probes(snr_batches=10)))
        >>> result.status
        'completed'
    """
    with jax.enable_x64(config.double_precision):
        built = setup(config)
        config, _ = resolve_learning_rate(config, built)
        stacked_checkpoint = None
        if checkpoint is not None:
            # The model's structure (its constants) is drawn once, not at every checkpoint.
            static = eqx.filter(init_models(config, built.problem, [config.seed], built.dtype)[0],
                                eqx.is_inexact_array, inverse=True)

            def stacked_checkpoint(step, params, opt_state, histories):
                whole = eqx.combine(unstack(params, 0), static)
                state = unstack(opt_state, 0)
                # Every process computes the same state (the same operations everywhere); process 0 writes it.
                return checkpoint(step, whole, state, histories[0]) if is_main_process() else None

        if resume_from is None:
            (result,) = run_stacked(config, built, [config.seed], callback=callback, checkpoint=stacked_checkpoint)
            return result
        saved = _load_resume_state(config, built, resume_from)
        if saved.step == config.steps:
            # Nothing left to train: the checkpoint is the finished run.
            history = saved.history
            wall = history.last(columns.WALL_TIME) if len(history) else 0.0
            compile_time = float(saved.extras.get("compile_time_s", 0.0) or 0.0)
            return TrainResult(saved.model, saved.opt_state, history, Outcome.COMPLETED, saved.step,
                               wall if math.isfinite(wall) else 0.0, compile_time, built.points,
                               _stage_starts(config, saved.step, history))
        (result,) = run_stacked(
            config, built, [config.seed], callback=callback, checkpoint=stacked_checkpoint,
            opt_state=stack(saved.opt_state), start_step=saved.step, histories=[saved.history],
            params=stack(eqx.filter(saved.model, eqx.is_inexact_array)))
        return result


def initial_state(config: RunConfig, stage: int = 0):
    """The seed's untrained model and a fresh optimizer state of plan stage ``stage`` (the shapes a checkpoint of
    this config must have). Call inside ``jax.enable_x64(config.double_precision)``.

    Example:
        >>> model, state = initial_state(RunConfig(width=8, depth=1, reweight="rba", points=100))
        >>> model.layers[0].weight.shape
        (8, 2)
    """
    model, _ = init_models(config, config.make_problem(), [config.seed], config.dtype)
    plan = plan_for(config)
    return model, plan.stages[stage].optimizer.init(eqx.filter(model, eqx.is_inexact_array))


def _stage_starts(config: RunConfig, step: int, history) -> tuple[int, ...]:
    """Where the stages of a run that stands at ``step`` began, as training reports them (from its history)."""
    lengths = [count for _, count in config.plan_spec().stages]  # the spec's counts add up to config.steps
    return tuple(resume_position(lengths, step, history)[1])


def _load_resume_state(config: RunConfig, built: Setup, resume_from):
    from pinnkit.checkpoint import load_checkpoint, read_checkpoint_info

    info = read_checkpoint_info(resume_from)
    if info.step > config.steps:
        raise ValueError(f"checkpoint {info.path} is at step {info.step}, past steps={config.steps}")
    stage = int(info.history.last(columns.STAGE)) if columns.STAGE in info.history else 0
    model, like_state = initial_state(config, stage)
    return load_checkpoint(info.path, model, like_state, expected_config=config)
