"""The HTTP SDK: ``Client("http://localhost:8081")`` for producers, operators and HTTP workers.

It speaks the REST API of docs/http-api.md with the stdlib's ``http.client``, keeping one
keep-alive connection per node and per thread (a Client may be shared between threads). It
accepts several node URLs, follows the leader hint a ``503`` carries, and retries ``503`` and
connection errors with capped exponential backoff and full jitter until a deadline. Enqueues
carry an idempotency key (one is generated when the caller gives none) so that a retried
enqueue never creates a second task.
"""

from __future__ import annotations

import email.message
import http.client
import random
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from dqueue.client.env import resolve_servers, resolve_token
from dqueue.client.errors import ServerError
from dqueue.client.http_rules import (
    Attempts,
    RetryPolicy,
    Route,
    as_dict,
    batch_bodies,
    encode_body,
    enqueue_body,
    enqueued,
    normalize_url,
    present,
    request_headers,
    tasks_of,
)
from dqueue.client.queue_admin import QueueAdmin
from dqueue.client.rate_limit_admin import RateLimitAdmin
from dqueue.client.schedule_admin import ScheduleAdmin
from dqueue.client.task import Task, delay_ms_of
from dqueue.client.task_wait import TaskWait
from dqueue.client.worker_admin import WorkerAdmin
from dqueue.protocol.errors import ErrorCode
from dqueue.queue.fields import MAX_BATCH

__all__ = ["Client", "RetryPolicy", "TaskPage", "collect_pages", "normalize_url"]


@dataclass(frozen=True)
class TaskPage:
    """One page of a task listing; pass ``next_cursor`` back for the next page."""

    tasks: list[Task]
    next_cursor: str | None


def collect_pages(list_page: Callable[[int, str | None], TaskPage], limit: int) -> list[Task]:
    """Up to ``limit`` tasks of a listing, following its cursors: ``list_page(page_limit,
    cursor)`` returns one page (pages of at most 100)."""
    found: list[Task] = []
    cursor: str | None = None
    while len(found) < limit:
        page = list_page(min(100, limit - len(found)), cursor)
        found.extend(page.tasks)
        cursor = page.next_cursor
        if not cursor or not page.tasks:
            break
    return found[:limit]


