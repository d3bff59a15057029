"""Median time of one training step on the paper's Allen-Cahn RBA setting: pinnkit (JAX) vs the paper's PyTorch way.

The step: PDE residual u_t - 1e-4 u_xx + 5u^3 - 5u on N collocation points with RBA weights (weight inside the
square), plus the 512-point initial-condition term, full-batch Adam, RBA update. pinnkit takes input derivatives in
Taylor mode inside one jit-compiled step; the PyTorch formulation (paper's code) uses eager autograd with
``create_graph=True``. Achieved GFLOP/s uses XLA's own flop count of the compiled pinnkit step, against the
float32 matmul peak measured in the same run (best of its repeats). The two steps are timed alternately, so
that load from other processes hits both alike; medians and minima are both reported.

Usage: python benchmarks/step_time.py --json [--width 128 --depth 6 --points 4096 --repeats 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

if __name__ == "__main__" and "--threads" in sys.argv:
    # Thread counts must be fixed before JAX starts its CPU backend.
    _threads = sys.argv[sys.argv.index("--threads") + 1]
    if _threads == "1":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from pinnkit import nn, problems  # noqa: E402
from pinnkit.reweight import rba  # noqa: E402
from pinnkit.train import Trainer  # noqa: E402


def timings(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def interleaved(first, second, repeats: int) -> tuple[list[float], list[float]]:
    """Alternate the two steps so that a load from other processes hits both alike."""
    a, b = [], []
    for _ in range(repeats):
        a += timings(first, 1)
        b += timings(second, 1)
    return a, b


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()
    seconds = min(timings(lambda: matmul(a).block_until_ready(), repeats))
    return 2 * size**3 / seconds / 1e9


def pinnkit_step(width: int, depth: int, points: int):
    problem = problems.get("allen-cahn")
    sampled = problem.sample(jax.random.key(0), points)
    model = nn.MLP(2, 1, width=width, depth=depth, key=jax.random.key(1))
    optimizer = optax.chain(rba(points), optax.adam(1e-3))
    trainer = Trainer(problem, model, optimizer, sampled, snr_batches=0)
    params, opt_state = trainer.init(model)

    def step(params, opt_state):
        params, opt_state, loss, _, _ = trainer.plain_step(params, opt_state, sampled)
        return params, opt_state, loss

    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, opt_state).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost.get("flops", float("nan"))) if cost else float("nan")
    state = {"params": params, "opt_state": opt_state}

    def run_once():
        state["params"], state["opt_state"], loss = compiled(state["params"], state["opt_state"])
        loss.block_until_ready()

    for _ in range(3):
        run_once()
    return run_once, flops


def pytorch_step(width: int, depth: int, points: int, threads: int | None = None):
    try:
        import torch
    except ImportError:
        return None
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers = [torch.nn.Linear(2, width), torch.nn.Tanh()]
    for _ in range(depth - 1):
        layers += [torch.nn.Linear(width, width), torch.nn.Tanh()]
    layers.append(torch.nn.Linear(width, 1))
    model = torch.nn.Sequential(*layers)
    for module in model:
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.xavier_normal_(module.weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = np.random.default_rng(0)
    xt = np.column_stack([generator.uniform(-1, 1, points), generator.uniform(0, 1, points)])
    x = torch.tensor(xt[:, :1], dtype=torch.float32, requires_grad=True)
    t = torch.tensor(xt[:, 1:], dtype=torch.float32, requires_grad=True)
    x0 = torch.linspace(-1, 1, 513, dtype=torch.float32)[:-1].reshape(-1, 1)
    u0 = x0**2 * torch.cos(torch.pi * x0)
    ic_input = torch.cat([x0, torch.zeros_like(x0)], dim=1)
    weights = torch.zeros(points, 1)

    def step():
        nonlocal weights
        optimizer.zero_grad()
        u = model(torch.cat([x, t], dim=1))
        u_x, u_t = torch.autograd.grad(u, (x, t), torch.ones_like(u), create_graph=True)
        u_xx = torch.autograd.grad(u_x, x, torch.ones_like(u_x), create_graph=True)[0]
        residual = u_t - 1e-4 * u_xx + 5 * u**3 - 5 * u
        magnitude = residual.detach().abs()
        weights = 0.999 * weights + 1e-3 * magnitude / magnitude.max()
        loss = torch.mean((weights * residual) ** 2) + torch.mean((model(ic_input) - u0) ** 2)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    return step, {"pytorch_version": torch.__version__, "pytorch_threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--points", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=30, help="interleaved timed steps of each")
    parser.add_argument("--threads", type=int, choices=(1,), default=None,
                        help="run both frameworks on one thread (robust when other jobs share the machine)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    out = {"width": args.width, "depth": args.depth, "points": args.points, "initial_points": 512,
           "backend": jax.default_backend(), "jax_version": jax.__version__, "threads": args.threads or "all"}
    pinnkit_run, flops = pinnkit_step(args.width, args.depth, args.points)
    torch_result = pytorch_step(args.width, args.depth, args.points, args.threads)
    if torch_result:
        torch_run, info = torch_result
        pinnkit_times, torch_times = interleaved(pinnkit_run, torch_run, args.repeats)
        out.update(info)
        out["pytorch_ms"] = statistics.median(torch_times) * 1e3
        out["pytorch_min_ms"] = min(torch_times) * 1e3
    else:
        pinnkit_times = timings(pinnkit_run, args.repeats)
    out["pinnkit_ms"] = statistics.median(pinnkit_times) * 1e3
    out["pinnkit_min_ms"] = min(pinnkit_times) * 1e3
    out["pinnkit_flops_per_step"] = flops
    out["pinnkit_gflops"] = flops / (out["pinnkit_min_ms"] / 1e3) / 1e9 if np.isfinite(flops) else None
    if torch_result:
        out["ratio"] = out["pinnkit_ms"] / out["pytorch_ms"]
        out["ratio_of_minima"] = out["pinnkit_min_ms"] / out["pytorch_min_ms"]
    out["matmul_peak_gflops"] = matmul_peak_gflops()
    if out.get("pinnkit_gflops"):
        out["fraction_of_peak"] = out["pinnkit_gflops"] / out["matmul_peak_gflops"]
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
