"""Dead-letter queue resources: redrive and purge (listing is ``GET /tasks?status=dead``)."""

from __future__ import annotations

import falcon

from dqueue.api import validation as v
from dqueue.api.deps import ApiDeps, send_json
from dqueue.api.errors import invalid
from dqueue.queue import fields

REDRIVE_FIELDS = frozenset({"task_id", "type"})


class DlqRedrive:
    """``POST /dlq/redrive``: re-queue one dead task, the dead tasks of a type, or all."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = v.read_json_body(req, self._deps.config.max_body_bytes)
        v.check_keys(body, REDRIVE_FIELDS)
        task_id = v.opt_text(body, "task_id", fields.TASK_ID)
        task_type = v.opt_text(body, "type", fields.TASK_TYPE)
        if task_id is not None and task_type is not None:
            raise invalid("task_id", "give task_id or type, not both")
        value = self._deps.command({"op": "redrive", "id": task_id, "type": task_type})
        send_json(resp, falcon.HTTP_200, {"redriven": value["count"]})


class Dlq:
    """``DELETE /dlq?type=``: purge dead tasks (of one type, or all)."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = v.query_params(req, frozenset({"type"}))
        task_type = v.opt_text(params, "type", fields.TASK_TYPE) if params.get("type") else None
        value = self._deps.command({"op": "purge", "type": task_type})
        send_json(resp, falcon.HTTP_200, {"purged": value["count"]})
