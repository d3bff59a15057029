"""Throughput of K seeds trained together (vmapped in one program) against K sequential runs.

Set-up: Helmholtz, an MLP of depth x width (default 4 x 32, tanh), N collocation points (default 1000), Adam,
S steps (default 300), a history row every 100 steps, batch-gradient SNR off (pure training throughput). Both
ways reuse compiled programs: the vmapped way compiles one K-model program, the sequential way one 1-model
program that the K runs share. Compile time is reported apart; throughput is model-steps per second of training
(K x S / wall time, compilation excluded), the median of ``--repeats`` timed repetitions.

Usage: python benchmarks/seeds.py --json [--seeds 1 2 4] [--steps 300] [--width 32 --depth 4 --points 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from pinnkit import nn, problems
from pinnkit.train import Trainer, fit, fit_stacked


def make_model(problem, width: int, depth: int, seed: int):
    return nn.MLP(2, 1, width=width, depth=depth, domain=problem.domain, key=jax.random.key(seed))


def stacked_params(models):
    leaves = [eqx.filter(model, eqx.is_inexact_array) for model in models]
    return jax.tree_util.tree_map(lambda *arrays: jnp.stack(arrays), *leaves)


def vmapped(problem, points, seeds: int, args) -> dict:
    models = [make_model(problem, args.width, args.depth, seed) for seed in range(seeds)]
    trainer = Trainer(problem, models[0], optax.adam(1e-3), points, snr_batches=0)
    params = stacked_params(models)
    walls, compiles = [], []
    for _ in range(args.repeats + 1):
        opt_state = jax.vmap(trainer.optimizer.init)(params)
        results = fit_stacked(trainer, params, opt_state, steps=args.steps, log_every=args.log_every)
        assert all(result.status == "completed" for result in results)
        walls.append(results[0].wall_time_s)
        compiles.append(results[0].compile_time_s)
    # The first repetition compiles and warms caches: its compile time is what a run pays, its wall is not timed.
    wall, compile_s = statistics.median(walls[1:]), compiles[0]
    return {"wall_s": wall, "compile_s": compile_s, "model_steps_per_s": seeds * args.steps / wall}


def sequential(problem, points, seeds: int, args) -> dict:
    models = [make_model(problem, args.width, args.depth, seed) for seed in range(seeds)]
    trainer = Trainer(problem, models[0], optax.adam(1e-3), points, snr_batches=0)
    walls, compiles = [], []
    for _ in range(args.repeats + 1):
        total_wall = total_compile = 0.0
        for model in models:
            result = fit(problem, model, optax.adam(1e-3), points, steps=args.steps, log_every=args.log_every,
                         trainer=trainer)
            assert result.status == "completed"
            total_wall += result.wall_time_s
            total_compile += result.compile_time_s
        walls.append(total_wall)
        compiles.append(total_compile)
    wall, compile_s = statistics.median(walls[1:]), compiles[0]
    return {"wall_s": wall, "compile_s": compile_s, "model_steps_per_s": seeds * args.steps / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args()
    for name in ("steps", "log_every", "width", "depth", "points", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if any(seeds <= 0 for seeds in args.seeds):
        parser.error("--seeds must be positive")

    problem = problems.get("helmholtz")
    points = problem.sample(jax.random.key(0), args.points)
    start = time.perf_counter()
    rows = []
    for seeds in args.seeds:
        together = vmapped(problem, points, seeds, args)
        apart = sequential(problem, points, seeds, args)
        rows.append({"seeds": seeds, "vmapped": together, "sequential": apart,
                     "speedup": together["model_steps_per_s"] / apart["model_steps_per_s"]})
    report = {
        "setup": {"problem": "helmholtz", "width": args.width, "depth": args.depth, "points": args.points,
                  "steps": args.steps, "log_every": args.log_every, "optimizer": "adam", "snr_batches": 0,
                  "repeats": args.repeats},
        "machine": {"backend": jax.default_backend(), "devices": len(jax.devices()), "cpus": os.cpu_count(),
                    "load_average_1min": os.getloadavg()[0], "jax": jax.__version__,
                    "python": platform.python_version()},
        "results": rows,
        "total_s": time.perf_counter() - start,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{'K':>3} {'vmapped model-steps/s':>22} {'sequential':>12} {'speedup':>8} {'compile s (v/s)':>16}")
    for row in rows:
        print(f"{row['seeds']:>3} {row['vmapped']['model_steps_per_s']:>22.0f} "
              f"{row['sequential']['model_steps_per_s']:>12.0f} {row['speedup']:>8.2f} "
              f"{row['vmapped']['compile_s']:>7.1f}/{row['sequential']['compile_s']:.1f}")


if __name__ == "__main__":
    main()
