"""PDE problems and their registry: ``get(name, **params)`` and ``names()``."""

from __future__ import annotations

from typing import Any

from pinnkit.problems.allen_cahn import AllenCahn
from pinnkit.problems.base import Problem, latin_hypercube, replace_params, uniform
from pinnkit.problems.burgers import Burgers
from pinnkit.problems.cavity import Cavity
from pinnkit.problems.helmholtz import Helmholtz

__all__ = ["Problem", "get", "names", "latin_hypercube", "uniform", "AllenCahn", "Burgers", "Cavity", "Helmholtz"]

_REGISTRY: dict[str, type[Problem]] = {cls.name: cls for cls in (AllenCahn, Burgers, Cavity, Helmholtz)}


def names() -> list[str]:
    """The registered problem names, sorted.

    Example:
        >>> names()
        ['allen-cahn', 'burgers', 'cavity', 'helmholtz']
    """
    return sorted(_REGISTRY)


def get(name: str, **params: Any) -> Problem:
    """The problem called ``name`` with some parameters changed from their defaults.

    Args:
        name: one of :func:`names`.
        **params: parameters of that problem (e.g. ``a1=6`` for Helmholtz).

    Returns:
        The problem instance.

    Example:
        >>> get("helmholtz", a1=6, a2=6).a1
        6.0
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown problem {name!r}; choose one of {names()}")
    return replace_params(_REGISTRY[name](), params)
