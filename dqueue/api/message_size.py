"""A queue's ``max_message_bytes``, one rule for the HTTP and the SQS APIs.

A message is measured as SQS measures it, by what a receiver gets: an SQS message is its body
plus each attribute's name, type and value (``sqs_messages.message_bytes``); a task enqueued
over HTTP is the body an SQS receiver of it would get (``payload_message_bytes``: a string
payload as it is, any other payload as compact JSON), in UTF-8 bytes. A message larger than
its queue's ``max_message_bytes`` is refused with a 400 naming the field (HTTP) or
InvalidParameterValue (SQS); ``0`` means the queue sets no limit of its own, and only the
edges' limits apply (``api.max_body_bytes``; SQS's 1 MiB).

The edges read a queue's settings at most once a second per queue and API process
(``QueueLimits``), so a change of ``max_message_bytes`` takes up to a second to apply there.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

SETTINGS_TTL_S = 1.0
MAX_CACHED_QUEUES = 10_000


def payload_message_bytes(payload: Any) -> int:
    """The size in bytes of the SQS body a task with ``payload`` is received as."""
    if isinstance(payload, str):
        return len(payload.encode("utf-8"))
    return len(json.dumps(payload, separators=(",", ":")).encode("utf-8"))


def too_large(size_bytes: int, limit_bytes: int) -> bool:
    """Whether a message of ``size_bytes`` exceeds a queue limit (``0``: no limit)."""
    return 0 < limit_bytes < size_bytes


class QueueLimits:
    """Each queue's ``max_message_bytes``, read at most once per ``ttl_s`` per queue.

    Args:
        read: ``read(query)`` of a queue (``{"op": "queue", "name": ...}``): its plain view
            with ``settings``, or None when there is no such queue.
        ttl_s: how long a reading is used.
        max_queues: bound on the cached queues (the cache is emptied when full).
    """

    def __init__(self, read: Callable[[dict[str, Any]], Any], ttl_s: float = SETTINGS_TTL_S,
                 max_queues: int = MAX_CACHED_QUEUES) -> None:
        self._read = read
        self._ttl_s = ttl_s
        self._max_queues = max_queues
        self._cache: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def max_message_bytes(self, name: str) -> int:
        """The queue's limit; ``0`` when it sets none or does not exist (an enqueue to a
        missing queue then fails as it always did, with ``queue_not_found``)."""
        now = time.monotonic()
        hit = self._cache.get(name)
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        queue = self._read({"op": "queue", "name": name})
        limit = 0
        if isinstance(queue, dict) and isinstance(queue.get("settings"), dict):
            value = queue["settings"].get("max_message_bytes")
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                limit = value
        with self._lock:
            if len(self._cache) >= self._max_queues:
                self._cache.clear()
            self._cache[name] = (now, limit)
        return limit
