"""pinnkit beside the authors' own Helmholtz script, from identical initial weights and points, step by step.

``benchmarks/authors_peer.py`` runs the authors' script (their network, their points, their RBA and Adam) and saves
its initial parameters, its points, its SNR batches and one record per row. This script copies those parameters
into pinnkit's Equinox network (``PAPER_CASES["helmholtz"]``: 6x128 tanh on raw coordinates, min-max RBA from
zero weights advanced before each gradient, Adam 1e-3), trains it on the same points with the same batches
(consecutive slices: ``Probes(batch_split="contiguous")``) through ``pinnkit.fit``, records at the same steps, and
writes, row by row, the relative differences of the test error, the batch SNR, the gradient order, the Adam SNR and
the mean RBA weight; and, as a control, the same for pinnkit with the weights one step behind (its default order,
``weights_first=False``). What the authors' records mean is in authors_peer.py; pinnkit's row k is measured after k
steps as theirs is. (Their ``loss`` is the loss of the step taken, with the weights that step had just refreshed,
at the parameters before it; pinnkit's row loss is at the parameters after it: the two are not compared.)

    python benchmarks/authors_peer.py --authors-repo DIR --seed 2341 --steps 100 --every 10 --out peer.npz
    python benchmarks/side_by_side.py peer.npz [peer2.npz ...]

Writes ``benchmarks/results/side_by_side.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _machine import log, stamp, write

from pinnkit import columns
from pinnkit.engine import LogSchedule, Probes, fit
from pinnkit.experiment import model_for, plan_for
from pinnkit.paper_cases import PAPER_CASES
from pinnkit.reweight import sample_weights

MEASURES = ("src/pinnkit/paper_cases.py", "src/pinnkit/engine", "src/pinnkit/reweight", "src/pinnkit/problems",
            "src/pinnkit/diagnostics", "src/pinnkit/nn.py", "src/pinnkit/optimizers.py")

COMPARED = {"rel_l2": columns.REL_L2, "snr": columns.SNR, "order": columns.ORDER, "adam_snr": columns.ADAM_SNR,
            "grad_mean_norm": columns.GRAD_MEAN_NORM}


def load_peer(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["meta"] = json.loads(str(arrays["meta"]))
    return arrays


def pinnkit_model(config, problem, peer: dict):
    """pinnkit's network of the config with the peer's initial parameters (torch's (out, in) layout is Equinox's)."""
    model = model_for(config, problem, jax.random.key(0), jnp.float32)
    count = len(model.layers)
    for index in range(count):
        weight = jnp.asarray(peer[f"initial_{index}_weight"], jnp.float32)
        bias = jnp.asarray(peer[f"initial_{index}_bias"], jnp.float32)
        if weight.shape != model.layers[index].weight.shape:
            raise SystemExit(f"layer {index}: the peer's weight is {weight.shape}, pinnkit's "
                             f"{model.layers[index].weight.shape}")
        model = eqx.tree_at(lambda m, i=index: (m.layers[i].weight, m.layers[i].bias), model, (weight, bias))
    return model


def run_pinnkit(peer: dict, *, weights_first: bool = True):
    """pinnkit from the peer's initial state; ``weights_first=False``: the control with the weights one step
    behind (pinnkit's default order)."""
    meta = peer["meta"]
    steps = int(meta["steps"])
    config = PAPER_CASES["helmholtz"].run_config(steps=steps, weights_first=weights_first, problem_params={
        **PAPER_CASES["helmholtz"].problem_params, "grid_size": int(meta["grid"])})
    if int(meta.get("init", 1)) != 1:
        raise SystemExit("the peer ran with --init 2; pinnkit's case starts the weights at zero (--init 1)")
    problem = config.make_problem()
    model = pinnkit_model(config, problem, peer)
    points = {"pde": jnp.asarray(peer["x_r"], jnp.float32), "bc": jnp.asarray(peer["x_u"], jnp.float32)}
    if np.any(peer["u"] != 0):
        raise SystemExit("the peer's boundary values are not zero: not the Helmholtz case pinnkit solves")
    batches = np.asarray(peer["batch_indices"])
    expected = np.arange(batches.size).reshape(batches.shape)
    if not np.array_equal(batches, expected):
        raise SystemExit("the peer's SNR batches are not consecutive slices of its points")
    iterations = [int(k) for k in peer[columns.ITERATION]]
    every = iterations[-1] - iterations[-2] if len(iterations) > 2 else steps
    log_schedule = LogSchedule(every=every)
    if [0, *log_schedule.marks(steps)] != iterations:
        raise SystemExit(f"the peer recorded at {iterations}; rerun it with a regular --every and --dense 0")
    plan = plan_for(config)
    probes = Probes(snr_batches=batches.shape[0], batch_split="contiguous")
    result = fit(problem, model, plan, points, steps=steps, log=log_schedule, probes=probes)
    return config, result


def compare(peer: dict, result) -> dict:
    history = result.history
    steps = [int(k) for k in history[columns.STEP]]
    rows = []
    for row_index, iteration in enumerate(steps):
        peer_index = int(np.flatnonzero(peer[columns.ITERATION] == iteration)[0])
        entry = {"iteration": iteration}
        for name, column in COMPARED.items():
            mine = float(history[column][row_index]) if column in history else float("nan")
            theirs = float(peer[name][peer_index])
            entry[name] = {"pinnkit": mine, "authors": theirs,
                           "relative_difference": abs(mine - theirs) / abs(theirs)
                           if np.isfinite(theirs) and theirs != 0 and np.isfinite(mine) else None}
        rows.append(entry)
    weights = sample_weights(result.opt_state)
    final = {"weights_mean": {"pinnkit": float(jnp.mean(weights)), "authors": float(peer["weights_mean"][-1])}}
    largest = {}
    for name in COMPARED:
        values = [row[name]["relative_difference"] for row in rows if row[name]["relative_difference"] is not None]
        largest[name] = max(values) if values else None
    return {"rows": rows, "largest_relative_difference": largest, "final": final,
            "within_1_percent": {name: value is not None and value <= 0.01 for name, value in largest.items()}}


def _fmt(value) -> str:
    value = float(value) if isinstance(value, str) else value  # the JSON writes infinities as strings
    if value is None or np.isnan(value):
        return "-"
    return f"{value:.4g}"


def markdown(payload: dict) -> str:
    """The side-by-side table of docs/reproduction.md: per seed, row by row, pinnkit beside the authors' script."""
    machine = payload["machine"]
    lines = [f"`{payload['command']}`, {payload['date']}, {machine['cores']} cores of a {machine['cpu']}; "
             f"jax {payload['versions'].get('jax', '?')}, torch {payload['versions'].get('torch', '?')}.", ""]
    for name, entry in payload["runs"].items():
        largest = entry["largest_relative_difference"]
        lines += [f"**{name}**, {entry['steps']} steps from the authors' initial state (their step: "
                  f"{entry['peer_median_step_s']:.2f} s; pinnkit: {entry['pinnkit_train_s']:.1f} s of training in all, "
                  f"{entry['pinnkit_compile_s']:.1f} s compiling). Largest relative difference over the rows: "
                  + ", ".join(f"{key} {_fmt(value)}" for key, value in largest.items()) + ".", "",
                  "| step | rel. L2 pinnkit | rel. L2 authors | SNR pinnkit | SNR authors | Adam SNR pinnkit | "
                  "Adam SNR authors |", "|---|---|---|---|---|---|---|"]
        for row in entry["rows"]:
            cells = [_fmt(row[name][side]) for name in ("rel_l2", "snr", "adam_snr") for side in ("pinnkit", "authors")]
            lines.append(f"| {row[columns.ITERATION]} | " + " | ".join(cells) + " |")
        final = entry["final"]["weights_mean"]
        lines += ["", f"Mean RBA weight after the last step: pinnkit {final['pinnkit']:.6g}, authors "
                      f"{final['authors']:.6g}."]
        control = entry.get("control_weights_after")
        if control:
            lines.append("Control, pinnkit with the weights one step behind (`weights_first=False`): largest relative "
                         "difference " + ", ".join(f"{key} {_fmt(value)}" for key, value in
                                                   control["largest_relative_difference"].items()) + ".")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("peers", nargs="+", help=".npz files written by benchmarks/authors_peer.py")
    args = parser.parse_args()
    payload = {**stamp(), "runs": {}}
    for path in map(Path, args.peers):
        peer = load_peer(path)
        log(f"{path}: seed {peer['meta']['seed']}, {peer['meta']['steps']} steps")
        config, result = run_pinnkit(peer)
        entry = compare(peer, result)
        _, control = run_pinnkit(peer, weights_first=False)
        entry["control_weights_after"] = {"largest_relative_difference":
                                          compare(peer, control)["largest_relative_difference"]}
        entry.update(seed=peer["meta"]["seed"], steps=int(peer["meta"]["steps"]), peer_meta=peer["meta"],
                     pinnkit_train_s=float(result.wall_time_s), pinnkit_compile_s=float(result.compile_time_s),
                     peer_median_step_s=float(np.nanmedian(peer["step_seconds"])), config=config.to_dict())
        payload["runs"][f"seed-{peer['meta']['seed']}"] = entry
        log(f"  largest relative differences: {entry['largest_relative_difference']}")
    path = write("side_by_side", payload)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
