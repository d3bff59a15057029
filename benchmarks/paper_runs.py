"""pinnkit's own runs of the paper's cases at the paper's settings, beside the authors' released logs.

Two commands:

- ``train``: one run of a case (``pinnkit train --preset paper-<case>``) into ``runs/paper/<case>-<reweight>-s<seed>``,
  with a checkpoint every ``--checkpoint-every`` steps; run again, it resumes from the last checkpoint. A 6x128
  network on 25,600 points takes about a second a step on 2 CPU cores: run it in the background, as long as the
  machine allows.
- ``report``: for each run folder given (finished, or in progress: the history of its latest checkpoint), beside
  the authors' log of the same case and reweighting (``paper_logs/`` of the shared data, Allen-Cahn and cavity):
  the batch SNR medians in windows of iterations, the test error at fixed iterations, the transitions the detector
  finds on both (and the authors' hand-placed lines), the first iteration with error below 0.5, and the targets
  they meet; one figure per run (smoothed SNR, order, Adam SNR, residual homogeneity, test error, overlaid on the
  log). Writes ``benchmarks/results/paper_runs.json`` and ``docs/figures/paper_run_<run>.png``.

    python benchmarks/paper_runs.py train --case allen-cahn --reweight rba --steps 20000 [--seed 0]
    python benchmarks/paper_runs.py report runs/paper/allen-cahn-rba-s0 [...] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from _machine import ROOT, log, stamp, write
from paper_logs import DIFFUSION_TOLERANCE, EQUILIBRIUM_TOLERANCE, default_data, hand_lines, within

from pinnkit import columns
from pinnkit.checkpoint import CheckpointError, latest_checkpoint, read_checkpoint_info
from pinnkit.diagnostics import read_error_log, read_gradient_log, smooth_log_snr
from pinnkit.diagnostics.transitions import history_phases
from pinnkit.engine import Outcome
from pinnkit.history import History
from pinnkit.paper_cases import PAPER_CASES

# What its numbers depend on (docs/render.py warns when these changed after the result's commit).
MEASURES = ("src/pinnkit/paper_cases.py", "src/pinnkit/engine", "src/pinnkit/reweight", "src/pinnkit/problems",
            "src/pinnkit/diagnostics", "src/pinnkit/nn.py", "src/pinnkit/experiment.py")

RUNS = ROOT / "runs" / "paper"
FIGURES = ROOT / "docs" / "figures"
# Windows of iterations for the SNR medians (clipped to the run's length).
WINDOWS = ((2, 20), (20, 150), (150, 300), (300, 1_000), (1_000, 3_000), (3_000, 6_000), (6_000, 11_000),
           (11_000, 20_000), (20_000, 50_000), (50_000, 100_000), (100_000, 300_000))
ERROR_AT = (0, 100, 300, 500, 1_000, 2_000, 3_000, 5_000, 8_000, 11_100, 15_000, 20_000, 50_000, 100_000, 300_000)
SNR_FACTOR = 3.0
ERROR_FACTOR = 1.5
CONVERGED = 0.5
SPIKE_FACTOR = 10.0


def run_folder(case: str, reweight: str, seed: int) -> Path:
    return RUNS / f"{case}-{reweight}-s{seed}"


def train(args) -> int:
    """Start or continue one run through the CLI (the same code path a user runs)."""
    folder = Path(args.out) if args.out else run_folder(args.case, args.reweight, args.seed)
    # The console script's own entry point (pinnkit_cli.app has no __main__ block).
    command = [sys.executable, "-c", "from pinnkit_cli.app import main; main()", "train"]
    try:
        latest_checkpoint(folder)
        resuming = True
    except (CheckpointError, OSError, ValueError):
        resuming = False
    if resuming:
        command += ["--resume", str(folder)]
    else:
        command += ["--preset", f"paper-{args.case}", "--reweight", args.reweight, "--steps", str(args.steps),
                    "--seed", str(args.seed), "--checkpoint-every", str(args.checkpoint_every),
                    "--keep-checkpoints", "2", "--out", str(folder)]
    log(("resuming " if resuming else "starting ") + " ".join(command[3:]))
    return subprocess.call(command, env=dict(os.environ))


# ----- reading -----


def read_run(folder: Path) -> tuple[History, dict, bool]:
    """The run's history, configuration and whether it finished (a result file) or is read from a checkpoint."""
    import json

    result = folder / "result.json"
    history_file = folder / "history.csv"
    if result.is_file() and history_file.is_file():  # written when training ended, whatever its outcome
        payload = json.loads(result.read_text())
        Outcome.parse(payload["status"])  # a result file of this kind, or a clear error
        return History.from_csv(history_file), payload["config"], True
    info = read_checkpoint_info(folder)
    return info.history, info.config or {}, False


