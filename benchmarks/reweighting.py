"""Does sample reweighting help, per problem and optimizer plan, and does vRBA raise the gradient SNR in diffusion?

What it measures. Five schemes train the same networks (seeds 0..K-1, vmapped in one program with
``pinnkit.experiment.run_stacked``) on the same collocation points, SNR batches and step budget:

* ``none``: no reweighting;
* ``rba``: residual-based attention (``pinnkit.reweight.rba``, library defaults: eta = 1e-3, gamma = 0.999, max
  normalisation, weights start at 0);
* ``vrba-exp`` / ``vrba-lin``: variational RBA with the exponential / linear potential (``pinnkit.reweight.vrba``,
  annealed temperature, library defaults);
* ``gradient-aware``: pinnkit's gradient-aware RBA (``pinnkit.reweight.gradient_aware_rba``, p = 1),

under two optimizer plans, ``adam`` (every step Adam, float32) and ``adam+ssbroyden`` (Adam, then SSBroyden from
``switch_step`` on, float64 throughout as the library chooses for plans with a line search; the weights held for
the quasi-Newton stage, ``hold_every="auto"``), on three problems: Helmholtz (a1 = 1, a2 = 4), Allen-Cahn and
Burgers. Two variants the issue asks about run next to them:

* ``rba-snr1``: RBA with ``snr_coupling=1.0`` (the weights move at the rate ``min(1, 1 / snr)``, snr the last
  batch-gradient SNR recorded), under ``adam``; compared against ``rba``;
* ``rba-qn-advance`` / ``vrba-exp-qn-advance``: RBA / vRBA (exponential) under ``adam+ssbroyden`` with the weights
  advanced every quasi-Newton iteration (``hold_every=1``) instead of held for the stage; compared against
  ``rba`` / ``vrba-exp``.

Per (problem, plan, scheme) it reports the per-seed final relative L2 error (last logged row), the best one (the
lowest of any row, chosen with hindsight), training seconds (all seeds together, compilation excluded) and
ms/step, the diffusion and diffusion-equilibrium onsets per seed (``pinnkit.diagnostics.detect_transitions``), and
the median batch-gradient SNR in the diffusion phase (:data:`SNR_DIFFUSION_DEFINITION`), and a verdict per cell
(:data:`VERDICT_RULE`).

Writes every run's history to ``benchmarks/results/reweighting/histories/`` (one CSV per seed and one JSON
sidecar per cell with its configuration and timings), the JSON ``benchmarks/results/reweighting.json`` and the
Markdown table ``benchmarks/results/reweighting/table.md``. ``--from-results`` rebuilds the JSON and the Markdown
from the saved histories without training (to re-detect the transitions after a detector change).

Usage:
    python benchmarks/reweighting.py [--json] [--quick] [--problems P ...] [--schemes S ...]
                                     [--results-dir DIR] [--from-results] [--resume]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _machine import provenance

from pinnkit import columns

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# the training stack with its reweightings, and the detector.
MEASURES = ("src/pinnkit/engine", "src/pinnkit/experiment.py", "src/pinnkit/nn.py", "src/pinnkit/derivatives.py",
            "src/pinnkit/problems", "src/pinnkit/reference", "src/pinnkit/optimizers.py", "src/pinnkit/plans.py",
            "src/pinnkit/quasi_newton.py", "src/pinnkit/scaling_rules.py", "src/pinnkit/optimizer_registry.py",
            "src/pinnkit/curvature.py", "src/pinnkit/reweight", "src/pinnkit/sampling.py",
            "src/pinnkit/diagnostics", "src/pinnkit/history.py", "src/pinnkit/compilation_cache.py")

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
NAME = "reweighting"

PROBLEMS: dict[str, dict[str, float]] = {"helmholtz": {"a1": 1.0, "a2": 4.0}, "allen-cahn": {}, "burgers": {}}
PLANS = ("adam", "adam+ssbroyden")


@dataclasses.dataclass(frozen=True)
class Scheme:
    """One row of the grid: a reweighting with its options, the plans it runs under and what it is compared to."""

    name: str
    reweight: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    hold_every: int | None | str = "auto"
    plans: tuple[str, ...] = PLANS
    against: str | None = None  # a variant: the scheme it is measured against (besides "none")
    label: str = ""


SCHEMES: dict[str, Scheme] = {scheme.name: scheme for scheme in (
    Scheme("none", "none", label="no reweighting"),
    Scheme("rba", "rba", label="RBA"),
    Scheme("vrba-exp", "vrba", {"potential": "exponential"}, label="vRBA, exponential potential"),
    Scheme("vrba-lin", "vrba", {"potential": "linear"}, label="vRBA, linear potential"),
    Scheme("gradient-aware", "gradient-aware", label="gradient-aware RBA"),
    Scheme("rba-snr1", "rba", {"snr_coupling": 1.0}, plans=("adam",), against="rba",
           label="RBA with snr_coupling = 1"),
    Scheme("rba-qn-advance", "rba", hold_every=1, plans=("adam+ssbroyden",), against="rba",
           label="RBA, weights advanced every SSBroyden iteration"),
    Scheme("vrba-exp-qn-advance", "vrba", {"potential": "exponential"}, hold_every=1, plans=("adam+ssbroyden",),
           against="vrba-exp", label="vRBA (exp.), weights advanced every SSBroyden iteration"),
)}
MAIN_SCHEMES = ("none", "rba", "vrba-exp", "vrba-lin", "gradient-aware")


@dataclasses.dataclass(frozen=True)
class Scale:
    """The sizes of one mode."""

    width: int
    depth: int
    points: int
    steps: int
    switch_step: int  # adam+ssbroyden: Adam steps before SSBroyden
    snr_batches: int
    log_every: int
    dense_until: int
    dense_every: int
    seeds: int


# CPU scale (2 shared cores), measured first on Burgers, 3 seeds vmapped, 3000 steps, 2000 points: Adam (float32)
# 45 s per cell; Adam+SSBroyden (float64) 187 s (52 s for 2000 Adam steps, 135 s for 1000 SSBroyden iterations);
# gradient-aware RBA 189 s / 492 s; 25-60 s of compilation per cell. The 39 cells would take ~110 minutes of
# training (~2.2 hours with compilation); 1000 points halve the step cost (measured: 46 -> 24 s for 600 steps).
FULL = Scale(width=20, depth=3, points=1000, steps=3000, switch_step=2000, snr_batches=100, log_every=50,
             dense_until=300, dense_every=2, seeds=3)
QUICK = Scale(width=8, depth=1, points=200, steps=6, switch_step=4, snr_batches=10, log_every=1, dense_until=0,
              dense_every=1, seeds=2)

# Where the diffusion window starts when the detector finds no diffusion onset: the end of the dense logging,
# past the paper's drift phase (70-180 iterations at its scale, shared/docs/paper.md section 3).
DIFFUSION_FALLBACK_START = 300
MIN_WINDOW_ROWS = 3
# A fixed window that does not depend on the detector: the second half of the first stage (weights near their
# fixed point: 1 - 0.999 ** 1000 = 63% of it at the window's start with gamma = 0.999).
LATE_WINDOW_FRACTION = 0.5

SNR_DIFFUSION_DEFINITION = (
    "For each seed: the median of the logged batch-gradient SNR (`snr` column: ||mean_b g_b|| / ||std_b g_b|| over "
    "the B fixed batches, weight matrices only, gradients of the loss being minimised, i.e. with the reweighting "
    "weights of that step) over the rows of the first (Adam) stage with d <= step < e, where d is the detected "
    f"diffusion onset (`detect_transitions`), or step {DIFFUSION_FALLBACK_START} when none is detected, and e is "
    "the detected equilibrium onset when one is detected after d, else the last step of the first stage "
    "(inclusive). Fewer than "
    f"{MIN_WINDOW_ROWS} rows in the window: no value. A cell's value is the geometric mean over its seeds; "
    "'x none' is that divided by the no-reweighting cell's value (same problem and plan)."
)
# A relative L2 error of 1 is what u = 0 scores: errors at or above it all mean "did not learn the solution" and
# are compared as equal (a run stuck at u = 0 must not "beat" one that overshoots to 3).
ERROR_CAP = 1.0
VERDICT_RULE = (
    "Verdict against no reweighting (same problem and plan), from the per-seed final relative L2 errors, each "
    f"capped at {ERROR_CAP:g} first (the error of predicting u = 0: every error at or above it means the run did "
    f"not learn the solution, and such runs tie; a seed that diverged counts as {ERROR_CAP:g} too): "
    "**helps** when the scheme's geometric mean is lower AND every seed of the scheme ends below every seed of "
    "no reweighting (the seed ranges do not overlap); **hurts** when the geometric mean is higher and every seed "
    "ends above every seed of no reweighting; otherwise **no difference within seed spread**. With 3 seeds each, "
    "complete separation is the one-sided Mann-Whitney test at p = 0.05. The ratios ('x none') are of the "
    "geometric means of the capped errors too."
)
SNR_LATE_DEFINITION = (
    "For each seed: the median of the logged `snr` over the rows of the first stage with step in [E / 2, E], E the "
    "last step of the first stage (Adam): a fixed window that does not depend on the transition detector. A cell's "
    "value is the geometric mean over its seeds. Next to it, the constraint share: the median over the same rows "
    "of (initial/boundary loss terms) / loss, median over seeds; every SNR batch carries the whole constraint "
    "terms (the paper's convention), which add to the mean batch gradient but not to its spread, so a larger share "
    "alone raises the SNR."
)
BEST_NOTE = ("best rel. L2 (with hindsight): the lowest test error of any logged row; training cannot see the "
             "test error, so it only shows how far the final error is from the best the run passed through")


def log(message: str) -> None:
    """Progress on stderr, so that ``--json`` keeps stdout to one JSON object."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------------
