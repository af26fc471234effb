"""Worker resources: ``POST /workers/heartbeat`` (a worker says it is alive) and
``GET /workers`` (who is).

The heartbeat body is the ``worker_heartbeat`` command's fields in HTTP's units (seconds, RFC
3339 times), checked by ``workers.check_info`` (the rules the state machine applies again) so
that a bad field is a 400 naming it. The table is replicated: every node lists the same workers
(dqueue/queue/workers.py, docs/worker.md "Seeing the workers").
"""

from __future__ import annotations

import datetime
from typing import Any

import falcon

from dqueue.api import validation as v
from dqueue.api.deps import ApiDeps, send_json
from dqueue.api.errors import invalid
from dqueue.api.render import render_times
from dqueue.queue import fields, workers
from dqueue.queue.fields import InvalidCommand

HEARTBEAT_FIELDS = frozenset({"worker_id", "host", "pid", "transport", "queues", "types",
                              "concurrency", "in_flight", "started_at", "heartbeat_seconds",
                              "leaving"})
_REQUIRED = ("worker_id", "host", "pid", "concurrency", "started_at", "heartbeat_seconds")


def _time_ms(body: dict[str, Any], name: str) -> int:
    """An RFC 3339 time with its offset (``2026-12-03T16:00:00Z``) in Unix milliseconds."""
    value = body.get(name)
    problem = f"{name} must be an RFC 3339 time with an offset, such as 2026-12-03T16:00:00Z"
    if not isinstance(value, str) or len(value) > 64:
        raise invalid(name, problem)
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise invalid(name, problem) from None
    if parsed.tzinfo is None:
        raise invalid(name, problem)
    if parsed.timestamp() < 0:
        raise invalid(name, f"{name} must not be before 1970")
    return round(parsed.timestamp() * 1000)


def heartbeat_command(body: dict[str, Any]) -> dict[str, Any]:
    """The plain ``worker_heartbeat`` command of a valid heartbeat body.

    Raises:
        ApiError: 400 naming the first bad, unknown or missing field.
    """
    v.check_keys(body, HEARTBEAT_FIELDS, _REQUIRED)
    plain = {key: body[key] for key in HEARTBEAT_FIELDS & body.keys()
             if key not in ("started_at", "heartbeat_seconds", "leaving")}
    plain["heartbeat_ms"] = v.opt_seconds_ms(body, "heartbeat_seconds", fields.HEARTBEAT_MS)
    plain["started_at_ms"] = _time_ms(body, "started_at")
    leaving = bool(v.opt_bool(body, "leaving"))
    try:
        info = workers.check_info(plain)
    except InvalidCommand as exc:
        raise invalid(exc.field, exc.message) from None
    return workers.Heartbeat(info=info, leaving=leaving).to_plain()


def render_worker(plain: dict[str, Any]) -> dict[str, Any]:
    """A listed worker as the API shows it: times as RFC 3339, the interval in seconds."""
    out = render_times(plain)
    out["heartbeat_seconds"] = out.pop("heartbeat_ms") / 1000
    return out


class WorkerCollection:
    """``GET /workers``: every listed worker, sorted by id."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        v.query_params(req, frozenset())
        value = self._deps.read({"op": "workers"})
        send_json(resp, falcon.HTTP_200,
                  {"workers": [render_worker(item) for item in value["workers"]]})


class WorkerHeartbeat:
    """``POST /workers/heartbeat``: list or refresh the worker; ``leaving`` drops it now."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = v.read_json_body(req, self._deps.config.max_body_bytes)
        value = self._deps.command(heartbeat_command(body))
        worker = value.get("worker")
        send_json(resp, falcon.HTTP_200,
                  {"worker": None if worker is None else render_worker(worker)})


def register(app: falcon.App, deps: ApiDeps) -> None:
    """Add the worker routes to ``app``."""
    app.add_route("/workers", WorkerCollection(deps))
    app.add_route("/workers/heartbeat", WorkerHeartbeat(deps))
