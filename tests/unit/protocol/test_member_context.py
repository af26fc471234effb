"""Member contexts (dqueue/protocol/member_context.py): the bytes a member added online
carries in the configuration; decoded strictly, since they come from the log."""

from __future__ import annotations

import json

import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.protocol.member_context import (
    MemberContext,
    context_or_none,
    decode_context,
    encode_context,
    is_member_id,
    member_context,
)
from tests.depth import examples

KEY = zmq.curve_keypair()[0].decode()


@pytest.mark.parametrize("ctx", [MemberContext("10.0.0.4:9090", "10.0.0.4:8080"),
                                 MemberContext("h.example:1", "[::1]:65535", KEY)])
def test_round_trip(ctx):
    data = encode_context(ctx)
    assert decode_context(data) == ctx
    assert context_or_none(data) == ctx


@pytest.mark.parametrize(("data", "problem"), [
    (b"", "bytes"), (b"\xff", "JSON"), (b"[1]", "object"),
    (b'{"raft_addr": "h:1"}', "required"),
    (b'{"raft_addr": "h:1", "http_addr": "h:2", "x": 1}', "unknown field"),
    (b'{"raft_addr": "h", "http_addr": "h:2"}', "raft_addr"),
    (b'{"raft_addr": "h:0", "http_addr": "h:2"}', "raft_addr"),
    (b'{"raft_addr": "h:1", "http_addr": "h:99999"}', "http_addr"),
    (b'{"raft_addr": "h:1", "http_addr": "h:2", "public_key": "short"}', "public_key"),
    (b'{"raft_addr": 5, "http_addr": "h:2"}', "raft_addr"),
    (("[" * 100_000).encode()[:4096], "JSON"),
])
def test_bad_contexts_are_refused_naming_the_problem(data, problem):
    with pytest.raises(ValueError, match=problem):
        decode_context(data)
    assert context_or_none(data) is None


def test_member_ids_and_fields_from_an_http_body():
    assert is_member_id("n4") and is_member_id("a.b-c_1")
    assert not any(is_member_id(v) for v in ("", "-x", "a" * 65, "a b", 4, None))
    with pytest.raises(ValueError, match="http_addr"):
        member_context("h:1", "nope")


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(st.binary(max_size=64),
                 st.dictionaries(st.sampled_from(["raft_addr", "http_addr", "public_key", "z"]),
                                 st.one_of(st.text(max_size=50), st.integers(), st.none()))
                 .map(lambda d: json.dumps(d).encode())))
def test_any_bytes_decode_or_raise_value_error(data):
    try:
        ctx = decode_context(data)
    except ValueError:
        return
    assert decode_context(encode_context(ctx)) == ctx
