"""Hypothesis strategies of arbitrary msgpack values, for the "no message kills a thread" tests.

Everything msgpack can carry: nil, booleans, integers over msgpack's whole range (-2**63 to
2**64 - 1), floats (NaN and infinities too), strings, bytes, arrays, and maps whose keys are of
any hashable type. Strings with lone surrogates cannot be packed; ``raw_bodies`` sends the bytes
of one (invalid UTF-8 in a str) and other garbage directly.
"""

from __future__ import annotations

import msgpack
from hypothesis import strategies as st

MSGPACK_INTS = st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1)
SCALARS = (st.none() | st.booleans() | MSGPACK_INTS | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.binary(max_size=12))
KEYS = (st.none() | st.booleans() | MSGPACK_INTS | st.floats(allow_nan=False)
        | st.text(max_size=8) | st.binary(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(KEYS, inner, max_size=4), max_leaves=16)


def maps_with(names: list[str]) -> st.SearchStrategy[dict]:
    """Maps that use some of ``names`` as keys (with any values), plus keys of any type."""
    known = st.dictionaries(st.sampled_from(names), VALUES, max_size=len(names))
    return st.builds(lambda a, b: {**b, **a}, known, st.dictionaries(KEYS, VALUES, max_size=2))


# A str of invalid UTF-8 (an encoded lone surrogate), a nesting beyond msgpack's stack, a list
# used as a map key, an unknown ext type, a truncated map.
RAW_BODIES = st.sampled_from([
    msgpack.packb({"rid": "r", "op": "AAA"}).replace(b"\xa3AAA", b"\xa3\xed\xa0\x80"),
    b"\x91" * 100_000 + b"\xc0",
    b"\x81\x90\xc0",
    b"\xc7\x01\x05x",
    b"\x83\xa3rid",
    b"",
]) | st.binary(max_size=64)


def packed(value: object) -> bytes:
    """``value`` as msgpack (as the wire encodes bodies)."""
    return msgpack.packb(value, use_bin_type=True)
