"""One JSON codec for everything pinnkit writes: always valid JSON, NaN and infinities included.

JSON has no NaN or infinity. pinnkit writes a NaN (a value that was not recorded) as ``null`` and an infinity
as the string ``"inf"`` or ``"-inf"``; :func:`decode_float` reads a value written so back. NumPy scalars and
arrays become Python numbers and lists, tuples become lists.

Example:
    >>> import math
    >>> text = dumps({"loss": [0.5, math.nan, math.inf]})
    >>> text
    '{"loss": [0.5, null, "inf"]}'
    >>> [decode_float(value) for value in loads(text)["loss"]]
    [0.5, nan, inf]
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["decode_float", "dumps", "loads", "to_json_ready"]


def to_json_ready(obj: Any) -> Any:
    """A copy of ``obj`` that :func:`json.dumps` writes as valid JSON.

    Mappings become dicts (NumPy scalar keys become Python ones), lists and tuples lists, NumPy scalars and
    0-d arrays Python scalars, other arrays (and objects with ``__array__``, e.g. JAX arrays) nested lists.
    A float NaN becomes ``None``, ``+inf``/``-inf`` the strings ``"inf"``/``"-inf"``. Anything else is
    returned as it is (``json.dumps`` then rejects what it cannot write).

    Args:
        obj: the value to convert.

    Returns:
        The converted value.

    Example:
        >>> import numpy as np
        >>> to_json_ready({"a": np.float32(0.5), "b": (np.nan, -np.inf), "c": np.arange(2)})
        {'a': 0.5, 'b': [None, '-inf'], 'c': [0, 1]}
    """
    if isinstance(obj, np.generic):  # before float: np.float64 is a float subclass
        return to_json_ready(obj.item())
    if isinstance(obj, str | bool | int) or obj is None:
        return obj
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return float(obj)
    if isinstance(obj, Mapping):
        return {_key(key): to_json_ready(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_json_ready(item) for item in obj]
    if isinstance(obj, np.ndarray) or (hasattr(obj, "__array__") and hasattr(obj, "shape")):
        return to_json_ready(np.asarray(obj).tolist())
    return obj


def _key(key: Any) -> Any:
    return key.item() if isinstance(key, np.generic) else key


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps(to_json_ready(obj), allow_nan=False, **kwargs)``: always valid JSON.

    Args:
        obj: the value to write (see :func:`to_json_ready`).
        **kwargs: further arguments of :func:`json.dumps` (``indent``, ``sort_keys`` ...); ``allow_nan`` is
            always False.

    Returns:
        The JSON text.

    Raises:
        TypeError: a value JSON cannot hold (a set, a path ...).

    Example:
        >>> import numpy as np
        >>> dumps({"rel_l2": np.float64("nan"), "steps": np.int64(3)}, sort_keys=True)
        '{"rel_l2": null, "steps": 3}'
    """
    kwargs.pop("allow_nan", None)
    return json.dumps(to_json_ready(obj), allow_nan=False, **kwargs)


def loads(text: str | bytes) -> Any:
    """Parse JSON text (a UTF-8 byte-order mark is skipped).

    Values written by :func:`dumps` come back as written (``null``, ``"inf"``): use :func:`decode_float` on
    the fields that hold floats. Bare ``NaN``/``Infinity`` tokens, which older pinnkit versions wrote in
    places, are read as floats.

    Args:
        text: the JSON text, as ``str`` or UTF-8 ``bytes``.

    Returns:
        The parsed value.

    Raises:
        ValueError: not JSON (a :class:`json.JSONDecodeError`), or bytes that are not UTF-8.

    Example:
        >>> loads('\\ufeff{"a": [1, null, "inf"]}')
        {'a': [1, None, 'inf']}
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ValueError(f"JSON text is not UTF-8: {error}") from None
    return json.loads(text.removeprefix("\ufeff"))


def decode_float(value: Any) -> float:
    """The float a JSON value written by :func:`dumps` stands for.

    Args:
        value: ``None`` (NaN), ``"inf"``, ``"-inf"`` or a number (not a bool).

    Returns:
        The float.

    Raises:
        ValueError: any other value (named in the message).

    Example:
        >>> decode_float(None), decode_float("-inf"), decode_float(2)
        (nan, -inf, 2.0)
    """
    if value is None:
        return math.nan
    if isinstance(value, str):
        if value == "inf":
            return math.inf
        if value == "-inf":
            return -math.inf
    elif isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        return float(value)
    shown = repr(value)
    raise ValueError(f"not a float value: {shown[:80] + '...' if len(shown) > 80 else shown}")
