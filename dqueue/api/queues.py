"""Named queue resources: create, list, show, change, delete, purge and redrive a queue.

Settings travel in the units of the rest of the API (``*_seconds``, docs/http-api.md,
"Queues"); each resource turns the body into one plain command of ``dqueue/queue/queues.py``,
whose field rules check every value again.
"""

from __future__ import annotations

from typing import Any

import falcon

from dqueue.api import validation as v
from dqueue.api.deps import ApiDeps, send_json
from dqueue.api.errors import ApiError, invalid
from dqueue.api.render import render_times
from dqueue.protocol.errors import ErrorCode
from dqueue.queue import fields
from dqueue.queue.fields import InvalidCommand
from dqueue.queue.rate_limits import check_rate_limit

# HTTP name -> (setting name, rule, in seconds?). The ``*_seconds`` settings take seconds
# (fractions allowed, as every ``*_seconds`` field of the API) and are stored in ms.
_SETTINGS: dict[str, tuple[str, fields.IntRule | fields.TextRule | None, bool]] = {
    "lease_seconds": ("lease_ms", fields.LEASE_MS, True),
    "max_retries": ("max_retries", fields.MAX_RETRIES, False),
    "backoff_base_seconds": ("backoff_base_ms", fields.BACKOFF_MS, True),
    "backoff_cap_seconds": ("backoff_cap_ms", fields.BACKOFF_MS, True),
    "retention_seconds": ("retention_ms", fields.RETENTION_MS, True),
    "delay_seconds": ("delay_ms", fields.DELAY_MS, True),
    "max_depth": ("max_depth", fields.MAX_DEPTH, False),
    "max_message_bytes": ("max_message_bytes", fields.MAX_MESSAGE_BYTES, False),
    "wait_seconds": ("wait_ms", fields.WAIT_MS, True),
    "dead_letter_queue": ("dead_letter_queue", fields.QUEUE_NAME, False),
    "tags": ("tags", None, False),
    "content_dedup": ("content_dedup", None, False),
    "rate_limit": ("rate_limit", None, False),
}
SETTING_FIELDS = frozenset(_SETTINGS)
_BY_SETTING = {setting: (name, seconds) for name, (setting, _, seconds) in _SETTINGS.items()}
MOVE_FIELDS = frozenset({"destination", "max_tasks"})


def queue_name(value: str) -> str:
    """A queue name from the path; anything that cannot be one is simply not found."""
    if not fields.QUEUE_NAME.accepts(value):
        raise ApiError(falcon.HTTP_404, ErrorCode.QUEUE_NOT_FOUND,
                       f"no queue {value[:80]!r}: names are 1 to 80 letters, digits, - and _ "
                       f"(a FIFO queue's ends in .fifo)", field="name")
    return value


def settings_plain(body: dict[str, Any]) -> dict[str, Any]:
    """The queue settings of an HTTP body, as ``queues.check_settings`` reads them; a field
    given as null is passed as None (back to the default)."""
    plain: dict[str, Any] = {}
    for name, (setting, rule, seconds) in _SETTINGS.items():
        if name not in body:
            continue
        if body[name] is None:
            plain[setting] = None
        elif seconds:
            assert isinstance(rule, fields.IntRule)
            plain[setting] = v.opt_seconds_ms(body, name, rule)
        elif setting == "content_dedup":
            plain[setting] = v.opt_bool(body, name)
        elif setting == "rate_limit":
            try:
                plain[setting] = check_rate_limit(body[name], name).text
            except InvalidCommand as exc:
                raise invalid(exc.field, exc.message) from None
        elif setting == "tags":
            tags = body[name]
            if not isinstance(tags, dict) or not all(
                    fields.TAG_KEY.accepts(k) and fields.TAG_VALUE.accepts(t)
                    for k, t in tags.items()) or len(tags) > fields.MAX_TAGS:
                raise invalid(name, f"tags must be an object of at most {fields.MAX_TAGS} "
                                    "string values (keys 1 to 128 characters, values to 256)")
            plain[setting] = tags
        elif isinstance(rule, fields.TextRule):
            plain[setting] = v.opt_text(body, name, rule)
        else:
            assert isinstance(rule, fields.IntRule)
            plain[setting] = v.opt_field_int(body, name, rule)
    return plain


