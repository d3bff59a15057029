"""Accuracy and cost of pinnkit's reference solvers, each against an independent truth.

- Allen-Cahn (``solve_allen_cahn``) against the standard Chebfun dataset ``allen_cahn_reference.mat``: relative L2
  and max abs; the time steps the adaptive integrator took, and the same integration with ``Dopri8``;
- Burgers (``solve_burgers``) against the exact Cole-Hopf solution (``burgers_cole_hopf``, Gauss-Hermite
  quadrature, itself checked against more nodes and against a trapezoidal rule): relative L2, max abs (also near
  the shock); the time steps taken and how far the spectrum of the evolved state has decayed;
- the lid-driven cavity (``solve_cavity``) at Re = 100, 400 and 1000 against the centrelines of Ghia, Ghia & Shin
  (1982): max deviation of u on x = 0.5 and of v on y = 0.5 (Ghia's Re = 400 entry v(0.9063) is left out: it looks
  like a misprint, see ``MISPRINTS``); Newton factorisations; a pressure check (centreline pressure differences
  against line integrals of the momentum equation); a grid-refinement study of psi_min at Re = 100 (17 to 129
  points, Richardson extrapolation) and Re = 1000 at 257 points.

Solve times: the first call in this process (JIT compilation included) and a second, compiled call. The step
counts come from re-running each solver's integration with diffrax and the solver's own settings (private vector
fields of ``pinnkit.reference``); the script checks that this replica reproduces the solver's output and records
the difference. Missing external data (``../shared/data`` or ``$PINNKIT_SHARED_DATA`` or ``--data``) skips that
comparison, and the JSON says so.

    python benchmarks/references.py --json [--data DIR] [--no-fine-grid] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import inspect
import json
import math
import os
import time
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import scipy.io
import scipy.sparse.linalg
from _machine import log, stamp, write
from scipy.integrate import cumulative_trapezoid
from scipy.interpolate import RegularGridInterpolator

from pinnkit import columns, problems
from pinnkit.reference import allen_cahn as allen_cahn_module
from pinnkit.reference import burgers as burgers_module
from pinnkit.reference import burgers_cole_hopf, solve_allen_cahn, solve_burgers, solve_cavity

# What its numbers depend on (docs/render.py warns when these changed after the result's commit):
# the reference solvers and the problems' grids.
MEASURES = ("src/pinnkit/reference", "src/pinnkit/problems")

ROOT = Path(__file__).resolve().parents[1]
# Ghia's Table II gives v(0.9063, 0.5) = -0.23827 at Re = 400, between -0.22847 (x = 0.9453) and -0.44993
# (x = 0.8594) on a profile that is smooth there: left out of the comparison (tests/test_reference_cavity.py too).
MISPRINTS = {("v_horizontal", 400.0, 0.9063)}


def default_data() -> Path:
    override = os.environ.get("PINNKIT_SHARED_DATA")
    return Path(override) if override else ROOT.parent / "shared" / "data"


def defaults(function) -> dict:
    """The default keyword values of a solver (what the docs' table calls its settings)."""
    return {name: parameter.default for name, parameter in inspect.signature(function).parameters.items()
            if parameter.default is not inspect.Parameter.empty}


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def integrate(vector_field, y0, ts, args, solver, rtol: float, atol: float, max_steps: int):
    """One diffrax integration as pinnkit's solvers do it (PID control, saved at ``ts``): (ys, step stats)."""
    with jax.enable_x64(True):
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(vector_field), solver, t0=ts[0], t1=ts[-1], dt0=None, y0=jnp.asarray(y0),
            args=tuple(jnp.asarray(arg) for arg in args), saveat=diffrax.SaveAt(ts=jnp.asarray(ts)),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=max_steps)
        stats = {name: int(solution.stats[name]) for name in ("num_steps", "num_accepted_steps",
                                                              "num_rejected_steps")}
        return np.asarray(solution.ys, dtype=np.float64), stats


# ----- Allen-Cahn -----


