"""Run a grid of (optimizer x reweighting x seed) on one problem and gather tidy results.

Every run of a comparison shares the problem, the collocation points, the SNR batches, the network architecture
and the step budget; the seeds change the network initialisation only, and run together in one vmapped program.
``"adam+lbfgs"`` runs Adam for ``switch_step`` steps, then L-BFGS for the rest of the budget (reweighting weights
carried over and frozen inside each L-BFGS step).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax

from pinnkit.experiment import RunConfig, build, detect_transitions
from pinnkit.history import History
from pinnkit.optimizers import OPTIMIZERS, REWEIGHTINGS, make_optimizer
from pinnkit.train import Trainer, TrainResult, fit_stacked

__all__ = ["CompareConfig", "CompareRun", "PRESETS", "OPTIMIZER_CHOICES", "compare", "preset"]

OPTIMIZER_CHOICES = (*OPTIMIZERS, "adam+lbfgs")

PRESETS: dict[str, dict[str, Any]] = {
    # The default: finishes on 2 CPU cores in minutes and shows RBA's SNR dip-and-rise inside the window.
    "quick": dict(problem="helmholtz", optimizers=("adam", "sgd", "lbfgs"), reweights=("none", "rba"),
                  steps=2000, seeds=1, width=64, depth=4, points=2000),
    # Allen-Cahn at CPU scale: RBA's plateau near 0.5 then a sharp fall as the SNR recovers; vanilla stays ~1.
    "phase-demo": dict(problem="allen-cahn", optimizers=("adam",), reweights=("none", "rba"), steps=40_000,
                       seeds=1, width=64, depth=4, points=2000, log_every=200),
    # The paper's configuration, for a machine with a GPU.
    "paper": dict(problem="allen-cahn", optimizers=("adam",), reweights=("none", "rba"), steps=300_000,
                  seeds=1, width=128, depth=6, points=25_600, log_every=100, normalize_inputs=False),
}


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """A comparison grid. Unlisted fields of each run take :class:`pinnkit.experiment.RunConfig` defaults.

    Attributes:
        problem, problem_params: the problem.
        optimizers: names from ``("adam", "sgd", "lbfgs", "adam+lbfgs")``.
        reweights: names from ``("none", "rba", "gradient-aware")``.
        steps: steps per run (one L-BFGS step is one iteration, its line search included).
        seeds: number of seeds (network initialisations), run vmapped together.
        switch_step: for ``adam+lbfgs``, the Adam steps before switching (default: half the budget).
        width, depth, points, learning_rate, float64, log_every, snr_batches, normalize_inputs: as in RunConfig.
    """

    problem: str = "helmholtz"
    problem_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    optimizers: Sequence[str] = ("adam", "sgd", "lbfgs")
    reweights: Sequence[str] = ("none", "rba")
    steps: int = 2000
    seeds: int = 1
    switch_step: int | None = None
    width: int = 64
    depth: int = 4
    points: int = 2000
    learning_rate: float | None = None
    float64: bool = False
    log_every: int = 50
    snr_batches: int = 100
    normalize_inputs: bool = True

    def __post_init__(self) -> None:
        for name in self.optimizers:
            if name not in OPTIMIZER_CHOICES:
                raise ValueError(f"unknown optimizer {name!r}; choose from {list(OPTIMIZER_CHOICES)}")
        for name in self.reweights:
            if name not in REWEIGHTINGS:
                raise ValueError(f"unknown reweighting {name!r}; choose from {list(REWEIGHTINGS)}")
        if not self.optimizers or not self.reweights:
            raise ValueError("optimizers and reweights must not be empty")
        if not isinstance(self.seeds, int) or self.seeds <= 0:
            raise ValueError(f"seeds must be a positive integer, got {self.seeds!r}")
        if self.switch_step is not None and not 0 < self.switch_step < self.steps:
            raise ValueError(f"switch_step must lie strictly between 0 and steps={self.steps}, got {self.switch_step}")
        self.run_config("adam", "none", 0)  # validates the shared fields

    def run_config(self, optimizer: str, reweight: str, seed: int, steps: int | None = None) -> RunConfig:
        return RunConfig(
            problem=self.problem, problem_params=dict(self.problem_params), optimizer=optimizer,
            reweight=reweight, steps=steps or self.steps, learning_rate=self.learning_rate, seed=seed,
            width=self.width, depth=self.depth, points=self.points, float64=self.float64,
            log_every=self.log_every, snr_batches=self.snr_batches, normalize_inputs=self.normalize_inputs,
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(problem_params=dict(self.problem_params), optimizers=list(self.optimizers),
                   reweights=list(self.reweights))
        return out


def preset(name: str, **overrides: Any) -> CompareConfig:
    """The named preset with some fields overridden.

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
    """One (optimizer, reweighting, seed) run of a comparison: its summary row, history and final state."""

    name: str
    row: dict[str, Any]
    history: History
    result: TrainResult


def _stacked_models(config: RunConfig, seeds: Sequence[int]):
    """K networks of one architecture, initialised from seeds, stacked along a leading axis."""
    models = [build(dataclasses.replace(config, seed=seed))[1] for seed in seeds]
    params = [eqx.filter(model, eqx.is_inexact_array) for model in models]
    return jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *params)