def case_of(config: dict) -> str:
    for name, case in PAPER_CASES.items():
        if config.get("problem") == case.problem and config.get("points") == case.points \
                and config.get("width") == 128 and config.get("depth") == 6:
            return name
    raise SystemExit(f"the run's configuration ({config.get('problem')}, {config.get('points')} points, "
                     f"{config.get('width')}x{config.get('depth')}) is none of the paper's cases")


def authors_log(data: Path, case: str, reweight: str) -> tuple[dict, dict, tuple[int, int]] | None:
    stem = PAPER_CASES[case].log_stem
    if stem is None:
        return None
    folder = data / "paper_logs"
    name = f"{stem}_{'rba' if reweight == 'rba' else 'vanilla'}"
    gradients, errors = folder / f"{name}_gradients.csv", folder / f"{name}_errors.csv"
    if not gradients.is_file():
        return None
    return read_gradient_log(gradients), read_error_log(errors), hand_lines(folder)[name]


# ----- measures -----


def _median_in(steps, values, low, high):
    inside = (steps >= low) & (steps <= high) & np.isfinite(values)
    return float(np.median(values[inside])) if inside.any() else None


def _first_below(steps, error, level):
    hits = np.flatnonzero(np.isfinite(error) & (error < level))
    return int(steps[hits[0]]) if hits.size else None


def _at(steps, values, iteration):
    hit = np.flatnonzero(steps == iteration)
    return float(values[hit[0]]) if hit.size and np.isfinite(values[hit[0]]) else None


def loss_spikes(steps, loss, *, after: int = 300, factor: float = SPIKE_FACTOR) -> dict:
    """How far the training loss climbs back above its running minimum after step ``after``: the largest ratio, where,
    and the first step where it exceeds ``factor`` (None: never). An Adam run that is descending stably has none."""
    steps, loss = np.asarray(steps, float), np.asarray(loss, float)
    keep = np.isfinite(loss) & (loss > 0)
    steps, loss = steps[keep], loss[keep]
    ratios = loss / np.minimum.accumulate(loss)
    late = steps > after
    if not late.any():
        return {"largest_rise": None, "at": None, "first_above_factor": None, "factor": factor}
    index = int(np.argmax(np.where(late, ratios, 0)))
    above = np.flatnonzero(late & (ratios > factor))
    return {"largest_rise": float(ratios[index]), "at": int(steps[index]),
            "first_above_factor": int(steps[above[0]]) if above.size else None, "factor": factor}