def allen_cahn(data: Path, quick: bool) -> dict:
    settings = defaults(solve_allen_cahn)
    kwargs = {}
    if quick:
        kwargs = {"rtol": 1e-6, "atol": 1e-6}
        settings.update(kwargs)
    num_x, num_t = (inspect.signature(solve_allen_cahn).parameters[name].default for name in ("num_x", "num_t"))
    reference, first = timed(solve_allen_cahn, **kwargs)
    _, second = timed(solve_allen_cahn, **kwargs)
    out = {"settings": settings | {"num_x": num_x, "num_t": num_t}, "first_call_s": first, "compiled_call_s": second,
           "method": "Fourier pseudo-spectral method of lines, diffrax Tsit5, PID step-size control"}
    x, t = reference.axes
    wavenumbers = np.pi * np.fft.rfftfreq(num_x, d=1.0 / num_x)
    out["largest_diffusion_eigenvalue"] = float(settings["diffusion"] * wavenumbers.max() ** 2)
    args = (wavenumbers**2, settings["diffusion"], settings["reaction"])
    u0 = allen_cahn_module.allen_cahn_initial_condition(x)
    integrators = {}
    for name, solver in (("Tsit5", diffrax.Tsit5()), ("Dopri8", diffrax.Dopri8())):
        ys, stats = integrate(allen_cahn_module.vector_field, u0, t, args, solver, settings["rtol"],
                              settings["atol"], 1_000_000)
        integrators[name] = stats | {"values": ys.T}
    out["replica_max_abs_difference"] = float(np.abs(integrators["Tsit5"]["values"] - reference.values).max())
    path = data / "allen_cahn_reference.mat"
    if not path.is_file():
        out["data"] = {"skipped": f"{path} not found"}
    else:
        mat = scipy.io.loadmat(path)
        expected = mat["uu"]
        out["data"] = {
            "file": path.name, "shape": list(expected.shape),
            "grid_max_abs_difference": max(float(np.abs(x - mat["x"].ravel()).max()),
                                           float(np.abs(t - mat["tt"].ravel()).max())),
            "rel_l2": relative_l2(reference.values, expected),
            "max_abs": float(np.abs(reference.values - expected).max()),
        }
        for stats in integrators.values():
            stats["rel_l2_vs_data"] = relative_l2(stats["values"], expected)
    for stats in integrators.values():
        del stats["values"]
    out["integrators"] = integrators
    return out


# ----- Burgers -----


def trapezoid_cole_hopf(x: np.ndarray, time_: float, viscosity: float, half_width: float = 14.0,
                        count: int = 20_001) -> np.ndarray:
    """Cole-Hopf by a trapezoidal rule in z on [-half_width, half_width] (independent of the Gauss-Hermite code)."""
    z = np.linspace(-half_width, half_width, count)
    y = x[:, None] - math.sqrt(4.0 * viscosity * time_) * z[None, :]
    exponent = -np.cos(np.pi * y) / (2.0 * math.pi * viscosity) - z[None, :] ** 2
    weight = np.exp(exponent - exponent.max(axis=1, keepdims=True))
    weight[:, [0, -1]] *= 0.5
    return -np.sum(np.sin(np.pi * y) * weight, axis=1) / np.sum(weight, axis=1)


