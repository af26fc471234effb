"""A ZeroMQ ROUTER on its own thread: the base of the tests' stand-ins for the Raft process.

The socket is made, used and closed on that thread only (pyzmq: one thread per socket). A
subclass answers each request in ``on_request`` and may act once per loop turn in ``on_turn``
(a parked long poll whose time came).
"""

from __future__ import annotations

import threading
from typing import Any

import zmq

from dqueue.protocol import wire

POLL_MS = 10


class RouterThread:
    """A ROUTER bound to ``endpoint`` while the ``with`` block runs."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def on_request(self, sock: zmq.Socket, identity: bytes, kind: bytes, body: Any) -> None:
        """Answer one request (``send`` its replies); the subclass's part."""
        raise NotImplementedError

    def on_turn(self, sock: zmq.Socket) -> None:
        """Called once per loop turn, after a request if one came; nothing by default."""

    @staticmethod
    def send(sock: zmq.Socket, identity: bytes, frames: list[bytes]) -> None:
        """Send one message (``wire`` frames) to the client ``identity``."""
        sock.send_multipart([identity, *frames])

    def _run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.endpoint)
        self._ready.set()
        try:
            while not self._stop.is_set():
                if sock.poll(POLL_MS):
                    identity, *frames = sock.recv_multipart()
                    kind, body = wire.decode(frames)
                    self.on_request(sock, identity, kind, body)
                self.on_turn(sock)
        finally:
            sock.close(0)
