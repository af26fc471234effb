"""Waitress serving and the graceful drain, on a loopback port."""

from __future__ import annotations

import http.client
import socket
import threading

import falcon

from dqueue.api.server import HttpServer, listen_host
from dqueue.config import NodeConfig


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
