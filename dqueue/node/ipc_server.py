"""Server side of the API-to-Raft IPC (docs/internals.md section 3).

A ROUTER bound at ``ipc://<data-dir>/raft.ipc``, owned by the Raft process loop's thread. This
module owns the socket; the bodies are decoded and checked by the IPC codec
(``dqueue/protocol/ipc.py``), which turns waiting messages into ``CmdRequest`` and
``ReadRequest`` values. What a request means is the loop's job.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import zmq

from dqueue.protocol import ipc, wire
from dqueue.protocol.errors import ErrorCode
from dqueue.protocol.frames import recv_routed, send_frames
from dqueue.protocol.ipc import CmdRequest, ReadRequest

# Bound on requests waiting in the socket; beyond it ZeroMQ drops, and clients time out.
IPC_HWM = 10_000
MAX_REQUEST_BYTES = 16 << 20


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
        request = ipc.decode_request(identity, kind, body)
        if type(request) is ipc.RefusedRequest:
            if request.rid is None:
                self.counters.malformed += 1
            else:
                self.counters.bad_request += 1
                self.send_err(identity, request.rid, ErrorCode.BAD_REQUEST, request.problem)
            return None
        self.counters.received += 1
        return request

    def send_res(self, identity: bytes, rid: str, key: str, value: Any) -> None:
        """Answer a request: ``key`` is ``outcome`` for commands and ``value`` for reads."""
        self._send(identity, ipc.encode_result(rid, key, value))

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
        self._send(identity, ipc.encode_error(rid, code, message, leader_id, leader_http))

    def close(self) -> None:
        """Close the socket."""
        self.socket.close(0)

    def _send(self, identity: bytes, frames: list[bytes]) -> None:
        # A client that went away or stopped reading times out on its side.
        with contextlib.suppress(zmq.ZMQError):
            send_frames(self.socket, [identity, *frames])
