"""Run the authors' own Helmholtz training script as a peer and record its trajectory step by step.

The paper "Learning in PINNs: Phase transition, diffusion equilibrium, and generalization" ships a PyTorch script
for its Helmholtz case (``HM/HM.py`` in the authors' public repository). This harness executes that file as a peer,
from a checkout outside this repository (``--authors-repo``); none of its code is copied here. It builds the
authors' boundary points, collocation points and network with their own ``main()`` (seeded with their own
``seed_torch``; seed 2341 is the seed their script uses), then takes the Adam + RBA steps itself by calling their
``loss_func()`` and stepping their scheduler the way their ``train()`` does, and records per row:

* ``loss``: their full loss of the step just taken (evaluated before that update, with the RBA weights that step
  had just refreshed), i.e. what their script prints as ``Iter k`` for k = iteration - 1; NaN in row 0;
* ``rel_l2``: relative L2 error against u = sin(6 pi x) sin(6 pi y) on a uniform ``grid x grid`` grid of [-1, 1]^2;
* ``snr`` / ``order`` / ``grad_mean_norm`` / ``grad_std_norm``: the batch-gradient SNR over their 100 batches
  (their ``batch_loss``), weight gradients only: mu, sigma (population std), rho (rms) elementwise over batches,
  snr = ||mu|| / ||sigma||, order = ||mu|| / ||rho||;
* ``adam_snr``: ||m_hat|| / ||sqrt(v_hat) + 1e-8|| from the bias-corrected Adam moments of all parameters;
* ``weights_mean``: the mean RBA weight (their ``rsum``);
* ``step_seconds``: wall time of the last step (their ``loss_func`` plus the scheduler step).

Everything but ``loss`` is measured after the step, at the updated parameters (as their ``find_snr`` does). Row 0 is
the network before any step. The rows come after steps 1..``--dense``, then every ``--every`` steps and after the
last one. Recording does not change the trajectory (it consumes no randomness and takes no optimizer step).

``--init 1`` (default): the RBA weights start at zero and every update, the first included, uses eta = 1e-3.
``--init 2``: the script's own setting, where the first update uses eta = 1 (weights start at the normalised
residual).

Patches applied around their file (their code itself is not modified):

* stand-ins for the ``utils`` package it imports (installed in ``sys.modules`` while it loads, so only ``HM.py`` is
  executed): ``grad`` (first-order ``torch.autograd.grad`` with ``create_graph=True``), ``tonp``, no-op
  ``find_snr`` / ``find_phi`` / ``find_snr_adam`` / ``find_mi`` (this harness computes its own diagnostics), and file
  names pointing into a temporary working directory, which is also the working directory while it runs;
* ``torch.cuda.init`` / ``torch.cuda.manual_seed`` / ``torch.cuda.empty_cache`` as no-ops when CUDA is unavailable;
* matplotlib's non-interactive Agg backend (their module plots at import and every 200 steps);
* their ``PhysicsInformedNN`` replaced by a subclass that sets ``init``, captures the instance and skips ``train``.

Writes an ``.npz`` with the initial parameters (``initial_<i>_weight`` / ``initial_<i>_bias`` per Linear layer,
torch's (out, in) layout), the points (``x_r``, ``x_u``, ``u``), ``batch_indices``, the per-row arrays and a JSON
``meta`` string (seed, init, steps, versions, grid, script path and its sha256).

Usage:
    python benchmarks/authors_peer.py --authors-repo DIR [--seed 2341] --steps N [--init 1] [--every 10]
                                      [--dense 0] [--grid 201] --out FILE.npz
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import math
import os
import platform
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pinnkit import columns

# The step count in a torch.optim.Adam parameter state (not a history column).
TORCH_ADAM_STEP = "step"

SCRIPT = Path("HM") / "HM.py"
DEFAULT_SEED = 2341  # the seed the authors' script uses
EXACT_WAVENUMBER = 6.0  # their a1 = a2 = 6: u = sin(6 pi x) sin(6 pi y)
ROW_KEYS = ("iteration", "loss", "rel_l2", "snr", "order", "grad_mean_norm", "grad_std_norm", "adam_snr",
            "weights_mean", "step_seconds")
_UTILS_MODULES = ("utils", "utils.snr", "utils.func", "utils.mi", "utils.initialization")


def _fail(message: str) -> SystemExit:
    return SystemExit(f"authors_peer: {message}")


def require_peer(repo: str | os.PathLike[str]) -> Path:
    """Return the path of the authors' ``HM/HM.py`` under ``repo``; SystemExit (one line) if it or torch/pyDOE lack."""
    script = Path(repo).expanduser().resolve() / SCRIPT
    if not script.is_file():
        raise _fail(f"{repo} does not contain {SCRIPT} (extract the authors' repository there)")
    missing = [name for name in ("torch", "pyDOE") if importlib.util.find_spec(name) is None]
    if missing:
        raise _fail(f"missing {', '.join(missing)}: pip install torch==2.13.0 pyDOE==0.3.8 (the '[torch]' extra)")
    return script


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _utils_standins(workdir: Path) -> dict[str, types.ModuleType]:
    """Modules standing in for the ``utils`` package the script imports."""
    import torch

    def grad(outputs: Any, inputs: Any) -> Any:
        return torch.autograd.grad(outputs, inputs, torch.ones_like(outputs), create_graph=True)[0]

    def tonp(tensor: Any) -> np.ndarray:
        return tensor.detach().cpu().numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor)

    def no_op(*args: Any, **kwargs: Any) -> None:
        return None

    package = types.ModuleType("utils")
    package.__path__ = []  # a package, so ``from utils.x import y`` resolves through sys.modules
    contents: dict[str, dict[str, Any]] = {
        "snr": {"find_snr": no_op, "find_phi": no_op, "find_snr_adam": no_op},
        "func": {"grad": grad, "tonp": tonp},
        "mi": {"find_mi": no_op},
        "initialization": {"file_path": str(workdir) + os.sep, "file_name": "losses.txt", "figs_folder": "figs",
                           "resid_folder": "residue", "grads_file": "grad_stats.txt", "grads_rms": "grad_rms.txt",
                           "grads_file2": "grad_stats2.txt", "grads_file0": "grad_stats0.txt", "mi_file": "mi.txt"},
    }
    modules = {"utils": package}
    for name, attributes in contents.items():
        module = types.ModuleType(f"utils.{name}")
        module.__dict__.update(attributes)
        setattr(package, name, module)
        modules[f"utils.{name}"] = module
    return modules


