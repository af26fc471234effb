"""The ZeroMQ worker client's framing, ownership and timeouts (the gateway tests cover the rest)."""

from __future__ import annotations

import socket
import threading

import pytest

from dqueue import wire
from dqueue.client.errors import LeaseConflict, Unavailable
from dqueue.client.zmq_client import ZmqWorkerClient, normalize_endpoint, parse_reply


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


@pytest.mark.parametrize("frames", [
    [b"\x01", b"tasks"],
    wire.encode(b"tasks", [1]),
    wire.encode(b"tasks", {"rid": 1}),
    wire.encode(b"res", {"rid": 1, "task": {"no": "id"}}),
    wire.encode(b"what", {"rid": 1}),
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
