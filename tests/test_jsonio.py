"""The JSON codec: always valid JSON, NaN as null and infinities as strings, NumPy values as Python ones."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinnkit.jsonio import decode_float, dumps, loads, to_json_ready


def strict_loads(text: str):
    """json.loads that refuses the NaN/Infinity tokens (which are not JSON)."""

    def refuse(token):
        raise ValueError(f"invalid JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_to_json_ready_converts_numpy_and_non_finite_floats():
    value = {
        "a": np.float32(0.5),
        "b": (np.nan, np.inf, -np.inf, 1.0),
        "c": np.arange(3),
        "d": np.array(2.5),
        "e": np.array([[1.0, np.nan], [np.inf, 0.0]]),
        "f": [np.int64(7), np.bool_(True), np.str_("x"), None, "text"],
        np.int64(3): {"nested": [np.float64("nan")]},
    }
    ready = to_json_ready(value)
    assert ready == {
        "a": 0.5, "b": [None, "inf", "-inf", 1.0], "c": [0, 1, 2], "d": 2.5,
        "e": [[1.0, None], ["inf", 0.0]], "f": [7, True, "x", None, "text"], 3: {"nested": [None]},
    }
    assert type(ready["a"]) is float and type(ready["f"][0]) is int and type(ready["f"][1]) is bool
    assert type(to_json_ready(np.float64(1.5))) is float  # np.float64 subclasses float: still converted


def test_jax_arrays_become_lists():
    jnp = pytest.importorskip("jax.numpy")
    assert to_json_ready({"w": jnp.array([1.0, jnp.nan]), "s": jnp.float32(2.0)}) == {"w": [1.0, None], "s": 2.0}


def test_dumps_is_always_valid_json():
    text = dumps({"loss": [0.5, math.nan, math.inf, -math.inf]}, indent=2, sort_keys=True, allow_nan=True)
    assert strict_loads(text) == {"loss": [0.5, None, "inf", "-inf"]}
    assert "NaN" not in text and "Infinity" not in text
    with pytest.raises(TypeError):
        dumps({"a": {1, 2}})  # a set is not JSON: refused, not guessed


finite_or_not = st.floats(allow_nan=True, allow_infinity=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | finite_or_not | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    | st.tuples(children, children),
    max_leaves=20,
)


def _decoded_equal(original, parsed) -> bool:
    if isinstance(original, float):
        decoded = decode_float(parsed)
        return (math.isnan(original) and math.isnan(decoded)) or decoded == original
    if isinstance(original, list | tuple):
        return len(original) == len(parsed) and all(map(_decoded_equal, original, parsed))
    if isinstance(original, dict):
        return original.keys() == parsed.keys() and all(_decoded_equal(original[k], parsed[k]) for k in original)
    return original == parsed


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_round_trip_through_decode_float(value):
    text = dumps(value)
    parsed = strict_loads(text)
    assert _decoded_equal(value, parsed)
    assert loads(text) == parsed


def test_loads_skips_a_byte_order_mark_and_reads_old_nan_tokens():
    assert loads('\ufeff{"a": 1}') == {"a": 1}
    assert loads(b'\xef\xbb\xbf[1, null, "inf"]') == [1, None, "inf"]
    legacy = loads('{"x": NaN, "y": Infinity}')  # what an older writer produced
    assert math.isnan(legacy["x"]) and legacy["y"] == math.inf
    assert math.isnan(decode_float(legacy["x"]))


@pytest.mark.parametrize("text", ["", "{", "[1,]", b"\xff\xfe{}"])
def test_loads_refuses_what_is_not_json(text):
    with pytest.raises(ValueError):
        loads(text)


def test_decode_float():
    assert math.isnan(decode_float(None))
    assert decode_float("inf") == math.inf and decode_float("-inf") == -math.inf
    assert decode_float(3) == 3.0 and type(decode_float(3)) is float
    assert decode_float(-0.25) == -0.25
    assert decode_float(np.float32(0.5)) == 0.5


@pytest.mark.parametrize("value", ["nan", "Infinity", "1.0", True, False, [], {}, "inf\x00\x1b[31m"])
def test_decode_float_refuses_anything_else(value):
    with pytest.raises(ValueError, match="not a float value") as error:
        decode_float(value)
    message = str(error.value)
    assert "\x00" not in message and "\x1b" not in message
