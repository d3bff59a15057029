"""Accuracy at CPU scale: the relative L2 error each problem reaches with its best recipe found on 2 CPU cores.

For each problem (Burgers, Allen-Cahn, Helmholtz a1 = 1, a2 = 4, lid-driven cavity Re = 100) one fixed recipe (an
optimizer plan, a network, collocation points, RAD resampling, an input embedding) trains each seed separately
(resampling runs one model at a time) in the precision the plan asks for (float64 for quasi-Newton plans). Per seed
it records the final relative L2 error on the problem's reference grid, the lowest error of any history row (chosen
with hindsight: training cannot see the test error), the training and compile seconds, the first logged step and
training second at which the error is at or below 1e-2, 1e-3 and 1e-4 (null when never), and the line searches
that ended without sufficient decrease; beside each, the target and the published anchors with their sources.

    python benchmarks/accuracy.py [--json] [--quick] [--problems burgers helmholtz] [--seeds 2] [--out PATH]
                                  [--reweight vrba [--reweight-option phi=0.5] [--hold-every N]
                                   [--line-search-reweight-option gamma=0.1]]
                                  [--resample-option potential=exponential] [--steps N]

``--reweight NAME`` runs the recipes with that sample reweighting (by default weights advanced in the Adam stage,
held through the quasi-Newton stage, carried to the nearest redrawn point at each RAD redraw; options of the
transform with ``--reweight-option KEY=VALUE``, advancing in the quasi-Newton stage with ``--hold-every N``, options
of that stage only with ``--line-search-reweight-option KEY=VALUE``, filed as ``ls.KEY=VALUE``) and
files the results under ``variants["NAME KEY=VALUE ..."]`` of the same JSON, beside the plain recipes' (rendered by
:func:`markdown_vrba`). ``--resample-option KEY=VALUE`` changes a field of the recipes' RAD resampling
(:class:`pinnkit.sampling.Resampling`; ``potential=exponential`` draws with vRBA's density), filed as ``rad.KEY=VALUE``
in the variant's name. ``--steps N`` trains N steps instead of the recipe's (a longer quasi-Newton stage: beyond the
benchmark's budget, filed as ``steps=N``).

``--quick`` trains a few dozen steps of small networks (a smoke test of every code path; nothing is written unless
``--out`` is given). A full run writes ``benchmarks/results/accuracy.json``, which ``docs/render.py`` renders with
:func:`markdown`.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import RESULTS, log, stamp

from pinnkit import columns, jsonio, reweight
from pinnkit.atomic import atomic_write_text
from pinnkit.engine import LogSchedule, Probes
from pinnkit.experiment import RunConfig, run, summarize
from pinnkit.optimizers import REWEIGHTINGS
from pinnkit.sampling import Resampling
from pinnkit_cli.errors import CliExit
from pinnkit_cli.options import parse_params

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# the training stack, the SNR probes (RBA's coupling reads them) and the CLI's option parser.
MEASURES = ("src/pinnkit/engine", "src/pinnkit/experiment.py", "src/pinnkit/nn.py", "src/pinnkit/derivatives.py",
            "src/pinnkit/problems", "src/pinnkit/reference", "src/pinnkit/optimizers.py", "src/pinnkit/plans.py",
            "src/pinnkit/quasi_newton.py", "src/pinnkit/scaling_rules.py", "src/pinnkit/optimizer_registry.py",
            "src/pinnkit/curvature.py", "src/pinnkit/reweight", "src/pinnkit/sampling.py",
            "src/pinnkit/lr_search.py", "src/pinnkit/diagnostics", "src/pinnkit/history.py",
            "cli/pinnkit_cli/options.py", "cli/pinnkit_cli/errors.py")

THRESHOLDS = (1e-2, 1e-3, 1e-4)
LOG_EVERY = 100
DEFAULT_OUT = RESULTS / "accuracy.json"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One problem's benchmark: its run configuration (the seed is set per run), target and anchors.

    Attributes:
        config: the :class:`RunConfig` fields of the recipe.
        target: the relative L2 error the recipe should reach.
        short: the recipe in a few words, for the table.
        why: why this recipe (what the exploration showed).
        anchors: published errors: ``{"rel_l2", "method", "source"}``.
    """

    config: dict[str, Any]
    target: float
    short: str
    why: str
    anchors: tuple[dict[str, Any], ...]


