"""Periodic schedule resources: put, list, show, delete, pause and resume a schedule.

The body of ``PUT /schedules/{name}`` is checked by ``schedules.check_spec`` (the rules the
state machine applies again) so that a bad field is a 400 naming it; the command is then the
plain ``put_schedule`` of ``dqueue/queue/schedules.py`` (docs/schedules.md).
"""

from __future__ import annotations

from typing import Any

import falcon

from dqueue.api import validation as v
from dqueue.api.deps import ApiDeps, send_json
from dqueue.api.errors import ApiError, invalid
from dqueue.api.render import render_times
from dqueue.logs import rfc3339_ms
from dqueue.protocol.errors import ErrorCode
from dqueue.queue import fields, schedules
from dqueue.queue.fields import InvalidCommand

_SLOTS = ("last_slot_ms", "next_slot_ms", "last_fired_slot_ms", "last_missed_slot_ms")


def schedule_name(value: str) -> str:
    """A schedule name from the path; anything that cannot be one is simply not found."""
    if not fields.QUEUE_NAME.accepts(value):
        raise ApiError(falcon.HTTP_404, ErrorCode.NOT_FOUND,
                       f"no schedule {value[:80]!r}: names are 1 to 80 letters, digits, - "
                       f"and _", field="name")
    return value


def render_schedule(plain: dict[str, Any]) -> dict[str, Any]:
    """A schedule as the API shows it: times as RFC 3339 (``*_slot`` also), the rest as is."""
    out = render_times(plain)
    for key in _SLOTS:
        value = out.pop(key, None)
        out[key[:-3]] = rfc3339_ms(value) if type(value) is int else None
    return out


def _not_found(name: str) -> ApiError:
    return ApiError(falcon.HTTP_404, ErrorCode.NOT_FOUND,
                    f"no schedule {name}; create it with PUT /schedules/{name}", field="name")


class _ScheduleResource:
    """A resource of the schedule routes: it holds the API's dependencies."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps


class ScheduleCollection(_ScheduleResource):
    """``GET /schedules``: every schedule, in creation order."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        v.query_params(req, frozenset())
        value = self._deps.read({"op": "schedules"})
        send_json(resp, falcon.HTTP_200,
                  {"schedules": [render_schedule(item) for item in value["schedules"]]})


class ScheduleItem(_ScheduleResource):
    """``PUT``, ``GET`` and ``DELETE /schedules/{name}``."""

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        name = schedule_name(name)
        body = v.read_json_body(req, self._deps.config.max_body_bytes)
        try:
            spec = schedules.check_spec(body)
        except InvalidCommand as exc:
            raise invalid(exc.field, exc.message) from None
        value = self._deps.command({"op": "put_schedule", "name": name,
                                    "schedule": spec.to_plain()})
        send_json(resp, falcon.HTTP_201 if value["created"] else falcon.HTTP_200,
                  render_schedule(value["schedule"]))

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        name = schedule_name(name)
        value = self._deps.read({"op": "schedule", "name": name})
        if value is None:
            raise _not_found(name)
        send_json(resp, falcon.HTTP_200, render_schedule(value))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        name = schedule_name(name)
        value = self._deps.command({"op": "delete_schedule", "name": name})
        send_json(resp, falcon.HTTP_200, value)


class SchedulePause(_ScheduleResource):
    """``POST /schedules/{name}/pause``."""

    op = "pause_schedule"

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        name = schedule_name(name)
        value = self._deps.command({"op": self.op, "name": name})
        send_json(resp, falcon.HTTP_200, render_schedule(value["schedule"]))


class ScheduleResume(SchedulePause):
    """``POST /schedules/{name}/resume``: slots passed while paused are skipped."""

    op = "resume_schedule"


def register(app: falcon.App, deps: ApiDeps) -> None:
    """Add the schedule routes to ``app``."""
    app.add_route("/schedules", ScheduleCollection(deps))
    app.add_route("/schedules/{name}", ScheduleItem(deps))
    app.add_route("/schedules/{name}/pause", SchedulePause(deps))
    app.add_route("/schedules/{name}/resume", ScheduleResume(deps))

