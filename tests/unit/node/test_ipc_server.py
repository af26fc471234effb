"""IpcServer: request parsing, bad-request answers, garbage counted, replies reach the client."""

from __future__ import annotations

import pytest
import zmq

from dqueue.node.ipc_server import CmdRequest, IpcServer, ReadRequest
from dqueue.protocol import wire
from tests.unit.node.zmq_wait import drain_until, next_message


@pytest.fixture
def server_and_client(tmp_path):
    ctx = zmq.Context()
    endpoint = "ipc://" + str(tmp_path / "raft.ipc")
    server = IpcServer(ctx, endpoint)
    client = ctx.socket(zmq.DEALER)
    client.setsockopt(zmq.LINGER, 0)
    client.connect(endpoint)
    yield server, client
    client.close(0)
    server.close()
    ctx.term()


def next_request(server: IpcServer):
    return next_message(server.socket, server.recv)


def wait_until(predicate, server: IpcServer) -> None:
    drain_until(predicate, server.socket, server.recv)


def test_cmd_and_read_parse(server_and_client):
    server, client = server_and_client
    client.send_multipart(wire.encode(b"cmd", {"rid": "r1", "cmd": {"op": "tick"},
                                               "timeout_ms": 100, "wait_ms": 7}))
    req = next_request(server)
    assert isinstance(req, CmdRequest)
    assert (req.rid, req.cmd, req.timeout_ms, req.wait_ms) == ("r1", {"op": "tick"}, 100, 7)
    client.send_multipart(wire.encode(b"read", {"rid": "r2", "query": {"op": "health"},
                                                "timeout_ms": 50, "stale": True}))
    req2 = next_request(server)
    assert isinstance(req2, ReadRequest)
    assert req2.stale is True
    server.send_res(req2.identity, "r2", "value", {"x": 1})
    assert client.poll(5000)
    assert wire.decode(client.recv_multipart()) == (b"res", {"rid": "r2", "value": {"x": 1}})


@pytest.mark.parametrize(
    ("kind", "body", "needle"),
    [
        (b"cmd", {"rid": "r", "cmd": "tick"}, "cmd"),
        (b"cmd", {"rid": "r", "cmd": {"op": 3}}, "cmd"),
        (b"cmd", {"rid": "r", "cmd": {"op": "tick"}, "timeout_ms": -1}, "timeout_ms"),
        (b"read", {"rid": "r", "query": {"op": "get"}, "wait_ms": "x"}, "wait_ms"),
        (b"zap", {"rid": "r"}, "kind"),
    ],
)
def test_bad_fields_are_answered_bad_request(server_and_client, kind, body, needle):
    server, client = server_and_client
    client.send_multipart(wire.encode(kind, body))
    wait_until(lambda: server.counters.bad_request == 1, server)
    assert client.poll(5000)
    reply_kind, reply = wire.decode(client.recv_multipart())
    assert reply_kind == b"err"
    assert reply["code"] == "bad_request"
    assert needle in reply["message"]


def test_garbage_is_counted_and_dropped(server_and_client):
    server, client = server_and_client
    garbage = [[b"x"], [b"\x01", b"cmd", b"\xc1"], [b"\x09", b"cmd", b"\x80"],
               wire.encode(b"cmd", [1, 2]), wire.encode(b"cmd", {"rid": 5})]
    for frames in garbage:
        client.send_multipart(frames)
    wait_until(lambda: server.counters.malformed == len(garbage), server)
    assert server.counters.received == 0