def _rad(every: int, constant: float = 1.0, candidates: int = 100_000) -> Resampling:
    return Resampling(every=every, candidates=candidates, power=1.0, constant=constant)


RECIPES: dict[str, Recipe] = {
    "burgers": Recipe(
        config=dict(problem="burgers", optimizer="adam+ssbroyden", switch_step=1000, steps=6000, width=20, depth=8,
                    points=5000, resampling=_rad(500)),
        target=1e-5,
        short="Adam 1k + SSBroyden 5k, 8x20 tanh, 5k points, RAD every 500 (k=1, c=1), float64",
        why=("the anchor's network; RAD moves points to the shock (a 3x20 net with 8k points and a later switch "
             "stalled near 1e-4 in exploration)"),
        anchors=(
            {"rel_l2": 6.7e-4, "method": "L-BFGS", "source": "Raissi, Perdikaris, Karniadakis, JCP 378 (2019)"},
            {"rel_l2": 1.6e-8, "method": "SSBroyden, 8x20, float64",
             "source": "Kiyani et al., CMAME 446 (2025), arXiv:2501.16371"},
        ),
    ),
    "allen-cahn": Recipe(
        config=dict(problem="allen-cahn", optimizer="adam+ssbroyden", switch_step=1000, steps=12000, width=30,
                    depth=3, points=6000, periodic=True, resampling=_rad(500, constant=0.0)),
        target=1e-4,
        short="Adam 1k + SSBroyden 11k, 3x30 tanh, periodic x embedding, 6k points, RAD every 500 (k=1, c=0), "
              "float64",
        why=("the anchor's network and embedding (exact periodicity in x); RAD with c = 0 samples where the residual "
             "is (the interfaces); without RAD and the embedding the runs of the reweighting benchmark stay at "
             "1e-2 or above; 6k SSBroyden iterations ended at 1.0e-4 and 2.4e-4, so the stage is longer"),
        anchors=(
            {"rel_l2": 9.4e-7, "method": "SSBroyden 3x30 float64, Adam 5k + SSBroyden 20k, 15k points, RAD",
             "source": "Kiyani et al. 2025; jorgeurban/self_scaled_algorithms_pinns Examples/AC/AC_hparams.py"},
            {"rel_l2": 1.9e-6, "method": "vRBA + SSBroyden",
             "source": "Toscano et al., arXiv:2509.14198 (as quoted, unchecked)"},
        ),
    ),
    "helmholtz": Recipe(
        config=dict(problem="helmholtz", optimizer="adam+ssbroyden", switch_step=1000, steps=12000, width=30,
                    depth=4, points=3000, resampling=_rad(500)),
        target=1e-5,
        short="Adam 1k + SSBroyden 11k, 4x30 tanh, 3k points, RAD every 500 (k=1, c=1), float64",
        why=("a 4x30 net was still improving after 4k SSBroyden iterations (5e-5 to 9e-5 over two seeds); a deeper "
             "8x20 net was slower per iteration and behind at equal time in exploration; with 9k SSBroyden "
             "iterations one seed of two was still above 1e-5 and improving, so the stage is longer"),
        anchors=(
            {"rel_l2": 5.8e-6, "method": "RBA + Fourier exact BC + modified MLP 6x128, float64, Adam 20k + L-BFGS",
             "source": "soanagno/rba-pinns notebook (Anagnostopoulos et al., CMAME 421 (2024))"},
        ),
    ),
    "cavity": Recipe(
        config=dict(problem="cavity", optimizer="adam+ssbroyden", switch_step=1000, steps=5000, width=30, depth=4,
                    points=3000),
        target=1e-2,
        short="Adam 1k + SSBroyden 4k, 4x30 tanh, 3k fixed points (no RAD), float64",
        why=("the cavity's loss needs third derivatives of the stream function (4 directional Taylor series per "
             "point), so a step costs several times a Burgers step. No RAD: the lid's corners are singular, RAD "
             "(k=1, c=1) gathers points there, and on such a set the zero velocity field (no PDE residual, loss "
             "0.25 from the lid alone) has the lower loss; both seeds collapsed to it after a redraw"),
        anchors=(
            {"rel_l2": 1e-3, "method": "PINN, Re=100 (approximate)",
             "source": "Wang, Teng, Perdikaris, SIAM J. Sci. Comput. 43 (2021)"},
        ),
    ),
}


