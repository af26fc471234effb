"""A hypothesis strategy of arbitrary plain values, for decoders of input from a socket.

Everything msgpack can carry and more: None, bools, ints of any size (beyond 64 bits too),
floats (NaN and infinities), str (lone surrogates included), bytes, lists, tuples and dicts
with keys of any hashable kind, nested. A decoder given any of them returns its result or
raises its documented error, and nothing else.
"""

from __future__ import annotations

from hypothesis import strategies as st

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.sampled_from([0, 1, -1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 64]),
    st.floats(allow_nan=True), st.text(),
    st.text(alphabet=st.characters(exclude_categories=())),  # lone surrogates too
    st.sampled_from(["n1", "n2", "op", "\ud800", ""]), st.binary(max_size=64),
)
HASHABLE = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                     st.text(alphabet=st.characters(exclude_categories=())),
                     st.binary(max_size=8))
PLAIN = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.tuples(inner, inner),
                            st.dictionaries(HASHABLE, inner, max_size=5)),
    max_leaves=30,
)
