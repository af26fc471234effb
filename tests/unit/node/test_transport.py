"""PeerTransport between two nodes in one thread, on loopback with free ports."""

from __future__ import annotations

import socket
import time

import pytest
import zmq

from dqueue.node.transport import PeerTransport, tcp_endpoint
from tests.unit.node.zmq_wait import drain_until, next_message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_recv(transport: PeerTransport):
    return next_message(transport.router, transport.recv)


def wait_counted(transport: PeerTransport, attr: str, n: int) -> None:
    drain_until(lambda: getattr(transport.counters, attr) >= n, transport.router, transport.recv)


@pytest.fixture
def pair():
    ctx = zmq.Context()
    addrs = {"a": f"127.0.0.1:{free_port()}", "b": f"127.0.0.1:{free_port()}"}
    a = PeerTransport(ctx, "a", addrs["a"], addrs)
    b = PeerTransport(ctx, "b", addrs["b"], addrs)
    yield a, b, addrs, ctx
    a.close()
    b.close()
    ctx.term()


def test_tcp_endpoint():
    assert tcp_endpoint("127.0.0.1:9", bind=True) == "tcp://127.0.0.1:9"
    assert tcp_endpoint(":9090", bind=True) == "tcp://*:9090"
    assert tcp_endpoint(":9090", bind=False) == "tcp://127.0.0.1:9090"
    with pytest.raises(ValueError):
        tcp_endpoint("nope", bind=True)


def test_message_arrives_with_sender_identity(pair):
    a, b, _, _ = pair
    assert a.peer_ids == ["b"]
    deadline = time.monotonic() + 5
    while not a.send("b", b"raft", [1, "x", b"\x00"]):
        assert time.monotonic() < deadline, "connection never came up"
        time.sleep(0.01)
    assert wait_recv(b) == ("a", b"raft", [1, "x", b"\x00"])
    assert b.counters.received == 1


def test_unknown_identity_and_malformed_frames_are_counted(pair):
    _, b, addrs, ctx = pair
    stranger = ctx.socket(zmq.DEALER)
    stranger.setsockopt(zmq.IDENTITY, b"mallory")
    stranger.setsockopt(zmq.LINGER, 0)
    stranger.connect(tcp_endpoint(addrs["b"], bind=False))
    try:
        stranger.send_multipart([b"\x01", b"raft", b"\x90"])
        stranger.send_multipart([b"junk"])  # a stranger is unknown whatever it sends
        wait_counted(b, "unknown_peer", 2)
        assert b.counters.malformed == 0
        # A DEALER claiming a member's identity with garbage frames: counted as malformed.
        spoof = ctx.socket(zmq.DEALER)
        spoof.setsockopt(zmq.IDENTITY, b"a")
        spoof.setsockopt(zmq.LINGER, 0)
        spoof.connect(tcp_endpoint(addrs["b"], bind=False))
        for frames in ([b"junk"], [b"\x07", b"raft", b"\x90"], [b"\x01", b"raft", b"\xc1"]):
            spoof.send_multipart(frames)
        wait_counted(b, "malformed", 3)
        spoof.close(0)
    finally:
        stranger.close(0)


def test_send_to_a_dead_peer_is_dropped_not_queued():
    ctx = zmq.Context()
    addrs = {"a": f"127.0.0.1:{free_port()}", "b": f"127.0.0.1:{free_port()}"}
    a = PeerTransport(ctx, "a", addrs["a"], addrs)
    try:
        assert not a.send("b", b"raft", [1])
        assert not a.send("zz", b"raft", [1])
        assert a.counters.send_dropped == 2
    finally:
        a.close()
        ctx.term()
