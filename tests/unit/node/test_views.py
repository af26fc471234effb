"""What the Raft process shows of itself, and what it takes from a peer's hello."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from dqueue.node.views import MAX_HTTP_ADDR_CHARS, hello_http_addr
from tests.unit.plain_values import PLAIN


@pytest.mark.parametrize("addr", ["127.0.0.1:8080", ":8080", "node-3.example:80", "[::1]:8081"])
def test_hello_gives_its_http_address(addr):
    assert hello_http_addr({"http_addr": addr}) == addr


@pytest.mark.parametrize("body", [
    None, [], {"http_addr": None}, {"http_addr": 8080}, {"http_addr": ""},
    {"http_addr": "host"}, {"http_addr": "host:http"}, {"http_addr": "host:123456"},
    {"http_addr": "h\u00e9:80"}, {"http_addr": "\ud800:80"}, {"http_addr": "a\nb:80"},
    {"http_addr": "a" * MAX_HTTP_ADDR_CHARS + ":80"}, {b"http_addr": "h:80"},
])
def test_hello_with_anything_else_gives_none(body):
    assert hello_http_addr(body) is None


@settings(max_examples=300, deadline=None)
@given(PLAIN)
def test_hello_takes_any_value_without_raising(body):
    for candidate in (body, {"http_addr": body}):
        addr = hello_http_addr(candidate)
        assert addr is None or (addr.isascii() and len(addr) <= MAX_HTTP_ADDR_CHARS)