@contextlib.contextmanager
def _patched(workdir: Path) -> Iterator[None]:
    """Agg backend, CUDA no-ops, ``utils`` stand-ins and the working directory, undone on exit."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import torch

    saved_modules = {name: sys.modules.get(name) for name in _UTILS_MODULES}
    saved_path = list(sys.path)
    saved_cwd = os.getcwd()
    cuda_names = ("init", "manual_seed", "empty_cache")
    saved_cuda = {name: getattr(torch.cuda, name) for name in cuda_names}
    try:
        sys.modules.update(_utils_standins(workdir))
        if not torch.cuda.is_available():
            for name in cuda_names:
                setattr(torch.cuda, name, lambda *args, **kwargs: None)
        os.chdir(workdir)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*non-interactive.*")
            yield
    finally:
        os.chdir(saved_cwd)
        for name, function in saved_cuda.items():
            setattr(torch.cuda, name, function)
        sys.path[:] = saved_path
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def load_authors_helmholtz(repo: str | os.PathLike[str], seed: int = DEFAULT_SEED, init: int = 1,
                           workdir: str | os.PathLike[str] | None = None) -> Any:
    """Execute the authors' ``HM/HM.py`` under ``repo`` and return its ``PhysicsInformedNN``, built but not trained.

    Their ``main()`` runs after re-seeding with their ``seed_torch(seed)``, with ``train`` skipped and ``init`` set
    (1: first RBA update with eta = 1e-3; 2: their default, eta = 1 at the first update). Their files go to
    ``workdir`` (a new temporary directory when None, left for the caller). The instance gets ``peer_module``,
    ``peer_script``, ``peer_sha256`` and ``peer_workdir`` attributes.
    """
    if init not in (1, 2):
        raise _fail(f"init must be 1 or 2, not {init}")
    script = require_peer(repo)
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="authors_peer_"))
    work.mkdir(parents=True, exist_ok=True)
    work = work.resolve()
    captured: list[Any] = []
    with _patched(work):
        spec = importlib.util.spec_from_file_location(f"authors_peer_hm_{seed}_{init}", script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)

        class Captured(module.PhysicsInformedNN):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.init = init
                captured.append(self)

            def train(self) -> None:
                return None

        module.PhysicsInformedNN = Captured
        module.seed_torch(seed)
        module.main()
    if len(captured) != 1:
        raise _fail(f"expected their main() to build one PhysicsInformedNN, it built {len(captured)}")
    model = captured[0]
    model.peer_module, model.peer_script, model.peer_workdir = module, script, work
    model.peer_sha256 = sha256_of(script)
    model.dnn.train()  # as their train() does before its loop
    return model


def step(model: Any, k: int) -> float:
    """Take their training step ``k`` (0-based): ``loss_func`` then the scheduler as in their ``train``; seconds."""
    start = time.perf_counter()
    model.iter = k
    model.loss_func()
    model.exec_time = time.perf_counter() - start  # what their progress line prints as t/iter
    if (k + 1) % model.step_size == 0:
        model.scheduler.step()
    return time.perf_counter() - start


def linear_layers(model: Any) -> list[Any]:
    """The network's ``torch.nn.Linear`` layers in order."""
    import torch

    return [layer for layer in model.dnn.modules() if isinstance(layer, torch.nn.Linear)]