def render_queue(queue: dict[str, Any]) -> dict[str, Any]:
    """A queue as the API shows it: settings in the API's units, counts and depth."""
    settings: dict[str, Any] = {}
    for setting, value in queue["settings"].items():
        name, seconds = _BY_SETTING[setting]
        settings[name] = value / 1000 if seconds and value is not None else value
    counts = queue["counts"]
    out = render_times({"name": queue["name"], "created_at_ms": queue["created_at_ms"],
                        "updated_at_ms": queue["updated_at_ms"]})
    out.update(settings=settings, counts=counts,
               depth=counts.get("pending", 0) + counts.get("leased", 0))
    if "dead_letter_sources" in queue:
        out["dead_letter_sources"] = queue["dead_letter_sources"]
    return out


class _QueueResource:
    """A resource of the queue routes: it holds the API's dependencies."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps


class QueueCollection(_QueueResource):
    """``GET /queues``: every queue with its settings and counts (``?prefix=``)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = v.query_params(req, frozenset({"prefix"}))
        prefix = params.get("prefix") or None
        if prefix is not None and len(prefix) > fields.QUEUE_NAME.max_chars:
            raise invalid("prefix", "prefix is longer than any queue name")
        value = self._deps.read({"op": "queues", "prefix": prefix})
        send_json(resp, falcon.HTTP_200, {"queues": [render_queue(q) for q in value["queues"]]})


class QueueItem(_QueueResource):
    """``PUT``, ``GET``, ``PATCH`` and ``DELETE /queues/{name}``."""

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        name = queue_name(name)
        body = v.read_json_body(req, self._deps.config.max_body_bytes)
        v.check_keys(body, SETTING_FIELDS)
        value = self._deps.command({"op": "create_queue", "name": name,
                                    "settings": settings_plain(body)})
        send_json(resp, falcon.HTTP_201 if value["created"] else falcon.HTTP_200,
                  render_queue(value["queue"]))

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        name = queue_name(name)
        queue = self._deps.read({"op": "queue", "name": name})
        if queue is None:
            raise ApiError(falcon.HTTP_404, ErrorCode.QUEUE_NOT_FOUND,
                           f"no queue {name}; create it with PUT /queues/{name}", field="name")
        send_json(resp, falcon.HTTP_200, render_queue(queue))

    def on_patch(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        name = queue_name(name)
        body = v.read_json_body(req, self._deps.config.max_body_bytes)
        v.check_keys(body, SETTING_FIELDS)
        changes = settings_plain(body)
        if not changes:
            raise invalid("body", f"name at least one setting: {', '.join(sorted(_SETTINGS))}")
        value = self._deps.command({"op": "update_queue", "name": name, "changes": changes})
        send_json(resp, falcon.HTTP_200, render_queue(value["queue"]))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        name = queue_name(name)
        value = self._deps.command({"op": "delete_queue", "name": name})
        send_json(resp, falcon.HTTP_200, {"deleted": name, "tasks_deleted": value["count"]})


class QueuePurge(_QueueResource):
    """``POST /queues/{name}/purge``: delete its pending, leased and dead tasks."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        name = queue_name(name)
        value = self._deps.command({"op": "purge_queue", "name": name})
        send_json(resp, falcon.HTTP_200, {"purged": value["count"]})


class QueueMove(_QueueResource):
    """``POST /queues/{name}/move``: move its pending and dead tasks to ``destination``, or
    each back to the queue it was dead-lettered from (SQS StartMessageMoveTask)."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        name = queue_name(name)
        body = v.read_json_body(req, self._deps.config.max_body_bytes)
        v.check_keys(body, MOVE_FIELDS)
        value = self._deps.command({
            "op": "move_tasks", "source": name,
            "destination": v.opt_text(body, "destination", fields.QUEUE_NAME),
            "max_tasks": v.opt_field_int(body, "max_tasks", fields.MOVE_MAX_TASKS)})
        send_json(resp, falcon.HTTP_200, {"moved": value["count"]})