# The grid


def run_configs(scale: Scale, problems: Sequence[str], schemes: Sequence[str]):
    """``(problem, plan, scheme, RunConfig)`` for every cell of the grid, problem-major."""
    from pinnkit.engine import LogSchedule, Probes
    from pinnkit.experiment import RunConfig

    out = []
    for problem in problems:
        for plan in PLANS:
            for name in schemes:
                scheme = SCHEMES[name]
                if plan not in scheme.plans:
                    continue
                config = RunConfig(
                    problem=problem, problem_params=PROBLEMS[problem], optimizer=plan,
                    switch_step=scale.switch_step if "+" in plan else None, reweight=scheme.reweight,
                    reweight_options=dict(scheme.options), hold_every=scheme.hold_every, steps=scale.steps,
                    seed=0, width=scale.width, depth=scale.depth, points=scale.points,
                    log=LogSchedule(every=scale.log_every, dense_until=scale.dense_until,
                                    dense_every=scale.dense_every),
                    probes=Probes(snr_batches=scale.snr_batches))
                out.append((problem, plan, name, config))
    return out


def cell_stem(problem: str, plan: str, scheme: str) -> str:
    return f"{problem}__{plan}__{scheme}"


def train(scale: Scale, problems: Sequence[str], schemes: Sequence[str], results_dir: Path, *,
          resume: bool = False) -> None:
    """Train every cell (its seeds vmapped in one program) and save its histories and sidecar."""
    import jax

    from pinnkit.experiment import run_stacked, setup

    histories = results_dir / NAME / "histories"
    histories.mkdir(parents=True, exist_ok=True)
    seeds = list(range(scale.seeds))
    grid = run_configs(scale, problems, schemes)
    setups: dict[tuple[str, bool], Any] = {}
    for index, (problem, plan, scheme, config) in enumerate(grid, 1):
        stem = cell_stem(problem, plan, scheme)
        sidecar = histories / f"{stem}.json"
        if resume and sidecar.exists():
            saved = json.loads(sidecar.read_text())
            if saved.get("config") == json_ready(config.to_dict()) and saved.get("seeds") == seeds:
                log(f"({index}/{len(grid)}) {stem}: kept from an earlier run")
                continue
        log(f"({index}/{len(grid)}) {stem}: training {len(seeds)} seeds, {config.steps} steps")
        start = time.perf_counter()
        double = config.double_precision
        with jax.enable_x64(double):
            if (problem, double) not in setups:
                setups[(problem, double)] = setup(config)
            results = run_stacked(config, setups[(problem, double)], seeds)
        total = time.perf_counter() - start
        for seed, result in zip(seeds, results, strict=True):
            result.history.to_csv(histories / f"{stem}__seed{seed}.csv")
        record = {
            "problem": problem, "plan": plan, "scheme": scheme, "seeds": seeds,
            "config": config.to_dict(), "precision": "float64" if double else "float32",
            "status": [result.status for result in results],
            "steps": [int(result.steps) for result in results],
            # The seeds ran together in one program: one wall time for all of them, compilation excluded.
            "train_seconds": max(float(result.wall_time_s) for result in results),
            "compile_seconds": max(float(result.compile_time_s) for result in results),
            "total_seconds": total,
            "stage_starts": [int(step) for step in results[0].stage_starts],
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        write_text(sidecar, json.dumps(json_ready(record), indent=1) + "\n")
        finals = [result.history.last(columns.REL_L2) for result in results]
        log(f"    final rel L2 {' / '.join(f'{value:.3g}' for value in finals)}; "
            f"{record['train_seconds']:.0f} s train, {record['compile_seconds']:.0f} s compile")


# --------------------------------------------------------------------------------------------------------------
# Analysis of saved histories


def finite(values) -> np.ndarray:
    values = np.asarray(values, float)
    return values[np.isfinite(values)]


def first_stage_end(history, stage_starts: Sequence[int]) -> int:
    """The last step of the plan's first stage (the run's last step for one-stage plans)."""
    steps = history[columns.STEP]
    if columns.STAGE in history and np.any(history[columns.STAGE] > 0):
        return int(steps[history[columns.STAGE] == 0].max())
    if len(stage_starts) > 1:
        return int(stage_starts[1])
    return int(steps.max())


def snr_in_diffusion(history, transitions: Mapping[str, int | None], stage_starts: Sequence[int]):
    """``(median SNR, [d, e], rows)`` of the diffusion window (:data:`SNR_DIFFUSION_DEFINITION`)."""
    if columns.SNR not in history or len(history) == 0:
        return None, None, 0
    steps, snr = history[columns.STEP], history[columns.SNR]
    end_of_stage = first_stage_end(history, stage_starts)
    start = transitions.get("diffusion_start")
    start = DIFFUSION_FALLBACK_START if start is None else int(start)
    end = transitions.get("equilibrium_start")
    if end is not None and start < int(end) <= end_of_stage:
        inside = (steps >= start) & (steps < int(end))
        window = [start, int(end)]
    else:
        inside = (steps >= start) & (steps <= end_of_stage)
        window = [start, end_of_stage]
    if columns.STAGE in history:
        inside &= history[columns.STAGE] == 0
    values = finite(snr[inside])
    if values.size < MIN_WINDOW_ROWS:
        return None, window, int(values.size)
    return float(np.median(values)), window, int(values.size)


def late_window(history, stage_starts: Sequence[int]) -> np.ndarray:
    """The rows of the second half of the first stage (a boolean mask)."""
    end = first_stage_end(history, stage_starts)
    steps = history[columns.STEP]
    inside = (steps >= LATE_WINDOW_FRACTION * end) & (steps <= end)
    if columns.STAGE in history:
        inside &= history[columns.STAGE] == 0
    return inside


def snr_late(history, stage_starts: Sequence[int]) -> float | None:
    """The median SNR over the second half of the first stage (:data:`SNR_LATE_DEFINITION`)."""
    if columns.SNR not in history or len(history) == 0:
        return None
    values = finite(history[columns.SNR][late_window(history, stage_starts)])
    return float(np.median(values)) if values.size >= MIN_WINDOW_ROWS else None


def constraint_share_late(history, stage_starts: Sequence[int], collocation_terms: Sequence[str]) -> float | None:
    """The median over the second half of the first stage of the constraint terms' share of the loss.

    Every SNR batch carries the whole constraint terms (the paper's convention): they add to the mean batch gradient
    but not to its spread, so a loss dominated by them has a high SNR whatever the PDE term does.
    """
    prefix = columns.loss_term("")
    terms = [name for name in history.columns if name.startswith(prefix)]
    constraints = [name for name in terms if name.removeprefix(prefix) not in collocation_terms]
    if columns.LOSS not in history or not terms or len(history) == 0:
        return None
    inside = late_window(history, stage_starts)
    total = history[columns.LOSS][inside]
    if not constraints:
        return 0.0
    share = sum(history[name][inside] for name in constraints) / np.where(total > 0, total, np.nan)
    values = finite(share)
    return float(np.median(values)) if values.size else None


def geometric_mean(values: Sequence[float | None]) -> float | None:
    """Geometric mean of positive values; inf when one is inf (a diverged seed), None when none is usable."""
    usable = [value for value in values if value is not None and not math.isnan(value) and value > 0]
    if not usable:
        return None
    if any(math.isinf(value) for value in usable):
        return math.inf
    return float(math.exp(sum(math.log(value) for value in usable) / len(usable)))


def capped(errors: Sequence[float | None]) -> list[float]:
    """Per-seed errors capped at :data:`ERROR_CAP` (a diverged or missing seed counts as the cap)."""
    return [ERROR_CAP if value is None or not math.isfinite(value) else min(value, ERROR_CAP) for value in errors]


def verdict(errors: Sequence[float], reference: Sequence[float]) -> str:
    """:data:`VERDICT_RULE` applied to two sets of per-seed final errors (inf for a diverged seed)."""
    errors, reference = capped(errors), capped(reference)
    mine, theirs = geometric_mean(errors), geometric_mean(reference)
    if mine is None or theirs is None:
        return "no result"
    if mine < theirs and max(errors) < min(reference):
        return "helps"
    if mine > theirs and min(errors) > max(reference):
        return "hurts"
    return "no difference within seed spread"


def analyze_cell(histories_dir: Path, sidecar: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers of one (problem, plan, scheme) cell from its saved histories."""
    from pinnkit import problems as registry
    from pinnkit.diagnostics.transitions import detect_transitions
    from pinnkit.engine import Outcome
    from pinnkit.history import History

    stem = cell_stem(sidecar["problem"], sidecar["plan"], sidecar["scheme"])
    collocation_terms = tuple(registry.get(sidecar["problem"], **sidecar["config"]["problem_params"]).collocation_terms)
    entry: dict[str, Any] = {key: sidecar[key] for key in ("problem", "plan", "scheme", "seeds", "precision",
                                                          "status", "train_seconds", "compile_seconds",
                                                          "stage_starts")}
    # Each cell's own wall time (training, compilation, writing): a grid resumed over several sessions sums them.
    entry["cell_seconds"] = sidecar.get("total_seconds")
    scheme = SCHEMES.get(sidecar["scheme"])
    config = sidecar["config"]
    entry.update(reweight=config["reweight"], reweight_options=config["reweight_options"],
                 hold_every=config["hold_every"], against=scheme.against if scheme else None)
    steps = max(sidecar["steps"])
    entry["steps"] = steps
    entry["ms_per_step"] = 1000 * sidecar["train_seconds"] / steps if steps else None
    per_seed: dict[str, list] = {key: [] for key in (
        "final_rel_l2", "best_rel_l2", "diffusion_start", "equilibrium_start", "snr_diffusion",
        "snr_diffusion_window", "snr_diffusion_rows", "snr_late", "constraint_share_late", "final_loss",
        "final_mse", "line_search_failures", "stage_seconds")}
    for seed, status in zip(sidecar["seeds"], sidecar["status"], strict=True):
        history = History.from_csv(histories_dir / f"{stem}__seed{seed}.csv")
        errors = finite(history[columns.REL_L2]) if columns.REL_L2 in history else np.array([])
        diverged = Outcome.parse(status)[0] is not Outcome.COMPLETED
        per_seed["final_rel_l2"].append(math.inf if diverged or not errors.size else float(errors[-1]))
        per_seed["best_rel_l2"].append(float(errors.min()) if errors.size else None)
        per_seed["final_mse"].append(history.last(columns.MSE) if columns.MSE in history else None)
        per_seed["final_loss"].append(history.last(columns.LOSS) if columns.LOSS in history else None)
        transitions = detect_transitions(history)
        per_seed["diffusion_start"].append(transitions["diffusion_start"])
        per_seed["equilibrium_start"].append(transitions["equilibrium_start"])
        value, window, rows = snr_in_diffusion(history, transitions, sidecar["stage_starts"])
        per_seed["snr_diffusion"].append(value)
        per_seed["snr_diffusion_window"].append(window)
        per_seed["snr_diffusion_rows"].append(rows)
        per_seed["snr_late"].append(snr_late(history, sidecar["stage_starts"]))
        per_seed["constraint_share_late"].append(
            constraint_share_late(history, sidecar["stage_starts"], collocation_terms))
        per_seed[columns.LINE_SEARCH_FAILURES].append(
            int(np.nansum(history[columns.LINE_SEARCH_FAILURES])) if columns.LINE_SEARCH_FAILURES in history else None)
        per_seed["stage_seconds"].append(stage_seconds(history))
    entry.update(per_seed)
    entry["stage_seconds"] = per_seed["stage_seconds"][0]  # the seeds share one clock
    finals = [value for value in entry["final_rel_l2"] if value is not None]
    entry["final_rel_l2_geomean"] = geometric_mean(finals)
    entry["final_rel_l2_capped_geomean"] = geometric_mean(capped(finals))
    usable = finite([value for value in finals if not math.isinf(value)])
    entry["final_rel_l2_mean"] = float(usable.mean()) if usable.size else None
    entry["final_rel_l2_std"] = float(usable.std()) if usable.size else None
    entry["best_rel_l2_geomean"] = geometric_mean(entry["best_rel_l2"])
    entry["snr_diffusion_geomean"] = geometric_mean(entry["snr_diffusion"])
    entry["snr_late_geomean"] = geometric_mean(entry["snr_late"])
    shares = finite([value for value in entry["constraint_share_late"] if value is not None])
    entry["constraint_share_late_median"] = float(np.median(shares)) if shares.size else None
    # The loss being minimised over the unweighted one at the end: ~ the mean squared weight where the PDE term
    # dominates (1 without reweighting; near 0 when the weights never grew).
    entry["loss_over_mse"] = geometric_mean([ratio(loss, mse) for loss, mse in
                                             zip(entry["final_loss"], entry["final_mse"], strict=True)])
    if len(entry["stage_seconds"]) > 1 and len(entry["stage_starts"]) > 1:
        iterations = steps - entry["stage_starts"][1]
        entry["second_stage_ms_per_step"] = 1000 * entry["stage_seconds"][1] / iterations if iterations else None
    return entry


def stage_seconds(history) -> list[float]:
    """Training seconds spent in each stage (from the ``wall_time_s`` column)."""
    if columns.WALL_TIME not in history or len(history) == 0:
        return []
    wall = history[columns.WALL_TIME]
    stage = history[columns.STAGE] if columns.STAGE in history else np.zeros(len(history))
    out, previous = [], 0.0
    for index in range(int(np.nanmax(stage)) + 1):
        rows = np.flatnonzero(stage == index)
        if rows.size == 0:
            out.append(0.0)
            continue
        last = float(wall[rows[-1]])
        out.append(last - previous)
        previous = last
    return out


def compare_cells(cells: list[dict[str, Any]]) -> None:
    """Add to each cell its ratio, SNR ratio and verdict against no reweighting (and against its base)."""
    index = {(cell["problem"], cell["plan"], cell["scheme"]): cell for cell in cells}
    for cell in cells:
        for key, other_name in (("none", "none"), ("base", cell.get("against"))):
            other = index.get((cell["problem"], cell["plan"], other_name)) if other_name else None
            if other is None or other is cell:
                cell[f"vs_{key}"] = None
                continue
            cell[f"vs_{key}"] = {
                "scheme": other_name,
                "final_rel_l2_ratio": ratio(cell["final_rel_l2_capped_geomean"],
                                            other["final_rel_l2_capped_geomean"]),
                "final_rel_l2_uncapped_ratio": ratio(cell["final_rel_l2_geomean"], other["final_rel_l2_geomean"]),
                "best_rel_l2_ratio": ratio(cell["best_rel_l2_geomean"], other["best_rel_l2_geomean"]),
                "snr_diffusion_ratio": ratio(cell["snr_diffusion_geomean"], other["snr_diffusion_geomean"]),
                "snr_late_ratio": ratio(cell["snr_late_geomean"], other["snr_late_geomean"]),
                "time_ratio": ratio(cell["train_seconds"], other["train_seconds"]),
                "verdict": verdict(cell["final_rel_l2"], other["final_rel_l2"]),
            }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or not (math.isfinite(numerator) and math.isfinite(denominator)):
        return None
    if denominator == 0:
        return None
    return numerator / denominator


def scheme_lines(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per reweighting scheme and plan: does it beat or match no reweighting on at least two of the problems?"""
    out = []
    for name in SCHEMES:
        if name == "none":
            continue
        for plan in PLANS:
            mine = [cell for cell in cells if cell["scheme"] == name and cell["plan"] == plan and cell["vs_none"]]
            if not mine:
                continue
            verdicts = {cell["problem"]: cell["vs_none"]["verdict"] for cell in mine}
            ok = [problem for problem, word in verdicts.items() if word != "hurts" and word != "no result"]
            out.append({"scheme": name, "plan": plan, "verdicts": verdicts, "beats_or_matches_on": ok,
                        "problems": len(verdicts), "answer": len(ok) >= min(2, len(verdicts))})
    return out


def analyze(results_dir: Path, problems: Sequence[str] | None = None,
            schemes: Sequence[str] | None = None) -> tuple[list[dict[str, Any]], Scale | None]:
    """Every saved cell (optionally restricted to some problems and schemes), analysed and compared, and the
    sizes they were trained at (read from their saved configurations)."""
    histories_dir = results_dir / NAME / "histories"
    cells = []
    order = {name: rank for rank, name in enumerate(SCHEMES)}
    problem_order = {name: rank for rank, name in enumerate(PROBLEMS)}
    sidecars = []
    for path in sorted(histories_dir.glob("*.json")):
        sidecar = json.loads(path.read_text())
        if problems is not None and sidecar["problem"] not in problems:
            continue
        if schemes is not None and sidecar["scheme"] not in schemes:
            continue
        sidecars.append(sidecar)
    sidecars.sort(key=lambda s: (problem_order.get(s["problem"], 99), PLANS.index(s["plan"])
                                 if s["plan"] in PLANS else 99, order.get(s["scheme"], 99)))
    for sidecar in sidecars:
        cells.append(analyze_cell(histories_dir, sidecar))
    compare_cells(cells)
    return cells, scale_of(sidecars)


def scale_of(sidecars: Sequence[Mapping[str, Any]]) -> Scale | None:
    """The sizes of the saved cells (from their configurations); a warning when they differ."""
    scales = set()
    for sidecar in sidecars:
        config = sidecar["config"]
        switch = config["switch_step"] if config["switch_step"] is not None else None
        scales.add((config["width"], config["depth"], config["points"], config["steps"], switch,
                    config["probes"]["snr_batches"], config["log"]["every"], config["log"]["dense_until"],
                    config["log"]["dense_every"], len(sidecar["seeds"])))
    if not scales:
        return None
    switches = {scale[4] for scale in scales if scale[4] is not None}
    merged = {scale[:4] + scale[5:] for scale in scales}
    if len(merged) > 1 or len(switches) > 1:
        log(f"warning: the saved cells were trained at different sizes: {sorted(merged)}, switch {switches}")
    first = sorted(merged)[0]
    width, depth, points, steps, batches, every, dense_until, dense_every, seeds = first
    switch = min(switches) if switches else steps
    return Scale(width=width, depth=depth, points=points, steps=steps, switch_step=switch, snr_batches=batches,
                 log_every=every, dense_until=dense_until, dense_every=dense_every, seeds=seeds)


# --------------------------------------------------------------------------------------------------------------
# Environment, JSON


def machine() -> dict[str, Any]:
    """Platform, cores and package versions."""
    versions = {}
    for package in ("pinnkit", "jax", "jaxlib", "equinox", "optax", "numpy", "jaxtyping"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    import jax

    return {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "jax_backend": jax.default_backend(), "versions": versions,
            "note": "2 CPU cores shared with other jobs while measuring: wall times are noisy"}


def json_ready(value: Any) -> Any:
    """``value`` with NaN/inf as None, NumPy scalars as Python ones and mappings as dicts, ready for JSON."""
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_text(path: Path, text: str) -> None:
    from pinnkit.atomic import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


def settings(scale: Scale, mode: str) -> dict[str, Any]:
    return {
        "mode": mode, **dataclasses.asdict(scale), "architecture": "tanh MLP, inputs mapped onto [-1, 1]",
        "learning_rate": "1e-3, x0.9 every 5000 steps (the library default)",
        "plans": {"adam": f"{scale.steps} Adam steps, float32",
                  "adam+ssbroyden": f"{scale.switch_step} Adam steps, then {scale.steps - scale.switch_step} "
                                    "SSBroyden iterations (line search included), float64"},
        "problems": {name: dict(params) for name, params in PROBLEMS.items()},
        "schemes": {name: {"reweight": scheme.reweight, "options": dict(scheme.options),
                           "hold_every": scheme.hold_every, "plans": list(scheme.plans),
                           "against": scheme.against, "label": scheme.label} for name, scheme in SCHEMES.items()},
        "why": None if mode != "full" else (
                "CPU scale for 2 shared cores: the whole grid (39 cells x 3 vmapped seeds) in about 90 minutes. "
                "Measured first (3 seeds vmapped, 2 cores shared with another benchmark): a 3x30 network costs ~2x "
                "a 3x20 one per step; at 3x20 and 2000 points a Burgers cell took 45 s of training under Adam and "
                "187 s under Adam+SSBroyden (52 s for 2000 float64 Adam steps, 135 s for 1000 SSBroyden "
                "iterations), gradient-aware RBA 189 s / 492 s, plus 16-57 s of compilation per cell: ~110 min "
                "of training for the grid. 1000 points halve the cost of a step (measured 46 -> 24 s for 600 "
                "steps) and keep the 3000-step budget and the 2000 + 1000 split of the issue."),
    }


def payload(cells: list[dict[str, Any]], scale: Scale, mode: str, command: str,
            total_seconds: float | None, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON object. ``previous``: the JSON of the training run that ``--from-results`` re-analyses (its
    command, date, machine and total time are kept)."""
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    out = {
        "benchmark": NAME,
        "question": ("Does each reweighting scheme help, per problem and optimizer plan, and does vRBA raise the "
                     "gradient SNR in the diffusion phase?"),
        "command": command,
        "date": now,
        "machine": machine(),
        "settings": settings(scale, mode),
        "definitions": {"snr_diffusion": SNR_DIFFUSION_DEFINITION, "snr_late": SNR_LATE_DEFINITION,
                        "verdict": VERDICT_RULE,
                        "best_rel_l2": BEST_NOTE,
                        "train_seconds": "training seconds of the cell, all seeds together in one vmapped program, "
                                         "compilation excluded; ms_per_step = 1000 train_seconds / steps",
                        "final_rel_l2": "relative L2 error of the last logged row (inf: the seed diverged)"},
        "total_seconds": total_seconds,
        "cells": cells,
        "scheme_lines": scheme_lines(cells),
    }
    out["provenance"] = provenance()
    if previous is not None:
        # The training run's commit stays the result's; the re-analysis records its own beside it.
        out.update(command=previous.get("command", command), date=previous.get("date", now),
                   machine=previous.get("machine", out["machine"]),
                   provenance=previous.get("provenance", out["provenance"]),
                   reanalysed={"command": command, "date": now, "provenance": out["provenance"]})
    # Every results JSON carries the package versions at the top level (docs/render.py's convention).
    out["versions"] = out["machine"].get("versions", {})
    return out


# --------------------------------------------------------------------------------------------------------------
# Markdown


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "diverged"
    return f"{value:.{digits}g}"


def fmt_steps(values: Sequence[int | None]) -> str:
    return " / ".join("—" if value is None else str(int(value)) for value in values)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main_table(cells: Sequence[Mapping[str, Any]]) -> str:
    header = ["problem", "plan", "scheme", "final rel. L2 mean ± std", "final per seed", "× none (geo. mean)",
              "verdict vs none", "best (with hindsight) per seed", "SNR in diffusion (× none)",
              "SNR, 2nd half of Adam (× none)",
              "diffusion / equilibrium onset per seed", "train s (ms/step)"]
    rows = []
    for cell in cells:
        if cell["scheme"] not in MAIN_SCHEMES:
            continue
        vs = cell.get("vs_none")
        mean_std = (f"{fmt(cell['final_rel_l2_mean'])} ± {fmt(cell['final_rel_l2_std'], 2)}"
                    if cell["final_rel_l2_mean"] is not None else "—")
        snr = fmt(cell["snr_diffusion_geomean"], 2)
        if vs and vs["snr_diffusion_ratio"] is not None:
            snr += f" ({fmt(vs['snr_diffusion_ratio'], 2)}×)"
        late = fmt(cell["snr_late_geomean"], 2)
        if vs and vs["snr_late_ratio"] is not None:
            late += f" ({fmt(vs['snr_late_ratio'], 2)}×)"
        rows.append([
            cell["problem"], cell["plan"], cell["scheme"], mean_std,
            " / ".join(fmt(value) for value in cell["final_rel_l2"]),
            fmt(vs["final_rel_l2_ratio"], 2) if vs else "1 (reference)",
            f"**{vs['verdict']}**" if vs else "—",
            " / ".join(fmt(value) for value in cell["best_rel_l2"]),
            snr, late,
            f"{fmt_steps(cell['diffusion_start'])}; {fmt_steps(cell['equilibrium_start'])}",
            f"{cell['train_seconds']:.0f} ({fmt(cell['ms_per_step'], 3)})",
        ])
    return markdown_table(header, rows)


def variants_table(cells: Sequence[Mapping[str, Any]]) -> str:
    header = ["problem", "plan", "variant", "against", "final per seed", "against's final per seed",
              "× against (geo. mean)", "verdict vs against", "× none", "verdict vs none",
              "SNR in diffusion (× against)", "final loss / mse (against's)", "train s (× against)"]
    index = {(cell["problem"], cell["plan"], cell["scheme"]): cell for cell in cells}
    rows = []
    for cell in cells:
        base = cell.get("vs_base")
        if not base:
            continue
        other = index[(cell["problem"], cell["plan"], base["scheme"])]
        none = cell.get("vs_none")
        rows.append([
            cell["problem"], cell["plan"], cell["scheme"], base["scheme"],
            " / ".join(fmt(value) for value in cell["final_rel_l2"]),
            " / ".join(fmt(value) for value in other["final_rel_l2"]),
            fmt(base["final_rel_l2_ratio"], 2), f"**{base['verdict']}**",
            fmt(none["final_rel_l2_ratio"], 2) if none else "—", none["verdict"] if none else "—",
            f"{fmt(cell['snr_diffusion_geomean'], 2)} ({fmt(base['snr_diffusion_ratio'], 2)}×)",
            f"{fmt(cell['loss_over_mse'], 2)} ({fmt(other['loss_over_mse'], 2)})",
            f"{cell['train_seconds']:.0f} ({fmt(base['time_ratio'], 2)}×)",
        ])
    return markdown_table(header, rows) if rows else ""


def cost_table(cells: Sequence[Mapping[str, Any]]) -> str:
    """Mean ms/step per scheme and plan over the problems, and the ratio to no reweighting."""
    header = ["scheme", *[f"{plan}: ms/step (× none)" for plan in PLANS], "SSBroyden stage: ms/iteration"]
    rows = []
    for name in SCHEMES:
        row = [name]
        for plan in PLANS:
            mine = [cell for cell in cells if cell["scheme"] == name and cell["plan"] == plan]
            if not mine:
                row.append("—")
                continue
            ms = float(np.mean([cell["ms_per_step"] for cell in mine]))
            ratios = [cell["vs_none"]["time_ratio"] for cell in mine if cell.get("vs_none")]
            ratios = [value for value in ratios if value is not None]
            row.append(f"{ms:.1f}" + (f" ({np.mean(ratios):.2f}×)" if ratios else ""))
        second = [cell.get("second_stage_ms_per_step") for cell in cells if cell["scheme"] == name]
        second = [value for value in second if value is not None]
        row.append(f"{np.mean(second):.0f}" if second else "—")
        rows.append(row)
    return markdown_table(header, rows)


def scheme_sentence(line: Mapping[str, Any]) -> str:
    verdicts = line["verdicts"]
    groups: dict[str, list[str]] = {}
    for problem, word in verdicts.items():
        groups.setdefault(word, []).append(problem)
    parts = [f"{word} on {', '.join(problems)}" for word, problems in groups.items()]
    answer = "yes" if line["answer"] else "no"
    where = ""
    if not line["answer"]:
        bad = [problem for problem in verdicts if problem not in line["beats_or_matches_on"]]
        where = f"; it falls behind on {', '.join(bad)}"
    return (f"- **{line['scheme']}**, {line['plan']}: {answer}, beats or matches no reweighting on "
            f"{len(line['beats_or_matches_on'])} of {line['problems']} problems ({'; '.join(parts)}){where}.")


def snr_sentences(cells: Sequence[Mapping[str, Any]]) -> list[str]:
    """Does vRBA raise the SNR in diffusion over no reweighting and over RBA? One line per plan and problem."""
    index = {(cell["problem"], cell["plan"], cell["scheme"]): cell for cell in cells}
    lines = []
    for (problem, plan, scheme), cell in index.items():
        if scheme not in ("vrba-exp", "vrba-lin"):
            continue
        none, rba = index.get((problem, plan, "none")), index.get((problem, plan, "rba"))
        sentence = []
        for key, what in (("snr_diffusion_geomean", "in the diffusion window"),
                          ("snr_late_geomean", "over the 2nd half of Adam")):
            parts = [f"{scheme} {fmt(cell[key], 2)}"]
            for other in (none, rba):
                if other is not None:
                    parts.append(f"{other['scheme']} {fmt(other[key], 2)} "
                                 f"(vRBA × {fmt(ratio(cell[key], other[key]), 2)})")
            sentence.append(f"{what}: " + ", ".join(parts))
        shares = [f"{item['scheme']} {fmt(item['constraint_share_late_median'], 2)}"
                  for item in (cell, none, rba) if item is not None]
        sentence.append("constraint share of the loss there: " + ", ".join(shares))
        lines.append(f"- {problem}, {plan}: median SNR " + "; ".join(sentence) + ".")
    return lines


def logging_text(scale: Mapping[str, Any]) -> str:
    regular = f"every {scale['log_every']} steps"
    if scale["dense_until"] <= 0:
        return regular
    return f"every {scale['dense_every']} steps up to step {scale['dense_until']}, then {regular}"


def identical_lines(cells: Sequence[Mapping[str, Any]]) -> list[str]:
    """Pairs of schemes whose every seed ended at exactly the same error (the same update rule in disguise)."""
    lines = []
    for index, cell in enumerate(cells):
        for other in cells[index + 1:]:
            if (cell["problem"], cell["plan"]) != (other["problem"], other["plan"]):
                continue
            if cell["final_rel_l2"] == other["final_rel_l2"] and cell["best_rel_l2"] == other["best_rel_l2"]:
                lines.append(f"- {cell['problem']}, {cell['plan']}: `{other['scheme']}` ended exactly where "
                             f"`{cell['scheme']}` did, seed for seed.")
    return lines


def markdown(data: Mapping[str, Any]) -> str:
    """The Markdown that docs/reweighting.md shows: setup, the table, the rule, per-scheme lines, variants, cost."""
    cells = data["cells"]
    scale = data["settings"]
    env = data["machine"]
    train_total = sum(cell["train_seconds"] for cell in cells)
    cell_totals = [cell.get("cell_seconds") for cell in cells]
    total = sum(cell_totals) if all(value is not None for value in cell_totals) else None
    lines = [
        f"Measured with `{data['command']}` on {data['date'][:10]} ({env['cpu_count']} CPU cores shared with other "
        f"jobs, {env['platform']}, jax {env['versions'].get('jax')}, optax {env['versions'].get('optax')}, "
        f"equinox {env['versions'].get('equinox')}): {train_total / 60:.0f} min of training"
        + (f", {total / 60:.0f} min in all (compilation included)." if total else "."),
        "",
        f"Setup: {scale['depth']}x{scale['width']} tanh MLPs, {scale['points']} collocation points (LHS, fixed), "
        f"{scale['seeds']} seeds per cell vmapped in one program (same points for every cell of a problem), "
        f"{scale['steps']} steps: `adam` = {scale['steps']} Adam steps (float32); `adam+ssbroyden` = "
        f"{scale['switch_step']} Adam steps then {scale['steps'] - scale['switch_step']} SSBroyden iterations "
        "(float64 for the whole run; weights held during SSBroyden unless stated). Adam at 1e-3. Batch-gradient "
        f"SNR over {scale['snr_batches']} fixed batches, logged {logging_text(scale)}. Reweighting with the library "
        "defaults "
        "(eta = 1e-3, gamma = 0.999, weights start at 0). Helmholtz: a1 = 1, a2 = 4.",
        "",
        main_table(cells),
        "",
        "Final rel. L2: last logged row; \"× none\": the geometric mean of the seeds' final errors (capped at "
        f"{ERROR_CAP:g}) divided by no reweighting's (below 1: lower error). "
        + BEST_NOTE[0].upper() + BEST_NOTE[1:] + ". Onsets: "
        "`detect_transitions` per seed (— none detected). Train seconds: all seeds together, compilation excluded.",
        "",
        VERDICT_RULE,
        "",
        "SNR in diffusion: " + SNR_DIFFUSION_DEFINITION,
        "",
        "SNR, 2nd half of Adam: " + SNR_LATE_DEFINITION,
        "",
        "Does each scheme beat or match no reweighting on at least two of the three problems?",
        "",
        *(scheme_sentence(line) for line in data["scheme_lines"]
          if line["scheme"] in MAIN_SCHEMES),
        "",
    ]
    same = identical_lines(cells)
    if same:
        lines += ["Identical runs (vRBA's linear potential with `normalize=\"max\"` and `phi=1` has RBA's target "
                  "`|r| / max|r|`, so with the same eta, gamma and init it is RBA step for step):", "", *same, ""]
    snr = snr_sentences(cells)
    if snr:
        lines += ["Does vRBA raise the batch-gradient SNR in the diffusion phase?", "", *snr, ""]
    variants = variants_table(cells)
    if variants:
        lines += ["Variants: the SNR coupling (`rba-snr1`: `snr_coupling=1.0`, under Adam) and weights advanced "
                  "every SSBroyden iteration (`*-qn-advance`: `hold_every=1`) instead of held for the stage "
                  "(`hold_every=\"auto\"`), each against its base scheme with the same rule:", "", variants, ""]
    lines += ["Cost per scheme (mean over the problems of the cell's ms per step, all seeds together; the "
              "ratio is per problem to no reweighting, then averaged):", "", cost_table(cells), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the JSON object on stdout")
    parser.add_argument("--quick", action="store_true",
                        help="tiny smoke test (a few steps per run, a tiny network; results in a temporary folder "
                             "unless --results-dir is given)")
    parser.add_argument("--problems", nargs="+", choices=list(PROBLEMS), default=None)
    parser.add_argument("--schemes", nargs="+", choices=list(SCHEMES), default=None,
                        help="schemes and variants to run (default: all); a variant is compared against its base "
                             "and none only when those ran too")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help=f"where reweighting.json and reweighting/ go (default: {RESULTS_DIR} in full mode)")
    parser.add_argument("--from-results", action="store_true",
                        help="rebuild the JSON and the Markdown from the saved histories, without training")
    parser.add_argument("--resume", action="store_true",
                        help="skip cells whose histories were saved by an earlier run of the same configuration")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    mode = "quick" if args.quick else "full"
    results_dir = args.results_dir
    if results_dir is None:
        results_dir = Path(tempfile.mkdtemp(prefix="reweighting-quick-")) if args.quick else RESULTS_DIR
    problems = args.problems or list(PROBLEMS)
    schemes = args.schemes or list(SCHEMES)
    command = "python benchmarks/reweighting.py" + (" --quick" if args.quick else "")
    for flag, values in (("--problems", args.problems), ("--schemes", args.schemes)):
        if values:
            command += f" {flag} {' '.join(values)}"
    start = time.perf_counter()
    total = previous = None
    if args.from_results:
        command += " --from-results"
        saved = results_dir / f"{NAME}.json"
        if saved.exists():
            previous = json.loads(saved.read_text())
            previous.pop("reanalysed", None)
            total = previous.get("total_seconds")
            mode = previous.get("settings", {}).get("mode", mode)
    else:
        from pinnkit.compilation_cache import enable_compilation_cache

        enable_compilation_cache()
        log(f"results in {results_dir}; {mode} mode: {len(problems)} problem(s), schemes {schemes}")
        train(scale, problems, schemes, results_dir, resume=args.resume)
        total = time.perf_counter() - start
    # Training: the cells of this grid; --from-results: every saved cell (or the selected problems and schemes).
    cells, saved_scale = analyze(results_dir, problems if args.problems or not args.from_results else None,
                                 schemes if args.schemes or not args.from_results else None)
    if not cells:
        parser.error(f"no saved histories under {results_dir / NAME / 'histories'}")
    data = json_ready(payload(cells, saved_scale or scale, mode, command, total, previous))
    write_text(results_dir / f"{NAME}.json", json.dumps(data, indent=1) + "\n")
    text = markdown(data)
    write_text(results_dir / NAME / "table.md", text)
    log(f"wrote {results_dir / f'{NAME}.json'} and {results_dir / NAME / 'table.md'}")
    if args.json:
        print(json.dumps(data))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
