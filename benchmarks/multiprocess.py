"""Step time of one program over 2 devices: 1 process x 2 devices against 2 processes x 1 device (jax.distributed).

Both layouts run the same compiled chunk of training steps on the same global mesh of 2 devices (the collocation
points split in halves, everything else replicated); what differs is where the all-reduce of the loss and gradient
runs: inside one process, or between two processes (on CPU through gloo over TCP). The ratio of their step times
is the cost of the collectives between processes. 1 process x 1 device (no split) is the reference.

XLA combines a step's gradient reductions into one all-reduce of a tuple (one member per parameter array); a second
measurement times that exchange alone, between the 2 processes: one jitted call reducing one buffer of all the
parameters' size against one reducing the same sizes as a tuple of the network's arrays.

Each measurement is a fresh set of processes (``--worker``): Helmholtz, a small MLP, Adam, SNR and test error off,
chunks of ``--chunk`` steps timed after a warm-up; the layouts take turns for ``--rounds`` rounds, so that load
from other jobs falls on all of them alike. On a CPU host the 2 devices of one process are XLA's forced host
devices (``--xla_force_host_platform_device_count=2``), which share the host's cores as the 2 processes do.

    python benchmarks/multiprocess.py [--points 20000 200000] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

from _machine import log, stamp, write

# What its numbers depend on (docs/render.py warns when these changed after the result's commit).
MEASURES = ("src/pinnkit/distributed.py", "src/pinnkit/multiprocess.py", "src/pinnkit/engine", "src/pinnkit/nn.py",
            "src/pinnkit/derivatives.py", "src/pinnkit/problems/helmholtz.py")

LAYOUTS = (("1x1", 1, 1), ("1x2", 1, 2), ("2x1", 2, 1))  # (name, processes, devices per process)
RESULT_PREFIX = "RESULT "


def worker(args) -> None:
    """One process of a layout: train chunks of steps and print their times (process 0)."""
    if args.processes > 1:
        from pinnkit.distributed import initialize

        initialize(args.coordinator, args.processes, args.process_id, timeout_s=120)
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from pinnkit import nn, problems
    from pinnkit.distributed import data_mesh
    from pinnkit.engine import Probes
    from pinnkit.engine.loop import Trainer
    from pinnkit.multiprocess import is_main_process, leave

    problem = problems.get("helmholtz")
    points = problem.sample(jax.random.key(0), args.points)
    model = nn.MLP(2, 1, width=args.width, depth=args.depth, domain=problem.domain, key=jax.random.key(1))
    mesh = data_mesh() if jax.device_count() > 1 else None
    trainer = Trainer(problem, model, optax.adam(1e-3), points, probes=Probes(snr_batches=0),
                      error_fn=lambda model: jnp.zeros(()), mesh=mesh)
    params = trainer.place(jax.tree_util.tree_map(lambda leaf: leaf[None], eqx.filter(model, eqx.is_inexact_array)))
    state = trainer.place(jax.vmap(trainer.init)(params))
    _, pending = trainer.probe(params, state)(params, state, trainer.points)
    chunk = trainer.chunk(params, state, pending)
    times = []
    for block in range(args.blocks + 1):
        start = time.perf_counter()
        params, state, _ = chunk(params, state, trainer.points, pending, np.int32(block * args.chunk),
                                 np.int32(args.chunk))
        jax.block_until_ready(params)
        if block:  # the first block warms up
            times.append((time.perf_counter() - start) / args.chunk)
    if is_main_process():
        print(RESULT_PREFIX + json.dumps({"step_s": times, "devices": jax.device_count(),
                                          "processes": jax.process_count(),
                                          "compile_s": trainer.compile_time_s}), flush=True)
    leave()


def collectives_worker(args) -> None:
    """One process of 2: time an all-reduce of one buffer and of a tuple of the network's array sizes."""
    from pinnkit.distributed import initialize

    initialize(args.coordinator, args.processes, args.process_id, timeout_s=120)
    import equinox as eqx
    import jax
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec

    from pinnkit import nn
    from pinnkit.distributed import DATA_AXIS, data_mesh, place
    from pinnkit.multiprocess import is_main_process, leave

    mesh = data_mesh()
    shapes = [leaf.shape for leaf in jax.tree_util.tree_leaves(eqx.filter(
        nn.MLP(2, 1, width=args.width, depth=args.depth, key=jax.random.key(1)), eqx.is_inexact_array))]
    split, everywhere = NamedSharding(mesh, PartitionSpec(DATA_AXIS)), NamedSharding(mesh, PartitionSpec())
    parts = [place(np.ones((jax.device_count(), *shape), np.float32), split) for shape in shapes]
    whole = [place(np.ones((jax.device_count(), sum(int(np.prod(shape)) for shape in shapes)), np.float32), split)]
    reduce = jax.jit(lambda arrays: [array.sum(axis=0) for array in arrays], out_shardings=everywhere)
    out = {"members": len(shapes), "floats": int(whole[0].shape[1])}
    for name, arrays in (("one_buffer", whole), ("tuple", parts)):
        jax.block_until_ready(reduce(arrays))
        times = []
        for _ in range(args.blocks):
            start = time.perf_counter()
            for _ in range(args.chunk):
                jax.block_until_ready(reduce(arrays))
            times.append((time.perf_counter() - start) / args.chunk)
        out[name] = times
    if is_main_process():
        print(RESULT_PREFIX + json.dumps(out), flush=True)
    leave()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_layout(processes: int, devices: int, args, *, mode: str = "--worker") -> dict:
    """Start the processes of one layout; process 0's times."""
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    env.pop("XLA_FLAGS", None)
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    coordinator = f"127.0.0.1:{_free_port()}"
    base = [sys.executable, __file__, mode, "--points", str(args.points[0]), "--width", str(args.width),
            "--depth", str(args.depth), "--chunk", str(args.chunk), "--blocks", str(args.blocks),
            "--processes", str(processes), "--coordinator", coordinator]
    running = [subprocess.Popen([*base, "--process-id", str(index)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for index in range(processes)]
    outputs = [process.communicate(timeout=args.timeout) for process in running]
    for process, (_, stderr) in zip(running, outputs, strict=True):
        if process.returncode:
            raise SystemExit(f"a worker ({processes}x{devices}) failed with code {process.returncode}: "
                             f"{stderr.strip().splitlines()[-1:] or ''}")
    line = next(line for line in outputs[0][0].splitlines() if line.startswith(RESULT_PREFIX))
    found = json.loads(line[len(RESULT_PREFIX):])
    assert mode != "--worker" or (found["devices"], found["processes"]) == (processes * devices, processes), found
    return found


def measure(args) -> dict:
    rows = []
    for points in args.points:
        sized = argparse.Namespace(**{**vars(args), "points": [points]})
        samples: dict[str, list[float]] = {name: [] for name, _, _ in LAYOUTS}
        compile_s: dict[str, list[float]] = {name: [] for name, _, _ in LAYOUTS}
        for round_index in range(args.rounds):
            for name, processes, devices in LAYOUTS:
                started = time.perf_counter()
                found = run_layout(processes, devices, sized)
                samples[name] += found["step_s"]
                compile_s[name].append(found["compile_s"])
                log(f"{points} points, {name}, round {round_index + 1}/{args.rounds}: median "
                    f"{statistics.median(found['step_s']) * 1e3:.2f} ms/step ({time.perf_counter() - started:.0f} s)")
        row = {"points": points}
        for name, _, _ in LAYOUTS:
            times = samples[name]
            row[name] = {"median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3,
                         "max_ms": max(times) * 1e3, "blocks": len(times), "compile_s": compile_s[name]}
        row["ratio_2x1_to_1x2"] = row["2x1"]["median_ms"] / row["1x2"]["median_ms"]
        rows.append(row)
    collectives: dict[str, list[float]] = {"one_buffer": [], "tuple": []}
    for round_index in range(args.rounds):
        found = run_layout(2, 1, args, mode="--collectives-worker")
        for name in collectives:
            collectives[name] += found[name]
        log(f"all-reduce, round {round_index + 1}/{args.rounds}: one buffer "
            f"{statistics.median(found['one_buffer']) * 1e3:.2f} ms, a tuple of {found['members']} "
            f"{statistics.median(found['tuple']) * 1e3:.2f} ms")
    exchange = {"members": found["members"], "floats": found["floats"], "calls_per_block": args.chunk}
    for name, times in collectives.items():
        exchange[name] = {"median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3,
                          "max_ms": max(times) * 1e3, "blocks": len(times)}
    return {"setting": {"problem": "helmholtz", "optimizer": "adam", "width": args.width, "depth": args.depth,
                        "chunk_steps": args.chunk, "blocks_per_round": args.blocks, "rounds": args.rounds,
                        "cpu_collectives": "gloo"},
            "rows": rows, "all_reduce": exchange}


def markdown(payload: dict) -> str:
    """The table of docs/scaling.md."""
    setting, machine = payload["setting"], payload["machine"]
    lines = [f"Measured {payload['date']} by `python benchmarks/multiprocess.py` on {machine['cores']} cores of a "
             f"{machine['cpu']} ({machine['jax_backend']}; load average {machine['load_average_at_start'][0]:.1f} "
             f"at the start), jax {payload['versions']['jax']}: Helmholtz, Adam, a {setting['depth']}x"
             f"{setting['width']} tanh MLP, SNR and test error off; chunks of {setting['chunk_steps']} steps, "
             f"{setting['blocks_per_round']} timed chunks per layout and round, {setting['rounds']} rounds with the "
             "layouts taking turns; CPU collectives between processes: "
             f"{setting['cpu_collectives']}.", "",
             "| points | 1 process x 1 device, ms/step | 1 process x 2 devices | 2 processes x 1 device | "
             "2x1 / 1x2 |", "|---|---|---|---|---|"]
    for row in payload["rows"]:
        cells = [f"{row[name]['median_ms']:.2f} [{row[name]['min_ms']:.2f}-{row[name]['max_ms']:.2f}]"
                 for name in ("1x1", "1x2", "2x1")]
        lines.append(f"| {row['points']:,} | " + " | ".join(cells) + f" | {row['ratio_2x1_to_1x2']:.2f} |")
    lines += ["", "Median [range] over the timed chunks. The last column is the cost of taking the all-reduce out "
                  "of the process: the same program, the same devices, the sums exchanged over TCP instead of in "
                  "memory."]
    exchange = payload.get("all_reduce")
    if exchange:
        lines += ["", f"The all-reduce alone, between the 2 processes ({exchange['floats']} float32 numbers, the "
                      f"parameters of the {setting['depth']}x{setting['width']} network; one jitted call, "
                      f"{exchange['calls_per_block']} calls per timed block):", "",
                  "| reduced as | ms per call |", "|---|---|"]
        for name, label in (("one_buffer", "one buffer"), ("tuple", f"a tuple of {exchange['members']} arrays")):
            entry = exchange[name]
            lines.append(f"| {label} | {entry['median_ms']:.2f} [{entry['min_ms']:.2f}-{entry['max_ms']:.2f}] |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[20000, 200000])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=20, help="steps per timed chunk")
    parser.add_argument("--blocks", type=int, default=5, help="timed chunks per layout and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds in which the layouts take turns")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one layout may take")
    parser.add_argument("--quick", action="store_true", help="a small smoke run, not written to results/")
    parser.add_argument("--json", action="store_true", help="print the JSON object")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--collectives-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--coordinator", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker or args.collectives_worker:
        args.points = args.points[0]
        (worker if args.worker else collectives_worker)(args)
        return
    if args.quick:
        args.points, args.chunk, args.blocks, args.rounds = [2000], 5, 2, 1
    payload = stamp() | measure(args)
    if not args.quick:
        log(f"wrote {write('multiprocess', payload)}")
    print(json.dumps(payload) if args.json else markdown(payload))


if __name__ == "__main__":
    main()
