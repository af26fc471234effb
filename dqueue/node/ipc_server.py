"""Server side of the API-to-Raft IPC (docs/internals.md section 3).

A ROUTER bound at ``ipc://<data-dir>/raft.ipc``, owned by the Raft process loop's thread. This
module only frames and validates: it turns waiting messages into ``CmdRequest`` and
``ReadRequest`` values and sends ``res``/``err`` replies. What a request means is the loop's job.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import zmq

from dqueue.node.ipc_client import KIND_CMD, KIND_ERR, KIND_READ, KIND_RES
from dqueue.protocol import wire
from dqueue.protocol.frames import recv_routed, send_frames

# Bound on requests waiting in the socket; beyond it ZeroMQ drops, and clients time out.
IPC_HWM = 10_000
MAX_REQUEST_BYTES = 16 << 20
MAX_TIMEOUT_MS = 600_000


# The requests are named tuples rather than frozen dataclasses: one is built per request on the
# leader's hot path, and a tuple is built several times faster (0.3 against 1.7 us here).
class CmdRequest(NamedTuple):
    """A command to propose, from one API thread."""

    identity: bytes
    rid: str
    cmd: dict[str, Any]
    timeout_ms: int
    wait_ms: int


class ReadRequest(NamedTuple):
    """A read query, from one API thread."""

    identity: bytes
    rid: str
    query: dict[str, Any]
    timeout_ms: int
    stale: bool


@dataclass
class IpcCounters:
    """Requests dropped or refused, by reason (exported as metrics)."""

    malformed: int = 0
    bad_request: int = 0
    received: int = 0


class IpcServer:
    """The ROUTER the local API process talks to.

    Args:
        context: the ZeroMQ context of the Raft process.
        endpoint: ``NodeConfig.ipc_endpoint()``.
    """

    def __init__(self, context: zmq.Context, endpoint: str) -> None:
        self.endpoint = endpoint
        self.counters = IpcCounters()
        path = endpoint.removeprefix("ipc://")
        if path != endpoint and os.path.exists(path):
            os.unlink(path)  # left by a process that was killed; nobody else binds our data dir
        self.socket = context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, IPC_HWM)
        self.socket.setsockopt(zmq.SNDHWM, IPC_HWM)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        self.socket.bind(endpoint)

    def recv(self) -> CmdRequest | ReadRequest | None:
        """Receive one waiting request without blocking.

        Returns None when the message was dropped: garbage is counted and dropped; a
        well-framed request with bad fields is answered ``bad_request`` when it carries a
        request id (and only counted when it does not).

        Raises:
            zmq.Again: nothing is waiting.
        """
        try:
            identity, kind, body = recv_routed(self.socket)
        except wire.FrameError:
            self.counters.malformed += 1
            return None
        rid = body.get("rid") if isinstance(body, dict) else None
        if not isinstance(rid, str) or not rid:
            self.counters.malformed += 1
            return None
        problem = _check(kind, body)
        if problem:
            self.counters.bad_request += 1
            self.send_err(identity, rid, "bad_request", problem)
            return None
        self.counters.received += 1
        timeout_ms = min(int(body.get("timeout_ms", 5_000)), MAX_TIMEOUT_MS)
        if kind == KIND_CMD:
            wait_ms = min(int(body.get("wait_ms", 0)), MAX_TIMEOUT_MS)
            return CmdRequest(identity, rid, body["cmd"], timeout_ms, wait_ms)
        return ReadRequest(identity, rid, body["query"], timeout_ms, bool(body.get("stale")))

    def send_res(self, identity: bytes, rid: str, key: str, value: Any) -> None:
        """Answer a request: ``key`` is ``outcome`` for commands and ``value`` for reads."""
        self._send(identity, KIND_RES, {"rid": rid, key: value})

    def send_err(
        self,
        identity: bytes,
        rid: str,
        code: str,
        message: str,
        leader_id: str | None = None,
        leader_http: str | None = None,
    ) -> None:
        """Answer a request with an error (codes of docs/internals.md section 3)."""
        body = {"rid": rid, "code": code, "message": message,
                "leader_id": leader_id, "leader_http": leader_http}
        self._send(identity, KIND_ERR, body)

    def close(self) -> None:
        """Close the socket."""
        self.socket.close(0)

    def _send(self, identity: bytes, kind: bytes, body: Any) -> None:
        # A client that went away or stopped reading times out on its side.
        with contextlib.suppress(zmq.ZMQError):
            send_frames(self.socket, [identity, *wire.encode(kind, body)])


def _check(kind: bytes, body: dict[str, Any]) -> str:
    """Return what is wrong with a request body, or "" when it is well formed."""
    if kind not in (KIND_CMD, KIND_READ):
        return f"unknown request kind {kind!r}"
    for name in ("timeout_ms", "wait_ms"):
        value = body.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"{name} must be a non-negative integer"
    key = "cmd" if kind == KIND_CMD else "query"
    value = body.get(key)
    if not isinstance(value, dict) or not isinstance(value.get("op"), str):
        return f"{key} must be a map with a string op"
    return ""