def initial_arrays(model: Any) -> dict[str, np.ndarray]:
    """Parameters (float32, torch's (out, in) layout), points and batch indices of the model as it is now."""
    def tonp(tensor: Any) -> np.ndarray:
        return tensor.detach().cpu().numpy()

    arrays: dict[str, np.ndarray] = {}
    for i, layer in enumerate(linear_layers(model)):
        arrays[f"initial_{i}_weight"] = tonp(layer.weight).astype(np.float32)
        arrays[f"initial_{i}_bias"] = tonp(layer.bias).astype(np.float32)
    arrays["x_r"] = np.hstack([tonp(model.x_r), tonp(model.t_r)]).astype(np.float32)
    arrays["x_u"] = np.hstack([tonp(model.x_u), tonp(model.t_u)]).astype(np.float32)
    arrays["u"] = tonp(model.u).astype(np.float32).reshape(-1, 1)
    arrays["batch_indices"] = np.stack([tonp(b) for b in model.batch_indices]).astype(np.int64)
    return arrays


def rel_l2(model: Any, grid: int = 201, chunk: int = 65536) -> float:
    """Relative L2 error of the network against sin(6 pi x) sin(6 pi y) on a uniform grid x grid grid of [-1, 1]^2."""
    import torch

    axis = np.linspace(-1.0, 1.0, grid)
    xs, ys = (a.reshape(-1, 1) for a in np.meshgrid(axis, axis, indexing="ij"))
    exact = np.sin(EXACT_WAVENUMBER * math.pi * xs) * np.sin(EXACT_WAVENUMBER * math.pi * ys)
    device = model.x_r.device
    predictions = []
    with torch.no_grad():
        for start in range(0, xs.shape[0], chunk):
            x = torch.tensor(xs[start:start + chunk], dtype=torch.float32, device=device)
            y = torch.tensor(ys[start:start + chunk], dtype=torch.float32, device=device)
            predictions.append(model.net_u(x, y).detach().cpu().numpy())
    prediction = np.concatenate(predictions).astype(np.float64)
    return float(np.linalg.norm(exact - prediction) / np.linalg.norm(exact))


def batch_gradient_snr(model: Any) -> dict[str, float]:
    """SNR and order of the weight gradients of their ``batch_loss`` over their batches (model state restored)."""
    saved = {name: getattr(model, name) for name in ("loss", "u_pred", "r_pred", "idr") if hasattr(model, name)}
    rows = []
    for b in range(len(model.batch_indices)):
        model.batch_loss(b)
        grads = [param.grad.detach().cpu().numpy().ravel() for name, param in model.dnn.named_parameters()
                 if "weight" in name and param.grad is not None]
        rows.append(np.concatenate(grads).astype(np.float64))
    model.optimizer.zero_grad(set_to_none=True)
    model.__dict__.update(saved)
    g = np.stack(rows)
    mean_norm = float(np.linalg.norm(g.mean(axis=0)))
    std_norm = float(np.linalg.norm(g.std(axis=0)))
    rms_norm = float(np.linalg.norm(np.sqrt(np.mean(g * g, axis=0))))
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = float(np.float64(mean_norm) / np.float64(std_norm))
        order = float(np.float64(mean_norm) / np.float64(rms_norm))
    return {"snr": snr, "order": order, "grad_mean_norm": mean_norm, "grad_std_norm": std_norm}


def adam_snr(model: Any) -> float:
    """||m_hat|| / ||sqrt(v_hat) + 1e-8|| over all parameters from their Adam state; NaN before the first step."""
    import torch

    numerators, denominators = [], []
    for group in model.optimizer.param_groups:
        beta1, beta2 = group["betas"]
        for param in group["params"]:
            state = model.optimizer.state.get(param, {})
            t = float(state[TORCH_ADAM_STEP]) if TORCH_ADAM_STEP in state else 0.0
            if t <= 0:
                continue
            numerators.append((state["exp_avg"] / (1 - beta1**t)).reshape(-1).double())
            denominators.append(((state["exp_avg_sq"] / (1 - beta2**t)).sqrt() + 1e-8).reshape(-1).double())
    if not numerators:
        return math.nan
    return float(torch.linalg.norm(torch.cat(numerators)) / torch.linalg.norm(torch.cat(denominators)))


