"""The paper's three cases at the paper's own settings, as its released logs show them.

One registry, :data:`PAPER_CASES`: the comparison presets ``paper-allen-cahn``, ``paper-helmholtz`` and
``paper-cavity``, ``pinnkit train --preset``, ``benchmarks/paper_runs.py`` and ``docs/reproduction.md`` all read
it. Common to every case (the paper's section 4.1, checked against its logs): a 6x128 tanh MLP with Xavier-normal
weights and PyTorch's default bias init on raw coordinates, Latin-hypercube points fixed for the run, full-batch
Adam 1e-3 decayed x0.9 every 5,000 steps, float32, 100 SNR batches (consecutive slices of the point array, each
carrying the whole boundary term), rows every 2 steps below 300 and every 100 after, and RBA with eta 1e-3, gamma
0.999, weights started at zero and advanced *before* each gradient (the order of the paper's code). Where the code
and the logs disagree the logs win; docs/reproduction.md gives the evidence for each choice.

Example:
    >>> config = PAPER_CASES["helmholtz"].run_config(steps=100)
    >>> config.width, config.depth, config.points, dict(config.problem_params)["a1"]
    (128, 6, 25600, 6.0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pinnkit.engine import LogSchedule, Probes
from pinnkit.experiment import RunConfig

__all__ = ["PAPER_CASES", "PAPER_LOG", "PAPER_PRESETS", "PAPER_STEPS", "PaperCase", "paper_case"]

PAPER_STEPS = 300_000
PRESET_PREFIX = "paper-"
PAPER_LOG = LogSchedule(every=100, dense_until=300, dense_every=2)
PAPER_RBA = {"eta": 1e-3, "gamma": 0.999, "init": "zeros"}


@dataclasses.dataclass(frozen=True)
class PaperCase:
    """One of the paper's cases.

    Attributes:
        name: the case's name (``paper-<name>`` is its preset).
        problem: the pinnkit problem.
        problem_params: its parameters at the paper's setting.
        points: interior collocation points.
        normalize: the RBA normalisation (``"max"``, or ``"minmax"`` for the paper's Helmholtz variant).
        log_stem: the prefix of the authors' log files in the shared ``paper_logs`` folder (None: none shared).
        summary: one line for help texts.
    """

    name: str
    problem: str
    problem_params: Mapping[str, Any]
    points: int
    normalize: str
    log_stem: str | None
    summary: str

    @property
    def preset(self) -> str:
        """The case's preset name (``pinnkit compare|train --preset``).

        Example:
            >>> PAPER_CASES["cavity"].preset
            'paper-cavity'
        """
        return f"{PRESET_PREFIX}{self.name}"

    @property
    def reweight_options(self) -> dict[str, Any]:
        """The case's RBA options."""
        return {**PAPER_RBA, "normalize": self.normalize}

    def settings(self) -> dict[str, Any]:
        """The fields a run or a comparison of this case shares (besides its reweighting and length)."""
        return dict(problem=self.problem, problem_params=dict(self.problem_params), width=128, depth=6,
                    points=self.points, normalize_inputs=False, learning_rate=1e-3, float64=False, log=PAPER_LOG,
                    probes=Probes(snr_batches=100, batch_split="contiguous"), weights_first=True)

    def run_config(self, *, reweight: str = "rba", steps: int = PAPER_STEPS, seed: int = 0,
                   **overrides: Any) -> RunConfig:
        """The case's run with (``"rba"``) or without (``"none"``) reweighting.

        Example:
            >>> PAPER_CASES["allen-cahn"].run_config(reweight="none", steps=10).reweight_options
            {}
        """
        if reweight not in ("rba", "none"):
            raise ValueError(f"the paper's runs are 'rba' or 'none', got reweight={reweight!r}")
        options = self.reweight_options if reweight == "rba" else {}
        fields = {**self.settings(), "optimizer": "adam", "schedule": "paper", "reweight": reweight,
                  "reweight_options": options, "steps": steps, "seed": seed, **overrides}
        return RunConfig(**fields)


PAPER_CASES: dict[str, PaperCase] = {
    case.name: case
    for case in (
        PaperCase("allen-cahn", "allen-cahn", {}, 25_600, "max", "allen_cahn",
                  "Allen-Cahn, initial condition at the 512 reference x, no boundary term"),
        PaperCase("helmholtz", "helmholtz", {"a1": 6.0, "a2": 6.0, "k": 1.0, "boundary_grid": 1001}, 25_600,
                  "minmax", None, "Helmholtz (6, 6), 100 of 1001 grid points per side, min-max RBA"),
        PaperCase("cavity", "cavity", {"reynolds": 1000.0}, 10_000, "max", "cavity",
                  "lid-driven cavity at Re = 1000, RBA on |f_x| + |f_y|"),
    )
}


PAPER_PRESETS = tuple(case.preset for case in PAPER_CASES.values())


def paper_case(name: str) -> PaperCase:
    """The case called ``name`` (with or without the ``paper-`` prefix); ValueError naming the choices otherwise.

    Example:
        >>> paper_case("paper-cavity").points
        10000
    """
    key = name.removeprefix(PRESET_PREFIX) if isinstance(name, str) else name
    if key not in PAPER_CASES:
        raise ValueError(f"unknown paper case {name!r}; choose one of {sorted(PAPER_CASES)}")
    return PAPER_CASES[key]
