"""The SDK's named-queue operations, mixed into ``Client`` (docs/sdk.md, "Queues").

Settings are keyword arguments in the HTTP API's names and units (``lease_seconds``,
``max_retries``, ``dead_letter_queue``, ...: docs/http-api.md, "Queues"); a queue comes back
as the API renders it (a dict with ``name``, ``settings``, ``counts`` and ``depth``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from dqueue.client.admin_requests import Requester, item_path, listing, named_object
from dqueue.client.errors import ServerError
from dqueue.protocol.errors import ErrorCode


def _queue_path(name: str, suffix: str = "") -> str:
    return item_path("queues", name, suffix)


def _as_queue(obj: Any) -> dict[str, Any]:
    return named_object(obj, "queue")


def _count(obj: Any, name: str) -> int:
    if not isinstance(obj, dict) or not isinstance(obj.get(name), int):
        raise ServerError(f"reply without {name}", code=ErrorCode.BAD_REPLY)
    return int(obj[name])


class QueueAdmin:
    """Create, list, show, change, purge, move and delete named queues; redrive and purge
    dead tasks."""

    def redrive(self: Requester, task_id: str | None = None, *,
                type: str | None = None) -> int:
        """Re-queue dead tasks (one, one type, or all) with attempts reset; return the count."""
        body = {name: value for name, value in (("task_id", task_id), ("type", type))
                if value is not None}
        return _count(self._request("POST", "/dlq/redrive", body)[1], "redriven")

    def purge(self: Requester, *, type: str | None = None) -> int:
        """Delete dead tasks (of one type, or all); return the count."""
        path = "/dlq" + ("?" + urlencode({"type": type}) if type is not None else "")
        return _count(self._request("DELETE", path)[1], "purged")

    def create_queue(self: Requester, name: str, **settings: Any) -> dict[str, Any]:
        """Create queue ``name`` with ``settings`` (``PUT /queues/{name}``); creating it again
        with equal settings returns it. Raises Conflict (``queue_exists``) for other ones."""
        return _as_queue(self._request("PUT", _queue_path(name), settings)[1])

    def list_queues(self: Requester, prefix: str | None = None) -> list[dict[str, Any]]:
        """Every queue (whose name starts with ``prefix``), by name."""
        path = "/queues" + ("?" + urlencode({"prefix": prefix}) if prefix else "")
        obj = self._request("GET", path)[1]
        queues = listing(obj, "queues", "queue")
        return [_as_queue(queue) for queue in queues]

    def get_queue(self: Requester, name: str) -> dict[str, Any]:
        """One queue's settings, counts by status and depth. Raises NotFound."""
        return _as_queue(self._request("GET", _queue_path(name))[1])

    def update_queue(self: Requester, name: str, **settings: Any) -> dict[str, Any]:
        """Change the given settings (None: back to the default); the others stay."""
        return _as_queue(self._request("PATCH", _queue_path(name), settings)[1])

    def delete_queue(self: Requester, name: str) -> int:
        """Delete a queue and its tasks; return how many tasks went with it."""
        return _count(self._request("DELETE", _queue_path(name))[1], "tasks_deleted")

    def purge_queue(self: Requester, name: str) -> int:
        """Delete the queue's pending, leased and dead tasks; return the count."""
        return _count(self._request("POST", _queue_path(name, "/purge"), {})[1], "purged")

    def move_tasks(self: Requester, source: str, destination: str | None = None, *,
                   max_tasks: int | None = None) -> int:
        """Move pending and dead tasks out of ``source`` (a dead-letter queue): to
        ``destination``, or each back to the queue it died in; return the count."""
        body = {name: value for name, value in
                (("destination", destination), ("max_tasks", max_tasks)) if value is not None}
        return _count(self._request("POST", _queue_path(source, "/move"), body)[1], "moved")