def record(model: Any, grid: int = 201) -> dict[str, float]:
    """One row at the model's current parameters (``loss`` is the last step's, NaN before any step)."""
    loss = float(model.loss.item()) if hasattr(model, "loss") else math.nan  # read before batch_loss overwrites it
    row = {"loss": loss, "rel_l2": rel_l2(model, grid)}
    row.update(batch_gradient_snr(model))
    row[columns.ADAM_SNR] = adam_snr(model)
    row["weights_mean"] = float(model.rsum.mean().item())
    return row


def recording_steps(steps: int, every: int = 10, dense: int = 0) -> list[int]:
    """Step counts after which a row is recorded (row 0, before any step, comes on top)."""
    return [n for n in range(1, steps + 1) if n <= dense or (every > 0 and n % every == 0) or n == steps]


def run(repo: str | os.PathLike[str], seed: int = DEFAULT_SEED, steps: int = 10, init: int = 1, every: int = 10,
        dense: int = 0, grid: int = 201, workdir: str | os.PathLike[str] | None = None,
        echo: bool = False) -> dict[str, Any]:
    """Load their model, record row 0, take ``steps`` steps recording as scheduled; arrays and ``meta`` (dict)."""
    import torch

    model = load_authors_helmholtz(repo, seed=seed, init=init, workdir=workdir)
    arrays = initial_arrays(model)
    rows = {key: [] for key in ROW_KEYS}

    def keep(n: int, seconds: float) -> None:
        row = {"iteration": n, **record(model, grid), "step_seconds": seconds}
        for key in ROW_KEYS:
            rows[key].append(row[key])
        if echo:
            print(format_row(row), flush=True)

    keep(0, math.nan)
    scheduled = set(recording_steps(steps, every, dense))
    seconds = []
    saved_cwd = os.getcwd()
    os.chdir(model.peer_workdir)
    try:
        for k in range(steps):
            seconds.append(step(model, k))
            if k + 1 in scheduled:
                keep(k + 1, seconds[-1])
    finally:
        os.chdir(saved_cwd)
    arrays[columns.ITERATION] = np.asarray(rows[columns.ITERATION], dtype=np.int64)
    for key in ROW_KEYS[1:]:
        arrays[key] = np.asarray(rows[key], dtype=np.float64)
    meta = {
        "seed": seed, "init": init, "steps": steps, "every": every, "dense": dense, "grid": grid,
        "script": str(model.peer_script), "script_sha256": model.peer_sha256,
        "torch_version": torch.__version__, "numpy_version": np.__version__,
        "pydoe_version": _version("pyDOE"), "python_version": platform.python_version(),
        "device": str(model.x_r.device), "torch_threads": torch.get_num_threads(),
        "median_step_seconds": float(np.median(seconds)) if seconds else math.nan,
        "rows": "row 0 before any step; row n after n steps: loss of step n (before its update), the rest after it",
    }
    return {"arrays": arrays, "meta": meta}


def _version(distribution: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def format_row(row: dict[str, Any]) -> str:
    """A row as one printable line."""
    return "  ".join(f"{key}={row[key]:d}" if key == "iteration" else f"{key}={row[key]:.6g}" for key in ROW_KEYS)


def write_npz(path: str | os.PathLike[str], arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write ``arrays`` and ``meta`` (as a JSON string) to ``path`` via ``path.tmp`` and ``os.replace``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays, meta=np.asarray(json.dumps(meta, sort_keys=True)))
    os.replace(tmp, out)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors-repo", required=True, help="the authors' repository, extracted (holds HM/HM.py)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="their seed_torch seed (2341: their run)")
    parser.add_argument("--steps", type=int, required=True, help="training steps to take")
    parser.add_argument("--init", type=int, choices=(1, 2), default=1,
                        help="1: RBA weights from zero with eta=1e-3 throughout; 2: their default (eta=1 first)")
    parser.add_argument("--every", type=int, default=10, help="record every this many steps")
    parser.add_argument("--dense", type=int, default=0, help="also record after each of steps 1..DENSE")
    parser.add_argument("--grid", type=int, default=201, help="points per axis of the rel_l2 grid (theirs: 1001)")
    parser.add_argument("--out", required=True, help="the .npz to write")
    args = parser.parse_args(argv)
    if args.steps < 0 or args.every < 0 or args.dense < 0 or args.grid < 2:
        raise _fail("--steps, --every and --dense must be >= 0 and --grid >= 2")
    require_peer(args.authors_repo)
    with tempfile.TemporaryDirectory(prefix="authors_peer_") as workdir:
        result = run(args.authors_repo, seed=args.seed, steps=args.steps, init=args.init, every=args.every,
                     dense=args.dense, grid=args.grid, workdir=workdir, echo=True)
    out = write_npz(args.out, result["arrays"], result["meta"])
    print(f"median step seconds: {result['meta']['median_step_seconds']:.4g}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
