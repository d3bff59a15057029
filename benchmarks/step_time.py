"""Time of one training step on the paper's Allen-Cahn RBA setting: pinnkit (JAX) vs the paper's PyTorch way.

The step: PDE residual u_t - 1e-4 u_xx + 5u^3 - 5u on N collocation points with RBA weights (weight inside the
square), the 512-point initial-condition term, full-batch Adam and the RBA update. Three numbers, measured side
by side in one run:

- ``in_training``: pinnkit's step as training runs it: chunks of 50 steps in the engine's compiled loop, each row
  recording the batch-gradient SNR (B = 128 batches; its gradient is the next step's, so a row costs about one
  batched gradient), the test-error evaluation on the reference grid left out (it is not part of a step);
- ``single_call``: one jit-compiled step called from Python (what this benchmark measured before);
- ``pytorch``: the paper's formulation, eager autograd with ``create_graph=True``, one step per call.

pinnkit blocks (50 steps) and PyTorch blocks (10 steps) alternate, so load from other processes hits both alike;
medians and minima per step are reported. Achieved GFLOP/s uses XLA's flop count of the compiled single step
against the float32 matmul peak measured in the same run.

    python benchmarks/step_time.py --json [--width 128 --depth 6 --points 4096 --repeats 15] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _machine import log, stamp, write

from pinnkit import nn, problems
from pinnkit.engine import Probes
from pinnkit.engine.loop import Trainer
from pinnkit.reweight import rba

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# the engine's step, the network, the derivatives and the problem, with RBA and the SNR probe.
MEASURES = ("src/pinnkit/engine", "src/pinnkit/derivatives.py", "src/pinnkit/nn.py", "src/pinnkit/problems",
            "src/pinnkit/reweight", "src/pinnkit/diagnostics/snr.py",
            "src/pinnkit/diagnostics/sample_gradients.py")

CHUNK = 50


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    a = jnp.ones((size, size), jnp.float32)
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def pinnkit_runs(width: int, depth: int, points: int, batches: int):
    """(a block of CHUNK steps as training runs them, one single-call step, flops of the single step)."""
    problem = problems.get("allen-cahn")
    sampled = problem.sample(jax.random.key(0), points)
    model = nn.MLP(2, 1, width=width, depth=depth, key=jax.random.key(1))
    optimizer = optax.chain(rba(points), optax.adam(1e-3))
    trainer = Trainer(problem, model, optimizer, sampled, probes=Probes(snr_batches=batches),
                      error_fn=lambda model: jnp.zeros(()))
    params = jax.tree_util.tree_map(lambda leaf: leaf[None], eqx.filter(model, eqx.is_inexact_array))
    state = jax.vmap(trainer.init)(params)
    probe = trainer.probe(params, state)
    _, pending = probe(params, state, trainer.points)
    chunk = trainer.chunk(params, state, pending)
    loop = {"params": params, "state": state, "pending": pending, "done": 0}

    def block():
        out = chunk(loop["params"], loop["state"], trainer.points, loop["pending"], np.int32(loop["done"]),
                    np.int32(CHUNK))
        loop["params"], loop["state"], _ = out
        row, loop["pending"] = probe(loop["params"], loop["state"], trainer.points)
        jax.block_until_ready(row)
        loop["done"] += CHUNK

    steps = trainer.steps
    single = jax.jit(lambda p, s: steps.first_order_step(p, s, sampled, 0), donate_argnums=(0, 1))
    one_params, one_state = eqx.filter(model, eqx.is_inexact_array), trainer.init(eqx.filter(model,
                                                                                                eqx.is_inexact_array))
    compiled = single.lower(one_params, one_state).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost.get("flops", np.nan)) if cost else np.nan
    holder = {"params": one_params, "state": one_state}

    def one_step():
        holder["params"], holder["state"] = compiled(holder["params"], holder["state"])
        jax.block_until_ready(holder["params"])

    for _ in range(2):
        block()
        one_step()
    return block, one_step, flops


def pytorch_step(width: int, depth: int, points: int):
    try:
        import torch
    except ImportError:
        return None
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


def timed(function, count: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(count):
        function()
    return (time.perf_counter() - start) / count


def measure(args) -> dict:
    block, one_step, flops = pinnkit_runs(args.width, args.depth, args.points, args.batches)
    torch_run = pytorch_step(args.width, args.depth, args.points)
    loop_times, single_times, torch_times = [], [], []
    for repeat in range(args.repeats):
        loop_times.append(timed(block) / CHUNK)
        single_times.append(timed(one_step, 5))
        if torch_run is not None:
            torch_times.append(timed(torch_run[0], 10))
        log(f"repeat {repeat + 1}/{args.repeats}: in training {loop_times[-1] * 1e3:.1f} ms, single "
            f"{single_times[-1] * 1e3:.1f} ms" + (f", pytorch {torch_times[-1] * 1e3:.1f} ms" if torch_times else ""))
    out = {"setting": {"problem": "allen-cahn", "width": args.width, "depth": args.depth, "points": args.points,
                       "initial_points": 512, "snr_batches": args.batches, "row_every": CHUNK,
                       "repeats": args.repeats}}
    ms = lambda times: {"median_ms": statistics.median(times) * 1e3, "min_ms": min(times) * 1e3}  # noqa: E731
    out["in_training"] = ms(loop_times)
    out["single_call"] = ms(single_times)
    out["single_call"]["flops"] = flops
    out["single_call"]["gflops_at_min"] = flops / (min(single_times)) / 1e9 if np.isfinite(flops) else None
    out["matmul_peak_gflops"] = matmul_peak_gflops()
    if torch_times:
        out["pytorch"] = ms(torch_times) | torch_run[1]
        for name in ("in_training", "single_call"):
            out[name]["ratio_to_pytorch"] = out[name]["median_ms"] / out["pytorch"]["median_ms"]
            out[name]["ratio_of_minima"] = out[name]["min_ms"] / out["pytorch"]["min_ms"]
    return out


# The engine issue's target: the step inside training at most this fraction of the PyTorch step (median).
TARGET_RATIO = 0.4


def verdict(ratio: float, target: float, what: str) -> str:
    """One line naming a target and whether the measured ratio met it."""
    met = "met" if ratio <= target else "**missed**"
    return f"Target: {what} at most {target:g}x: {met} ({ratio:.2f}x measured)."


def markdown(payload: dict) -> str:
    """The step-time table of docs/benchmarks.md."""
    setting, machine = payload["setting"], payload["machine"]
    lines = [f"Allen-Cahn with RBA and Adam, {setting['depth']}x{setting['width']} tanh MLP, {setting['points']} "
             f"collocation points + {setting['initial_points']} initial-condition points, float32; "
             f"{machine['cores']} cores of a {machine['cpu']}; jax {payload['versions']['jax']}"
             + (f", PyTorch {payload['pytorch']['pytorch_version']}" if "pytorch" in payload else "")
             + f"; {payload['date']}; load average at start {machine['load_average_at_start'][0]:.1f}.", "",
             "| step | median ms | min ms | ratio to PyTorch (median / min) |", "|---|---|---|---|"]
    names = {"in_training": f"pinnkit, as training runs it (chunks of {setting['row_every']} steps, SNR with "
                            f"B = {setting['snr_batches']} at each row)",
             "single_call": "pinnkit, one jitted step called from Python",
             "pytorch": "PyTorch eager (the paper's formulation)"}
    for key, label in names.items():
        if key not in payload:
            continue
        entry = payload[key]
        ratio = (f"{entry['ratio_to_pytorch']:.2f} / {entry['ratio_of_minima']:.2f}"
                 if "ratio_to_pytorch" in entry else ("1" if key == "pytorch" else "-"))
        lines.append(f"| {label} | {entry['median_ms']:.1f} | {entry['min_ms']:.1f} | {ratio} |")
    single = payload["single_call"]
    if single.get("gflops_at_min"):
        lines += ["", f"The single step is {single['flops'] / 1e9:.2f} GFLOP (XLA's count): "
                      f"{single['gflops_at_min']:.0f} GFLOP/s at its fastest, "
                      f"{100 * single['gflops_at_min'] / payload['matmul_peak_gflops']:.0f} % of the "
                      f"{payload['matmul_peak_gflops']:.0f} GFLOP/s float32 matmul peak measured in the same run."]
    if "ratio_to_pytorch" in payload.get("in_training", {}):
        lines += ["", verdict(payload["in_training"]["ratio_to_pytorch"], TARGET_RATIO,
                              "pinnkit's step as training runs it (median), against the PyTorch step,")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--points", type=int, default=4096)
    parser.add_argument("--batches", type=int, default=128, help="SNR batches (must divide --points)")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved timed blocks of each")
    parser.add_argument("--quick", action="store_true", help="a small smoke run, not written to results/")
    parser.add_argument("--json", action="store_true", help="print the JSON object")
    args = parser.parse_args()
    if args.quick:
        args.width, args.depth, args.points, args.batches, args.repeats = 16, 2, 256, 16, 2
    payload = stamp() | measure(args)
    if not args.quick:
        log(f"wrote {write('step_time', payload)}")
    print(json.dumps(payload) if args.json else markdown(payload))


if __name__ == "__main__":
    main()
