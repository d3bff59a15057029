"""Weights kept as one array or per residual term: the sizes, and viewing what ``update`` is handed term by term.

Every helper works on ``{term: value}`` dicts; the single-array case is the one key ``None``, so the transform
is written once for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
from jaxtyping import Array

from pinnkit.reweight.states import Weights
from pinnkit.validation import positive_int

__all__ = ["check_batch", "pack", "sample_sizes", "split_indices", "split_terms", "unpack"]


def sample_sizes(num_samples: int | Mapping[str, int]) -> dict[str | None, int]:
    """``{term: size}`` from an int or a mapping term -> int; the single-array case is the one key ``None``.

    Example:
        >>> sample_sizes(3), sample_sizes({"pde": 4})
        ({None: 3}, {'pde': 4})
    """
    if isinstance(num_samples, Mapping):
        if not num_samples:
            raise ValueError("num_samples must not be an empty mapping")
        sizes: dict[str | None, int] = {}
        for term, size in num_samples.items():
            if not isinstance(term, str):
                raise TypeError(f"num_samples keys must be str term names, got {term!r}")
            sizes[term] = positive_int(f"num_samples[{term!r}]", size, error=TypeError)
        return sizes
    return {None: positive_int("num_samples", num_samples, error=TypeError)}


def split_terms(tree: Any, sizes: dict[str | None, int], what: str) -> dict[str | None, Any]:
    """View ``tree`` (an array, or a mapping with at least the weighted terms) as ``{term: value}``.

    Example:
        >>> split_terms({"pde": 1, "ic": 2}, {"pde": 3}, "residuals")
        {'pde': 1}
    """
    if None in sizes:
        if isinstance(tree, Mapping):
            raise TypeError(
                f"{what} must be one array because the weights are one array (num_samples={sizes[None]}), "
                f"got a mapping with keys {sorted(tree)}"
            )
        return {None: tree}
    if not isinstance(tree, Mapping):
        raise TypeError(f"{what} must be a mapping with the terms {sorted(sizes)}, got {type(tree).__name__}")
    missing = [term for term in sizes if term not in tree]
    if missing:
        raise ValueError(f"{what} lacks the weighted terms {missing}; it has {sorted(tree)}")
    return {term: tree[term] for term in sizes}


def split_indices(indices: Any, sizes: dict[str | None, int]) -> dict[str | None, Any]:
    """View ``indices`` (None, an int array, or a mapping naming some terms) as ``{term: indices or None}``.

    Example:
        >>> split_indices({"pde": 0}, {"pde": 3, "bc": 2})  # a term left out is updated in full
        {'pde': 0, 'bc': None}
    """
    if indices is None:
        return dict.fromkeys(sizes)
    if None in sizes:
        if isinstance(indices, Mapping):
            raise TypeError(
                f"indices must be one int array for single-array weights, got keys {sorted(indices)}"
            )
        return {None: indices}
    if not isinstance(indices, Mapping):
        raise TypeError(
            f"indices must be a mapping term -> int array for dict weights, got {type(indices).__name__}"
        )
    unknown = [term for term in indices if term not in sizes]
    if unknown:
        raise ValueError(
            f"indices names terms {unknown} that carry no weights; weighted terms: {sorted(sizes)}"
        )
    return {term: indices.get(term) for term in sizes}


def _term_label(term: str | None) -> str:
    return "" if term is None else f"[{term!r}]"


def check_batch(values: Array, indices: Array | None, size: int, what: str, term: str | None) -> None:
    """Check one term's batch: shape ``(size,)`` without ``indices``, else a non-empty 1-D int ``indices`` that
    ``values`` matches in shape.

    Example:
        >>> check_batch(jnp.ones(2), None, 3, "residuals", "pde")
        Traceback (most recent call last):
        ...
        ValueError: residuals['pde'] must have shape (3,), got (2,)
    """
    label = f"{what}{_term_label(term)}"
    if indices is None:
        if values.shape != (size,):
            raise ValueError(f"{label} must have shape ({size},), got {values.shape}")
        return
    if indices.ndim != 1 or not jnp.issubdtype(indices.dtype, jnp.integer):
        raise ValueError(
            f"indices{_term_label(term)} must be a 1-D int array, got {indices.dtype}{indices.shape}"
        )
    if values.shape != indices.shape:
        raise ValueError(
            f"{label} must match indices{_term_label(term)} in shape {indices.shape}, got {values.shape}"
        )
    if indices.shape[0] == 0:
        raise ValueError(f"indices{_term_label(term)} must not be empty")


def pack(terms: dict[str | None, Array]) -> Weights:
    """The weights as the state keeps them: one array (key ``None``) or a dict.

    Example:
        >>> pack({None: 1}), pack({"pde": 1})
        (1, {'pde': 1})
    """
    return terms[None] if None in terms else dict(terms)


def unpack(weights: Weights, sizes: dict[str | None, int]) -> dict[str | None, Array]:
    """The inverse of :func:`pack`, for the terms of ``sizes``.

    Example:
        >>> unpack(1, {None: 3}), unpack({"pde": 1}, {"pde": 3})
        ({None: 1}, {'pde': 1})
    """
    return {None: weights} if None in sizes else {term: weights[term] for term in sizes}
