"""The checks on the hyperparameters of a reweighting transform, the initial weights among them.

Built on :mod:`pinnkit.validation`; a value of the wrong type is a ``TypeError`` and one out of range a
``ValueError``, as the transforms have always raised. Hyperparameters that arrive as tracers
(``optax.inject_hyperparams`` under ``jit``) cannot be range-checked and pass.
"""

from __future__ import annotations

from typing import Any

import jax

from pinnkit.validation import choice, real

__all__ = ["INITS", "check_init", "check_real", "is_traced"]

#: The named ways to start the weights; ``vrba`` also takes a number (constant initial weights).
INITS: tuple[str, ...] = ("zeros", "residual")


def is_traced(value: Any) -> bool:
    """Whether ``value`` is a JAX tracer (a hyperparameter under ``optax.inject_hyperparams`` and ``jit``).

    Example:
        >>> seen = []
        >>> _ = jax.jit(lambda x: seen.append(is_traced(x)) or x)(0.5)
        >>> is_traced(0.5), seen
        (False, [True])
    """
    return isinstance(value, jax.core.Tracer)


def check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> None:
    """Check that ``value`` is a finite real number in the given interval (a tracer passes unchecked).

    A bound from below only reads as ``"eta must be > 0"``; a two-sided one as ``pinnkit.validation.real``
    writes it.

    Raises:
        TypeError: ``value`` is not a real number (a string, a bool, ...).
        ValueError: it is not finite or lies outside the interval.

    Example:
        >>> check_real("temperature", 0.0, low=0, low_open=True)
        Traceback (most recent call last):
        ...
        ValueError: temperature must be > 0, got 0.0
        >>> check_real("gamma", "0.9", low=0, high=1)
        Traceback (most recent call last):
        ...
        TypeError: gamma must be a number in [0, 1], got '0.9'
    """
    if is_traced(value):
        return
    if high is not None or low is None:
        real(name, value, low=low, high=high, low_open=low_open, high_open=high_open, error=TypeError)
        return
    number = real(name, value, error=TypeError)
    if number < low or (low_open and number == low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value!r}")


def check_init(init: Any, *, eta: Any, gamma: Any, constant: bool = False) -> None:
    """Check the initial weights: ``"zeros"``, ``"residual"`` or, where ``constant``, a number in
    ``[0, eta / (1 - gamma)]`` (the weights' bound; ``eta`` and ``gamma`` must have been checked).

    Raises:
        TypeError: a constant ``init`` that is not a real number.
        ValueError: an unknown name, a negative or non-finite number, or one above the bound.

    Example:
        >>> check_init("residual", eta=1e-3, gamma=0.999)
        >>> check_init(1.0, eta=1e-3, gamma=0.999, constant=True)  # the bound as written passes
        >>> check_init(0.5, eta=1e-3, gamma=0.999)
        Traceback (most recent call last):
        ...
        ValueError: unknown init 0.5; choose one of ['zeros', 'residual']
    """
    if isinstance(init, str) or not constant:
        choice("init", init, INITS)
        return
    if is_traced(init):
        return
    value = real("init", init, error=TypeError)
    if value < 0:
        raise ValueError(f"init must be 'zeros', 'residual' or a number in [0, eta / (1 - gamma)], got {init!r}")
    if not (is_traced(eta) or is_traced(gamma)):
        cap = float(eta) / (1 - float(gamma))
        # eta / (1 - gamma) rounds below its exact value (1e-3 / (1 - 0.999) = 0.9999999999999991): the bound
        # itself, written as the user would, must pass.
        if value > cap * (1 + 1e-12):
            raise ValueError(f"init={init!r} exceeds the weight bound eta / (1 - gamma) = {cap!r}")