def compare_run(history: History, config: dict, log_data, phases) -> dict:
    steps = np.asarray(history[columns.STEP], float)
    end = int(steps[-1])
    snr = np.asarray(history[columns.SNR], float)
    error = np.asarray(history[columns.REL_L2], float)
    out: dict = {"steps_done": end, "seed": config.get("seed"), "reweight": config.get("reweight"),
                 "median_step_seconds": _step_seconds(history),
                 "pinnkit": {"diffusion_start": phases.diffusion_start,
                             "equilibrium_start": phases.equilibrium_start,
                             "first_error_below_0.5": _first_below(steps, error, CONVERGED),
                             "final_error": float(error[-1]),
                             "loss_spikes": loss_spikes(steps, np.asarray(history[columns.LOSS], float))}}
    windows = []
    log_steps = log_snr = log_error_steps = log_error = None
    if log_data is not None:
        gradients, errors, (hand_diffusion, hand_equilibrium) = log_data
        log_steps = gradients[columns.ITERATION]
        log_snr = gradients[columns.GRAD_MEAN_NORM] / gradients[columns.GRAD_STD_NORM]
        log_error_steps, log_error = errors[columns.ITERATION], errors[columns.REL_L2]
        # The log's transitions as far as pinnkit's run goes (a detector on the whole log knows the future).
        upto = log_steps <= end
        log_phases = history_phases({"iteration": log_steps[upto],
                                     columns.GRAD_MEAN_NORM: gradients[columns.GRAD_MEAN_NORM][upto],
                                     columns.GRAD_STD_NORM: gradients[columns.GRAD_STD_NORM][upto]},
                                    errors={"iteration": log_error_steps[log_error_steps <= end],
                                            "rel_l2": log_error[log_error_steps <= end]})
        full_phases = history_phases({"iteration": log_steps, columns.GRAD_MEAN_NORM: gradients[columns.GRAD_MEAN_NORM],
                                      columns.GRAD_STD_NORM: gradients[columns.GRAD_STD_NORM]},
                                     errors={"iteration": log_error_steps, "rel_l2": log_error})
        log_first = _first_below(log_error_steps, log_error, CONVERGED)
        out["authors_log"] = {"hand_diffusion": hand_diffusion, "hand_equilibrium": hand_equilibrium,
                              "diffusion_start_to_step": log_phases.diffusion_start,
                              "equilibrium_start_to_step": log_phases.equilibrium_start,
                              "diffusion_start_whole_log": full_phases.diffusion_start,
                              "equilibrium_start_whole_log": full_phases.equilibrium_start,
                              "first_error_below_0.5": log_first,
                              "loss_spikes_to_step": loss_spikes(log_error_steps[log_error_steps <= end],
                                                                 errors[columns.LOSS][log_error_steps <= end])}
        mine = out["pinnkit"]
        out["targets"] = {
            "diffusion_within_2x_of_hand": within(mine["diffusion_start"], hand_diffusion, DIFFUSION_TOLERANCE),
            "equilibrium_within_1.5x_of_hand": (within(mine["equilibrium_start"], hand_equilibrium,
                                                       EQUILIBRIUM_TOLERANCE)
                                                if end >= hand_equilibrium / EQUILIBRIUM_TOLERANCE else None),
            "error_below_0.5_within_1.5x": (within(mine["first_error_below_0.5"], log_first, ERROR_FACTOR)
                                            if log_first is not None and end >= log_first / ERROR_FACTOR
                                            else None),
            "not_decidable_before_step": int(min(hand_equilibrium / EQUILIBRIUM_TOLERANCE,
                                                 (log_first or hand_equilibrium) / ERROR_FACTOR)),
        }
    for low, high in WINDOWS:
        if low >= end:
            break
        entry = {"from": low, "to": min(high, end), "pinnkit_snr_median": _median_in(steps, snr, low, high)}
        if log_steps is not None:
            entry["log_snr_median"] = _median_in(log_steps, log_snr, low, min(high, end))
            if entry["pinnkit_snr_median"] and entry["log_snr_median"]:
                ratio = entry["pinnkit_snr_median"] / entry["log_snr_median"]
                entry["ratio"] = ratio
                entry["within_3x"] = 1 / SNR_FACTOR <= ratio <= SNR_FACTOR
        windows.append(entry)
    out["snr_windows"] = windows
    if log_steps is not None:
        judged = [entry["within_3x"] for entry in windows if "within_3x" in entry]
        out["targets"]["snr_windows_within_3x"] = f"{sum(judged)} of {len(judged)}"
    out["error_at"] = [{"iteration": k, "pinnkit": _at(steps, error, k),
                        **({"log": _at(log_error_steps, log_error, k)} if log_error is not None else {})}
                       for k in ERROR_AT if k <= end]
    return out


def _step_seconds(history: History) -> float | None:
    if columns.WALL_TIME not in history:
        return None
    steps = np.asarray(history[columns.STEP], float)
    wall = np.asarray(history[columns.WALL_TIME], float)
    late = steps >= 300
    if late.sum() < 3:
        return None
    return float(np.median(np.diff(wall[late]) / np.diff(steps[late])))


# ----- figure -----


