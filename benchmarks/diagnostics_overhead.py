"""What recording the batch-gradient SNR costs: a step that records it against a plain step, and the paper's way.

Allen-Cahn, 6x128 tanh MLP, 4000 collocation points + 512 initial-condition points, RBA + Adam, B = 100 SNR
batches of 40 points. The step that records the SNR takes the B batch gradients in one vmapped backward pass and
uses their mean as its gradient (exact: each batch carries the whole initial-condition term and the batches cover
every point once). The paper's way: a plain step plus B separate batch backward passes. The plain and the
recording step alternate, so that load from other processes hits both alike.

    python benchmarks/diagnostics_overhead.py --json [--repeats 20] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import equinox as eqx
import jax
import optax
from _machine import log, stamp, write

from pinnkit import nn, problems
from pinnkit.engine import Probes
from pinnkit.engine.loop import Trainer
from pinnkit.reweight import rba

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# the engine's step with and without the SNR probe.
MEASURES = ("src/pinnkit/engine", "src/pinnkit/diagnostics", "src/pinnkit/derivatives.py", "src/pinnkit/nn.py",
            "src/pinnkit/problems", "src/pinnkit/reweight")


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def measure(args) -> dict:
    problem = problems.get("allen-cahn")
    points = problem.sample(jax.random.key(0), args.points)
    model = nn.MLP(2, 1, width=args.width, depth=args.depth, key=jax.random.key(1))
    trainer = Trainer(problem, model, optax.chain(rba(args.points), optax.adam(1e-3)), points,
                      probes=Probes(snr_batches=args.batches), snr_key=jax.random.key(2))
    steps = trainer.steps
    params = eqx.filter(model, eqx.is_inexact_array)
    state = trainer.init(params)
    plain = jax.jit(lambda p, s: steps.first_order_step(p, s, points, 0))

    def record(p, s):
        evaluation = steps.evaluate_batches(p, s, points)
        return (*steps.apply(p, s, points, evaluation, 0), evaluation.snr.snr)

    recording = jax.jit(record)
    one_batch = jax.jit(lambda p, s, b: jax.grad(lambda q: steps.objective(
        q, dict(points, pde=points["pde"][b]), {"pde": steps.weights(s)["pde"][b]} if steps.weights(s) else {})[0])(p))
    held = {"p": params, "s": state}

    def run_plain():
        held["p"], held["s"] = plain(held["p"], held["s"])
        jax.block_until_ready(held["p"])

    def run_recording():
        held["p"], held["s"], snr = recording(held["p"], held["s"])
        snr.block_until_ready()

    def run_paper_way():
        run_plain()
        jax.block_until_ready([one_batch(held["p"], held["s"], steps.batches[b]) for b in range(args.batches)])

    for _ in range(2):
        run_plain()
        run_recording()
        run_paper_way()
    plain_times, recording_times, paper_times = [], [], []
    for repeat in range(args.repeats):
        plain_times.append(timed(run_plain))
        recording_times.append(timed(run_recording))
        if repeat % 4 == 0:
            paper_times.append(timed(run_paper_way))
        log(f"repeat {repeat + 1}/{args.repeats}: plain {plain_times[-1] * 1e3:.1f} ms, recording "
            f"{recording_times[-1] * 1e3:.1f} ms")
    plain_ms, recording_ms = statistics.median(plain_times) * 1e3, statistics.median(recording_times) * 1e3
    paper_ms = statistics.median(paper_times) * 1e3
    return {
        "setting": {"problem": "allen-cahn", "width": args.width, "depth": args.depth, "points": args.points,
                    "initial_points": 512, "batches": args.batches, "fused": steps.fused_snr,
                    "repeats": args.repeats},
        "plain_ms": plain_ms, "recording_ms": recording_ms, "overhead_ratio": recording_ms / plain_ms,
        "overhead_ratio_of_minima": min(recording_times) / min(plain_times),
        "paper_way_ms": paper_ms, "paper_way_ratio": paper_ms / plain_ms,
    }


# The diagnostics issue's target: a step recording the SNR at most this many times a plain step (median).
TARGET_RATIO = 1.15


def markdown(payload: dict) -> str:
    """The overhead table of docs/benchmarks.md."""
    setting, machine = payload["setting"], payload["machine"]
    return "\n".join([
        f"Allen-Cahn, {setting['depth']}x{setting['width']} tanh MLP, {setting['points']} collocation points + "
        f"{setting['initial_points']} initial-condition points, RBA + Adam, B = {setting['batches']} batches; "
        f"{machine['cores']} cores of a {machine['cpu']}; jax {payload['versions']['jax']}; {payload['date']}; "
        f"load average at start {machine['load_average_at_start'][0]:.1f}; median of {setting['repeats']} "
        "alternating repeats.", "",
        "| step | median ms | ratio to the plain step |", "|---|---|---|",
        f"| plain RBA step | {payload['plain_ms']:.1f} | 1 |",
        f"| the same step recording the batch-gradient SNR | {payload['recording_ms']:.1f} | "
        f"**{payload['overhead_ratio']:.2f}** (minima: {payload['overhead_ratio_of_minima']:.2f}) |",
        f"| the paper's way: plain step + {setting['batches']} separate batch backward passes | "
        f"{payload['paper_way_ms']:.1f} | {payload['paper_way_ratio']:.2f} |", "",
        f"Target: a recording step at most {TARGET_RATIO:g}x a plain step: "
        f"{'met' if payload['overhead_ratio'] <= TARGET_RATIO else '**missed**'} "
        f"({payload['overhead_ratio']:.2f}x measured).",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--points", type=int, default=4000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="a small smoke run, not written to results/")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.width, args.depth, args.points, args.batches, args.repeats = 16, 2, 200, 10, 2
    payload = stamp() | measure(args)
    if not args.quick:
        log(f"wrote {write('diagnostics_overhead', payload)}")
    print(json.dumps(payload) if args.json else markdown(payload))


if __name__ == "__main__":
    main()