def quick_config(config: dict[str, Any]) -> dict[str, Any]:
    """A few dozen steps of a small network with the recipe's plan, embedding and resampling (a smoke test)."""
    quick = dict(config, steps=40, switch_step=20, width=8, depth=2, points=200)
    if quick.get("resampling") is not None:
        quick["resampling"] = dataclasses.replace(quick["resampling"], every=20, candidates=1000)
    return quick


def reach(history, threshold: float) -> dict[str, float | int | None]:
    """The first history row at or below ``threshold``: its step and training second (None when never)."""
    errors = history[columns.REL_L2]
    hits = np.flatnonzero(np.isfinite(errors) & (errors <= threshold))
    if hits.size == 0:
        return {"step": None, "seconds": None}
    row = hits[0]
    return {"step": int(history[columns.STEP][row]), "seconds": float(history[columns.WALL_TIME][row])}


def run_seed(name: str, recipe: Recipe, seed: int, quick: bool,
             overrides: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one seed (the recipe with ``overrides`` of its config); returns (its record, the config dict)."""
    settings = quick_config(recipe.config) if quick else dict(recipe.config)
    overrides = dict(overrides or {})
    resample_options = overrides.pop("resample_options", {})
    if resample_options:
        if settings.get("resampling") is None:
            raise ValueError(f"the {name} recipe does not resample; --resample-option does not apply")
        settings["resampling"] = dataclasses.replace(settings["resampling"], **resample_options)
    settings.update(overrides)
    config = RunConfig(**settings, seed=seed, log=LogSchedule(every=10 if quick else LOG_EVERY),
                       probes=Probes(snr_batches=0))
    start = time.perf_counter()

    def progress(step: int, row: dict) -> None:
        if step % (10 if quick else 1000) == 0:
            log(f"  [{time.perf_counter() - start:7.1f} s] {name} seed {seed} step {step}: "
                f"rel L2 {row.get(columns.REL_L2, math.nan):.3g}, loss {row.get(columns.LOSS, math.nan):.3g}")

    result = run(config, callback=progress)
    summary = summarize(config, result)
    history = result.history
    record = {
        "seed": seed,
        "rel_l2": summary.rel_l2,
        "best_rel_l2_with_hindsight": summary.best_rel_l2,
        "final_loss": summary.final_loss,
        "train_s": summary.wall_time_s,
        "compile_s": summary.compile_time_s,
        "steps": summary.steps,
        "reach": {f"{threshold:.0e}": reach(history, threshold) for threshold in THRESHOLDS},
        "line_search_failures": summary.line_search_failures,
        "status": summary.status,
        "precision": summary.precision,
        "plan": summary.plan,
    }
    log(f"  {name} seed {seed}: rel L2 {record[columns.REL_L2]:.3g} (best {record['best_rel_l2_with_hindsight']:.3g}), "
        f"{record['train_s']:.0f} s + {record['compile_s']:.0f} s compile")
    return record, config.to_dict()


def variant_name(overrides: dict[str, Any]) -> str:
    """``"vrba phi=0.5 hold_every=1"`` for a reweighting with options, ``"... rad.potential=exponential"`` with
    resampling options; ``"none"`` for the plain recipes."""
    words = []
    if overrides.get("reweight", "none") != "none":
        options = {**overrides.get("reweight_options", {}), **({"hold_every": overrides["hold_every"]}
                                                               if "hold_every" in overrides else {}),
                   **{f"ls.{key}": value for key, value in overrides.get("line_search_reweight_options", {}).items()}}
        words += [overrides["reweight"], *(f"{key}={value}" for key, value in options.items())]
    words += [f"rad.{key}={value}" for key, value in overrides.get("resample_options", {}).items()]
    if "steps" in overrides:
        words.append(f"steps={overrides['steps']}")
    return " ".join(words) or "none"


def measure(problems: list[str], seeds: int, quick: bool, on_problem=None,
            overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train every problem's recipe for ``seeds`` seeds; ``on_problem(entries)`` runs after each problem."""
    variant = variant_name(overrides or {})
    results = []
    start = time.perf_counter()
    for name in problems:
        recipe = RECIPES[name]
        log(f"{name}: {recipe.short}" + (f" + {variant}" if variant != "none" else ""))
        problem_start = time.perf_counter()
        records, config = [], None
        for seed in range(seeds):
            record, config = run_seed(name, recipe, seed, quick, overrides)
            records.append(record)
        finals = [record[columns.REL_L2] for record in records]
        config.pop("seed", None)
        results.append({
            "problem": name,
            "target": recipe.target,
            "recipe": config,
            "recipe_short": recipe.short + (f", {variant} weights" if variant != "none" else ""),
            "why": recipe.why,
            "anchors": list(recipe.anchors),
            "seeds": records,
            "mean_rel_l2": float(np.mean(finals)),
            "seeds_meeting_target": sum(1 for value in finals if math.isfinite(value) and value <= recipe.target),
            "wall_s": time.perf_counter() - problem_start,
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
        })
        if on_problem is not None:
            on_problem(results)
    return {"quick": quick, "seeds": seeds, "problems": results, "total_wall_s": time.perf_counter() - start}


# ----- the docs table --------------------------------------------------------------------------------------------

def _sci(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.2e}"


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.0f} s"