def _stage(problem, model, optimizer_name, reweight, compare_config, points, snr_key, params, steps, start,
           histories, carried_weights, reference, callback):
    optimizer = make_optimizer(
        optimizer_name, learning_rate=compare_config.learning_rate, reweight=reweight,
        num_samples=compare_config.points if reweight != "none" else None,
    )
    trainer = Trainer(problem, model, optimizer, points, snr_batches=compare_config.snr_batches, snr_key=snr_key)
    opt_state = jax.vmap(trainer.optimizer.init)(params)
    if carried_weights is not None:
        opt_state = optax.tree.set(opt_state, weights=carried_weights)
    return fit_stacked(
        trainer, params, opt_state, steps=steps, log_every=compare_config.log_every,
        dense_until=300, dense_every=2, start_step=start, histories=histories, reference=reference,
        callback=callback,
    )


def compare(config: CompareConfig, *, callback: Callable[[str, int, int], Any] | None = None) -> list[CompareRun]:
    """Run the whole grid.

    Args:
        config: the grid.
        callback: called as ``callback(run_label, step, total_steps)`` as runs progress.

    Returns:
        One :class:`CompareRun` per (optimizer, reweighting, seed), in grid order.

    Example:
        >>> runs = compare(CompareConfig(optimizers=("adam",), reweights=("none",), steps=20, points=200,
        ...                              width=8, depth=1, log_every=10, snr_batches=10))
        >>> runs[0].row["optimizer"], runs[0].row["steps"]
        ('adam', 20)
    """
    seeds = list(range(config.seeds))
    runs: list[CompareRun] = []
    for optimizer_name in config.optimizers:
        for reweight in config.reweights:
            label = f"{optimizer_name}/{reweight}"
            base = config.run_config("adam" if optimizer_name == "adam+lbfgs" else optimizer_name, reweight, 0)
            problem, model, _, points, _ = build(base)
            snr_key = jax.random.split(jax.random.key(0), 3)[2]
            reference = problem.reference()
            params = _stacked_models(base, seeds)
            progress = (lambda step, row, label=label: callback(label, step, config.steps)) if callback else None
            if optimizer_name == "adam+lbfgs":
                switch = config.switch_step or config.steps // 2
                first = _stage(problem, model, "adam", reweight, config, points, snr_key, params, switch, 0, None,
                               None, reference, progress)
                stacked = lambda tree: jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *tree)
                params = stacked([eqx.filter(result.model, eqx.is_inexact_array) for result in first])
                weights = None
                if reweight != "none":
                    from pinnkit.reweight import sample_weights

                    weights = stacked([sample_weights(result.opt_state) for result in first])
                results = _stage(problem, model, "lbfgs", reweight, config, points, snr_key, params,
                                 config.steps - switch, switch, [result.history for result in first], weights,
                                 reference, progress)
                for first_result, result in zip(first, results, strict=True):
                    if first_result.status != "completed" and result.status == "completed":
                        results[results.index(result)] = result._replace(status=first_result.status)
            else:
                results = _stage(problem, model, optimizer_name, reweight, config, points, snr_key, params,
                                 config.steps, 0, None, None, reference, progress)
            for seed, result in zip(seeds, results, strict=True):
                runs.append(_summarize(config, optimizer_name, reweight, seed, result))
    return runs


def _summarize(config: CompareConfig, optimizer: str, reweight: str, seed: int, result: TrainResult) -> CompareRun:
    history = result.history
    errors = history["rel_l2"] if "rel_l2" in history else np.array([math.nan])
    finite = errors[np.isfinite(errors)]
    wall = history.last("wall_time_s")
    row: dict[str, Any] = {
        "problem": config.problem,
        "optimizer": optimizer,
        "reweight": reweight,
        "seed": seed,
        "steps": int(result.steps),
        "rel_l2": float(finite[-1]) if finite.size else math.nan,
        "best_rel_l2": float(finite.min()) if finite.size else math.nan,
        "final_loss": history.last("loss"),
        "wall_time_s": wall,
        "steps_per_s": float(result.steps / wall) if wall and wall > 0 else math.nan,
        "compile_time_s": float(result.compile_time_s),
        "status": result.status,
    }
    if "line_search_failures" in history:
        row["line_search_failures"] = int(np.nansum(history["line_search_failures"]))
    row.update(detect_transitions(history))
    name = f"{config.problem}_{optimizer}_{reweight}_seed{seed}".replace("+", "-")
    return CompareRun(name, row, history, result)


def aggregate(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread over seeds for each (optimizer, reweighting): one row per pair.

    Example:
        >>> aggregate([{"optimizer": "adam", "reweight": "none", "rel_l2": 0.1, "best_rel_l2": 0.1,
        ...             "final_loss": 1.0, "wall_time_s": 2.0, "steps_per_s": 5.0, "steps": 10,
        ...             "diffusion_start": None, "equilibrium_start": 40, "problem": "p"}])[0]["seeds"]
        1
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["optimizer"], row["reweight"]), []).append(row)
    out = []
    for (optimizer, reweight), members in groups.items():
        entry: dict[str, Any] = {"problem": members[0]["problem"], "optimizer": optimizer, "reweight": reweight,
                                 "seeds": len(members), "steps": members[0]["steps"]}
        for key in ("rel_l2", "best_rel_l2", "final_loss", "wall_time_s", "steps_per_s"):
            values = np.array([float(member[key]) for member in members], float)
            entry[key] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
            entry[f"{key}_std"] = float(np.nanstd(values)) if np.isfinite(values).any() else math.nan
        for key in ("diffusion_start", "equilibrium_start"):
            found = [member[key] for member in members if member.get(key) is not None]
            entry[key] = int(np.median(found)) if found else None
            entry[f"{key}_found"] = len(found)
        out.append(entry)
    return out