class Client(QueueAdmin, ScheduleAdmin, RateLimitAdmin, WorkerAdmin, TaskWait):
    """A dqueue client over HTTP.

    Args:
        servers: One node URL or several, as a list or a comma-separated string (default:
            ``$DQUEUE_SERVER``, else http://localhost:8080). Any node serves any request; the
            client sticks to the last node that answered and follows leader hints.
        worker_id: Default ``worker_id`` for lease, ack, nack and extend.
        timeout_s: Socket timeout of one attempt (long polls add their wait to it).
        retry: Retry policy for ``503`` answers and connection errors.
        rng: Source of backoff jitter (seed it for reproducible tests).
        token: Bearer token sent as ``Authorization: Bearer <token>`` (default:
            ``$DQUEUE_TOKEN``; none when unset). docs/security.md.
        ssl_context: TLS settings for ``https://`` URLs (default: the system's trusted CAs,
            which honour ``SSL_CERT_FILE``).
        ca_file: A PEM file of the CA that signed the proxy's certificate (a private CA),
            trusted for ``https://`` URLs; ignored when ``ssl_context`` is given.
    """

    def __init__(
        self,
        servers: str | Sequence[str] | None = None,
        *,
        worker_id: str | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ca_file: str | None = None,
    ) -> None:
        self._route = Route([normalize_url(u) for u in resolve_servers(servers)])
        self.worker_id = worker_id or f"sdk-{uuid.uuid4().hex[:12]}"
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._local = threading.local()
        self.token = resolve_token(token)
        if ssl_context is None and ca_file is not None:
            ssl_context = ssl.create_default_context(cafile=ca_file)
        self._ssl_context = ssl_context

    @property
    def servers(self) -> list[str]:
        """The node URLs this client knows, leader hints included."""
        return list(self._route.urls)

    # -- producer surface ---------------------------------------------------------------

    def enqueue(
        self,
        type: str,
        payload: Any = None,
        *,
        priority: int | None = None,
        max_retries: int | None = None,
        idempotency_key: str | None = None,
        delay: float | None = None,
        queue: str | None = None,
    ) -> Task:
        """Enqueue one task and return it (``duplicate`` True if the caller's key was seen).

        Args:
            type: The task type handlers register for.
            payload: Any JSON value.
            priority: Higher first; None for the server default.
            max_retries: Failed attempts before the dead-letter queue; None for the default.
            idempotency_key: Deduplication key; a random one is sent when None so that
                retries of this very call are deduplicated.
            delay: Seconds before the task becomes visible; None for the queue's default.
            queue: The named queue (``create_queue``); None for ``default``.
        """
        body = enqueue_body(type, payload, priority, max_retries, idempotency_key, delay, queue)
        return enqueued(self._request("POST", "/tasks", body)[1], idempotency_key is None)

    def enqueue_many(self, tasks: Iterable[Mapping[str, Any]]) -> list[Task]:
        """Enqueue many tasks in batches of up to 1,000, in order.

        Each item is a mapping with ``type`` and optionally ``payload``, ``priority``,
        ``max_retries``, ``idempotency_key``, ``delay`` (seconds) and ``queue``, as for
        ``enqueue``.
        """
        bodies, auto = batch_bodies(tasks)
        result: list[Task] = []
        for start in range(0, len(bodies), MAX_BATCH):
            chunk = bodies[start:start + MAX_BATCH]
            _, obj = self._request("POST", "/tasks/batch", {"tasks": chunk})
            result.extend(enqueued(raw, auto[start + offset])
                          for offset, raw in enumerate(tasks_of(obj)))
        return result

    def get(self, task_id: str) -> Task:
        """Return the task with that id. Raises TaskNotFound."""
        _, obj = self._request("GET", f"/tasks/{quote(task_id, safe='')}")
        return Task.from_wire(obj)

    def cancel(self, task_id: str) -> Task:
        """Cancel a pending task. Raises TaskNotFound or InvalidState."""
        _, obj = self._request("POST", f"/tasks/{quote(task_id, safe='')}/cancel", {})
        return Task.from_wire(obj)

    # -- worker surface -----------------------------------------------------------------

    def lease(
        self,
        worker_id: str | None = None,
        *,
        types: Sequence[str] | None = None,
        lease_seconds: float | None = None,
        wait_seconds: float | None = None,
        queues: Sequence[str] | None = None,
    ) -> Task | None:
        """Lease the next visible task of ``queues`` (None: ``default``), or return None when
        there is none.

        ``wait_seconds`` (up to 20) long-polls: the server answers as soon as a task is visible.
        """
        body = self._lease_body(worker_id, types, lease_seconds, wait_seconds, None, queues)
        status, obj = self._request("POST", "/tasks/lease", body, wait_s=wait_seconds or 0.0)
        if status == 204 or obj is None:
            return None
        return Task.from_wire(obj)

    def lease_many(
        self,
        max_tasks: int,
        worker_id: str | None = None,
        *,
        types: Sequence[str] | None = None,
        lease_seconds: float | None = None,
        wait_seconds: float | None = None,
        queues: Sequence[str] | None = None,
    ) -> list[Task]:
        """Lease up to ``max_tasks`` (1 to 100) visible tasks in one command."""
        body = self._lease_body(worker_id, types, lease_seconds, wait_seconds, max_tasks,
                                queues)
        status, obj = self._request("POST", "/tasks/lease", body, wait_s=wait_seconds or 0.0)
        if status == 204 or obj is None:
            return []
        return [Task.from_wire(raw) for raw in tasks_of(obj)]

    def ack(self, task: Task | str, worker_id: str | None = None, *, result: Any = None) -> Task:
        """Complete a leased task, keeping ``result`` (any JSON, 64 KiB at most by default) on
        it when given. Raises LeaseConflict if the lease is no longer ours.

        Pass the Task as leased: its lease token is sent, and a lease is held only by its token
        (ack, nack and extend alike). A bare task id carries no token: the node refuses it
        with LeaseConflict.
        """
        return self._lease_op(task, "ack", worker_id,
                              {} if result is None else {"result": result})

    def nack(
        self,
        task: Task | str,
        reason: str = "",
        *,
        dead_letter: bool = False,
        worker_id: str | None = None,
        traceback: str | None = None,
        retry_delay: float | None = None,
    ) -> Task:
        """Fail a leased task: retried after backoff, or dead-lettered (at once if asked).
        ``reason`` is kept as ``last_error``, ``traceback`` (its last lines) as
        ``last_traceback``; ``retry_delay`` (seconds) replaces the queue's backoff."""
        extra: dict[str, Any] = {"reason": reason, **present(
            traceback=traceback, retry_delay_ms=delay_ms_of(retry_delay))}
        if dead_letter:
            extra["dead_letter"] = True
        return self._lease_op(task, "nack", worker_id, extra)

    def release(self, task: Task | str, *, worker_id: str | None = None) -> Task:
        """Hand a leased task back unstarted: pending at once, its attempt not counted
        (``max_retries`` is not used up). Raises LeaseConflict if the lease is not ours."""
        return self._lease_op(task, "release", worker_id, {})

    def extend(
        self, task: Task | str, lease_seconds: float | None = None, *, worker_id: str | None = None
    ) -> Task:
        """Push the lease's expiry to ``lease_seconds`` from now (server default when None)."""
        return self._lease_op(task, "extend", worker_id, present(lease_seconds=lease_seconds))

    # -- operator surface ---------------------------------------------------------------

    def list_tasks(
        self,
        status: str = "dead",
        *,
        type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        queue: str | None = None,
    ) -> TaskPage:
        """One page of tasks in ``status`` (optionally of one type, of one queue)."""
        query = present(status=status, type=type, limit=limit, cursor=cursor, queue=queue)
        _, obj = self._request("GET", "/tasks?" + urlencode(query))
        if not isinstance(obj, dict):
            raise ServerError("unreadable task listing", code=ErrorCode.BAD_REPLY)
        return TaskPage([Task.from_wire(t) for t in tasks_of(obj)], obj.get("next_cursor"))

    def dead_letters(self, *, type: str | None = None, limit: int = 1000) -> list[Task]:
        """The dead-letter queue (oldest first), up to ``limit`` tasks, following cursors."""
        return collect_pages(lambda page_limit, cursor: self.list_tasks(
            "dead", type=type, limit=page_limit, cursor=cursor), limit)

    def stats(self) -> dict[str, Any]:
        """Counts by status and type, and Raft figures (``GET /stats``)."""
        return as_dict(self._request("GET", "/stats")[1])

    def health(self) -> dict[str, Any]:
        """The answering node's id, role, term, leader and indexes (``GET /health``)."""
        return as_dict(self._request("GET", "/health")[1])

    def cluster(self) -> dict[str, Any]:
        """Leader, term and members with their lag (``GET /cluster``)."""
        return as_dict(self._request("GET", "/cluster")[1])

    def close(self) -> None:
        """Close this thread's keep-alive connections."""
        for conn in getattr(self._local, "conns", {}).values():
            conn.close()
        self._local.conns = {}

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------

    def _lease_body(
        self,
        worker_id: str | None,
        types: Sequence[str] | None,
        lease_seconds: float | None,
        wait_seconds: float | None,
        max_tasks: int | None,
        queues: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        return present(worker_id=worker_id or self.worker_id,
                        types=list(types) if types else None, lease_seconds=lease_seconds,
                        wait_seconds=wait_seconds or None, max_tasks=max_tasks,
                        queues=list(queues) if queues else None)

    def _lease_op(
        self, task: Task | str, op: str, worker_id: str | None, extra: dict[str, Any]
    ) -> Task:
        if isinstance(task, Task):
            task_id = task.id
            body: dict[str, Any] = {
                "worker_id": worker_id or (task.lease.worker_id if task.lease else self.worker_id)
            }
            if task.lease_token is not None:
                body["lease_token"] = task.lease_token
        else:
            task_id = task
            body = {"worker_id": worker_id or self.worker_id}
        body.update(extra)
        _, obj = self._request("POST", f"/tasks/{quote(task_id, safe='')}/{op}", body)
        return Task.from_wire(obj)

    def _connection(self, url: str, timeout_s: float) -> http.client.HTTPConnection:
        conns: dict[str, http.client.HTTPConnection] | None = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(url)
        if conn is None:
            parts = urlsplit(url)
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(
                    parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s,
                    context=self._ssl_context or ssl.create_default_context())
            else:
                conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                                  timeout=timeout_s)
            conns[url] = conn
        conn.timeout = timeout_s
        if conn.sock is not None:
            conn.sock.settimeout(timeout_s)
        return conn

    def _drop_connection(self, url: str) -> None:
        conns = getattr(self._local, "conns", {})
        conn = conns.pop(url, None)
        if conn is not None:
            conn.close()

    def _request(
        self, method: str, path: str, body: Any = None, *, wait_s: float = 0.0
    ) -> tuple[int, Any]:
        """Send one request with retries (``http_rules.Attempts``); return ``(status, decoded
        JSON or None)``.

        Raises the typed error of any 4xx, NoLeader or Unavailable when the deadline passes.
        """
        payload = encode_body(body)
        headers = request_headers(self.token, payload is not None)
        attempts = Attempts(self._route, self.retry, self._rng, wait_s=wait_s,
                            had_token=bool(self.token))
        while True:
            url = attempts.url()
            try:
                status, resp_headers, data = self._send(url, method, path, payload, headers,
                                                        self.timeout_s + wait_s)
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection(url)
                attempts.connection_failed(url, exc)
            else:
                answer = attempts.answered(url, status, resp_headers.get, data)
                if answer is not None:
                    if answer.park_s:
                        time.sleep(answer.park_s)
                    return answer.status, answer.obj
            time.sleep(attempts.pause_s())

    def _send(
        self,
        url: str,
        method: str,
        path: str,
        payload: bytes | None,
        headers: dict[str, str],
        timeout_s: float,
    ) -> tuple[int, email.message.Message, bytes]:
        """One attempt; a kept-alive connection the server closed meanwhile is retried once."""
        for fresh in (False, True):
            conn = self._connection(url, timeout_s)
            reused = conn.sock is not None
            try:
                conn.request(method, path, body=payload, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop_connection(url)
                if reused and not fresh:
                    continue
                raise
            if resp.getheader("Connection", "").lower() == "close":
                self._drop_connection(url)
            return resp.status, resp.headers, data
        raise AssertionError("unreachable")

