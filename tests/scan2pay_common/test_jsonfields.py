"""jsonfields: orjson behind it, the standard module's bytes and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scan2pay_common import jsonfields
from scan2pay_common.errors import InvalidValue

# What signed objects hold: no floats (amounts are integers of minor units).
_SCALARS = st.none() | st.booleans() | st.integers() | st.text()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _standard(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


@given(_VALUES)
def test_dumps_gives_the_standard_modules_canonical_bytes(obj: Any) -> None:
    try:
        expected = _standard(obj)
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 for it either way
        with pytest.raises(UnicodeEncodeError):
            jsonfields.dumps(obj)
        return
    assert jsonfields.dumps(obj) == expected


def test_control_characters_and_separators_are_escaped_alike() -> None:
    obj = {"b": '\x00\x01\x08\x0c\n\r\t\x1f\x7f\u2028\u2029"\\/é€😀', "a": [2**63, -(2**63) - 1]}
    assert jsonfields.dumps(obj) == _standard(obj)


def test_integers_past_64_bits_stay_integers() -> None:
    assert jsonfields.load_object(b'{"amount": 1000000000000000000000000000000}') == {
        "amount": 10**30
    }
    assert jsonfields.load_object('{"n": -99999999999999999999}') == {"n": -(10**20) + 1}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"[1]",
        b"null",
        b"\xff{}",
        b'{"a": NaN}x',
        '{"a": "\ud800"'.encode("utf-8", "surrogatepass"),
    ],
)
def test_bad_bodies_are_invalid_json(raw: bytes) -> None:
    with pytest.raises(InvalidValue) as caught:
        jsonfields.load_object(raw)
    assert caught.value.code == "invalid_json"
