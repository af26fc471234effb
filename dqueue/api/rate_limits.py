"""Rate limit resources: list, show, set and remove the limit of a task type.

``PUT /rate-limits/{type}`` takes ``{"rate_limit": "100/m"}``, checked by
``rate_limits.check_rate_limit`` (the rule the state machine applies again) so that a bad value
is a 400 naming the field; the command is the plain ``put_rate_limit`` of
``dqueue/queue/rate_limits.py``. A queue's own limit is its ``rate_limit`` setting
(``PUT``/``PATCH /queues/{name}``). Both are enforced at lease time (docs/queues.md).
"""

from __future__ import annotations

from typing import Any

import falcon

from dqueue.api import validation as v
from dqueue.api.deps import ApiDeps, send_json
from dqueue.api.errors import ApiError, invalid
from dqueue.protocol.errors import ErrorCode
from dqueue.queue import fields
from dqueue.queue.fields import InvalidCommand
from dqueue.queue.rate_limits import check_rate_limit

BODY_FIELDS = frozenset({"rate_limit"})


def type_name(value: str) -> str:
    """A task type from the path; anything that cannot be one has no limit."""
    if not fields.TASK_TYPE.accepts(value):
        raise ApiError(falcon.HTTP_404, ErrorCode.NOT_FOUND,
                       f"no rate limit for {value[:128]!r}: a type is 1 to 128 letters, "
                       "digits and _.:/- (starting with a letter or digit)", field="type")
    return value


def _not_found(task_type: str) -> ApiError:
    return ApiError(falcon.HTTP_404, ErrorCode.NOT_FOUND,
                    f"no rate limit for type {task_type}; set one with PUT /rate-limits/"
                    f"{task_type}", field="type")


class _RateLimitResource:
    """A resource of the rate limit routes: it holds the API's dependencies."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def _limits(self) -> list[dict[str, Any]]:
        value = self._deps.read({"op": "rate_limits"})
        limits: list[dict[str, Any]] = value["rate_limits"]
        return limits


class RateLimitCollection(_RateLimitResource):
    """``GET /rate-limits``: every type limit, by type."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        v.query_params(req, frozenset())
        send_json(resp, falcon.HTTP_200, {"rate_limits": self._limits()})


class RateLimitItem(_RateLimitResource):
    """``PUT``, ``GET`` and ``DELETE /rate-limits/{type}``."""

    def on_put(self, req: falcon.Request, resp: falcon.Response, type: str) -> None:
        task_type = type_name(type)
        body = v.read_json_body(req, self._deps.config.max_body_bytes)
        v.check_keys(body, BODY_FIELDS)
        if body.get("rate_limit") is None:
            raise invalid("rate_limit", "rate_limit is required, for example \"100/m\"")
        try:
            limit = check_rate_limit(body["rate_limit"], "rate_limit")
        except InvalidCommand as exc:
            raise invalid(exc.field, exc.message) from None
        value = self._deps.command({"op": "put_rate_limit", "type": task_type,
                                    "rate_limit": limit.text})
        send_json(resp, falcon.HTTP_201 if value["created"] else falcon.HTTP_200,
                  {"type": value["type"], "rate_limit": value["rate_limit"]})

    def on_get(self, req: falcon.Request, resp: falcon.Response, type: str) -> None:
        task_type = type_name(type)
        for item in self._limits():
            if item["type"] == task_type:
                send_json(resp, falcon.HTTP_200, item)
                return
        raise _not_found(task_type)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, type: str) -> None:
        task_type = type_name(type)
        value = self._deps.command({"op": "delete_rate_limit", "type": task_type})
        send_json(resp, falcon.HTTP_200, value)


def register(app: falcon.App, deps: ApiDeps) -> None:
    """Add the rate limit routes to ``app``."""
    app.add_route("/rate-limits", RateLimitCollection(deps))
    app.add_route("/rate-limits/{type}", RateLimitItem(deps))