def figure(name: str, history: History, log_data, phases, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.asarray(history[columns.STEP], float)
    panels = 5
    fig, axes = plt.subplots(panels, 1, figsize=(8, 11), sharex=True)
    keep = steps > 0

    def smoothed(iterations, values):
        its, log_values = smooth_log_snr(iterations, values)
        return its, 10 ** log_values

    snr = np.asarray(history[columns.SNR], float)
    if log_data is not None:
        gradients, errors, (hand_diffusion, hand_equilibrium) = log_data
        log_steps = gradients[columns.ITERATION]
        log_snr = gradients[columns.GRAD_MEAN_NORM] / gradients[columns.GRAD_STD_NORM]
        upto = (log_steps > 0) & (log_steps <= max(steps[-1] * 1.5, 1000))
        axes[0].plot(*smoothed(log_steps[upto], log_snr[upto]), color="0.5", label="authors' log")
        axes[1].plot(*smoothed(log_steps[upto], log_snr[upto] / np.sqrt(1 + log_snr[upto] ** 2)), color="0.5")
        adam = gradients.get("adam_m_norm"), gradients.get("adam_v_norm")
        if adam[0] is not None and adam[1] is not None:
            axes[2].plot(log_steps[upto], (adam[0] / adam[1])[upto], color="0.5", lw=0.8)
        eu = (errors[columns.ITERATION] > 0) & (errors[columns.ITERATION] <= max(steps[-1] * 1.5, 1000))
        axes[4].plot(errors[columns.ITERATION][eu], errors[columns.REL_L2][eu], color="0.5")
        for axis in axes:
            for line in (hand_diffusion, hand_equilibrium):
                axis.axvline(line, color="0.5", ls=":", lw=0.8)
    axes[0].plot(*smoothed(steps[keep], snr[keep]), color="C0", label="pinnkit")
    axes[1].plot(*smoothed(steps[keep], snr[keep] / np.sqrt(1 + snr[keep] ** 2)), color="C0")
    if columns.ADAM_SNR in history:
        axes[2].plot(steps[keep], np.asarray(history[columns.ADAM_SNR], float)[keep], color="C0", lw=0.8)
    if columns.HOMOGENEITY in history:
        axes[3].plot(steps[keep], np.asarray(history[columns.HOMOGENEITY], float)[keep], color="C0")
    axes[4].plot(steps[keep], np.asarray(history[columns.REL_L2], float)[keep], color="C0")
    for line in (phases.diffusion_start, phases.equilibrium_start):
        if line is not None:
            for axis in axes:
                axis.axvline(line, color="C0", ls="--", lw=0.8)
    labels = ("batch SNR (smoothed)", "order", "Adam SNR", "homogeneity", "test rel. L2")
    for axis, label in zip(axes, labels, strict=True):
        axis.set_ylabel(label)
        axis.set_xscale("log")
    axes[0].set_yscale("log")
    axes[4].set_yscale("log")
    axes[0].legend(loc="upper right")
    axes[-1].set_xlabel("iteration")
    axes[0].set_title(f"{name}: pinnkit (blue, dashed: detected), authors' log (grey, dotted: hand lines)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.png")
    fig.savefig(temporary, dpi=110)
    plt.close(fig)
    os.replace(temporary, path)


def report(args) -> int:
    data = Path(args.data)
    payload = {**stamp(), "runs": {}}
    for folder in map(Path, args.runs):
        history, config, finished = read_run(folder)
        case = case_of(config)
        name = folder.name
        log_data = authors_log(data, case, config.get("reweight", "none"))
        phases = history_phases(history)
        entry = compare_run(history, config, log_data, phases)
        entry.update(case=case, finished=finished, folder=str(folder),
                     authors_log_used=log_data is not None)
        figure_path = FIGURES / f"paper_run_{name}.png"
        figure(name, history, log_data, phases, figure_path)
        entry["figure"] = str(figure_path.relative_to(ROOT))
        payload["runs"][name] = entry
        log(f"{name}: {entry['steps_done']} steps, {'finished' if finished else 'in progress'}")
    path = write("paper_runs", payload)
    log(f"wrote {path}")
    return 0


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.3g}"


