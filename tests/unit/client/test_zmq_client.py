"""The ZeroMQ worker client's framing, ownership and timeouts (the gateway tests cover the rest)."""

from __future__ import annotations

import socket
import threading

import pytest

from dqueue.client.errors import LeaseConflict, NoLeader, Unavailable
from dqueue.client.task import Task
from dqueue.client.zmq_client import (
    ZmqWorkerClient,
    normalize_endpoint,
    parse_reply,
    task_from_plain,
)
from dqueue.protocol import wire

PLAIN = {"id": "t1", "type": "email", "payload": {"to": ["a"]}, "priority": 2,
         "max_retries": 3, "attempts": 1, "status": "leased", "idempotency_key": None,
         "created_at_ms": 1_000, "updated_at_ms": 2_000, "visible_at_ms": 1_500,
         "lease": {"worker_id": "w1", "token": "7.0", "expires_at_ms": 9_000},
         "last_error": None}


def test_normalize_endpoint():
    assert normalize_endpoint("tcp://127.0.0.1:5") == "tcp://127.0.0.1:5"
    assert normalize_endpoint("127.0.0.1:5") == "tcp://127.0.0.1:5"
    assert normalize_endpoint(":5") == "tcp://127.0.0.1:5"


def test_parse_reply_kinds():
    task = {"id": "t1", "type": "x", "status": "leased", "created_at_ms": 1}
    reply = parse_reply(wire.encode(b"tasks", {"rid": 3, "tasks": [task]}))
    assert reply.rid == 3 and [t.id for t in reply.tasks] == ["t1"]
    reply = parse_reply(wire.encode(b"err", {"rid": 4, "code": "lease_conflict",
                                             "message": "taken"}))
    assert isinstance(reply.error, LeaseConflict) and reply.error.message == "taken"


def test_parse_reply_acked():
    reply = parse_reply(wire.encode(b"acked", {"rid": 5, "results": [
        None, {"code": "lease_conflict", "message": "taken"}, {"code": "no_leader"}]}))
    assert reply.kind == "acked" and reply.rid == 5 and reply.results[0] is None
    assert isinstance(reply.results[1], LeaseConflict) and reply.results[1].message == "taken"
    assert isinstance(reply.results[2], NoLeader)


@pytest.mark.parametrize("obj", [
    PLAIN,
    {**PLAIN, "lease": None, "status": "pending", "idempotency_key": "k", "last_error": "boom"},
    {**PLAIN, "priority": True},  # not an int: the general decoder converts it
    {**PLAIN, "created_at_ms": 1.5},
    {**PLAIN, "lease": {"worker_id": "w1", "token": None, "expires_at_ms": 9_000}},
    {k: v for k, v in PLAIN.items() if k != "last_error"},  # not the exact plain form
    {**PLAIN, "extra": 1},
])
def test_task_from_plain_matches_from_wire(obj):
    fast, general = task_from_plain(obj), Task.from_wire(obj)
    assert fast == general and vars(fast) == vars(general)


@pytest.mark.parametrize("obj", [{**PLAIN, "status": "bogus"}, {**PLAIN, "id": 5}, [1]])
def test_task_from_plain_refuses_what_from_wire_refuses(obj):
    with pytest.raises(ValueError):
        task_from_plain(obj)


@pytest.mark.parametrize("frames", [
    [b"\x01", b"tasks"],
    wire.encode(b"tasks", [1]),
    wire.encode(b"tasks", {"rid": 1}),
    wire.encode(b"res", {"rid": 1, "task": {"no": "id"}}),
    wire.encode(b"what", {"rid": 1}),
    wire.encode(b"acked", {"rid": 1}),
    wire.encode(b"acked", {"rid": 1, "results": ["ok"]}),
])
def test_parse_reply_refuses_garbage(frames):
    with pytest.raises(wire.FrameError):
        parse_reply(frames)


def test_no_gateway_times_out_as_unavailable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with ZmqWorkerClient(f"127.0.0.1:{port}", timeout_s=0.3) as client, \
            pytest.raises(Unavailable):
        client.ping()


def test_used_only_by_its_thread():
    client = ZmqWorkerClient("127.0.0.1:1", timeout_s=0.1)
    errors: list[Exception] = []

    def other() -> None:
        try:
            client.send_ping()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    client.close()
    assert errors and "thread" in str(errors[0])
