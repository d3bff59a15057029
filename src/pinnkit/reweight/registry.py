"""The reweighting schemes by name: one :class:`ReweightingSpec` each, from which everything that names them derives.

:data:`REWEIGHTINGS` (the names, ``"none"`` first), :func:`reweighting_options`,
:func:`check_reweighting_options`, :func:`make_reweighting` and the help of ``pinnkit train`` and ``pinnkit
compare`` all read the registry when they are used, so a scheme registered with :func:`register_reweighting`
shows up everywhere without further edits.

Example:
    >>> import jax.numpy as jnp
    >>> from pinnkit.reweight import ReweightingSpec, reweighting_transform
    >>> def uniform(num_samples, *, eta=1e-3, gamma=0.999):
    ...     return reweighting_transform(num_samples, eta=eta, gamma=gamma, init="zeros", name="uniform",
    ...                                  target_fn=lambda abs_residuals, *, count: jnp.ones_like(abs_residuals))
    >>> with registered_reweighting(ReweightingSpec("uniform", uniform, "every sample alike")):
    ...     "uniform" in REWEIGHTINGS, reweighting_options("uniform")
    (True, ('eta', 'gamma'))
    >>> "uniform" in REWEIGHTINGS
    False
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import optax

from pinnkit.reweight.gradient_aware import gradient_aware_rba
from pinnkit.reweight.residual import rba
from pinnkit.reweight.variational import vrba

__all__ = [
    "NO_REWEIGHTING",
    "REWEIGHTINGS",
    "ReweightingSpec",
    "check_reweighting_options",
    "describe_reweightings",
    "make_reweighting",
    "register_reweighting",
    "registered_reweighting",
    "reweighting_options",
    "unregister_reweighting",
]

#: The name that means "no reweighting": always first in :data:`REWEIGHTINGS`, never a registered scheme.
NO_REWEIGHTING = "none"


@dataclasses.dataclass(frozen=True)
class ReweightingSpec:
    """A reweighting scheme under a name.

    Attributes:
        name: what plans, configs and the command line call it (``--reweight NAME``).
        build: ``build(num_samples, **options) -> optax.GradientTransformationExtraArgs``; its keyword-only
            parameters are the scheme's options (``--reweight-option NAME=VALUE``).
        help: one line for the command-line help (``--help`` lists ``name (help)`` for every scheme).
        defaults: options applied before the user's (which override them), e.g. to register a variant of a
            scheme under its own name.

    Example:
        >>> from pinnkit.reweight import vrba
        >>> ReweightingSpec("vrba-linear", vrba, "vRBA's linear weights", {"potential": "linear"}).name
        'vrba-linear'
    """

    name: str
    build: Callable[..., optax.GradientTransformationExtraArgs]
    help: str
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip() or "," in self.name:
            raise ValueError(f"a reweighting name must be a non-empty word without commas, got {self.name!r}")
        if self.name == NO_REWEIGHTING:
            raise ValueError(f"{NO_REWEIGHTING!r} is no reweighting and cannot be registered")
        if not callable(self.build):
            raise TypeError(f"build must be callable, got {self.build!r}")
        if not isinstance(self.help, str) or "\n" in self.help:
            raise ValueError(f"help must be one line, got {self.help!r}")
        unknown = [option for option in self.defaults if option not in self.options()]
        if unknown:
            raise TypeError(f"defaults name options {unknown} that {self.name}'s build does not take")

    def options(self) -> tuple[str, ...]:
        """The keyword-only parameters of ``build``, in their order."""
        parameters = inspect.signature(self.build).parameters.values()
        return tuple(parameter.name for parameter in parameters if parameter.kind is inspect.Parameter.KEYWORD_ONLY)


_BUILT_IN = (
    ReweightingSpec("rba", rba, "residual-based attention, weights follow |r| / max|r|"),
    ReweightingSpec("vrba", vrba, "variational RBA, weights from an annealed convex potential of the residual"),
    ReweightingSpec("gradient-aware", gradient_aware_rba,
                    "RBA that favours large residuals with small per-sample gradients"),
)
_SPECS: dict[str, ReweightingSpec] = {spec.name: spec for spec in _BUILT_IN}


class _Names(Sequence[str]):
    """The reweighting names, ``"none"`` first, as they stand in the registry at each use (a live tuple)."""

    def _names(self) -> tuple[str, ...]:
        return (NO_REWEIGHTING, *_SPECS)

    def __getitem__(self, index):  # an int gives a name, a slice a tuple
        return self._names()[index]

    def __len__(self) -> int:
        return 1 + len(_SPECS)

    def __contains__(self, name: object) -> bool:
        return name == NO_REWEIGHTING or (isinstance(name, str) and name in _SPECS)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Names):
            return True
        return isinstance(other, tuple | list) and tuple(other) == self._names()

    __hash__ = None  # equal to tuples that change with the registry: not hashable

    def __repr__(self) -> str:
        return repr(self._names())


#: Every reweighting name, ``"none"`` first, then the registered schemes in registration order. A live view: it
#: reads the registry at each use, so ``from pinnkit.optimizers import REWEIGHTINGS`` sees later registrations.
REWEIGHTINGS: Sequence[str] = _Names()


def register_reweighting(spec: ReweightingSpec) -> ReweightingSpec:
    """Add a scheme to the registry (after the others); it is known everywhere from now on.

    Raises:
        TypeError: ``spec`` is not a :class:`ReweightingSpec`.
        ValueError: a scheme of that name is registered already.

    Example:
        >>> from pinnkit.reweight import rba
        >>> spec = register_reweighting(ReweightingSpec("rba-minmax", rba, "RBA, min-max", {"normalize": "minmax"}))
        >>> REWEIGHTINGS[-1], make_reweighting("rba-minmax", 4).init(None).weights.shape
        ('rba-minmax', (4,))
        >>> unregister_reweighting("rba-minmax")
    """
    if not isinstance(spec, ReweightingSpec):
        raise TypeError(f"register_reweighting takes a ReweightingSpec, got {spec!r}")
    if spec.name in _SPECS:
        raise ValueError(f"a reweighting named {spec.name!r} is registered already")
    _SPECS[spec.name] = spec
    return spec


def unregister_reweighting(name: str) -> None:
    """Remove a scheme that :func:`register_reweighting` added (the built-in ones stay).

    Example:
        >>> unregister_reweighting("rba")
        Traceback (most recent call last):
        ...
        ValueError: 'rba' is built in and cannot be unregistered
    """
    if any(spec.name == name for spec in _BUILT_IN):
        raise ValueError(f"{name!r} is built in and cannot be unregistered")
    if name not in _SPECS:
        raise ValueError(f"no reweighting named {name!r} is registered")
    del _SPECS[name]


@contextlib.contextmanager
def registered_reweighting(spec: ReweightingSpec) -> Iterator[ReweightingSpec]:
    """Register ``spec`` for the ``with`` block only (for tests).

    Example:
        >>> from pinnkit.reweight import rba
        >>> with registered_reweighting(ReweightingSpec("rba-again", rba, "RBA once more")):
        ...     len(REWEIGHTINGS)
        5
    """
    register_reweighting(spec)
    try:
        yield spec
    finally:
        unregister_reweighting(spec.name)


def _spec(name: str) -> ReweightingSpec:
    if name not in _SPECS:
        raise ValueError(f"unknown reweighting {name!r}; choose one of {list(REWEIGHTINGS[1:])}")
    return _SPECS[name]


def describe_reweightings() -> str:
    """Every name with its one-line help, ``"none"`` first, for the command-line help.

    Example:
        >>> describe_reweightings().split("; ")[:2]
        ['none (no reweighting)', 'rba (residual-based attention, weights follow |r| / max|r|)']
    """
    entries = [f"{NO_REWEIGHTING} (no reweighting)"] + [f"{spec.name} ({spec.help})" for spec in _SPECS.values()]
    return "; ".join(entries)


def reweighting_options(name: str) -> tuple[str, ...]:
    """The options the reweighting ``name`` takes: its transform's keyword-only parameters, in their order.

    Example:
        >>> reweighting_options("rba")
        ('eta', 'gamma', 'normalize', 'init', 'snr_coupling', 'snr_warmup')
    """
    return _spec(name).options()


def check_reweighting_options(name: str, options: Iterable[str], *, flag: str = "--reweight-option") -> None:
    """Raise ``TypeError`` naming the first of ``options`` that the reweighting ``name`` does not take, with the
    options it does take; ``flag`` is how the command line gives them (named first in the message).

    Example:
        >>> check_reweighting_options("rba", ["phi"])
        Traceback (most recent call last):
        ...
        TypeError: --reweight-option phi: rba takes no option 'phi'; its options are eta, gamma, normalize, init, \
snr_coupling, snr_warmup
    """
    known = reweighting_options(name)
    for option in options:
        if option not in known:
            raise TypeError(f"{flag} {option}: {name} takes no option {option!r}; its options are "
                            f"{', '.join(known)}")


def make_reweighting(name: str, num_samples: int | Mapping[str, int],
                     **options: Any) -> optax.GradientTransformationExtraArgs:
    """The reweighting transform called ``name`` (``"rba"``, ``"vrba"``, ``"gradient-aware"``, or a registered
    one); an option it does not take is a ``TypeError`` that lists those it does (see
    :func:`check_reweighting_options`).

    Example:
        >>> transform = make_reweighting("rba", 10, eta=0.01)
        >>> transform.init(None).weights.shape
        (10,)
    """
    spec = _spec(name)
    check_reweighting_options(name, options)
    return spec.build(num_samples, **{**spec.defaults, **options})