def markdown(payload: dict[str, Any]) -> str:
    """The table ``docs/benchmarks.md`` shows: one row per problem."""
    header = ["problem", "recipe", "final rel L2 per seed", "mean", "best rel L2 per seed (hindsight)",
              "time to 1e-3 / 1e-4 per seed", "train time per seed", "target met?", "anchor"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in payload["problems"]:
        seeds = entry["seeds"]
        finals = ", ".join(_sci(record[columns.REL_L2]) for record in seeds)
        best = ", ".join(_sci(record["best_rel_l2_with_hindsight"]) for record in seeds)
        times = ", ".join(f"{_seconds(record['reach']['1e-03']['seconds'])} / "
                          f"{_seconds(record['reach']['1e-04']['seconds'])}" for record in seeds)
        train = ", ".join(f"{record['train_s']:.0f} s" for record in seeds)
        met = entry["seeds_meeting_target"]
        verdict = f"{'yes' if met == len(seeds) else 'no'} ({met}/{len(seeds)} seeds <= {_sci(entry['target'])})"
        anchor = "; ".join(f"{_sci(anchor[columns.REL_L2])} {anchor['method']} ({anchor['source']})"
                           for anchor in entry["anchors"])
        lines.append(f"| {entry['problem']} | {entry['recipe_short']} | {finals} | {_sci(entry['mean_rel_l2'])} | "
                     f"{best} | {times} | {train} | {verdict} | {anchor} |")
    machine = payload.get("machine", {})
    lines.append("")
    lines.append(f"Relative L2 error on each problem's reference grid at the final row (not the best row). Times are "
                 f"training seconds (compilation excluded) on {machine.get('cores', '?')} CPU cores, "
                 f"{payload.get('date', '?')}; the whole benchmark took "
                 f"{payload.get('total_wall_s', math.nan) / 60:.0f} min.")
    return "\n".join(lines) + "\n"


def markdown_headline(payload: dict[str, Any]) -> str:
    """The README's short table: per problem the final errors, the target and the closest anchor."""
    lines = ["| problem | pinnkit: final rel. L2 per seed | train time per seed | target | published anchors |",
             "|---|---|---|---|---|"]
    for entry in payload["problems"]:
        seeds = entry["seeds"]
        finals = ", ".join(_sci(record[columns.REL_L2]) for record in seeds)
        train = ", ".join(f"{record['train_s'] / 60:.0f} min" for record in seeds)
        met = f"met by {entry['seeds_meeting_target']} of {len(seeds)} seeds"
        anchors = "; ".join(f"{_sci(anchor[columns.REL_L2])} ({anchor['method']})" for anchor in entry["anchors"])
        lines.append(f"| {entry['problem']} | {finals} | {train} | {_sci(entry['target'])} ({met}) | {anchors} |")
    machine = payload.get("machine", {})
    lines += ["", f"Relative L2 error at the last step on the reference grid; {machine.get('cores', '?')} CPU cores "
                  f"({machine.get('cpu', '?')}), {payload.get('date', '?')}."]
    return "\n".join(lines) + "\n"


#: The reweighting issue's target for vRBA with a quasi-Newton plan (anchor 1.9e-6, Toscano et al.).
VRBA_TARGETS = {"allen-cahn": 1e-5}


def markdown_vrba(payload: dict[str, Any]) -> str:
    """The vRBA table of ``docs/benchmarks.md``: each recipe with vRBA weights (every variant measured) beside the
    same recipe without."""
    variants = payload.get("variants", {})

    def without(name: str) -> dict[str, Any]:
        # The same recipe without weights: with the same resampling and step changes, when those were measured.
        changes = " ".join(word for word in name.split() if word.startswith(("rad.", "steps=")))
        source = variants.get(changes, {}) if changes else payload
        return {entry["problem"]: entry for entry in source.get("problems", [])}

    lines = ["| problem | weights | with weights: final rel L2 per seed | "
             "without (same changes): final rel L2 per seed | with weights: best per seed (hindsight) | "
             "train time per seed | recipe target | vRBA target |",
             "|---|---|---|---|---|---|---|---|"]
    dates, cores = set(), set()
    for name, variant in variants.items():
        if not name.startswith("vrba"):
            continue
        plain = without(name)
        dates.add(variant.get("date", "?"))
        cores.add(str(variant.get("machine", {}).get("cores", "?")))
        for entry in variant.get("problems", []):
            seeds = entry["seeds"]
            baseline = plain.get(entry["problem"])
            before = (", ".join(_sci(record[columns.REL_L2]) for record in baseline["seeds"]) if baseline
                      else "not measured")
            finals = ", ".join(_sci(record[columns.REL_L2]) for record in seeds)
            best = ", ".join(_sci(record["best_rel_l2_with_hindsight"]) for record in seeds)
            train = ", ".join(f"{record['train_s']:.0f} s" for record in seeds)
            target = f"{_sci(entry['target'])} (met by {entry['seeds_meeting_target']} of {len(seeds)})"
            goal = VRBA_TARGETS.get(entry["problem"])
            vrba_target = "-" if goal is None else (
                f"{_sci(goal)} (met by {sum(1 for r in seeds if r[columns.REL_L2] <= goal)} of {len(seeds)})")
            lines.append(f"| {entry['problem']} | {name} | {finals} | {before} | {best} | {train} | {target} | "
                         f"{vrba_target} |")
    defaults = ", ".join(f"{name} {parameter.default}" for name, parameter in
                         inspect.signature(reweight.vrba).parameters.items()
                         if name in ("potential", "eta", "gamma", "phi", "init"))
    lines += ["", f"vRBA's defaults unless the row names an option ({defaults}), advanced every Adam step, held "
                  "through the SSBroyden stage unless hold_every is named, carried to the nearest new point at each "
                  "RAD redraw; rad.NAME=VALUE: a field of the recipe's RAD resampling changed (potential=exponential: "
                  "the points drawn with vRBA's annealed exponential target, clocked by the redraw number); "
                  "ls.NAME=VALUE: an option of the transform in the SSBroyden stage only; steps=N: N steps instead "
                  "of the recipe's (a longer SSBroyden stage, beyond the benchmark's budget); "
                  f"{', '.join(sorted(cores))} CPU cores, {', '.join(sorted(dates))}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--seeds", type=int, default=2, help="seeds per problem (0..N-1), each run separately")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few dozen steps (not written)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--reweight", choices=REWEIGHTINGS, default="none",
                        help="sample reweighting of every recipe (results under variants of the JSON)")
    parser.add_argument("--reweight-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the reweighting transform (repeatable), e.g. phi=0.5")
    parser.add_argument("--line-search-reweight-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the reweighting in the quasi-Newton stage, over --reweight-option "
                             "(repeatable), e.g. gamma=0.1")
    parser.add_argument("--hold-every", type=int, default=None,
                        help="advance the weights every N quasi-Newton iterations (default: hold them)")
    parser.add_argument("--resample-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the recipe's resampling (repeatable), e.g. potential=exponential")
    parser.add_argument("--steps", type=int, default=None,
                        help="train this many steps instead of the recipe's (the quasi-Newton stage grows; a "
                             "variant beyond the benchmark's budget)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the JSON here (default: benchmarks/results/accuracy.json; --quick writes only "
                             "with --out)")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)
    problems = list(dict.fromkeys(args.problems))
    overrides: dict[str, Any] = {"reweight": args.reweight}
    if args.reweight_option or args.line_search_reweight_option or args.hold_every is not None:
        if args.reweight == "none":
            parser.error("--reweight-option, --line-search-reweight-option and --hold-every need --reweight")
        try:
            overrides["reweight_options"] = parse_params(args.reweight_option, "--reweight-option")
            if args.line_search_reweight_option:
                overrides["line_search_reweight_options"] = parse_params(args.line_search_reweight_option,
                                                                         "--line-search-reweight-option")
        except CliExit as error:
            parser.error(error.message.removeprefix("error: "))
        if args.hold_every is not None:
            overrides["hold_every"] = args.hold_every
    if args.resample_option:
        try:
            overrides["resample_options"] = parse_params(args.resample_option, "--resample-option")
        except CliExit as error:
            parser.error(error.message.removeprefix("error: "))
        unknown = set(overrides["resample_options"]) - {field.name for field in dataclasses.fields(Resampling)}
        if unknown:
            parser.error(f"--resample-option {', '.join(sorted(unknown))}: not a field of Resampling")
    if args.steps is not None:
        if args.steps < 1:
            parser.error("--steps must be a positive number of steps")
        overrides["steps"] = args.steps
    variant = variant_name(overrides)
    previous = jsonio.loads(out.read_text()) if out is not None and out.is_file() and not args.quick else {}
    variants = dict(previous.get("variants", {}))
    base = previous if variant == "none" else variants.get(variant, {})
    # Problems measured earlier and not rerun now are kept (a grid measured over several sessions), in recipe order.
    kept = {entry["problem"]: entry for entry in base.get("problems", []) if entry["problem"] not in problems}
    header = stamp() | {"platform": platform.platform(), "cores": os.cpu_count(), "quick": args.quick}

    def assemble(entries):
        merged = {**kept, **{entry["problem"]: entry for entry in entries}}
        ordered = [merged[name] for name in RECIPES if name in merged]
        measured = header | {"problems": ordered, "total_wall_s": sum(entry.get("wall_s", 0.0) for entry in ordered)}
        if variant == "none":
            return measured | ({"variants": variants} if variants else {})
        return {key: value for key, value in previous.items() if key != "variants"} | {
            "variants": variants | {variant: measured}}

    def save(entries):
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out, jsonio.dumps(assemble(entries), indent=2) + "\n")
            log(f"wrote {out}")

    measured = measure(problems, args.seeds, args.quick, on_problem=save, overrides=overrides)
    payload = assemble(measured["problems"])
    shown = payload if variant == "none" else payload["variants"][variant]
    print(jsonio.dumps(payload) if args.json else markdown(shown))


if __name__ == "__main__":
    sys.exit(main())
