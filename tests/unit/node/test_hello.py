"""The hello's raft address (dqueue/node/hello.py): announced unless a wildcard, parsed
strictly from whatever a peer sends."""

from __future__ import annotations

import msgpack
import pytest

from dqueue.node.hello import Hellos, hello_raft_addr


class _Transport:
    peer_ids = ["n2"]

    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def send_packed(self, peer: str, kind: bytes, packed: bytes) -> bool:
        self.bodies.append(msgpack.unpackb(packed))
        return True


@pytest.mark.parametrize(("raft_addr", "announced"), [
    ("10.0.0.1:9090", "10.0.0.1:9090"), ("0.0.0.0:9090", None), (":9090", None)])
def test_a_hello_announces_a_reachable_raft_address_only(raft_addr, announced):
    transport = _Transport()
    Hellos("10.0.0.1:8080", raft_addr).on_tick(0.0, transport)  # type: ignore[arg-type]
    assert transport.bodies[0].get("raft_addr") == announced
    assert transport.bodies[0]["http_addr"] == "10.0.0.1:8080"


@pytest.mark.parametrize("body", [
    None, 7, [], {}, {"raft_addr": None}, {"raft_addr": 5}, {"raft_addr": "no-port"},
    {"raft_addr": "h:0"}, {"raft_addr": "h:99999"}, {"raft_addr": "a b:1"},
    {"raft_addr": "x" * 300 + ":1"}, {"raft_addr": b"h:1"}])
def test_a_malformed_raft_address_is_ignored(body):
    assert hello_raft_addr(body) is None


def test_a_raft_address_is_read():
    assert hello_raft_addr({"raft_addr": "[::1]:9090", "http_addr": "x:1"}) == "[::1]:9090"