def burgers(quick: bool) -> dict:
    settings = defaults(solve_burgers)
    kwargs = {}
    if quick:
        kwargs = {"num_modes": 512, "rtol": 1e-7, "atol": 1e-7}
        settings.update(kwargs)
    parameters = inspect.signature(solve_burgers).parameters
    settings.update(num_x=parameters["num_x"].default, num_t=parameters["num_t"].default)
    viscosity = settings["viscosity"]
    reference, first = timed(solve_burgers, **kwargs)
    _, second = timed(solve_burgers, **kwargs)
    out = {"settings": settings, "first_call_s": first, "compiled_call_s": second,
           "method": "Fourier spectral method of lines on the periodic extension, diffrax Tsit5, PID step-size "
                     "control, trigonometric interpolation onto the output grid"}
    x, t = reference.axes
    nodes = defaults(burgers_cole_hopf)["num_nodes"]
    exact = burgers_cole_hopf(x, t, viscosity)
    near_shock = np.abs(x) < 0.05
    late = t > 0.5
    out["cole_hopf"] = {
        "num_nodes": nodes,
        "rel_l2": relative_l2(reference.values, exact),
        "max_abs": float(np.abs(reference.values - exact).max()),
        "max_abs_near_shock": float(np.abs(reference.values - exact)[near_shock][:, late].max()),
        "near_shock": {"abs_x_below": 0.05, "t_above": 0.5},
    }
    more = 400
    out["cole_hopf"]["nodes_check"] = {
        "num_nodes": more, "max_abs_difference": float(np.abs(burgers_cole_hopf(x, t, viscosity, num_nodes=more)
                                                              - exact).max())}
    check_times = [0.25, 0.5, float(t[-1])]
    differences = []
    for time_ in check_times:
        column = int(np.argmin(np.abs(t - time_)))
        differences.append(float(np.abs(trapezoid_cole_hopf(x, float(t[column]), viscosity) - exact[:, column]).max()))
    out["cole_hopf"]["trapezoid_check"] = {"half_width": 14.0, "points": 20_001, "times": check_times,
                                           "max_abs_difference": max(differences)}
    modes = settings["num_modes"]
    periodic_x = -1.0 + 2.0 * np.arange(modes) / modes
    wavenumbers = np.pi * np.fft.rfftfreq(modes, d=1.0 / modes)
    out["largest_diffusion_eigenvalue"] = float(viscosity * wavenumbers.max() ** 2)
    samples, stats = integrate(burgers_module.vector_field, -np.sin(np.pi * periodic_x), t, (wavenumbers, viscosity),
                               diffrax.Tsit5(), settings["rtol"], settings["atol"], 10_000_000)
    replica = burgers_module.trigonometric_interpolation(samples, x).T
    replica[0], replica[-1] = 0.0, 0.0
    out["replica_max_abs_difference"] = float(np.abs(replica - reference.values).max())
    out["integrators"] = {"Tsit5": stats}
    # How well the evolved periodic state is resolved: its Fourier coefficients at the top of the spectrum.
    spectrum = np.abs(np.fft.rfft(samples, axis=-1)) / modes
    top = spectrum[:, -modes // 16:].max(axis=1) / spectrum.max(axis=1)
    steepest = int(np.argmax(top))
    out["spectrum"] = {"top_fraction": 1 / 16, "largest_relative_coefficient": float(top.max()),
                       "at_t": float(t[steepest])}
    return out


# ----- cavity -----


def read_ghia(data: Path) -> tuple[dict, list] | None:
    path = data / "ghia1982_cavity_centerlines.csv"
    if not path.is_file():
        return None
    with open(path) as stream:
        rows = list(csv.DictReader(line for line in stream if not line.startswith("#")))
    profiles: dict = {}
    for row in rows:
        key = (row["profile"], float(row["re"]))
        profiles.setdefault(key, []).append((float(row["coord"]), float(row["value"])))
    return profiles, rows


def centreline(reference, name: str, coords: np.ndarray) -> np.ndarray:
    x, y = reference.axes
    interpolate = RegularGridInterpolator((x, y), reference.output(name), method="cubic")
    half = np.full_like(coords, 0.5)
    return interpolate(np.stack([half, coords] if name == "u" else [coords, half], axis=1))


def ghia_comparison(reference, reynolds: float, profiles: dict) -> dict:
    out = {"excluded": []}
    for profile, name in (("u_vertical", "u"), ("v_horizontal", "v")):
        points = sorted(profiles[(profile, reynolds)])
        coords = np.array([c for c, _ in points])
        values = np.array([v for _, v in points])
        ours = centreline(reference, name, coords)
        keep = np.array([(profile, reynolds, c) not in MISPRINTS for c in coords])
        for index in np.flatnonzero(~keep):
            out["excluded"].append({
                "profile": profile, "coord": float(coords[index]), "ghia": float(values[index]),
                "ours": float(ours[index]),
                "ghia_neighbours": [[float(coords[j]), float(values[j])] for j in (index - 1, index + 1)
                                    if 0 <= j < coords.size]})
        deviation = np.abs(ours - values)[keep]
        out[f"max_deviation_{name}"] = float(deviation.max())
        out[f"points_{name}"] = int(keep.sum())
    return out


def pressure_check(reference, reynolds: float) -> dict:
    """Centreline pressure differences against line integrals of grad p = -(u.grad)u + nu lap(u) (central
    differences of the velocities: another discretisation than the solver's), relative to the range of p."""
    x = reference.axes[0]
    n, h = x.size, x[1] - x[0]
    u, v, p = (reference.output(name) for name in ("u", "v", "p"))
    u_x, u_y = np.gradient(u, h)
    v_x, v_y = np.gradient(v, h)

    def laplace(field):
        out = np.zeros_like(field)
        out[1:-1, 1:-1] = (field[2:, 1:-1] + field[:-2, 1:-1] + field[1:-1, 2:] + field[1:-1, :-2]
                           - 4 * field[1:-1, 1:-1]) / h**2
        return out

    force_x = -(u * u_x + v * u_y) + laplace(u) / reynolds
    force_y = -(u * v_x + v * v_y) + laplace(v) / reynolds
    mid, inner = n // 2, slice(1, n - 1)
    horizontal = cumulative_trapezoid(force_x[inner, mid], x[inner], initial=0.0)
    along_x = p[inner, mid] - p[inner, mid][0]
    top = int(np.searchsorted(x, 0.9))  # stop below y = 0.9: the lid corners' singularity
    vertical = cumulative_trapezoid(force_y[mid, 1:top], x[1:top], initial=0.0)
    along_y = p[mid, 1:top] - p[mid, 1]
    return {"horizontal": float(np.abs(along_x - horizontal).max() / np.ptp(along_x)),
            "vertical": float(np.abs(along_y - vertical).max() / np.ptp(along_y)), "vertical_below_y": 0.9}


@contextlib.contextmanager
def counting_factorisations():
    """Count (and time) the sparse LU factorisations the Newton solver makes."""
    original = scipy.sparse.linalg.splu
    record = {"count": 0, "seconds": 0.0}

    def splu(*args, **kwargs):
        start = time.perf_counter()
        result = original(*args, **kwargs)
        record["seconds"] += time.perf_counter() - start
        record["count"] += 1
        return result

    scipy.sparse.linalg.splu = splu
    try:
        yield record
    finally:
        scipy.sparse.linalg.splu = original


def solve_counted(reynolds: float, num_points: int):
    with counting_factorisations() as record:
        reference, seconds = timed(solve_cavity, reynolds, num_points=num_points)
    return reference, seconds, dict(record)


def cavity(data: Path, quick: bool, fine_grid: bool) -> dict:
    settings = defaults(solve_cavity)
    grid = 33 if quick else settings["num_points"]
    ghia = read_ghia(data)
    out = {"settings": settings | {"num_points": grid},
           "method": "stream function-vorticity, second-order finite differences, Thom wall vorticity, Newton with "
                     "the exact sparse Jacobian (JAX + SuperLU), continuation in Re",
           "ghia": {"file": "ghia1982_cavity_centerlines.csv"} if ghia else {"skipped": f"{data} has no "
                                                                          "ghia1982_cavity_centerlines.csv"},
           "cases": []}
    references = {}
    # The quick grid is too coarse for Re = 1000 (Newton does not converge on 33 points).
    for reynolds in (100.0, 400.0) if quick else (100.0, 400.0, 1000.0):
        log(f"cavity Re {reynolds:g}")
        reference, first, factorisations = solve_counted(reynolds, grid)
        case = {"reynolds": reynolds, "first_call_s": first, "factorisations": factorisations,
                "psi_min": float(reference.output("psi").min())}
        if reynolds == 100.0:
            # The first solve in this process compiles; a second one shows the compiled cost.
            _, case["compiled_call_s"] = timed(solve_cavity, reynolds, num_points=grid)
        else:
            case["compiled_call_s"] = first  # the Re = 100 solve compiled the programs of this grid
        if ghia:
            case["ghia"] = ghia_comparison(reference, reynolds, ghia[0])
        if reynolds in (100.0, 1000.0):
            case["pressure_check"] = pressure_check(reference, reynolds)
        references[reynolds] = reference
        out["cases"].append(case)
    sizes = (9, 17, 33) if quick else (17, 33, 65, 129)
    minima = [float(solve_cavity(100.0, num_points=n).output("psi").min()) if n != grid
              else float(references[100.0].output("psi").min()) for n in sizes]
    ratios = [(minima[i] - minima[i + 1]) / (minima[i + 1] - minima[i + 2]) for i in range(len(minima) - 2)]
    out["refinement_re100"] = {
        "num_points": list(sizes), "psi_min": minima, "difference_ratios": ratios,
        "observed_order": [math.log2(ratio) for ratio in ratios],
        "richardson_psi_min": minima[-1] + (minima[-1] - minima[-2]) / 3.0}
    if fine_grid and not quick:
        log("cavity Re 1000 on 257 points")
        fine, seconds, factorisations = solve_counted(1000.0, 257)
        coarse_min = float(references[1000.0].output("psi").min())
        fine_min = float(fine.output("psi").min())
        entry = {"num_points": 257, "solve_s": seconds, "factorisations": factorisations, "psi_min": fine_min,
                 "psi_min_coarse": coarse_min, "richardson_psi_min": fine_min + (fine_min - coarse_min) / 3.0}
        if ghia:
            entry["ghia"] = ghia_comparison(fine, 1000.0, ghia[0])
        out["fine_grid_re1000"] = entry
    return out


def problem_defaults() -> dict:
    """Each problem's parameters (dataclass defaults) and the sizes of its constraint terms."""
    out = {}
    for name in problems.names():
        problem = problems.get(name)
        out[name] = {"params": problem.params, "constraint_points": problem.constraint_counts()}
    return out


def measure(args) -> dict:
    data = Path(args.data)
    out = {"data_dir": str(data), "quick": args.quick, "problems": problem_defaults()}
    log("allen-cahn")
    out["allen_cahn"] = allen_cahn(data, args.quick)
    log("burgers")
    out["burgers"] = burgers(args.quick)
    out["cavity"] = cavity(data, args.quick, args.fine_grid)
    return out


# ----- rendering -----


def _e(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}e}"


