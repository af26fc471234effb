"""The API's client of the local Raft process over IPC (docs/internals.md section 3).

One ``RaftClient`` owns one ZeroMQ DEALER connected to the Raft process of the local node. It is
used from one thread only (ZeroMQ sockets are not thread-safe); every API thread and the worker
gateway make their own. Each call sends one request stamped with a request id (``rid``) and waits
for the reply carrying that id; replies to earlier requests that timed out are discarded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import zmq

from dqueue.protocol import ipc
from dqueue.protocol.errors import ErrorCode
from dqueue.protocol.frames import recv_frames, send_frames

# How long past the server-side deadline the client keeps waiting for the server's own
# ``timeout`` answer before it concludes that the Raft process is not running at all.
REPLY_GRACE_MS = 1_000
# Bound on requests queued towards the Raft process: a send beyond it fails at once with
# RaftUnavailable instead of growing memory.
SEND_HWM = 1_000
# How long a request waits for the connection to the Raft process (a client just created, or a
# Raft process restarting) before it fails with RaftUnavailable.
CONNECT_WAIT_MS = 1_000
# Largest reply accepted from the Raft process: the largest legitimate one is a list page of
# 1,000 tasks each with a payload of the largest body (1 MiB by default), plus their fields.
# ZeroMQ drops a larger message before allocating it (a bug in the other process must not grow
# this one without bound), and the call then times out.
MAX_REPLY_BYTES = (1_000 << 20) + (64 << 20)


class RaftClientError(Exception):
    """Base class of the errors a ``RaftClient`` call raises."""


class NoLeader(RaftClientError):
    """No leader was known within the request's deadline.

    Attributes:
        leader_id: the last known leader's member id, or None.
        leader_http: that leader's HTTP address, or None.
    """

    def __init__(self, leader_id: str | None, leader_http: str | None, message: str = "") -> None:
        super().__init__(message or f"no leader (last known: {leader_id})")
        self.leader_id = leader_id
        self.leader_http = leader_http


class RequestTimeout(RaftClientError):
    """The request was accepted but did not complete within its deadline.

    A command that timed out may still commit later; callers retry with the same ids
    (task ids, idempotency keys) to stay safe.
    """

    def __init__(
        self, message: str = "", leader_id: str | None = None, leader_http: str | None = None
    ) -> None:
        super().__init__(message or "request timed out")
        self.leader_id = leader_id
        self.leader_http = leader_http


class RaftUnavailable(RaftClientError):
    """The local Raft process did not answer, or answered that it is shutting down."""


class BadRequest(RaftClientError):
    """The Raft process refused the request as malformed (the API should have caught it)."""


class Unencodable(BadRequest):
    """The request holds a value the wire cannot carry (a lone surrogate in a string, an
    integer beyond 64 bits); nothing was sent. A ``BadRequest``, so the API answers 400."""


class RaftClient:
    """Blocking request/reply client of the local Raft process.

    Args:
        endpoint: the IPC endpoint, ``NodeConfig.ipc_endpoint()``.
        context: the ZeroMQ context to use; the process-wide shared context when omitted
            (contexts are thread-safe, sockets are not: every client still has its own socket).
    """

    def __init__(self, endpoint: str, context: zmq.Context | None = None) -> None:
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, SEND_HWM)
        self._socket.setsockopt(zmq.RCVHWM, SEND_HWM)
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_REPLY_BYTES)
        # Queue nothing while the Raft process is down: a request would otherwise wait in this
        # socket and run when the process comes back, long after the caller gave up on it.
        self._socket.setsockopt(zmq.IMMEDIATE, 1)
        self._socket.setsockopt(zmq.RECONNECT_IVL, 50)
        self._socket.connect(endpoint)
        # Replies are awaited with a blocking receive bounded by RCVTIMEO (one call, the GIL
        # released while waiting), cheaper than a Poller round and a receive; the value last
        # set is kept so that the usual deadline costs no setsockopt.
        self._rcvtimeo_ms = -1
        self._rid_prefix = os.urandom(8).hex()
        self._rid_counter = 0
        self.endpoint = endpoint

    def command(self, cmd_plain: dict[str, Any], timeout_ms: int = 5_000, wait_ms: int = 0) -> Any:
        """Propose one command and return the queue's outcome once it committed and applied.

        Args:
            cmd_plain: the plain command form (docs/internals.md section 4), without ``now_ms``.
            timeout_ms: deadline for the commit, measured by the Raft process.
            wait_ms: for ``lease`` only: how long an empty lease may be parked (long poll).

        Returns:
            The outcome, ``{"ok": True, "value": ...}`` or ``{"ok": False, "code", "message"}``.

        Raises:
            NoLeader, RequestTimeout, RaftUnavailable, BadRequest.
        """
        rid = self._next_rid()
        frames = _encoded(ipc.encode_cmd, rid, cmd_plain, timeout_ms, wait_ms)
        result = self._call(rid, frames, int(timeout_ms) + int(wait_ms))
        outcome = ipc.outcome_of(result)
        if outcome is None:
            raise RaftUnavailable("unreadable answer from the Raft process")
        return outcome

    def read(
        self, query_plain: dict[str, Any], timeout_ms: int = 5_000, stale: bool = False
    ) -> Any:
        """Run one read query and return its value.

        Args:
            query_plain: ``{"op": ...}``: get, stats, list, health, cluster or metrics.
            timeout_ms: deadline for the ReadIndex round (ignored by local queries).
            stale: serve from this node's applied state, without asking the leader.

        Raises:
            NoLeader, RequestTimeout, RaftUnavailable, BadRequest.
        """
        rid = self._next_rid()
        frames = _encoded(ipc.encode_read, rid, query_plain, timeout_ms, stale)
        result = self._call(rid, frames, int(timeout_ms))
        if not ipc.has_value(result):
            raise RaftUnavailable("unreadable answer from the Raft process")
        return result.body["value"]

    def close(self) -> None:
        """Close the socket (the context is shared and stays open)."""
        self._socket.close(0)

    def __enter__(self) -> RaftClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_rid(self) -> str:
        self._rid_counter += 1
        return f"{self._rid_prefix}-{self._rid_counter}"

    def _call(self, rid: str, frames: list[bytes], server_deadline_ms: int) -> ipc.Result:
        """Send one request and wait for its ``res``; raise the error of its ``err``."""
        try:
            send_frames(self._socket, frames)
        except zmq.Again:
            # Not connected (yet): a new client, or a Raft process that is restarting.
            connect_ms = min(CONNECT_WAIT_MS, max(server_deadline_ms, 1))
            if not self._socket.poll(connect_ms, zmq.POLLOUT):
                raise RaftUnavailable(
                    f"the Raft process at {self.endpoint} is not running") from None
            try:
                send_frames(self._socket, frames)
            except zmq.Again:
                raise RaftUnavailable("the Raft process is not accepting requests") from None
        wait_ms = server_deadline_ms + REPLY_GRACE_MS
        deadline = time.monotonic() + wait_ms / 1000.0
        while True:
            if wait_ms <= 0:
                raise RaftUnavailable(f"no answer from the Raft process at {self.endpoint}")
            try:
                frames = self._receive(wait_ms)
            except zmq.Again:
                frames = None
            # Later rounds (after a stale reply, or a timeout) wait only for what is left.
            wait_ms = int((deadline - time.monotonic()) * 1000)
            if frames is None:
                continue
            reply = ipc.decode_reply(frames)
            if reply is None or reply.rid != rid:
                continue  # garbage, or a late answer to a request this client gave up on
            if isinstance(reply, ipc.ErrorReply):
                raise _error_from_reply(reply)
            return reply

    def _receive(self, timeout_ms: int) -> list[bytes]:
        """Wait at most ``timeout_ms`` for one whole message.

        Raises:
            zmq.Again: nothing arrived in time.
        """
        if timeout_ms != self._rcvtimeo_ms:
            self._socket.setsockopt(zmq.RCVTIMEO, timeout_ms)
            self._rcvtimeo_ms = timeout_ms
        first = self._socket.recv(0, copy=False)  # blocks, GIL released, up to RCVTIMEO
        if not first.more:
            return [first.bytes]
        return [first.bytes, *recv_frames(self._socket)]


def _encoded(encode: Callable[[str, dict[str, Any], int, Any], list[bytes]], rid: str,
             plain: dict[str, Any], timeout_ms: int, extra: Any) -> list[bytes]:
    """The frames ``encode`` builds, or Unencodable when msgpack cannot pack ``plain``."""
    try:
        return encode(rid, plain, timeout_ms, extra)
    except Exception as exc:  # msgpack raises several types on a value it cannot pack
        raise Unencodable(f"body: cannot be encoded ({exc.__class__.__name__}: "
                          f"{str(exc)[:200]})") from None


def _error_from_reply(reply: ipc.ErrorReply) -> RaftClientError:
    """Map an ``err`` reply to the exception the caller sees."""
    message = reply.message or reply.code
    if reply.code == ErrorCode.NO_LEADER:
        return NoLeader(reply.leader_id, reply.leader_http, message)
    if reply.code == ErrorCode.TIMEOUT:
        return RequestTimeout(message, reply.leader_id, reply.leader_http)
    if reply.code == ErrorCode.BAD_REQUEST:
        return BadRequest(message)
    return RaftUnavailable(message)
