"""What every resource needs: configuration, this thread's Raft client, metrics, id source."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import falcon

from dqueue.api.coalesce import EnqueueCoalescer
from dqueue.api.errors import from_raft_error, value_of
from dqueue.api.longpoll import LongPollGate, max_parked_polls
from dqueue.api.metrics import ApiMetrics
from dqueue.api.raft_link import RaftLink
from dqueue.config import NodeConfig
from dqueue.protocol.ipc_client import RaftClientError

# Answers are plain values built here (never cyclic): skipping the encoder's cycle check saves
# a dict update per object. One encoder for every answer (json.dumps with options builds one
# per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def new_task_id() -> str:
    """A fresh task id: 32 hex digits (128 random bits). The API draws ids; the queue never does."""
    return os.urandom(16).hex()


def new_task_ids(n: int) -> list[str]:
    """``n`` fresh task ids like ``new_task_id``, drawn with one system call."""
    digits = os.urandom(16 * n).hex()
    return [digits[i:i + 32] for i in range(0, 32 * n, 32)]


@dataclass
class ApiDeps:
    """Dependencies shared by the resources of one app.

    Attributes:
        config: the node's configuration.
        link: per-thread Raft clients.
        metrics: the API's metrics.
        new_id: source of task ids (replaceable in tests).
        draining: set when the process stops; answers then ask clients to close the connection.
    """

    config: NodeConfig
    link: RaftLink
    metrics: ApiMetrics
    new_id: Callable[[], str] = new_task_id
    draining: threading.Event = field(default_factory=threading.Event)
    coalescer: EnqueueCoalescer | None = None
    long_polls: LongPollGate | None = None

    def __post_init__(self) -> None:
        if self.long_polls is None:
            self.long_polls = LongPollGate(max_parked_polls(self.config.http_threads))

    def new_ids(self, n: int) -> list[str]:
        """``n`` fresh task ids (from ``new_id``; in one system call when it is the default)."""
        if self.new_id is new_task_id:
            return new_task_ids(n)
        return [self.new_id() for _ in range(n)]

    def lease(self, cmd: dict[str, Any], wait_ms: int) -> list[dict[str, Any]] | None:
        """Run a lease command, long-polling up to ``wait_ms``; the leased tasks, or None when
        every long-poll place is taken (the poll is refused at once, without a command, so
        that long polls never hold every thread: longpoll.py)."""
        gate = self.long_polls
        parked = wait_ms > 0 and gate is not None and gate.try_enter()
        if wait_ms > 0 and not parked:
            return None
        started = time.perf_counter()
        try:
            value = self.command(cmd, wait_ms=wait_ms)
        finally:
            if parked and gate is not None:
                gate.leave()
        self.metrics.lease_wait_seconds.observe(time.perf_counter() - started)
        return list(value.get("tasks") or [])

    def read_waiting(self, query: dict[str, Any], wait_ms: int) -> tuple[Any, bool]:
        """Run a ``get`` query that may wait up to ``wait_ms`` for its task to finish; the
        value, and whether the wait was refused (every long-poll place taken: read at once)."""
        gate = self.long_polls
        if wait_ms <= 0 or gate is None or not gate.try_enter():
            return self.read(query), wait_ms > 0
        try:
            return self.read({**query, "wait_ms": wait_ms},
                             timeout_ms=self.config.request_timeout_ms + wait_ms), False
        finally:
            gate.leave()

    def command(self, cmd: dict[str, Any], wait_ms: int = 0) -> Any:
        """Propose ``cmd``; return the outcome's value or raise the ApiError it maps to."""
        try:
            outcome = self.link.client().command(
                cmd, timeout_ms=self.config.request_timeout_ms, wait_ms=wait_ms
            )
        except RaftClientError as exc:
            raise from_raft_error(exc) from None
        return value_of(outcome)

    def enqueue(self, tasks: list[dict[str, Any]], body_bytes: int) -> Any:
        """Enqueue validated tasks (coalesced with concurrent requests when configured)."""
        if self.coalescer is None:
            return self.command({"op": "enqueue", "tasks": tasks})
        try:
            outcome = self.coalescer.submit(tasks, body_bytes)
        except RaftClientError as exc:
            raise from_raft_error(exc) from None
        return value_of(outcome)

    def read(
        self, query: dict[str, Any], stale: bool = False, timeout_ms: int | None = None
    ) -> Any:
        """Run a read query; raise the mapped ApiError on a Raft client failure.

        Args:
            query: the plain query.
            stale: serve from this node's applied state.
            timeout_ms: deadline (default ``request_timeout_ms``).
        """
        try:
            return self.link.client().read(
                query, timeout_ms=timeout_ms or self.config.request_timeout_ms, stale=stale
            )
        except RaftClientError as exc:
            raise from_raft_error(exc) from None


def send_json(resp: falcon.Response, status: str, body: Any) -> None:
    """Answer ``body`` as JSON with ``status``."""
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = _ENCODER.encode(body).encode()
