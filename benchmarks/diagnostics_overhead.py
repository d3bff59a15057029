"""What recording the batch-gradient SNR costs: a plain RBA step against the same step that also records it.

Setting: Allen-Cahn, 6x128 tanh MLP, 4000 collocation points (+ the 512-point initial condition), RBA + Adam,
B = 100 SNR batches. pinnkit's SNR step takes the B batch gradients in one vmapped backward pass and uses their mean
as the step's gradient (exact: every batch carries the full constraint term and the batches cover every point once).
For comparison, the paper's way: the plain step plus B separate backward passes, one per batch.

Usage: python benchmarks/diagnostics_overhead.py --json [--points 4000 --batches 100 --repeats 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import optax

from pinnkit import nn, problems
from pinnkit.reweight import rba, sample_weights
from pinnkit.train import Trainer


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median_ms(function, repeats: int) -> float:
    for _ in range(2):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--points", type=int, default=4000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    problem = problems.get("allen-cahn")
    points = problem.sample(jax.random.key(0), args.points)
    model = nn.MLP(2, 1, width=args.width, depth=args.depth, key=jax.random.key(1))
    optimizer = optax.chain(rba(args.points), optax.adam(1e-3))
    trainer = Trainer(problem, model, optimizer, points, snr_batches=args.batches, snr_key=jax.random.key(2))
    params, opt_state = trainer.init(model)

    plain = jax.jit(lambda p, s: trainer.plain_step(p, s, points)[:3])
    def snr_step(p, s):
        p, s, loss, _, _, stats = trainer.snr_step(p, s, points)
        return p, s, loss, stats.snr

    with_snr = jax.jit(snr_step)

    def batch_gradient(p, s, batch_indices):
        weights = trainer._term_weights(sample_weights(s))
        batch_points = dict(points)
        batch_points["pde"] = points["pde"][batch_indices]
        batch_weights = {"pde": weights["pde"][batch_indices]} if weights else {}
        return jax.grad(lambda q: trainer.loss(q, batch_points, batch_weights)[0])(p)

    one_batch = jax.jit(batch_gradient)
    state = {"p": params, "s": opt_state}

    def run_plain():
        state["p"], state["s"], loss = plain(state["p"], state["s"])
        loss.block_until_ready()

    def run_snr():
        state["p"], state["s"], loss, snr = with_snr(state["p"], state["s"])
        snr.block_until_ready()

    def run_paper_way():
        run_plain()
        grads = [one_batch(state["p"], state["s"], trainer.batches[b]) for b in range(args.batches)]
        jax.block_until_ready(grads)

    # Alternate the plain and the SNR step so that load from other processes hits both alike.
    for _ in range(2):
        run_plain()
        run_snr()
    plain_times, snr_times = [], []
    for _ in range(args.repeats):
        plain_times.append(timed(run_plain))
        snr_times.append(timed(run_snr))
    step_ms, snr_ms = statistics.median(plain_times) * 1e3, statistics.median(snr_times) * 1e3
    paper_ms = median_ms(run_paper_way, max(3, args.repeats // 4))
    out = {
        "problem": "allen-cahn", "width": args.width, "depth": args.depth, "points": args.points,
        "batches": args.batches, "fused": trainer.fused_snr, "backend": jax.default_backend(),
        "step_ms": step_ms, "step_with_snr_ms": snr_ms, "overhead_ratio": snr_ms / step_ms,
        "overhead_ratio_of_minima": min(snr_times) / min(plain_times),
        "paper_way_ms": paper_ms, "paper_way_ratio": paper_ms / step_ms,
    }
    print(json.dumps(out) if args.json else "\n".join(f"{k:>18}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
