"""The optimizers that plans, configs and the command line can name: one :class:`OptimizerSpec` each.

An entry says how to build the optimizer, whether it line-searches (one step is then one iteration, the run
defaults to float64 and reweighting weights are held in its stages), the memory it adds to a run, how to make its
state forget the loss or restart its curvature (:class:`pinnkit.curvature.CurvatureRule`), and a line of help.
Everything else reads the registry: :func:`pinnkit.optimizers.make_optimizer`, :mod:`pinnkit.plans`, the memory
estimate of :mod:`pinnkit.resources`, the engine's forget/restart (:mod:`pinnkit.curvature`), the help of ``pinnkit
train`` and ``pinnkit compare`` and the report's prose. :data:`OPTIMIZERS` and the other name lists are views of it,
read afresh on every use.

A new optimizer is one call; a quasi-Newton method is a scaling rule made an entry by :func:`quasi_newton_spec`:

Example:
    >>> import jax.numpy as jnp
    >>> from pinnkit.scaling_rules import ScalingRule
    >>> plain = ScalingRule("plain-bfgs", tau=lambda scalars, theta: jnp.ones_like(scalars.a), description="BFGS")
    >>> with temporarily_registered(quasi_newton_spec(plain)):
    ...     "plain-bfgs" in LINE_SEARCH_OPTIMIZERS
    True
    >>> "plain-bfgs" in OPTIMIZERS
    False
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import optax

from pinnkit import quasi_newton
from pinnkit.curvature import LBFGS_MEMORY, CurvatureRule
from pinnkit.scaling_rules import SCALING_RULES, ScalingRule

__all__ = [
    "DEFAULT_LEARNING_RATES", "FIRST_ORDER_OPTIMIZERS", "LINE_SEARCH_OPTIMIZERS", "NAME_PATTERN", "OPTIMIZERS",
    "BuildOptions", "OptimizerSpec", "describe_optimizers", "optimizer_spec", "optimizer_specs", "quasi_newton_spec",
    "register_optimizer", "temporarily_registered", "unregister_optimizer",
]

# What a plan string can name: a stage is "name" or "name:steps", stages are joined by "+" or ",".
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """What :func:`pinnkit.optimizers.make_optimizer` hands an entry's ``build``, already checked.

    Attributes:
        learning_rate: first-order entries: the base rate (the entry's default where none was given) with the
            schedule applied (a number or an ``optax.Schedule``); line-search entries: the number that scales the
            direction before the line search, or None.
        momentum: heavy-ball momentum in ``[0, 1)`` (SGD's).
        memory_size: the memory of a limited-memory method (L-BFGS's).
    """

    learning_rate: optax.ScalarOrSchedule | None = None
    momentum: float = 0.9
    memory_size: int = 10


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer of the registry.

    Attributes:
        name: what plans call it (lower case, digits, ``-`` and ``_``: it must fit in a plan string).
        build: ``BuildOptions -> optax transformation``.
        help: one line for the command line's help (what it is, in a few words).
        line_search: whether its ``update`` needs ``value``, ``grad`` and ``value_fn`` (an optax line search): a
            step is then one iteration, and the engine steps it as a line search.
        default_learning_rate: first-order entries only: the base learning rate when none is given.
        memory: ``(parameters, itemsize) -> bytes`` its state adds beyond a few parameter-sized copies (the dense
            inverse Hessian of the BFGS family); None: nothing more.
        curvature: the rules that make its state forget the loss and restart its curvature (the line search's
            rule applies to every optimizer and need not be listed).
        direction: first-order entries: ``BuildOptions -> transformation`` without the step size (the learning
            rate is applied after it), for the learning-rate search; None: the search does not apply.

    Example:
        >>> optimizer_spec("ssbroyden").line_search, optimizer_spec("adam").default_learning_rate
        (True, 0.001)
    """

    name: str
    build: Callable[[BuildOptions], Any]
    help: str
    line_search: bool = False
    default_learning_rate: float | None = None
    memory: Callable[[int, int], int] | None = None
    curvature: tuple[CurvatureRule, ...] = ()
    direction: Callable[[BuildOptions], Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise ValueError(f"an optimizer name must match {NAME_PATTERN.pattern}, got {self.name!r}")
        if not callable(self.build):
            raise TypeError(f"optimizer {self.name!r}: build must be a callable, got {self.build!r}")
        if not isinstance(self.help, str) or not self.help.strip():
            raise ValueError(f"optimizer {self.name!r}: give a line of help")
        if self.line_search == (self.default_learning_rate is not None):
            raise ValueError(f"optimizer {self.name!r}: a first-order optimizer needs a default_learning_rate, a "
                             "line-search one has none")
        if not all(isinstance(rule, CurvatureRule) for rule in self.curvature):
            raise TypeError(f"optimizer {self.name!r}: curvature must be a tuple of CurvatureRule")


_REGISTRY: dict[str, OptimizerSpec] = {}


def _state_kinds() -> dict[type, tuple[str, CurvatureRule]]:
    return {kind: (spec.name, rule) for spec in _REGISTRY.values() for rule in spec.curvature for kind in rule.kinds}


def register_optimizer(spec: OptimizerSpec) -> OptimizerSpec:
    """Add ``spec`` to the registry (after the entries already there); returns it.

    Raises:
        ValueError: if the name is taken, or a state type of its curvature rules already has another rule.

    Example:
        >>> spec = register_optimizer(OptimizerSpec("adam-fast", lambda options: optax.adam(1e-2), "Adam, 1e-2",
        ...                                         default_learning_rate=1e-2))
        >>> "adam-fast" in OPTIMIZERS
        True
        >>> unregister_optimizer("adam-fast") is spec
        True
    """
    if not isinstance(spec, OptimizerSpec):
        raise TypeError(f"register an OptimizerSpec, got {type(spec).__name__}")
    if spec.name in _REGISTRY:
        raise ValueError(f"an optimizer called {spec.name!r} is registered already")
    known = _state_kinds()
    for rule in spec.curvature:
        for kind in rule.kinds:
            if kind in known and known[kind][1] != rule:
                raise ValueError(f"optimizer {spec.name!r}: {kind.__name__} already has the curvature rule of "
                                 f"{known[kind][0]!r}; share that rule")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_optimizer(name: str) -> OptimizerSpec:
    """Remove the entry ``name`` from the registry; returns it (``ValueError`` if there is none)."""
    return _REGISTRY.pop(optimizer_spec(name).name)


@contextlib.contextmanager
def temporarily_registered(spec: OptimizerSpec) -> Iterator[OptimizerSpec]:
    """Register ``spec`` for the ``with`` block only (tests stay isolated); see the module example."""
    register_optimizer(spec)
    try:
        yield spec
    finally:
        _REGISTRY.pop(spec.name, None)


def optimizer_spec(name: str) -> OptimizerSpec:
    """The entry called ``name``.

    Example:
        >>> optimizer_spec("lbfgs").help
        'optax L-BFGS, memory 10'
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown optimizer {name!r}; choose one of {list(_REGISTRY)}") from None


def optimizer_specs() -> tuple[OptimizerSpec, ...]:
    """Every entry, in registration order."""
    return tuple(_REGISTRY.values())


def describe_optimizers(names: Sequence[str] | None = None) -> str:
    """``"name (help), ..."`` for the given entries (default: all), for help texts.

    Example:
        >>> describe_optimizers(["adam", "sgd"])
        'adam (Adam), sgd (SGD, heavy-ball momentum)'
    """
    specs = optimizer_specs() if names is None else [optimizer_spec(name) for name in names]
    return ", ".join(f"{spec.name} ({spec.help})" for spec in specs)


class _Names(Sequence[str]):
    """The names of the registered entries that ``keep`` selects, in registration order, read on every use (a
    registration made after ``from pinnkit.optimizers import OPTIMIZERS`` is seen). Compares equal to the tuple."""

    def __init__(self, keep: Callable[[OptimizerSpec], bool]):
        self._keep = keep

    def _names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in _REGISTRY.values() if self._keep(spec))

    def __getitem__(self, index):
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self):
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __eq__(self, other: object) -> bool:
        return self._names() == (tuple(other) if isinstance(other, _Names) else other)

    __hash__ = None  # its contents change

    def __add__(self, other: Sequence[str]) -> tuple[str, ...]:
        return self._names() + tuple(other)

    def __radd__(self, other: Sequence[str]) -> tuple[str, ...]:
        return tuple(other) + self._names()

    def __repr__(self) -> str:
        return repr(self._names())


class _DefaultRates(Mapping[str, float]):
    """``{name: default learning rate}`` of the registered first-order entries, read on every use."""

    def _rates(self) -> dict[str, float]:
        return {spec.name: spec.default_learning_rate for spec in _REGISTRY.values() if not spec.line_search}

    def __getitem__(self, name: str) -> float:
        return self._rates()[name]

    def __iter__(self):
        return iter(self._rates())

    def __len__(self) -> int:
        return len(self._rates())

    def __repr__(self) -> str:
        return repr(self._rates())


OPTIMIZERS = _Names(lambda spec: True)
FIRST_ORDER_OPTIMIZERS = _Names(lambda spec: not spec.line_search)
LINE_SEARCH_OPTIMIZERS = _Names(lambda spec: spec.line_search)
DEFAULT_LEARNING_RATES = _DefaultRates()


def quasi_newton_spec(rule: ScalingRule, help: str | None = None) -> OptimizerSpec:
    """The registry entry of a dense quasi-Newton method: ``rule`` in
    :func:`pinnkit.quasi_newton.quasi_newton_optimizer` (zoom line search), with the dense memory rule and the
    quasi-Newton state's curvature rule. ``help`` defaults to the rule's description.

    Example:
        >>> from pinnkit.scaling_rules import SSBFGS
        >>> quasi_newton_spec(SSBFGS).help
        'self-scaled BFGS, dense inverse Hessian'
    """
    def build(options: BuildOptions):
        return quasi_newton.quasi_newton_optimizer(rule, learning_rate=options.learning_rate)

    text = help or f"{rule.description or rule.name}, dense inverse Hessian"
    return OptimizerSpec(rule.name, build, text, line_search=True, memory=quasi_newton.dense_memory,
                         curvature=(quasi_newton.CURVATURE,))


def _adam(options: BuildOptions):
    return optax.adam(options.learning_rate)


def _sgd(options: BuildOptions):
    return optax.sgd(options.learning_rate, momentum=options.momentum or None)


def _lbfgs(options: BuildOptions):
    return optax.lbfgs(learning_rate=options.learning_rate, memory_size=options.memory_size)


for _spec in (
    OptimizerSpec("adam", _adam, "Adam", default_learning_rate=1e-3,
                  direction=lambda options: optax.scale_by_adam()),
    OptimizerSpec("sgd", _sgd, "SGD, heavy-ball momentum", default_learning_rate=1e-3,
                  direction=lambda options: optax.trace(decay=options.momentum)),
    OptimizerSpec("lbfgs", _lbfgs, "optax L-BFGS, memory 10", line_search=True, curvature=(LBFGS_MEMORY,)),
    *(quasi_newton_spec(rule) for rule in SCALING_RULES),
):
    register_optimizer(_spec)
