"""Waitress serving and the graceful drain, on a loopback port."""

from __future__ import annotations

import http.client
import json
import socket
import threading

import falcon
import pytest
from prometheus_client import CollectorRegistry

from dqueue.api.app import create_app
from dqueue.api.server import HttpServer, listen_host
from dqueue.config import NodeConfig
from dqueue.testing import free_port
from tests.unit.api.conftest import FakeRaft


class Slow:
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.entered.set()
        self.release.wait(10)
        resp.media = {"done": True}


def start(slow: Slow) -> tuple[HttpServer, threading.Event]:
    app = falcon.App()
    app.add_route("/slow", slow)
    draining = threading.Event()
    config = NodeConfig(id="n1", http_addr=f"127.0.0.1:{free_port()}", http_threads=2)
    server = HttpServer(app, config, draining)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, draining


def get(port: int, out: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/slow")
    resp = conn.getresponse()
    out.append((resp.status, resp.read()))
    conn.close()


def test_drain_lets_the_request_in_flight_finish():
    slow = Slow()
    server, draining = start(slow)
    answers: list = []
    client = threading.Thread(target=get, args=(server.port, answers))
    client.start()
    assert slow.entered.wait(10)
    result: list[bool] = []
    drainer = threading.Thread(target=lambda: result.append(server.drain(10_000)))
    drainer.start()
    assert draining.wait(5)
    assert drainer.is_alive()  # still waiting for the request in flight
    slow.release.set()
    client.join(10)
    drainer.join(10)
    assert answers == [(200, b'{"done": true}')]
    assert result == [True]


def test_drain_gives_up_at_its_deadline():
    slow = Slow()
    server, _ = start(slow)
    answers: list = []
    client = threading.Thread(target=get, args=(server.port, answers), daemon=True)
    client.start()
    assert slow.entered.wait(10)
    try:
        assert server.drain(100) is False
    finally:
        slow.release.set()


def test_listen_host_defaults_to_every_interface():
    assert listen_host(":8080") == ("0.0.0.0", 8080)
    assert listen_host("127.0.0.1:8081") == ("127.0.0.1", 8081)


def start_api(raft: FakeRaft, max_body_bytes: int) -> HttpServer:
    config = NodeConfig(id="n1", http_addr=f"127.0.0.1:{free_port()}", http_threads=2,
                        max_body_bytes=max_body_bytes)
    app = create_app(lambda: raft, config, CollectorRegistry())
    server = HttpServer(app, config, threading.Event())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def raw_exchange(port: int, head: bytes, body: bytes) -> tuple[int, str, bytes]:
    """Send ``head`` and ``body`` (part of what the head announces, maybe), read one answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        reader = sock.makefile("rb")
        resp = http.client.HTTPResponse(sock)
        resp.fp = reader
        resp.begin()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()


@pytest.mark.parametrize("length_bytes", [1_500, 4 * 1_024 + 1, 100 * 1_024 * 1_024])
def test_every_oversized_body_gets_the_json_413_naming_the_limit(length_bytes: int) -> None:
    """Above max_body_bytes the app refuses; above 4x waitress does, before reading the body:
    the client sees the same JSON answer either way."""
    raft = FakeRaft()
    server = start_api(raft, max_body_bytes=1_024)
    try:
        head = (f"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {length_bytes}\r\n\r\n").encode()
        # The whole body when the app reads it; only its start when waitress refuses at once.
        sent = min(length_bytes, 8 * 1_024)
        status, content_type, body = raw_exchange(server.port, head, b"x" * sent)
        assert status == 413
        assert content_type.startswith("application/json")
        error = json.loads(body)["error"]
        assert error["code"] == "body_too_large" and error["field"] == "body"
        assert "max_body_bytes (1024)" in error["message"]
        assert raft.commands == []
    finally:
        server.drain(1_000)


def test_a_chunked_body_over_the_server_limit_gets_the_json_413() -> None:
    raft = FakeRaft()
    server = start_api(raft, max_body_bytes=1_024)
    try:
        chunk = b"x" * 8_192
        head = (b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        status, content_type, body = raw_exchange(
            server.port, head, b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        assert status == 413 and content_type.startswith("application/json")
        assert json.loads(body)["error"]["code"] == "body_too_large"
        assert raft.commands == []
    finally:
        server.drain(1_000)


def test_a_request_waitress_cannot_parse_gets_a_json_error() -> None:
    server = start_api(FakeRaft(), max_body_bytes=1_024)
    try:
        head = b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n"
        status, content_type, body = raw_exchange(server.port, head, b"")
        assert status == 400 and content_type.startswith("application/json")
        assert json.loads(body)["error"]["code"] == "bad_request"
    finally:
        server.drain(1_000)
