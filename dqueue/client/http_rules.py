"""What the blocking ``Client`` and the asyncio ``AsyncClient`` share: every decision about a
request, none of its I/O.

Both clients send a request, hand what came back (an answer or a connection error) to an
``Attempts``, and either return, raise, or sleep the pause it names and send again to the node it
names. So the rules of docs/sdk.md hold for both from one definition: stick to the node that last
answered; follow the leader hint of a ``503``; rotate to the next node on a connection error or a
``503`` without hint; retry with capped exponential backoff and full jitter (at least the
``Retry-After`` of a ``503``, never past the deadline); raise the typed error of any other 4xx/5xx
at once. The request bodies and reply readers both clients build from are here too.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dqueue.client.errors import (
    DQueueError,
    NoLeader,
    ServerError,
    Unavailable,
    auth_error,
    error_from_code,
)
from dqueue.client.task import Task
from dqueue.protocol.errors import ErrorCode

JSON_TYPE = "application/json"
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]"})
ENQUEUE_FIELDS = frozenset({"type", "payload", "priority", "max_retries", "idempotency_key",
                            "delay", "queue"})


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often a request is retried on ``503`` or a connection error.

    Attempt ``n`` (from 0) sleeps a uniformly random time in ``[0, min(cap, base * 2**n)]``
    ("full jitter"), never past ``deadline_s`` after the first attempt.
    """

    deadline_s: float = 30.0
    backoff_base_s: float = 0.05
    backoff_cap_s: float = 1.0

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """The sleep before retry number ``attempt``."""
        return rng.uniform(0.0, min(self.backoff_cap_s, self.backoff_base_s * (2 ** attempt)))


def normalize_url(url: str, *, default_host: str = "127.0.0.1") -> str:
    """Return ``scheme://host:port`` for ``url``; accepts ``host:port`` and ``:port`` too.

    Raises:
        ValueError: ``url`` has no usable host or port, or a scheme other than http(s).
    """
    text = url.strip()
    if text.startswith(":"):
        text = default_host + text
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"unsupported URL scheme in {url!r} (http or https)")
    host = parts.hostname or default_host
    if host in WILDCARD_HOSTS:
        # A hint naming a bind-all address: the node is reachable where we reached it.
        host = default_host
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{port}"


class Route:
    """The node URLs a client knows (leader hints added as they come) and the one to ask next.

    Args:
        urls: Normalized node URLs, at least one.
    """

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.preferred = 0

    def current(self) -> str:
        """The node to send the next request to (the last one that answered)."""
        return self.urls[self.preferred % len(self.urls)]

    def rotate(self) -> None:
        """Move on to the next known node."""
        self.preferred = (self.preferred + 1) % len(self.urls)

    def follow_hint(self, leader_http: str | None, current: str) -> None:
        """Make the hinted leader the preferred node, adding it to the list if new."""
        if not leader_http:
            return
        parts = urlsplit(current)
        if "://" not in leader_http:
            # A hint is host:port: reach it the way the current node was reached (https
            # through TLS proxies, docs/security.md).
            leader_http = f"{parts.scheme}://{leader_http}"
        try:
            url = normalize_url(leader_http, default_host=parts.hostname or "127.0.0.1")
        except ValueError:
            return
        if url not in self.urls:
            self.urls.append(url)
        self.preferred = self.urls.index(url)


@dataclass(frozen=True)
class Answer:
    """A request's final answer: ``status``, the decoded JSON (None when empty or not JSON), and
    ``park_s``, a pause the caller takes before returning (a long poll the node refused to park:
    waiting here keeps a worker from polling it in a tight loop)."""

    status: int
    obj: Any
    park_s: float = 0.0


class Attempts:
    """The retry and leader-following decisions of one request; the caller does the I/O.

    Args:
        route: The client's nodes (shared by its requests; a hint followed here sticks).
        policy: Deadline and backoff.
        rng: Backoff jitter.
        wait_s: A long poll's wait (each attempt may take that much longer).
        had_token: Whether the request carries a bearer token (for the wording of a 401).
    """

    def __init__(self, route: Route, policy: RetryPolicy, rng: random.Random, *,
                 wait_s: float = 0.0, had_token: bool = False) -> None:
        self.route = route
        self.policy = policy
        self.rng = rng
        self.wait_s = wait_s
        self.had_token = had_token
        # Retries start until deadline_s after the first attempt; a long poll's wait only
        # lengthens each attempt (the socket timeout), not the time spent retrying.
        self.deadline = time.monotonic() + policy.deadline_s
        self.attempt = 0
        self.last_error: DQueueError | None = None
        self._retry_after_s: float | None = None

    def url(self) -> str:
        """The node to send this attempt to."""
        self._retry_after_s = None
        return self.route.current()

    def connection_failed(self, url: str, exc: BaseException) -> None:
        """No answer from ``url`` (refused, reset, timed out): try the next node."""
        self.last_error = Unavailable(f"{url}: {exc.__class__.__name__}: {exc}",
                                      code=ErrorCode.UNAVAILABLE)
        self.route.rotate()

    def answered(self, url: str, status: int, header: Callable[[str], str | None],
                 data: bytes) -> Answer | None:
        """Judge an answer of ``url``: the final Answer, or None to retry after ``pause_s``.

        Args:
            url: The node that answered.
            status: The HTTP status.
            header: Reads one response header by name (case-insensitive).
            data: The response body.

        Raises:
            DQueueError: the typed error of a 4xx or of a 5xx other than 503.
        """
        obj = decode(data)
        if status < 400:
            park_s = 0.0
            if self.wait_s > 0 and str(header("Dqueue-Wait") or "").startswith("refused"):
                park_s = min(retry_after_s(header("Retry-After")) or 1.0, self.wait_s)
            return Answer(status, obj, park_s)
        err = error_fields(obj)
        if status in (401, 403):
            raise auth_error(str(err.get("code") or ""),
                             str(err.get("message") or f"HTTP {status}"),
                             status=status, had_token=self.had_token, role=err.get("role"))
        if status != 503:
            message = err.get("message") or data[:200].decode(errors="replace")
            raise error_from_code(err.get("code") or code_for(status), str(message),
                                  status=status, field=err.get("field"))
        self.last_error = NoLeader(str(err.get("message") or "no leader"),
                                   code=str(err.get("code") or ErrorCode.NO_LEADER),
                                   leader_id=err.get("leader_id"),
                                   leader_http=err.get("leader_http"))
        if err.get("leader_http"):
            self.route.follow_hint(str(err["leader_http"]), url)
        elif len(self.route.urls) > 1:
            self.route.rotate()
        self._retry_after_s = retry_after_s(header("Retry-After"))
        return None

    def pause_s(self) -> float:
        """The sleep before the next attempt.

        Raises:
            DQueueError: the last error (NoLeader, Unavailable) once the deadline has passed.
        """
        now = time.monotonic()
        if now >= self.deadline:
            assert self.last_error is not None
            raise self.last_error
        pause = self.policy.backoff_s(self.attempt, self.rng)
        if isinstance(self.last_error, NoLeader) and self._retry_after_s is not None:
            pause = max(pause, min(self._retry_after_s, self.policy.backoff_cap_s))
        self.attempt += 1
        return min(pause, max(0.0, self.deadline - now))


