"""Will a run fit in memory? A size estimate made before anything is allocated.

Runs whose sizes are typos (``--width 100000000``, ``--points 10000000000``, a reference grid of 10^12 points)
are refused up front with a clear message instead of crashing the machine. The estimate is deliberately rough
(upper-bound flavoured): the working set of one training step (values and derivative rows of every hidden layer
at every point, forward and backward), the points, the reference grid, the parameters and optimizer state, and
what the plan's optimizers add (the memory rule of their registry entries: the dense inverse Hessian of the BFGS
family). The history a run would record is bounded too (:data:`pinnkit.engine.MAX_ROWS` rows).

The memory available is the smaller of the system's (``MemAvailable``) and what the process's control group
still allows (cgroup v2 ``memory.max``, v1 ``memory.limit_in_bytes``, on every level up to the root): in a
container the system's figure is the host's, and a run past the group's limit is killed without a word.
An address-space limit (``ulimit -v``) is not counted: a run that reaches it fails its allocation (exit 4).
"""

from __future__ import annotations

import os

__all__ = ["available_memory", "cgroup_available", "check_fits", "estimate_run_memory"]

# Value, first and second derivatives along each input (the problems here need at most third order).
_ROWS_PER_POINT = 8
# Forward values kept for the backward pass, gradients, and XLA's temporaries.
_WORKING_FACTOR = 4
_FRACTION = 0.8  # of the available memory a run may plan to use


def available_memory() -> int:
    """Bytes of memory available to a new allocation: ``MemAvailable`` (the physical total as a fallback), less
    where the process's control group allows less (see the module docstring).

    Example:
        >>> available_memory() > 0
        True
    """
    system = _system_available()
    group = cgroup_available()
    return min(system, group) if group is not None else system


def _system_available() -> int:
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 2**40


# (limit, usage, reclaimable statistic) files of cgroup v2 and v1.
_CGROUP_FILES = {
    "2": ("memory.max", "memory.current", "inactive_file"),
    "1": ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
}
_NO_LIMIT = 1 << 60  # v1 writes "no limit" as a huge number (9223372036854771712)


def cgroup_available(proc: str | os.PathLike = "/proc/self") -> int | None:
    """Bytes the process's memory control group still allows (limit less usage, reclaimable page cache
    counted as free), the least over its levels; None when no level sets a limit (or none can be read).

    Args:
        proc: the ``/proc`` entry of the process (its ``cgroup`` and ``mountinfo`` files are read).

    Example:
        >>> value = cgroup_available()
        >>> value is None or value >= 0
        True
    """
    from pathlib import Path

    proc = Path(proc)
    try:
        groups = (proc / "cgroup").read_text().splitlines()
        mounts = (proc / "mountinfo").read_text().splitlines()
    except OSError:
        return None
    least = None
    for version, mount_root, mount_point in _memory_mounts(mounts):
        for line in groups:
            fields = line.split(":", 2)
            if len(fields) != 3:
                continue
            _, controllers, path = fields
            if (version == "2") != (controllers == "") or (version == "1" and "memory" not in controllers.split(",")):
                continue
            relative = os.path.relpath(path, mount_root) if path.startswith(mount_root) else None
            if relative is None or relative.startswith(".."):
                continue
            folder = Path(mount_point) / relative
            while True:
                value = _group_headroom(folder, *_CGROUP_FILES[version])
                if value is not None:
                    least = value if least is None else min(least, value)
                if folder == Path(mount_point) or folder.parent == folder:
                    break
                folder = folder.parent
    return least


def _memory_mounts(lines: list[str]):
    """(version, root inside the hierarchy, mount point) of the memory cgroup mounts in ``mountinfo``."""
    for line in lines:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        before, after = left.split(), right.split()
        if len(before) < 5 or not after:
            continue
        root, point = _unescape(before[3]), _unescape(before[4])
        if after[0] == "cgroup2":
            yield "2", root, point
        elif after[0] == "cgroup" and "memory" in (after[2] if len(after) > 2 else "").split(","):
            yield "1", root, point


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _group_headroom(folder, limit_name: str, usage_name: str, reclaimable: str) -> int | None:
    try:
        limit_text = (folder / limit_name).read_text().strip()
        if limit_text == "max":
            return None
        limit = int(limit_text)
        if limit >= _NO_LIMIT:
            return None
        usage = int((folder / usage_name).read_text().strip())
    except (OSError, ValueError):
        return None
    free = 0
    try:
        for line in (folder / "memory.stat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == reclaimable:
                free = int(value)
                break
    except (OSError, ValueError):
        pass
    return max(0, limit - usage + free)


def estimate_run_memory(config, *, models: int = 1) -> int:
    """Rough bytes a run of ``config`` needs at its peak (see the module docstring).

    Args:
        config: a :class:`pinnkit.RunConfig`.
        models: models trained together (seeds vmapped).

    Example:
        >>> from pinnkit import RunConfig
        >>> estimate_run_memory(RunConfig(width=16, depth=2, points=100)) < 10**9
        True
    """
    from pinnkit import problems
    from pinnkit.optimizer_registry import optimizer_spec

    problem = problems.get(config.problem, **dict(config.problem_params))
    size = 8 if config.double_precision else 4
    inputs, outputs = len(problem.input_names), len(problem.output_names)
    width, depth = config.width, config.depth
    features = 2 * config.fourier_features if config.fourier_features else inputs
    parameters = (features * width + width) + (depth - 1) * (width * width + width) + (width * outputs + outputs)
    if config.architecture != "mlp":
        parameters += 2 * (features * width + width)
    points = config.points + sum(problem.constraint_counts().values())
    working = points * width * depth * _ROWS_PER_POINT * size * _WORKING_FACTOR
    reference = problem.reference_size()
    evaluation = reference * (width * depth + inputs + outputs) * size * 2
    state = parameters * size * 8  # params, gradients, moments, line-search copies
    # The stages run one after another: the largest optimizer memory is the one that counts.
    specs = [optimizer_spec(name) for name in config.plan_spec().names]
    extra = max((spec.memory(parameters, size) for spec in specs if spec.memory is not None), default=0)
    per_model = working + state + extra
    return int(models * per_model + evaluation + points * inputs * size + reference * 8 * 4)


def check_fits(config, *, models: int = 1) -> None:
    """Raise ValueError when a run of ``config`` would not fit in the memory available now, or would record
    more than :data:`pinnkit.engine.MAX_ROWS` history rows (checked here, before anything is built).

    Example:
        >>> from pinnkit import RunConfig
        >>> check_fits(RunConfig(width=16, depth=2, points=100))
        >>> check_fits(RunConfig(width=100_000_000, depth=2, points=100))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: this run needs about ... of memory; ... are available ...
    """
    from pinnkit.engine.schedule import MAX_ROWS

    rows = config.log.count(config.steps)
    if rows > MAX_ROWS:
        raise ValueError(f"the log schedule would record {rows:,} history rows; at most {MAX_ROWS:,} (record less "
                         "often)")
    need = estimate_run_memory(config, models=models)
    have = available_memory()
    if need > _FRACTION * have:
        raise ValueError(f"this run needs about {_bytes(need)} of memory; {_bytes(have)} are available (reduce "
                         "--width, --depth, --points or the problem's grid and point counts)")


def _bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.3g} {unit}" if unit != "PiB" or value < 1e6 else f"{value:.2e} {unit}"
        value /= 1024
    return f"{value:.3g} EiB"  # pragma: no cover
