"""Throughput of K seeds trained together (vmapped in one program, ``fit_stacked``) against K runs in turn (``fit``).

Set-up: Helmholtz, a tanh MLP of depth x width, N collocation points, Adam (constant learning rate 1e-3), S steps, a
history row every ``--log-every`` steps, batch-gradient SNR off (``Probes(snr_batches=0)``: pure training
throughput). Throughput is model-steps per second of training: K x S / the training wall time the engine reports
(``TrainResult.wall_time_s``, compilation excluded), the median over ``--repeats`` timed repetitions after one
warm-up repetition. Compilation is reported apart: ``compile_time_s`` of the first repetition (a cold compile);
JAX's persistent compilation cache, in a temporary folder, then serves the later repetitions, as it serves repeated
runs of ``pinnkit`` (the console script turns it on).

Two set-ups by default: one where a single model keeps both cores of a small CPU busy (4 x 32, 1000 points) and
one where it does not (2 x 16, 100 points).

    python benchmarks/seeds.py --json [--seeds 1 2 4] [--steps 300] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile

import equinox as eqx
import jax
import optax
from _machine import log, stamp, write

import pinnkit
from pinnkit import nn, problems
from pinnkit.engine import LogSchedule, Outcome, Probes

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# the engine's fit and fit_stacked on a plain Adam run.
MEASURES = ("src/pinnkit/engine", "src/pinnkit/nn.py", "src/pinnkit/derivatives.py", "src/pinnkit/problems",
            "src/pinnkit/plans.py", "src/pinnkit/reweight", "src/pinnkit/distributed.py")

SETUPS = [dict(width=32, depth=4, points=1000, steps=300), dict(width=16, depth=2, points=100, steps=3000)]
LEARNING_RATE = 1e-3


def make_models(problem, setup: dict, seeds: int):
    """K models (keys 0..K-1) of one architecture: the structure and the stacked parameters."""
    def make(key):
        return nn.MLP(2, 1, width=setup["width"], depth=setup["depth"], domain=problem.domain, key=key)

    keys = jax.random.split(jax.random.key(1), seeds)
    stacked = eqx.filter_vmap(make)(keys)
    return [make(key) for key in keys], eqx.filter(stacked, eqx.is_inexact_array)


def vmapped_once(problem, points, models, params, args, steps: int) -> tuple[float, float]:
    results = pinnkit.fit_stacked(problem, models[0], optax.adam(LEARNING_RATE), points, params, steps=steps,
                                  log=LogSchedule(args.log_every), probes=Probes(snr_batches=0))
    assert all(result.outcome is Outcome.COMPLETED for result in results), [result.status for result in results]
    return results[0].wall_time_s, results[0].compile_time_s


def sequential_once(problem, points, models, args, steps: int) -> tuple[float, float]:
    wall = compile_s = 0.0
    for model in models:
        result = pinnkit.fit(problem, model, optax.adam(LEARNING_RATE), points, steps=steps,
                             log=LogSchedule(args.log_every), probes=Probes(snr_batches=0))
        assert result.outcome is Outcome.COMPLETED, result.status
        wall += result.wall_time_s
        compile_s += result.compile_time_s
    return wall, compile_s


def compare(problem, points, models, params, args, steps: int) -> dict:
    """Vmapped and sequential repetitions interleaved, so that load from other processes hits both alike."""
    timings = {"vmapped": ([], []), "sequential": ([], [])}
    for _ in range(args.repeats + 1):
        for name, once in (("vmapped", lambda: vmapped_once(problem, points, models, params, args, steps)),
                           ("sequential", lambda: sequential_once(problem, points, models, args, steps))):
            wall, compile_s = once()
            timings[name][0].append(wall)
            timings[name][1].append(compile_s)
    out = {name: _summary(len(models), steps, walls, compiles) for name, (walls, compiles) in timings.items()}
    out["ratio"] = out["vmapped"]["model_steps_per_s"] / out["sequential"]["model_steps_per_s"]
    out["ratio_best"] = out["vmapped"]["best_model_steps_per_s"] / out["sequential"]["best_model_steps_per_s"]
    return out


def _summary(seeds: int, steps: int, walls: list[float], compiles: list[float]) -> dict:
    # The first repetition compiles cold and warms caches: its compile time is reported, its wall is not timed.
    wall = statistics.median(walls[1:])
    return {"wall_s": wall, "walls_s": walls[1:], "compile_s_cold": compiles[0], "compile_s_cached": compiles[1:],
            "model_steps_per_s": seeds * steps / wall, "best_model_steps_per_s": seeds * steps / min(walls[1:])}


def measure(args) -> dict:
    problem = problems.get("helmholtz")
    setups = []
    for setup in SETUPS if not args.quick else [dict(width=8, depth=1, points=100, steps=20)]:
        points = problem.sample(jax.random.key(0), setup["points"])
        steps = setup["steps"] if args.steps is None else args.steps
        rows = []
        for seeds in args.seeds:
            models, params = make_models(problem, setup, seeds)
            log(f"{setup} K={seeds}")
            row = {"seeds": seeds, **compare(problem, points, models, params, args, steps)}
            rows.append(row)
            log(f"  {row['vmapped']['model_steps_per_s']:.0f} vs {row['sequential']['model_steps_per_s']:.0f} "
                "model-steps/s")
        setups.append({**setup, "steps": steps, "results": rows})
    return {"setting": {"problem": "helmholtz", "optimizer": f"adam({LEARNING_RATE:g})", "log_every": args.log_every,
                        "snr_batches": 0, "repeats": args.repeats,
                        "devices": [str(device) for device in jax.devices()]},
            "setups": setups}


def _range(entry: dict, seeds: int, steps: int) -> tuple[float, float]:
    rates = [seeds * steps / wall for wall in entry["walls_s"]]
    return min(rates), max(rates)


def markdown(payload: dict) -> str:
    """The seeds table of docs/scaling.md."""
    setting, machine = payload["setting"], payload["machine"]
    lines = [f"Measured {payload['date']} by `{payload['command']}` on {machine['cores']} cores of a {machine['cpu']} "
             f"({machine['jax_backend']}; load average {machine['load_average_at_start'][0]:.1f} at the start), "
             f"jax {payload['versions']['jax']}: Helmholtz, {setting['optimizer']}, a history row every "
             f"{setting['log_every']} steps, SNR off; {setting['repeats']} timed repetitions after a warm-up, vmapped "
             "and sequential interleaved.", "",
             "| set-up | K | vmapped model-steps/s: median [range] | sequential model-steps/s: median [range] | ratio "
             "of medians | compile s of the K-model program, cold / from the cache |", "|---|---|---|---|---|---|"]
    apart_rows = []
    for setup in payload["setups"]:
        name = f"{setup['depth']}x{setup['width']} MLP, {setup['points']} points, {setup['steps']} steps"
        for row in setup["results"]:
            together, apart = row["vmapped"], row["sequential"]
            low_v, high_v = _range(together, row["seeds"], setup["steps"])
            low_s, high_s = _range(apart, row["seeds"], setup["steps"])
            if row["seeds"] > 1 and (low_v > high_s or low_s > high_v):
                apart_rows.append(f"{setup['depth']}x{setup['width']} at K = {row['seeds']}")
            cached = statistics.median(together["compile_s_cached"])
            lines.append(f"| {name} | {row['seeds']} | {together['model_steps_per_s']:.0f} [{low_v:.0f}-{high_v:.0f}] "
                         f"| {apart['model_steps_per_s']:.0f} [{low_s:.0f}-{high_s:.0f}] | {row['ratio']:.2f} | "
                         f"{together['compile_s_cold']:.1f} / {cached:.2f} |")
    lines += ["", "At K = 1 both ways run the same program: that row shows how much the measurement itself varies. "
                  "Rows with K > 1 whose two ranges do not overlap: " + (", ".join(apart_rows) or "none") + ". The "
                  "sequential runs are K = 1 programs: the first compiles, the others load it from JAX's persistent "
                  "compilation cache."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: per set-up, see SETUPS)")
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run, not written to results/")
    parser.add_argument("--json", action="store_true", help="print the JSON object")
    args = parser.parse_args()
    for name in ("steps", "log_every", "repeats"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if any(seeds <= 0 for seeds in args.seeds):
        parser.error("--seeds must be positive")
    if args.quick:
        args.repeats, args.seeds = 1, [1, 2]
    with tempfile.TemporaryDirectory(prefix="pinnkit-seeds-cache-") as cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        payload = stamp() | measure(args)
    if not args.quick:
        log(f"wrote {write('seeds', payload)}")
    print(json.dumps(payload) if args.json else markdown(payload))


if __name__ == "__main__":
    main()