def request_headers(token: str | None, has_body: bool) -> dict[str, str]:
    """The headers of every request: JSON, and the bearer token when there is one."""
    headers = {"Accept": JSON_TYPE}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if has_body:
        headers["Content-Type"] = JSON_TYPE
    return headers


def encode_body(body: Any) -> bytes | None:
    """A request body as JSON bytes (None: no body)."""
    return None if body is None else json.dumps(body).encode()


def enqueue_body(
    type: str,
    payload: Any,
    priority: int | None,
    max_retries: int | None,
    idempotency_key: str | None,
    delay: float | None,
    queue: str | None = None,
) -> dict[str, Any]:
    """The body of one enqueue; a generated key when the caller gives none, so that a retry of
    this very request is deduplicated by the node."""
    return {"type": type, "payload": payload,
            "idempotency_key": idempotency_key or f"auto-{uuid.uuid4().hex}",
            **present(priority=priority, max_retries=max_retries, delay_seconds=delay,
                      queue=queue)}


def batch_bodies(tasks: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[bool]]:
    """The enqueue bodies of ``enqueue_many``'s items, and for each whether its key was
    generated (a duplicate of a generated key is our own retry, not the caller's).

    Raises:
        ValueError: an item has a field ``enqueue`` does not take.
    """
    bodies: list[dict[str, Any]] = []
    auto: list[bool] = []
    for item in tasks:
        unknown = set(item) - ENQUEUE_FIELDS
        if unknown:
            raise ValueError(f"unknown task fields {sorted(unknown)}")
        key = item.get("idempotency_key")
        auto.append(key is None)
        bodies.append(enqueue_body(item["type"], item.get("payload"), item.get("priority"),
                                   item.get("max_retries"), key, item.get("delay"),
                                   item.get("queue")))
    return bodies, auto


def enqueued(raw: Any, generated_key: bool) -> Task:
    """The Task an enqueue answered; with a generated key ``duplicate`` is False, since the
    first attempt it matched was this very call's."""
    task = Task.from_wire(raw)
    if generated_key and task.duplicate:
        task = dataclasses.replace(task, duplicate=False)
    return task


def present(**fields: Any) -> dict[str, Any]:
    """The fields that are not None (None means "the server's default": not sent)."""
    return {name: value for name, value in fields.items() if value is not None}


def decode(data: bytes) -> Any:
    """A response body as JSON, or None when it is empty or not JSON."""
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def error_fields(obj: Any) -> dict[str, Any]:
    """The error object of an error answer, with leader hints found at either level."""
    if not isinstance(obj, dict):
        return {}
    err = obj.get("error")
    fields = dict(err) if isinstance(err, dict) else {}
    for key in ("leader_id", "leader_http"):
        if fields.get(key) is None and obj.get(key) is not None:
            fields[key] = obj[key]
    return fields


def code_for(status: int) -> str:
    """The error code of an error answer that names none."""
    return {400: ErrorCode.INVALID_FIELD, 404: ErrorCode.NOT_FOUND,
            409: ErrorCode.LEASE_CONFLICT, 413: ErrorCode.BODY_TOO_LARGE,
            415: ErrorCode.UNSUPPORTED_MEDIA_TYPE}.get(status, ErrorCode.ERROR)


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (None when absent or not a number)."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def tasks_of(obj: Any) -> list[Any]:
    """The raw tasks of a listing or batch answer (one task answered alone counts)."""
    if isinstance(obj, dict) and isinstance(obj.get("tasks"), list):
        return obj["tasks"]
    if isinstance(obj, dict) and "id" in obj:
        return [obj]
    raise ServerError("reply has no task list", code=ErrorCode.BAD_REPLY)


def as_dict(obj: Any) -> dict[str, Any]:
    """``obj`` if it is a JSON object, else ``ServerError(BAD_REPLY)``."""
    if not isinstance(obj, dict):
        raise ServerError("reply is not a JSON object", code=ErrorCode.BAD_REPLY)
    return obj
