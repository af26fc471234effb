"""The SDK's view of the workers table, mixed into ``Client`` (docs/worker.md, "Seeing the
workers").

A worker comes back as the API renders it: a dict with ``worker_id``, ``host``, ``pid``,
``transport``, ``queues``, ``types``, ``concurrency``, ``in_flight``, ``started_at``,
``heartbeat_seconds``, ``first_seen_at``, ``last_heartbeat_at``, ``expires_at`` and
``heartbeats`` (docs/http-api.md, "Workers").
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

from dqueue.client.admin_requests import listing
from dqueue.client.errors import ServerError
from dqueue.client.task import format_time_ms
from dqueue.protocol.errors import ErrorCode


class _WorkerRequester(Protocol):
    worker_id: str

    def _request(self, method: str, path: str, body: Any = None, *,
                 wait_s: float = 0.0) -> tuple[int, Any]: ...


def _as_worker(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict) or not isinstance(obj.get("worker_id"), str):
        raise ServerError("unreadable worker", code=ErrorCode.BAD_REPLY)
    return obj


class WorkerAdmin:
    """List the workers; send a worker's heartbeat (the runtimes do: ``dqueue.worker``)."""

    def workers(self: _WorkerRequester) -> list[dict[str, Any]]:
        """Every listed worker, sorted by id (``GET /workers``): the same on every node."""
        obj = self._request("GET", "/workers")[1]
        return [_as_worker(item) for item in listing(obj, "workers", "worker")]

    def heartbeat(self: _WorkerRequester, *, host: str, concurrency: int,
                  heartbeat_seconds: float, worker_id: str | None = None,
                  pid: int | None = None, queues: Sequence[str] = (),
                  types: Sequence[str] = (), in_flight: int = 0,
                  started_at_ms: int | None = None, leaving: bool = False,
                  ) -> dict[str, Any] | None:
        """Say this worker is alive (``POST /workers/heartbeat``; role ``consume``): it is
        listed until ``3 * heartbeat_seconds`` pass without another, or at once dropped with
        ``leaving``. ``worker_id`` defaults to the client's, ``pid`` to this process's,
        ``started_at_ms`` to now. Returns the worker as listed (None when leaving). Raises
        InvalidRequest naming the bad field."""
        body: dict[str, Any] = {
            "worker_id": worker_id or self.worker_id, "host": host,
            "pid": os.getpid() if pid is None else pid, "transport": "http",
            "queues": list(queues), "types": list(types), "concurrency": concurrency,
            "in_flight": in_flight,
            "started_at": format_time_ms(int(time.time() * 1000) if started_at_ms is None
                                         else started_at_ms),
            "heartbeat_seconds": heartbeat_seconds}
        if leaving:
            body["leaving"] = True
        obj = self._request("POST", "/workers/heartbeat", body)[1]
        worker = obj.get("worker") if isinstance(obj, dict) else None
        return None if worker is None else _as_worker(worker)
