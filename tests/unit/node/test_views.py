"""What the Raft process shows of itself: members' HTTP addresses (configured, announced in a
peer's hello, this node's own advertised one) and the metrics map rendered from its figures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from dqueue.node.queries import NodeView
from dqueue.node.views import (
    MAX_HTTP_ADDR_CHARS,
    MemberAddresses,
    NodeFigures,
    advertised_http,
    hello_http_addr,
    node_metrics,
)
from dqueue.raft import Role, Status
from tests.depth import examples
from tests.unit.plain_values import PLAIN

MEMBERS = {"n1": "10.0.0.1:9090", "n2": "10.0.0.2:9090", "n3": "10.0.0.3:9090"}


@pytest.mark.parametrize("http_addr, raft_addr, want", [
    ("127.0.0.2:8081", "127.0.0.2:9091", "127.0.0.2:8081"),
    (":8080", "10.0.0.5:9090", "10.0.0.5:8080"),
    ("0.0.0.0:8080", "node3:9090", "node3:8080"),
    (":8080", ":9090", ":8080"),
])
def test_advertised_http_replaces_bind_all_hosts(http_addr, raft_addr, want):
    assert advertised_http(http_addr, raft_addr) == want


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


@settings(max_examples=examples(300), deadline=None)
@given(PLAIN)
def test_hello_takes_any_value_without_raising(body):
    for candidate in (body, {"http_addr": body}):
        addr = hello_http_addr(candidate)
        assert addr is None or (addr.isascii() and len(addr) <= MAX_HTTP_ADDR_CHARS)


def test_own_address_is_advertised_and_others_are_learned_from_hellos():
    addresses = MemberAddresses("n1", MEMBERS, {}, ":8080")
    assert addresses.of("n1") == "10.0.0.1:8080"  # never the bind-all address
    assert addresses.of("n2") is None and addresses.of(None) is None
    assert addresses.learn("n2", {"http_addr": "0.0.0.0:8081"})
    assert addresses.of("n2") == "10.0.0.2:8081"  # its host from its raft address
    assert addresses.known() == {"n1": "10.0.0.1:8080", "n2": "10.0.0.2:8081"}


def test_configured_addresses_win_over_hellos():
    addresses = MemberAddresses("n1", MEMBERS, {"n1": "lb:80", "n2": "n2.example:80"},
                                "127.0.0.1:8080")
    assert addresses.learn("n2", {"http_addr": "10.0.0.2:8081"})
    assert (addresses.of("n1"), addresses.of("n2")) == ("lb:80", "n2.example:80")


def test_a_malformed_hello_or_one_from_a_non_member_is_refused_and_changes_nothing():
    addresses = MemberAddresses("n1", MEMBERS, {}, "127.0.0.1:8080")
    assert not addresses.learn("n2", {"http_addr": "no port"})
    assert not addresses.learn("n9", {"http_addr": "10.0.0.9:80"})
    assert addresses.known() == {"n1": "127.0.0.1:8080"}


def test_metrics_are_the_figures_with_the_raft_status_added():
    status = Status(id="n1", role=Role.FOLLOWER, term=4, vote=None, leader_id="n2", commit=9,
                    applied=8, last_index=10, snapshot_index=5, catch_up_index=3)
    view = NodeView(node_id="n1", status=status, leader_http=None, members=MEMBERS,
                    http_addrs={}, stopping=False)
    counters = {"ready_total": 2, "gc_ms": {"buckets": [], "sum": 0.0, "count": 0}}
    metrics = node_metrics(NodeFigures(view, counters))
    assert metrics == {**counters, "term": 4, "commit_index": 9, "applied_index": 8,
                       "last_index": 10, "snapshot_index": 5, "is_leader": 0,
                       "role": "follower", "catch_up_index": 3}
    assert counters == {"ready_total": 2, "gc_ms": {"buckets": [], "sum": 0.0, "count": 0}}
