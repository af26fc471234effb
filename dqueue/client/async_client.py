"""The asyncio SDK: ``AsyncClient`` for producers that run in an event loop.

It is a native asyncio client: HTTP/1.1 over ``asyncio`` streams, with keep-alive connections
pooled per node, so that a thousand concurrent ``wait`` calls cost a thousand sockets at most, not
a thousand threads. Every decision about a request (which node, following leader hints, what to
retry, backoff with jitter, the deadline, the typed errors) is ``http_rules.Attempts``, the very
code the blocking ``Client`` runs; only the sending and the sleeping are asyncio's here.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from dqueue.client.env import resolve_servers, resolve_token
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
    request_headers,
    tasks_of,
)
from dqueue.client.task import Task
from dqueue.client.task_wait import WaitPolls
from dqueue.queue.fields import MAX_BATCH

MAX_HEADER_BYTES = 64 * 1024  # one header line at most (asyncio's stream limit)
MAX_HEADERS = 100  # header lines of one answer at most (http.client's bound too)
# The largest answer body read (a page of tasks with large payloads is far below it): a
# server that announces more gets BadAnswer instead of the client's memory.
MAX_BODY_BYTES = 256 << 20


class BadAnswer(ConnectionError):
    """The node's answer is not readable HTTP/1.1 (treated as a failed connection)."""