def markdown(payload: dict) -> str:
    """The tables of docs/reproduction.md: per run, the targets, the transitions, the SNR windows, the errors."""
    machine = payload["machine"]
    lines = [f"`{payload['command']}`, {payload['date']}, {machine['cores']} cores of a {machine['cpu']} "
             f"(load average {machine['load_average_at_start'][0]:.1f} when the report ran; the runs shared the "
             "machine with other jobs); jax " + payload["versions"].get("jax", "?") + ".", ""]
    for name, entry in payload["runs"].items():
        state = "finished" if entry["finished"] else "in progress, read from its latest checkpoint"
        seconds = entry.get("median_step_seconds")
        lines += [f"**{name}** ({entry['case']}, {entry['reweight']}, seed {entry['seed']}): {entry['steps_done']:,} "
                  f"steps, {state}" + (f"; {seconds:.2f} s a step (median past step 300)" if seconds else "") + ".",
                  ""]
        mine = entry["pinnkit"]
        theirs = entry.get("authors_log")
        lines += ["| | pinnkit | authors' log, to the same step | authors' log, whole | hand line |",
                  "|---|---|---|---|---|"]
        if theirs:
            lines += [f"| diffusion starts | {_fmt(mine['diffusion_start'])} | "
                      f"{_fmt(theirs['diffusion_start_to_step'])} | {_fmt(theirs['diffusion_start_whole_log'])} | "
                      f"{_fmt(theirs['hand_diffusion'])} |",
                      f"| equilibrium starts | {_fmt(mine['equilibrium_start'])} | "
                      f"{_fmt(theirs['equilibrium_start_to_step'])} | {_fmt(theirs['equilibrium_start_whole_log'])} | "
                      f"{_fmt(theirs['hand_equilibrium'])} |",
                      f"| first error below 0.5 | {_fmt(mine['first_error_below_0.5'])} | - | "
                      f"{_fmt(theirs['first_error_below_0.5'])} | - |"]
        else:
            lines += [f"| diffusion starts | {_fmt(mine['diffusion_start'])} | - | - | - |",
                      f"| equilibrium starts | {_fmt(mine['equilibrium_start'])} | - | - | - |",
                      f"| first error below 0.5 | {_fmt(mine['first_error_below_0.5'])} | - | - | - |"]
        spikes = mine["loss_spikes"]
        line = ("Training loss after step 300, largest rise above its running minimum: pinnkit "
                f"{_fmt(spikes['largest_rise'])}x (at step {_fmt(spikes['at'])})")
        if theirs and "loss_spikes_to_step" in theirs:
            other = theirs["loss_spikes_to_step"]
            line += (f", the authors' log {_fmt(other['largest_rise'])}x (at {_fmt(other['at'])}; its loss column is "
                     "every 100 steps)")
        lines += ["", line + ".", ""]
        targets = entry.get("targets")
        if targets:
            lines += ["Targets: diffusion within 2x of the hand line: "
                      f"{_fmt(targets['diffusion_within_2x_of_hand'])}; equilibrium within 1.5x: "
                      f"{_fmt(targets['equilibrium_within_1.5x_of_hand']) if targets['equilibrium_within_1.5x_of_hand'] is not None else 'not decidable yet'}; "  # noqa: E501
                      "first error below 0.5 within 1.5x of the log's: "
                      f"{_fmt(targets['error_below_0.5_within_1.5x']) if targets['error_below_0.5_within_1.5x'] is not None else 'not decidable yet'}; "  # noqa: E501
                      f"SNR medians within 3x of the log's: {targets['snr_windows_within_3x']} windows. (The two "
                      f"equilibrium targets can only be judged from step {targets['not_decidable_before_step']:,}.)",
                      ""]
        lines += ["| iterations | SNR median, pinnkit | SNR median, authors | ratio |", "|---|---|---|---|"]
        for window in entry["snr_windows"]:
            lines.append(f"| {window['from']:,}-{window['to']:,} | {_fmt(window['pinnkit_snr_median'])} | "
                         f"{_fmt(window.get('log_snr_median'))} | {_fmt(window.get('ratio'))} |")
        lines += ["", "| iteration | error, pinnkit | error, authors |", "|---|---|---|"]
        for row in entry["error_at"]:
            lines.append(f"| {row[columns.ITERATION]:,} | {_fmt(row['pinnkit'])} | {_fmt(row.get('log'))} |")
        lines += ["", f"![{name}]({entry['figure'].removeprefix('docs/')})", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("train", help="start or resume one run")
    start.add_argument("--case", choices=sorted(PAPER_CASES), required=True)
    start.add_argument("--reweight", choices=("rba", "none"), default="rba")
    start.add_argument("--steps", type=int, default=20_000)
    start.add_argument("--seed", type=int, default=0)
    start.add_argument("--checkpoint-every", type=int, default=500)
    start.add_argument("--out", default=None)
    summary = commands.add_parser("report", help="compare run folders with the authors' logs")
    summary.add_argument("runs", nargs="+")
    summary.add_argument("--data", default=str(default_data()))
    args = parser.parse_args()
    return train(args) if args.command == "train" else report(args)


if __name__ == "__main__":
    sys.exit(main())
