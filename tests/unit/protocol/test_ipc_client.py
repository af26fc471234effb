"""RaftClient against a scripted ROUTER standing in for the Raft process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zmq

from dqueue.protocol import ipc_client, wire
from dqueue.protocol.ipc_client import (
    BadRequest,
    NoLeader,
    RaftClient,
    RaftUnavailable,
    RequestTimeout,
)
from tests.unit.router_thread import RouterThread

Handler = Callable[[bytes, dict[str, Any]], list[list[bytes]]]


class ScriptedServer(RouterThread):
    """A ROUTER on its own thread that answers each request with what ``handler`` returns."""

    def __init__(self, endpoint: str, handler: Handler) -> None:
        super().__init__(endpoint)
        self.handler = handler
        self.requests: list[tuple[bytes, dict[str, Any]]] = []

    def on_request(self, sock: zmq.Socket, identity: bytes, kind: bytes, body: Any) -> None:
        self.requests.append((kind, body))
        for reply in self.handler(kind, body):
            self.send(sock, identity, reply)


@pytest.fixture
def endpoint(tmp_path) -> Iterator[str]:
    yield "ipc://" + str(tmp_path / "raft.ipc")


def test_command_returns_outcome_and_sends_contract_fields(endpoint):
    def handler(kind, body):
        return [wire.encode(b"res", {"rid": body["rid"], "outcome": {"ok": True, "value": 7}})]

    with ScriptedServer(endpoint, handler) as server, RaftClient(endpoint) as client:
        outcome = client.command({"op": "tick"}, timeout_ms=300, wait_ms=5)
    assert outcome == {"ok": True, "value": 7}
    kind, body = server.requests[0]
    assert kind == b"cmd"
    assert body["cmd"] == {"op": "tick"}
    assert body["timeout_ms"] == 300
    assert body["wait_ms"] == 5


def test_read_discards_replies_to_other_rids_and_garbage(endpoint):
    def handler(kind, body):
        return [
            [b"\x01", b"res"],
            wire.encode(b"res", {"rid": "someone-else", "value": "wrong"}),
            wire.encode(b"res", {"rid": body["rid"], "value": {"n": 1}}),
        ]

    with ScriptedServer(endpoint, handler) as server, RaftClient(endpoint) as client:
        assert client.read({"op": "stats"}, stale=True) == {"n": 1}
        assert server.requests[0][1]["stale"] is True


def test_request_ids_are_unique_per_call(endpoint):
    def handler(kind, body):
        return [wire.encode(b"res", {"rid": body["rid"], "value": body["rid"]})]

    with ScriptedServer(endpoint, handler), RaftClient(endpoint) as a, RaftClient(endpoint) as b:
        rids = {a.read({"op": "health"}) for _ in range(3)} | {b.read({"op": "health"})}
    assert len(rids) == 4


@pytest.mark.parametrize(
    ("code", "exc_type"),
    [("no_leader", NoLeader), ("timeout", RequestTimeout), ("bad_request", BadRequest),
     ("shutting_down", RaftUnavailable)],
)
def test_err_codes_map_to_exceptions(endpoint, code, exc_type):
    def handler(kind, body):
        return [wire.encode(b"err", {"rid": body["rid"], "code": code, "message": "m",
                                     "leader_id": "n2", "leader_http": "127.0.0.1:8082"})]

    with (ScriptedServer(endpoint, handler), RaftClient(endpoint) as client,
          pytest.raises(exc_type) as info):
        client.command({"op": "tick"})
    if code == "no_leader":
        assert info.value.leader_id == "n2"
        assert info.value.leader_http == "127.0.0.1:8082"


def test_no_server_raises_unavailable_without_queueing_the_request(endpoint, monkeypatch):
    monkeypatch.setattr(ipc_client, "CONNECT_WAIT_MS", 50)
    with RaftClient(endpoint) as client:
        with pytest.raises(RaftUnavailable, match="not running"):
            client.read({"op": "health"}, timeout_ms=50)

        def handler(kind, body):
            return [wire.encode(b"res", {"rid": body["rid"], "value": "up"})]

        # A server that starts later sees only the requests sent after it came up.
        monkeypatch.setattr(ipc_client, "CONNECT_WAIT_MS", 5_000)
        with ScriptedServer(endpoint, handler) as server:
            assert client.read({"op": "health"}, timeout_ms=2_000) == "up"
        assert [body["rid"] for _, body in server.requests] == [f"{client._rid_prefix}-2"]


def test_a_silent_server_fails_at_the_deadline_and_a_late_reply_is_discarded(
    endpoint, monkeypatch
):
    monkeypatch.setattr(ipc_client, "REPLY_GRACE_MS", 50)
    late: list[str] = []

    def handler(kind, body):
        if body["query"]["op"] == "slow":
            late.append(body["rid"])
            return []  # no answer in time; answered below, with the next request
        stale = [wire.encode(b"res", {"rid": rid, "value": "late"}) for rid in late]
        return [*stale, wire.encode(b"res", {"rid": body["rid"], "value": "fresh"})]

    with ScriptedServer(endpoint, handler), RaftClient(endpoint) as client:
        started = time.monotonic()
        with pytest.raises(RaftUnavailable, match="no answer"):
            client.read({"op": "slow"}, timeout_ms=100)
        assert time.monotonic() - started >= 0.15  # the deadline plus the grace
        # Another deadline than the last one set, and the stale reply comes first.
        assert client.read({"op": "health"}, timeout_ms=2_000) == "fresh"