class _Connection:
    """One keep-alive connection to a node."""

    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class AsyncClient:
    """A dqueue producer client for asyncio; the same arguments and rules as ``Client``.

    Args:
        servers: One node URL or several, as a list or a comma-separated string (default:
            ``$DQUEUE_SERVER``, else http://localhost:8080).
        timeout_s: How long one attempt may take (long polls add their wait to it).
        retry: Retry policy for ``503`` answers and connection errors.
        rng: Source of backoff jitter.
        token: Bearer token (default: ``$DQUEUE_TOKEN``).
        ssl_context: TLS settings for ``https://`` URLs (default: the system's CAs).
        ca_file: PEM file of a private CA, trusted for ``https://`` URLs.
        max_connections: Requests in flight at once (each holds one connection); more wait
            their turn.
        max_long_polls: ``wait`` long polls in flight at once; more wait their turn. A node
            parks a bounded number of long polls (``api.http_threads`` * 3/4) and refuses a
            worker's lease poll beyond them, so one client must not take them all.
    """

    def __init__(
        self,
        servers: str | Sequence[str] | None = None,
        *,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ca_file: str | None = None,
        max_connections: int = 32,
        max_long_polls: int = 8,
    ) -> None:
        if max_connections < 1 or max_long_polls < 1:
            raise ValueError("max_connections and max_long_polls must be at least 1")
        self._route = Route([normalize_url(u) for u in resolve_servers(servers)])
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self.token = resolve_token(token)
        if ssl_context is None and ca_file is not None:
            ssl_context = ssl.create_default_context(cafile=ca_file)
        self._ssl_context = ssl_context
        self._idle: dict[str, list[_Connection]] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._long_polls = asyncio.Semaphore(max_long_polls)

    @property
    def servers(self) -> list[str]:
        """The node URLs this client knows, leader hints included."""
        return list(self._route.urls)

    async def enqueue(
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
        """Enqueue one task and return it; the arguments are ``Client.enqueue``'s."""
        body = enqueue_body(type, payload, priority, max_retries, idempotency_key, delay, queue)
        return enqueued((await self._request("POST", "/tasks", body))[1],
                        idempotency_key is None)

    async def enqueue_many(self, tasks: Iterable[Mapping[str, Any]]) -> list[Task]:
        """Enqueue many tasks in batches of up to 1,000, in order (items as for
        ``Client.enqueue_many``)."""
        bodies, auto = batch_bodies(tasks)
        out: list[Task] = []
        for start in range(0, len(bodies), MAX_BATCH):
            batch = {"tasks": bodies[start:start + MAX_BATCH]}
            raws = tasks_of((await self._request("POST", "/tasks/batch", batch))[1])
            out.extend(enqueued(raw, auto[start + i]) for i, raw in enumerate(raws))
        return out

    async def get(self, task_id: str) -> Task:
        """Return the task with that id. Raises TaskNotFound."""
        return Task.from_wire((await self._request("GET", _task_path(task_id)))[1])

    async def wait(self, task_id: str, timeout: float = 30.0) -> Task:
        """Wait (long polls on the node) until the task is completed, dead or cancelled, and
        return it. Raises WaitTimeout after ``timeout`` seconds, TaskNotFound."""
        polls = WaitPolls(task_id, timeout)
        while True:
            async with self._long_polls:
                path, wait_s = polls.next()
                obj = (await self._request("GET", path, wait_s=wait_s))[1]
            task = polls.outcome(obj)
            if task is not None:
                return task

    async def cancel(self, task_id: str) -> Task:
        """Cancel a pending task. Raises TaskNotFound or InvalidState."""
        return Task.from_wire(
            (await self._request("POST", _task_path(task_id, "/cancel"), {}))[1])

    async def health(self) -> dict[str, Any]:
        """The answering node's id, role, term, leader and indexes (``GET /health``)."""
        return as_dict((await self._request("GET", "/health"))[1])

    async def aclose(self) -> None:
        """Close the idle keep-alive connections."""
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- internals ----------------------------------------------------------------------

    async def _request(
        self, method: str, path: str, body: Any = None, *, wait_s: float = 0.0
    ) -> tuple[int, Any]:
        """Send one request with ``http_rules.Attempts``' retries; ``(status, JSON or None)``.

        Raises the typed error of any 4xx, NoLeader or Unavailable when the deadline passes.
        """
        payload = encode_body(body)
        headers = request_headers(self.token, payload is not None)
        attempts = Attempts(self._route, self.retry, self._rng, wait_s=wait_s,
                            had_token=bool(self.token))
        while True:
            url = attempts.url()
            try:
                async with self._slots:
                    status, answer_headers, data = await self._send(
                        url, method, path, payload, headers, self.timeout_s + wait_s)
            except OSError as exc:  # TimeoutError and BadAnswer included
                attempts.connection_failed(url, exc)
            else:
                answer = attempts.answered(url, status, _reader(answer_headers), data)
                if answer is not None:
                    if answer.park_s:
                        await asyncio.sleep(answer.park_s)
                    return answer.status, answer.obj
            await asyncio.sleep(attempts.pause_s())

    async def _send(
        self, url: str, method: str, path: str, payload: bytes | None,
        headers: dict[str, str], timeout_s: float,
    ) -> tuple[int, dict[str, str], bytes]:
        """One attempt; a kept-alive connection the node closed meanwhile is retried once on a
        new one."""
        async with asyncio.timeout(timeout_s):
            idle = self._idle.setdefault(url, [])
            while idle:
                conn = idle.pop()
                try:
                    return await self._exchange(url, conn, method, path, payload, headers)
                except (ConnectionResetError, BrokenPipeError):
                    continue  # closed by the node while idle: try another, then a new one
            conn = await self._open(url)
            return await self._exchange(url, conn, method, path, payload, headers)

    async def _open(self, url: str) -> _Connection:
        parts = urlsplit(url)
        context = None
        if parts.scheme == "https":
            context = self._ssl_context or ssl.create_default_context()
        reader, writer = await asyncio.open_connection(
            parts.hostname or "127.0.0.1", parts.port, ssl=context, limit=MAX_HEADER_BYTES)
        return _Connection(reader, writer)

    async def _exchange(
        self, url: str, conn: _Connection, method: str, path: str, payload: bytes | None,
        headers: dict[str, str],
    ) -> tuple[int, dict[str, str], bytes]:
        """Write one request on ``conn``, read its answer, and pool ``conn`` again unless the
        answer closes it. Any failure (or cancellation) closes ``conn``."""
        try:
            host = urlsplit(url).netloc
            lines = [f"{method} {path} HTTP/1.1", f"Host: {host}",
                     f"Content-Length: {len(payload or b'')}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            conn.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            if payload:
                conn.writer.write(payload)
            await conn.writer.drain()
            status, answer_headers, data, keep_alive = await read_answer(conn.reader, method)
        except BaseException:
            conn.close()
            raise
        if keep_alive:
            self._idle.setdefault(url, []).append(conn)
        else:
            conn.close()
        return status, answer_headers, data


async def read_answer(
    reader: asyncio.StreamReader, method: str = "GET"
) -> tuple[int, dict[str, str], bytes, bool]:
    """Read one HTTP/1.1 answer: status, headers (names lowercased), body, and whether the
    connection may carry another request.

    Raises:
        ConnectionResetError: the node closed the connection before answering.
        BadAnswer: the answer is not HTTP/1.x, or ends inside its body.
    """
    try:
        first = await reader.readline()
        if not first:
            raise ConnectionResetError("the node closed the connection before answering")
        version, _, rest = first.decode("latin-1").rstrip("\r\n").partition(" ")
        if not version.startswith("HTTP/1."):
            raise BadAnswer(f"not an HTTP/1.x answer: {first[:80]!r}")
        status = int(rest.split(" ", 1)[0])
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            if len(headers) >= MAX_HEADERS:
                raise BadAnswer(f"more than {MAX_HEADERS} header lines")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        keep_alive = (version == "HTTP/1.1"
                      and headers.get("connection", "").lower() != "close")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return status, headers, b"", keep_alive
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, headers, await _read_chunked(reader), keep_alive
        if "content-length" in headers:
            data = await reader.readexactly(_body_size(int(headers["content-length"])))
            return status, headers, data, keep_alive
        # The body ends with the connection.
        data = await reader.read(MAX_BODY_BYTES + 1)
        _body_size(len(data))
        return status, headers, data, False
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        raise BadAnswer(f"unreadable answer: {exc.__class__.__name__}: {exc}") from None


def _body_size(size: int) -> int:
    if not 0 <= size <= MAX_BODY_BYTES:
        raise BadAnswer(f"an answer body of {size} bytes (at most {MAX_BODY_BYTES})")
    return size


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size = int((await reader.readline()).split(b";", 1)[0].strip(), 16)
        total = _body_size(total + size)
        if size == 0:
            for _ in range(MAX_HEADERS + 1):  # trailers
                if (await reader.readline()) in (b"\r\n", b"\n", b""):
                    break
            else:
                raise BadAnswer(f"more than {MAX_HEADERS} trailer lines")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)  # the CRLF after each chunk


def _reader(headers: dict[str, str]) -> Callable[[str], str | None]:
    """A case-insensitive ``header(name)`` over lowercased names, as ``Attempts`` reads them."""
    return lambda name: headers.get(name.lower())


def _task_path(task_id: str, suffix: str = "") -> str:
    return f"/tasks/{quote(task_id, safe='')}{suffix}"
