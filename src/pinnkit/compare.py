"""Run a grid of (optimizer plan x reweighting x seed) on one problem and gather tidy results.

Every run of a comparison shares the problem, the collocation points, the SNR batches, the reference, the network
architecture and the step budget; they are built once (once per precision). The runs of one plan that differ
only in numbers (the seed, the learning rate, whether the reweighting moves: "none" is the grid's reweighting held
at weight 1) are variants of one program and train together, vmapped (:mod:`pinnkit.variants`); two reweighting
schemes are two programs. A plan such as ``"adam+lbfgs"`` runs Adam until
``switch_step`` (default: half the budget), then L-BFGS, the reweighting weights carried over.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from pinnkit.engine import LogSchedule, Probes, TrainResult
from pinnkit.experiment import RunConfig, Setup, resolve_learning_rates, run_variants, setup, summarize
from pinnkit.history import History
from pinnkit.optimizers import FIRST_ORDER_OPTIMIZERS, REWEIGHTINGS, check_reweighting_options, reweighting_options
from pinnkit.paper_cases import PAPER_CASES, PAPER_STEPS
from pinnkit.plans import parse_plan
from pinnkit.summary import RunSummary
from pinnkit.variants import Variant, variant_groups

__all__ = ["CompareConfig", "CompareRun", "PRESETS", "aggregate", "compare", "preset"]

PRESETS: dict[str, dict[str, Any]] = {
    # The default: Adam and SGD, L-BFGS and a quasi-Newton plan (Adam then SSBroyden, float64), with and without
    # RBA, each optimizer's pair one vmapped program; the line-search plans run fewer iterations. What it shows and
    # what it costs: README (benchmarks/default_compare.py).
    "quick": dict(problem="helmholtz", optimizers=("adam", "sgd", "lbfgs:500", "adam:1000,ssbroyden:500"),
                  reweights=("none", "rba"), steps=2000, seeds=1, width=32, depth=4, points=2000,
                  learning_rate={"adam": 3e-3, "sgd": 1e-4}),
    # The former default: learning rates searched, every plan 2000 steps.
    "full": dict(problem="helmholtz", optimizers=("adam", "sgd", "lbfgs", "adam+ssbroyden"),
                 reweights=("none", "rba"), steps=2000, seeds=1, width=32, depth=3, points=2000,
                 learning_rate="auto"),
    # Allen-Cahn at CPU scale: RBA's plateau near 0.5 then a sharp fall as the SNR recovers; vanilla stays ~1.
    "phase-demo": dict(problem="allen-cahn", optimizers=("adam",), reweights=("none", "rba"), steps=40_000,
                       seeds=1, width=64, depth=4, points=2000, log=LogSchedule(200, dense_until=300)),
}
# The paper's cases at its own settings (pinnkit.paper_cases), vanilla and RBA: hours a run on a GPU.
PRESETS.update({
    case.preset: dict(case.settings(), optimizers=("adam",), reweights=("none", "rba"), steps=PAPER_STEPS,
                               seeds=1, reweight_options=case.reweight_options)
    for case in PAPER_CASES.values()
})
PRESETS["paper"] = PRESETS[PAPER_CASES["allen-cahn"].preset]  # the name this preset had before the three cases


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """A comparison grid. Fields not listed take :class:`pinnkit.experiment.RunConfig` defaults.

    Attributes:
        problem, problem_params: the problem.
        optimizers: optimizer plans (``"adam"``, ``"lbfgs"``, ``"adam+ssbroyden"``, ...; see :mod:`pinnkit.plans`).
        reweights: names from ``("none", "rba", "vrba", "gradient-aware")``.
        steps: steps per run (one line-search step is one iteration, its line search included); a plan whose
            stages all give their length (``"lbfgs:300"``) runs its own total (:meth:`steps_of`).
        seeds: number of seeds (network initialisations), run vmapped together.
        switch_step, switch_at: where two-stage plans switch (see :class:`RunConfig`).
        learning_rate: as in RunConfig (a number, ``"auto"`` or None for every plan), or a mapping from a
            first-order optimizer's name to its rate (or ``"auto"``) for the plans whose first first-order stage it
            is (``{"adam": 3e-3, "sgd": "auto"}``; a name it lacks takes the optimizer's default).
        width, depth, points, float64, log, probes, normalize_inputs, fourier_features, periodic,
        architecture, reweight_options, resampling, weights_first: as in RunConfig.
    """

    problem: str = "helmholtz"
    problem_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    optimizers: Sequence[str] = ("adam", "sgd", "lbfgs")
    reweights: Sequence[str] = ("none", "rba")
    steps: int = 2000
    seeds: int = 1
    switch_step: int | None = None
    switch_at: str | None = None
    width: int = 64
    depth: int = 4
    points: int = 2000
    learning_rate: float | str | Mapping[str, float | str] | None = None
    float64: bool | None = None
    log: LogSchedule = LogSchedule(every=50, dense_until=300)
    probes: Probes = Probes()
    normalize_inputs: bool = True
    fourier_features: int = 0
    periodic: bool = False
    architecture: str = "mlp"
    reweight_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    resampling: Any = None
    weights_first: bool = False

    def __post_init__(self) -> None:
        for field in ("optimizers", "reweights"):
            value = getattr(self, field)
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise TypeError(f"{field} must be a sequence of names, got {value!r}")
            if not value:
                raise ValueError(f"{field} must not be empty")
            duplicates = sorted({name for name in value if list(value).count(name) > 1})
            if duplicates:
                raise ValueError(f"{field} lists {duplicates[0]!r} more than once")
        for name in self.reweights:
            if name not in REWEIGHTINGS:
                raise ValueError(f"unknown reweighting {name!r}; choose from {list(REWEIGHTINGS)}")
        self._check_reweight_options()
        if isinstance(self.learning_rate, Mapping):
            unknown = [name for name in self.learning_rate if name not in FIRST_ORDER_OPTIMIZERS]
            if unknown:
                raise ValueError(f"learning rates are given for {unknown[0]!r}, not a first-order optimizer "
                                 f"{list(FIRST_ORDER_OPTIMIZERS)}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds <= 0:
            raise ValueError(f"seeds must be a positive integer, got {self.seeds!r}")
        used_switch = False
        for plan in self.optimizers:
            spec = parse_plan(plan, steps=self.steps_of(plan), switch_step=self.switch_step if "+" in plan else None,
                              switch_at=self.switch_at if "+" in plan else None)
            used_switch = used_switch or len(spec.stages) > 1 and "+" in plan
        if (self.switch_step is not None or self.switch_at is not None) and not used_switch:
            raise ValueError("--switch-step/--switch-at need a two-stage plan such as 'adam+lbfgs' among the "
                             "optimizers")
        for plan in self.optimizers:
            for reweight in self.reweights:
                self.run_config(plan, reweight)  # validates every run of the grid up front

    def _check_reweight_options(self) -> None:
        """Every option must be taken by every reweighting of the grid but "none" (which drops them): an option
        none of them takes would be silently ignored."""
        if not isinstance(self.reweight_options, Mapping):
            raise TypeError(f"reweight_options must be a mapping, got {type(self.reweight_options).__name__}")
        if not self.reweight_options:
            return
        reweighting = [name for name in self.reweights if name != "none"]
        for option in self.reweight_options:
            if any(option in reweighting_options(name) for name in reweighting):
                continue
            parts = [f"--reweight-option {option}: no reweighting in the list ({', '.join(self.reweights)}) takes it"]
            if not reweighting:
                parts.append("'none' takes no options")
            elif len(reweighting) == 1:
                parts.append(f"{reweighting[0]}'s options are {', '.join(reweighting_options(reweighting[0]))}")
            elsewhere = [name for name in REWEIGHTINGS[1:] if option in reweighting_options(name)]
            if elsewhere:
                parts.append(f"it is an option of {', '.join(elsewhere)}")
            raise ValueError("; ".join(parts))
        for name in reweighting:
            try:
                check_reweighting_options(name, self.reweight_options)
            except TypeError as error:
                raise ValueError(f"{error} (every reweighting in the list must take it)") from None

    def steps_of(self, plan: str) -> int:
        """The steps of a plan's runs: the plan's own total when every stage gives its length (``"lbfgs:300"``,
        ``"adam:1000,ssbroyden:300"``), else the grid's ``steps``.

        Example:
            >>> config = CompareConfig(optimizers=("adam", "lbfgs:300"), steps=1500)
            >>> config.steps_of("adam"), config.steps_of("lbfgs:300")
            (1500, 300)
        """
        try:
            return sum(count for _, count in parse_plan(plan).stages)
        except ValueError:
            return self.steps

    @property
    def total_steps(self) -> int:
        """The steps of every run of the grid together (one seed)."""
        return sum(self.steps_of(plan) for plan in self.optimizers) * len(self.reweights)

    def run_config(self, optimizer: str, reweight: str, seed: int = 0) -> RunConfig:
        """The configuration of one run of the grid (``learning_rate="auto"`` applies to plans with a first-order
        stage; the others keep their line search's own step)."""
        two_stage = "+" in optimizer
        learning_rate = self.learning_rate
        if isinstance(learning_rate, Mapping):
            stage = next((name for name in parse_plan(optimizer, steps=self.steps_of(optimizer)).names
                          if name in FIRST_ORDER_OPTIMIZERS), None)
            learning_rate = learning_rate.get(stage) if stage is not None else None
        if learning_rate == "auto" and not any(
                name in FIRST_ORDER_OPTIMIZERS for name in parse_plan(optimizer, steps=self.steps_of(optimizer)).names):
            learning_rate = None
        return RunConfig(
            problem=self.problem, problem_params=dict(self.problem_params), optimizer=optimizer,
            switch_step=self.switch_step if two_stage else None, switch_at=self.switch_at if two_stage else None,
            reweight=reweight, reweight_options=dict(self.reweight_options) if reweight != "none" else {},
            steps=self.steps_of(optimizer), learning_rate=learning_rate, seed=seed, width=self.width,
            depth=self.depth,
            points=self.points, float64=self.float64, log=self.log, probes=self.probes,
            normalize_inputs=self.normalize_inputs, fourier_features=self.fourier_features,
            architecture=self.architecture, resampling=self.resampling, periodic=self.periodic,
            weights_first=self.weights_first,
        )

    def to_dict(self) -> dict[str, Any]:
        out = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        out.update(learning_rate=dict(self.learning_rate) if isinstance(self.learning_rate, Mapping)
                   else self.learning_rate, problem_params=dict(self.problem_params), optimizers=list(self.optimizers),
                   reweights=list(self.reweights), reweight_options=dict(self.reweight_options),
                   log=self.log.to_dict(), probes=self.probes.to_dict(),
                   resampling=self.resampling.to_dict() if self.resampling is not None else None)
        return out


def preset(name: str, **overrides: Any) -> CompareConfig:
    """The named preset with some fields overridden (None values are ignored).

    Example:
        >>> preset("quick", steps=100).problem
        'helmholtz'
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    settings = dict(PRESETS[name])
    settings.update({key: value for key, value in overrides.items() if value is not None})
    return CompareConfig(**settings)


@dataclasses.dataclass
class CompareRun:
    """One (plan, reweighting, seed) run of a comparison: its summary, history and final state.

    Attributes:
        name: the file-safe name of the run (:func:`run_name`).
        summary: the run's :class:`~pinnkit.summary.RunSummary`.
        history: its history.
        result: what training returned.
        learning_rate_search: what the learning-rate search found (``learning_rate="auto"``), else None.
    """

    name: str
    summary: RunSummary
    history: History
    result: TrainResult
    learning_rate_search: dict[str, Any] | None = None

    @property
    def row(self) -> dict[str, Any]:
        """The run's row as JSON holds it: the summary's object, then the learning-rate search when one ran."""
        row = self.summary.to_dict()
        if self.learning_rate_search is not None:
            row["learning_rate_search"] = self.learning_rate_search
        return row


def run_name(problem: str, optimizer: str, reweight: str, seed: int) -> str:
    """The file-safe name of a run, e.g. ``helmholtz_adam-lbfgs_rba_seed0``.

    Example:
        >>> run_name("helmholtz", "adam:100,lbfgs:200", "rba", 0)
        'helmholtz_adam-100-lbfgs-200_rba_seed0'
    """
    safe = "".join(character if character.isalnum() else "-" for character in optimizer)
    return f"{problem}_{safe}_{reweight}_seed{seed}"


def compare(config: CompareConfig, *, callback: Callable[[str, int, int], Any] | None = None,
            on_run: Callable[[CompareRun], Any] | None = None,
            cells: Collection[tuple[str, str]] | None = None) -> list[CompareRun]:
    """Run the whole grid (or some of its cells).

    Args:
        config: the grid.
        callback: called as ``callback(run_label, step, total_steps)`` as runs progress.
        on_run: called with each :class:`CompareRun` as soon as it has finished (e.g. to save it at once, so
            that a later failure loses no finished run).
        cells: run only these (plan, reweighting) cells (:mod:`pinnkit.compare_processes` shares a grid out).

    Returns:
        One :class:`CompareRun` per (plan, reweighting, seed), in grid order.

    Example:
        >>> runs = compare(CompareConfig(optimizers=("adam",), reweights=("none",), steps=20, points=200,
        ...                              width=8, depth=1, log=LogSchedule(10), probes=Probes(snr_batches=10)))
        >>> runs[0].summary.optimizer, runs[0].summary.steps
        ('adam', 20)
    """
    seeds = list(range(config.seeds))
    setups: dict[bool, Setup] = {}
    searched: dict[Any, Any] = {}
    runs: list[CompareRun] = []
    for plan in config.optimizers:
        chosen = [reweight for reweight in config.reweights if cells is None or (plan, reweight) in cells]
        for group in variant_groups(chosen) if chosen else []:
            scheme = next((name for name in group if name != "none"), "none")
            run_config = config.run_config(plan, scheme)
            progress = None
            if callback is not None:
                def progress(step, row, plan=plan, group=group):
                    for reweight in group:  # one report per cell: a stack advances all its cells at once
                        callback(f"{plan}/{reweight}", step, config.steps_of(plan))
            double = run_config.double_precision
            with jax.enable_x64(double):
                if double not in setups:
                    setups[double] = setup(run_config)
                built = setups[double]
                # One search per first-order stage (optimizer, search length, reweightings), shared by the plans
                # that begin with it (Adam and Adam-then-SSBroyden), in the precision of the first that needs it.
                key = _search_key(run_config, group)
                if key not in searched:
                    searched[key] = resolve_learning_rates(run_config, built, group, seed=seeds[0])
                rates, searches = searched[key]
                variants = [Variant(seed, reweight, rates[reweight]) for reweight in group for seed in seeds]
                if run_config.plan_spec().switch_at is not None or run_config.resampling is not None:
                    # A switch decided by each run's own history, or points redrawn for each model: one at a time.
                    results = [run_variants(run_config, built, [variant], callback=progress)[0]
                               for variant in variants]
                else:
                    results = run_variants(run_config, built, variants, callback=progress)
            for variant, result in zip(variants, results, strict=True):
                own = dataclasses.replace(config.run_config(plan, variant.reweight),
                                          learning_rate=variant.learning_rate)
                search = searches[variant.reweight] if searches is not None else None
                finished = CompareRun(run_name(config.problem, plan, variant.reweight, variant.seed),
                                      summarize(own, result, seed=variant.seed), result.history, result,
                                      search.as_dict() if search is not None else None)
                runs.append(finished)
                if on_run is not None:
                    on_run(finished)
    order = {(plan, reweight): index for index, (plan, reweight) in
             enumerate((plan, reweight) for plan in config.optimizers for reweight in config.reweights)}
    return sorted(runs, key=lambda run: (order[run.summary.optimizer, run.summary.reweight], run.summary.seed))


def _search_key(run_config: RunConfig, group: Sequence[str]) -> Any:
    """What a learning-rate search depends on besides the set-up: the plan's first first-order stage, the search's
    length and the reweightings searched; a run whose rate is given keys on its own plan and rate."""
    if run_config.learning_rate != "auto":
        return (run_config.optimizer, tuple(group), run_config.learning_rate)
    name, count = next((name, count) for name, count in run_config.plan_spec().stages
                       if name in FIRST_ORDER_OPTIMIZERS)
    from pinnkit.lr_search import SEARCH_STEPS

    return ("auto", name, min(SEARCH_STEPS, count), tuple(group))


def aggregate(summaries: Sequence[RunSummary | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread over seeds for each (plan, reweighting): one row per pair.

    Args:
        summaries: the runs' summaries (a JSON object read back is converted with
            :meth:`~pinnkit.summary.RunSummary.from_dict`).

    Returns:
        The table's rows (JSON-ready dicts), in the order the pairs first appear.

    Example:
        >>> from pinnkit.engine import Outcome
        >>> summary = RunSummary(problem="p", optimizer="adam", plan="adam", reweight="none", learning_rate=None,
        ...                      seed=0, precision="float32", steps=10, rel_l2=0.1, best_rel_l2=0.1, final_loss=1.0,
        ...                      final_mse=1.0, wall_time_s=2.0, compile_time_s=1.0, steps_per_s=5.0,
        ...                      outcome=Outcome.COMPLETED, equilibrium_start=40)
        >>> aggregate([summary])[0]["seeds"]
        1
    """
    groups: dict[tuple[str, str], list[RunSummary]] = {}
    for item in summaries:
        summary = item if isinstance(item, RunSummary) else RunSummary.from_dict(item)
        groups.setdefault((summary.optimizer, summary.reweight), []).append(summary)
    out = []
    for (optimizer, reweight), members in groups.items():
        first = members[0]
        entry: dict[str, Any] = {"problem": first.problem, "optimizer": optimizer, "reweight": reweight,
                                 "seeds": len(members), "steps": first.steps, "precision": first.precision,
                                 "plan": first.plan}
        for key in ("rel_l2", "best_rel_l2", "final_loss", "final_mse", "wall_time_s", "compile_time_s",
                    "steps_per_s"):
            values = np.array([float(getattr(member, key)) for member in members], float)
            entry[key] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
            entry[f"{key}_std"] = float(np.nanstd(values)) if np.isfinite(values).any() else math.nan
        for key in ("diffusion_start", "equilibrium_start"):
            found = [getattr(member, key) for member in members if getattr(member, key) is not None]
            entry[key] = int(np.median(found)) if found else None
            entry[f"{key}_found"] = len(found)
        entry["diverged"] = sum(1 for member in members if not member.completed)
        out.append(entry)
    return out
