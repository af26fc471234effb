"""Deadline waits on a receiving endpoint (IpcServer or PeerTransport) for the node unit tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import zmq


def next_message(sock: zmq.Socket, recv: Callable[[], Any], deadline_s: float = 5.0) -> Any:
    """Return the first message ``recv`` does not drop; fail after the deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if sock.poll(20):
            got = recv()
            if got is not None:
                return got
    raise AssertionError("nothing received before the deadline")


def drain_until(predicate: Callable[[], bool], sock: zmq.Socket, recv: Callable[[], Any],
                deadline_s: float = 5.0) -> None:
    """Keep receiving (and dropping) until ``predicate()`` holds; fail after the deadline."""
    deadline = time.monotonic() + deadline_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        if sock.poll(20):
            recv()
