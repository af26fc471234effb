"""The worker gateway accepts any message, from a worker or from the Raft process, without raising.

A message that raised in the gateway thread once killed it for good (issue 13): every ZeroMQ
worker of the node was dead until a restart. These drive the gateway's handlers with arbitrary
msgpack values and garbage bodies; a test fails if any handler raises.
"""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from dqueue.api.gateway import WorkerGateway
from dqueue.config import NodeConfig
from dqueue.protocol import wire
from tests.depth import examples
from tests.unit.msgpack_values import RAW_BODIES, VALUES, maps_with, packed

KINDS = st.sampled_from([b"lease", b"ack", b"ack_many", b"nack", b"extend", b"ping", b"bye",
                         b"unknown", b"\xff"])
FIELDS = ["rid", "worker_id", "max_tasks", "types", "lease_ms", "wait_ms", "id", "token",
          "reason", "dead_letter", "items"]
ITEM = maps_with(["id", "token"])
BODIES = (maps_with(FIELDS)
          | st.builds(lambda b, items: {**b, "items": items}, maps_with(FIELDS),
                      st.lists(ITEM | VALUES, min_size=1, max_size=3))
          | VALUES)


class FakeSocket:
    """Records what the gateway sends (``send_multipart`` is all it uses)."""

    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []

    def send_multipart(self, frames: list[bytes], flags: int = 0) -> None:
        self.sent.append(list(frames))


def _gateway(tmp_path: Any) -> WorkerGateway:
    config = NodeConfig(id="n1", data_dir=str(tmp_path), worker_addr="127.0.0.1:0",
                        request_timeout_ms=500, max_wait_ms=20_000)
    return WorkerGateway(config, CollectorRegistry(), ack_window_ms=0)


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(kind=KINDS, body=BODIES)
def test_any_worker_message_is_answered_or_dropped_never_raises(tmp_path, kind, body):
    gateway = _gateway(tmp_path)
    router, ipc = FakeSocket(), FakeSocket()
    gateway._handle_worker([b"w1", wire.WIRE_VERSION, kind, packed(body)], router, ipc)
    gateway._flush_acks(ipc, router, 0.0) if gateway._acks.held else None
    for frames in router.sent:  # every answer is a well-formed message
        wire.decode(frames[1:])


@settings(max_examples=examples(200), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=RAW_BODIES, frames=st.integers(min_value=0, max_value=6))
def test_garbage_frames_from_a_worker_are_dropped(tmp_path, raw, frames):
    gateway = _gateway(tmp_path)
    router, ipc = FakeSocket(), FakeSocket()
    message = [b"w1", wire.WIRE_VERSION, b"lease", raw, b"x", b"y"][:frames]
    gateway._handle_worker(message, router, ipc)
    gateway._handle_worker([b"w1", wire.WIRE_VERSION, b"lease", raw], router, ipc)
    assert ipc.sent == []


# One valid request of each kind that reaches the Raft process.
_REQUESTS = [
    (b"lease", {"rid": 1, "worker_id": "w", "max_tasks": 2}),
    (b"lease", {"rid": 2, "worker_id": "w", "wait_ms": 5_000}),
    (b"ack", {"rid": 3, "worker_id": "w", "id": "t1", "token": "k"}),
    (b"ack_many", {"rid": 4, "worker_id": "w", "items": [{"id": "t1", "token": "k"},
                                                          {"id": "t2", "token": "k"}]}),
    (b"nack", {"rid": 5, "worker_id": "w", "id": "t1", "token": "k", "reason": "r"}),
    (b"extend", {"rid": 6, "worker_id": "w", "id": "t1", "token": "k", "lease_ms": 10}),
]
OUTCOMES = (maps_with(["ok", "value", "code", "message"])
            | st.builds(lambda v: {"ok": True, "value": v},
                        maps_with(["tasks", "task", "results"]))
            | st.builds(lambda tasks: {"ok": True, "value": {"tasks": tasks}},
                        st.lists(maps_with(["id", "lease"]) | VALUES, max_size=3))
            | st.builds(lambda r: {"ok": True, "value": {"results": r}},
                        st.lists(maps_with(["ok", "code", "message"]) | VALUES, max_size=3))
            | VALUES)
REPLY_KINDS = st.sampled_from([b"res", b"err", b"other"])


@settings(max_examples=examples(400), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(min_value=0, max_value=len(_REQUESTS) - 1), kind=REPLY_KINDS,
       outcome=OUTCOMES, extra=maps_with(["code", "message", "leader_id", "leader_http"]),
       raw=st.none() | RAW_BODIES)
def test_any_answer_from_the_raft_process_is_used_or_dropped_never_raises(
        tmp_path, which, kind, outcome, extra, raw):
    gateway = _gateway(tmp_path)
    router, ipc = FakeSocket(), FakeSocket()
    req_kind, body = _REQUESTS[which]
    gateway._handle_worker([b"w1", wire.WIRE_VERSION, req_kind, packed(body)], router, ipc)
    if gateway._acks.held:
        gateway._flush_acks(ipc, router, 0.0)
    assert ipc.sent, "the request reached the Raft process"
    _, cmd = wire.decode(ipc.sent[-1])
    rid = cmd["rid"]
    reply = {**extra, "rid": rid, "outcome": outcome}
    body_bytes = packed(reply) if raw is None else raw
    gateway._handle_ipc([wire.WIRE_VERSION, kind, body_bytes], router, ipc)
    # Nor when the answer carries another request id or none.
    gateway._handle_ipc([wire.WIRE_VERSION, kind, packed({**extra, "rid": 7})], router, ipc)
    gateway._handle_ipc([wire.WIRE_VERSION, kind, msgpack.packb([rid])], router, ipc)
    gateway._sweep(1e12, router)  # every request still waiting times out, answered