def _s(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _header(payload: dict) -> str:
    machine = payload["machine"]
    return (f"Measured {payload['date']} by `{payload['command']}`: {machine['cores']} cores of a {machine['cpu']} "
            f"(load average {machine['load_average_at_start'][0]:.1f} at the start), jax {payload['versions']['jax']}, "
            f"diffrax {payload['versions'].get('diffrax', '?')}.")


def markdown_table(payload: dict) -> str:
    """The solver table of docs/problems.md."""
    ac, bu, cav = payload["allen_cahn"], payload["burgers"], payload["cavity"]
    s = ac["settings"]
    lines = [_header(payload), "",
             "| solver | grid | method and tolerance | accuracy against the independent truth | first call s "
             "| compiled call s |", "|---|---|---|---|---|---|"]
    data = ac["data"]
    accuracy = (f"rel. L2 **{_e(data[columns.REL_L2])}**, max abs {_e(data['max_abs'])} against "
                f"`{data['file']}`" if columns.REL_L2 in data else f"not compared ({data['skipped']})")
    lines.append(f"| `solve_allen_cahn()` | {s['num_x']} x, {s['num_t']} t | {ac['method']}; rtol = {s['rtol']:g}, "
                 f"atol = {s['atol']:g} | {accuracy} | {_s(ac['first_call_s'])} | {_s(ac['compiled_call_s'])} |")
    s, ch = bu["settings"], bu["cole_hopf"]
    lines.append(f"| `solve_burgers()` | {s['num_x']} x, {s['num_t']} t ({s['num_modes']} periodic points evolved) | "
                 f"{bu['method']}; rtol = {s['rtol']:g}, atol = {s['atol']:g} | rel. L2 "
                 f"**{_e(ch[columns.REL_L2])}**, max abs {_e(ch['max_abs'])} against the exact Cole-Hopf solution | "
                 f"{_s(bu['first_call_s'])} | {_s(bu['compiled_call_s'])} |")
    s = cav["settings"]
    for case in cav["cases"]:
        if "ghia" in case:
            accuracy = (f"max deviation from Ghia et al. (1982): **{_e(case['ghia']['max_deviation_u'])}** (u), "
                        f"**{_e(case['ghia']['max_deviation_v'])}** (v)")
            if case["ghia"]["excluded"]:
                accuracy += " (one misprinted v entry left out, see below)"
        else:
            accuracy = f"not compared ({cav['ghia']['skipped']})"
        method = cav["method"] + f"; Newton to a residual below {s['tol']:g}" if case["reynolds"] == 100 else "same"
        lines.append(f"| `solve_cavity({case['reynolds']:g})` | {s['num_points']} x {s['num_points']} nodes | {method} "
                     f"| {accuracy} | {_s(case['first_call_s'])} | {_s(case['compiled_call_s'])} |")
    lines += ["", "First call: the first call of that solver in a fresh process, JIT compilation included (the "
                  "cavity's Re = 400 and 1000 solves reuse the programs compiled by the Re = 100 solve on the same "
                  "grid). Compiled call: the same solve again."]
    return "\n".join(lines)


def markdown_allen_cahn(payload: dict) -> str:
    ac = payload["allen_cahn"]
    tsit5, dopri8 = ac["integrators"]["Tsit5"], ac["integrators"]["Dopri8"]
    text = (f"The largest diffusion eigenvalue is d (π num_x / 2)² = {ac['largest_diffusion_eigenvalue']:.0f}, so "
            f"the system is not stiff: `Tsit5` took {tsit5['num_steps']} steps ({tsit5['num_rejected_steps']} "
            f"rejected)")
    if "rel_l2_vs_data" in tsit5:
        text += (f" and matched the data to {_e(tsit5['rel_l2_vs_data'])}; `Dopri8` at the same tolerance took "
                 f"{dopri8['num_steps']} steps and matched it to {_e(dopri8['rel_l2_vs_data'])}")
    else:
        text += f"; `Dopri8` at the same tolerance took {dopri8['num_steps']} steps"
    text += (f". (Step counts from re-running the solver's integration with diffrax; the re-run reproduces "
             f"`solve_allen_cahn` to {_e(ac['replica_max_abs_difference'])}.)")
    data = ac["data"]
    if "grid_max_abs_difference" in data:
        text += (f" The solver's grid is the dataset's grid (coordinates agree to "
                 f"{_e(data['grid_max_abs_difference'])}).")
    return text


def markdown_burgers(payload: dict) -> str:
    bu = payload["burgers"]
    ch, spectrum, steps = bu["cole_hopf"], bu["spectrum"], bu["integrators"]["Tsit5"]
    near = ch["near_shock"]
    return (
        f"At the top sixteenth of the spectrum of the evolved {bu['settings']['num_modes']}-point state the "
        f"Fourier coefficients are at most {_e(spectrum['largest_relative_coefficient'])} of the largest one (at "
        f"t = {spectrum['at_t']:.2f}, the worst output time). Explicit steps are limited by the "
        f"diffusion eigenvalue ν (π num_modes / 2)² = {_e(bu['largest_diffusion_eigenvalue'])}: `Tsit5` took "
        f"{steps['num_steps']} steps ({steps['num_rejected_steps']} rejected; re-run with diffrax, reproducing "
        f"`solve_burgers` to {_e(bu['replica_max_abs_difference'])}). Against Cole-Hopf the error near the shock "
        f"(|x| < {near['abs_x_below']:g}, t > {near['t_above']:g}) is at most {_e(ch['max_abs_near_shock'])}, and "
        f"{_e(ch['max_abs'])} anywhere.\n\n"
        f"The quadrature has converged: {ch['num_nodes']} Gauss-Hermite nodes (the default) agree with "
        f"{ch['nodes_check']['num_nodes']} to {_e(ch['nodes_check']['max_abs_difference'])} on the whole grid, and "
        f"with a trapezoidal rule on z ∈ [−{ch['trapezoid_check']['half_width']:g}, "
        f"{ch['trapezoid_check']['half_width']:g}] ({ch['trapezoid_check']['points']:,} points) to "
        f"{_e(ch['trapezoid_check']['max_abs_difference'])} at t = "
        + ", ".join(f"{value:g}" for value in ch["trapezoid_check"]["times"]) + ".")


def markdown_cavity(payload: dict) -> str:
    cav = payload["cavity"]
    lines = ["| Re | Newton factorisations (continuation included) | s per factorisation | ψ_min | pressure check: "
             "horizontal / vertical centreline |", "|---|---|---|---|---|"]
    for case in cav["cases"]:
        f = case["factorisations"]
        check = case.get("pressure_check")
        check_text = f"{100 * check['horizontal']:.1f} % / {100 * check['vertical']:.1f} %" if check else "-"
        lines.append(f"| {case['reynolds']:g} | {f['count']} | {f['seconds'] / max(f['count'], 1):.2f} | "
                     f"{case['psi_min']:.5f} | {check_text} |")
    refinement = cav["refinement_re100"]
    lines += ["", "Pressure check: the largest deviation of the centreline pressure differences from line integrals "
                  "of the momentum equation, relative to the range of p along that line (vertically only below "
                  "y = 0.9, away from the lid corners).", "",
              "Grid refinement at Re = 100: ψ_min = " + ", ".join(
                  f"{value:.5f} ({n} points)" for n, value in zip(refinement["num_points"], refinement["psi_min"],
                                                                   strict=True))
              + "; successive differences shrink by "
              + " and ".join(f"{r:.2f}" for r in refinement["difference_ratios"])
              + " (observed order " + ", ".join(f"{p:.2f}" for p in refinement["observed_order"])
              + f"); Richardson extrapolation (second order) gives {refinement['richardson_psi_min']:.5f}."]
    fine = cav.get("fine_grid_re1000")
    if fine:
        text = (f"At Re = 1000 on {fine['num_points']} points (solved in {fine['solve_s']:.0f} s, "
                f"{fine['factorisations']['count']} factorisations) ψ_min moves from {fine['psi_min_coarse']:.5f} to "
                f"{fine['psi_min']:.5f} (Richardson: {fine['richardson_psi_min']:.5f})")
        if "ghia" in fine:
            coarse = next(case for case in cav["cases"] if case["reynolds"] == 1000.0).get("ghia")
            text += (f"; the deviation from Ghia becomes {_e(fine['ghia']['max_deviation_u'])} (u) and "
                     f"{_e(fine['ghia']['max_deviation_v'])} (v)")
            if coarse:
                text += (f", against {_e(coarse['max_deviation_u'])} and {_e(coarse['max_deviation_v'])} on "
                         f"{cav['settings']['num_points']} points")
        lines += ["", text + "."]
    for case in cav["cases"]:
        for entry in case.get("ghia", {}).get("excluded", []):
            neighbours = " and ".join(f"{value:.5f} (x = {coord:g})" for coord, value in entry["ghia_neighbours"])
            lines += ["", f"Left out: Ghia's Re = {case['reynolds']:g} entry v({entry['coord']:g}, 0.5) = "
                          f"{entry['ghia']:.5f}, between its neighbours {neighbours} on a profile that is smooth "
                          f"there; this solution has {entry['ours']:.3f} at that point. It looks like a misprint."]
    return "\n".join(lines)


def _value(value) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return f"{value:.6g}"


def markdown_parameters(payload: dict) -> str:
    """The problems' parameters and the solvers' settings (their defaults), as the script read them."""
    lines = ["| problem | parameters (defaults) | constraint points per term |", "|---|---|---|"]
    for name, entry in payload["problems"].items():
        lines.append(f"| `{name}` | " + ", ".join(f"{k} = {_value(v)}" for k, v in entry["params"].items()) + " | "
                     + ", ".join(f"`{k}`: {v}" for k, v in entry["constraint_points"].items()) + " |")
    lines += ["", "| solver | defaults |", "|---|---|"]
    for name, key in (("solve_allen_cahn", "allen_cahn"), ("solve_burgers", "burgers"), ("solve_cavity", "cavity")):
        settings = payload[key]["settings"]
        lines.append(f"| `{name}` | " + ", ".join(f"{k} = {_value(v)}" for k, v in settings.items()) + " |")
    return "\n".join(lines)


def markdown(payload: dict) -> str:
    return markdown_table(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(default_data()), help="the shared data folder")
    parser.add_argument("--no-fine-grid", dest="fine_grid", action="store_false",
                        help="skip the Re = 1000 solve on 257 points (the heaviest part)")
    parser.add_argument("--quick", action="store_true", help="small grids and loose tolerances, not written")
    parser.add_argument("--json", action="store_true", help="print the JSON object")
    args = parser.parse_args()
    start = time.perf_counter()
    payload = stamp() | measure(args)
    payload["total_s"] = time.perf_counter() - start
    if not args.quick:
        log(f"wrote {write('references', payload)}")
    print(json.dumps(payload, default=float) if args.json else markdown(payload))


if __name__ == "__main__":
    main()
