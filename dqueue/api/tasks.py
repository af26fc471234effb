"""Task resources: enqueue (single and batch), lease, ack, nack, extend, cancel, get, list.

Each resource validates its input completely (``dqueue.api.validation``), turns it into one plain
command or query (docs/internals.md section 4) and renders the outcome (docs/http-api.md).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import falcon

from dqueue.api import validation as v
from dqueue.api.auth import may_see_leases
from dqueue.api.deps import ApiDeps, send_json
from dqueue.api.errors import ApiError, invalid
from dqueue.api.fencing import lease_token
from dqueue.api.longpoll import RETRY_AFTER_S as POLL_RETRY_AFTER_S
from dqueue.api.longpoll import WAIT_REFUSED_HEADER
from dqueue.api.message_size import QueueLimits, payload_message_bytes, too_large
from dqueue.api.render import render_task
from dqueue.logs import log_event
from dqueue.queue import fields
from dqueue.queue.fields import IntRule
from dqueue.queue.results import result_problem
from dqueue.queue.task import FINISHED

logger = logging.getLogger(__name__)

ENQUEUE_FIELDS = frozenset(
    {"type", "payload", "priority", "max_retries", "idempotency_key", "delay_seconds", "queue"}
)
LEASE_FIELDS = frozenset({"worker_id", "types", "lease_seconds", "wait_seconds", "max_tasks",
                          "queues"})
RELEASE_FIELDS = frozenset({"worker_id", "lease_token"})
ACK_FIELDS = RELEASE_FIELDS | {"result"}
NACK_FIELDS = RELEASE_FIELDS | {"reason", "dead_letter", "traceback", "retry_delay_ms"}
EXTEND_FIELDS = frozenset({"worker_id", "lease_token", "lease_seconds"})
LIST_PARAMS = frozenset({"status", "type", "limit", "cursor", "queue"})
# The rules' cheap checks, for the fast path of an enqueue body.
_accepts_type = fields.TASK_TYPE.accepts
_accepts_priority = fields.PRIORITY.accepts
_accepts_retries = fields.MAX_RETRIES.accepts
_accepts_key = fields.IDEMPOTENCY_KEY.accepts
_accepts_queue = fields.QUEUE_NAME.accepts
_is_flat_payload = fields.is_flat_payload


def new_task_plain(
    body: Any, deps: ApiDeps, prefix: str = "", task_id: str | None = None
) -> dict[str, Any]:
    """Validate one enqueue body and return its ``NewTask`` plain form.

    Optional fields left out (or null) are omitted from the plain form, which means "the
    configured default" to the queue (docs/internals.md section 4): the command, the log entry
    and every node's decoding of it carry only what the client gave. The common case (known
    keys, plain values) is recognised inline with the queue's field rules
    (``dqueue/queue/fields.py``); anything else goes through the field checkers, which raise
    the error naming the field. For any body both give the same task or the same error
    (tests/unit/api/test_tasks_fast_path.py).

    Args:
        body: the task as the client sent it.
        deps: the id source (used when ``task_id`` is None).
        prefix: names the task in errors (``tasks[3].``).
        task_id: the id to give the task, drawn by the caller; a fresh one when None.
    """
    if type(body) is dict and body.keys() <= ENQUEUE_FIELDS:
        get = body.get
        task_type = get("type")
        priority = get("priority")
        retries = get("max_retries")
        key = get("idempotency_key")
        queue = get("queue")
        if (_accepts_type(task_type)
                and (priority is None or _accepts_priority(priority))
                and (retries is None or _accepts_retries(retries))
                and (key is None or _accepts_key(key))
                and (queue is None or _accepts_queue(queue))
                and get("delay_seconds") is None):
            payload = get("payload")
            if not _is_flat_payload(payload):
                v.check_payload(payload, prefix + "payload")
            task = {"id": task_id or deps.new_id(), "type": task_type, "payload": payload}
            if priority is not None:
                task["priority"] = priority
            if retries is not None:
                task["max_retries"] = retries
            if key is not None:
                task["idempotency_key"] = key
            if queue is not None:
                task["queue"] = queue
            return task
    return _checked_task_plain(body, deps, prefix, task_id)


def _checked_task_plain(
    body: Any, deps: ApiDeps, prefix: str, task_id: str | None
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid(prefix.rstrip(".") or "body", f"{prefix.rstrip('.')} must be an object")
    v.check_keys(body, ENQUEUE_FIELDS, ("type",), prefix)
    payload = body.get("payload")
    v.check_payload(payload, prefix + "payload")
    delay_ms = v.opt_seconds_ms(body, "delay_seconds", fields.DELAY_MS, prefix)
    task = {
        "id": task_id or deps.new_id(),
        "type": v.opt_text(body, "type", fields.TASK_TYPE, prefix),
        "payload": payload,
    }
    optional = {
        "priority": v.opt_field_int(body, "priority", fields.PRIORITY, prefix),
        "max_retries": v.opt_field_int(body, "max_retries", fields.MAX_RETRIES, prefix),
        "idempotency_key": v.opt_text(body, "idempotency_key", fields.IDEMPOTENCY_KEY, prefix),
        "delay_ms": delay_ms,
        "queue": v.opt_text(body, "queue", fields.QUEUE_NAME, prefix),
    }
    task.update((name, value) for name, value in optional.items() if value is not None)
    return task


def check_message_sizes(limits: QueueLimits, tasks: list[dict[str, Any]],
                        prefixes: list[str]) -> None:
    """Refuse, with a 400 naming ``<prefix>payload``, the first task whose message is larger
    than its queue's ``max_message_bytes`` (dqueue/api/message_size.py: the rule SQS's
    SendMessage follows too). A payload is measured only when its queue sets a limit."""
    for task, prefix in zip(tasks, prefixes, strict=True):
        limit = limits.max_message_bytes(task.get("queue") or fields.DEFAULT_QUEUE)
        if limit:
            size = payload_message_bytes(task.get("payload"))
            if too_large(size, limit):
                raise invalid(prefix + "payload",
                              f"{prefix}payload: the message is {size} bytes, more than the "
                              f"queue's max_message_bytes {limit}")


def _enqueue(deps: ApiDeps, tasks: list[dict[str, Any]], body_bytes: int,
             show_lease: bool) -> list[dict[str, Any]]:
    """Commit the tasks; return them rendered, each with its duplicate flag (a duplicate may
    be leased: its lease is shown as ``render_task`` says)."""
    value = deps.enqueue(tasks, body_bytes)
    out = []
    counts: dict[tuple[bool, Any], int] = {}
    for task, duplicate in zip(value["tasks"], value["duplicates"], strict=True):
        key = (bool(duplicate), task.get("type"))
        counts[key] = counts.get(key, 0) + 1
        rendered = render_task(task, show_lease)
        rendered["duplicate"] = key[0]
        out.append(rendered)
    for (duplicate, task_type), n in counts.items():
        if duplicate:
            deps.metrics.count(deps.metrics.duplicates, task_type, n)
    return out


class TaskCollection:
    """``POST /tasks`` (enqueue one) and ``GET /tasks`` (list by status)."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps
        self._limits = QueueLimits(lambda query: deps.read(query, stale=True))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = v.read_json_body(req, self._deps.config.max_body_bytes)
        task_plain = new_task_plain(body, self._deps)
        check_message_sizes(self._limits, [task_plain], [""])
        [task] = _enqueue(self._deps, [task_plain], req.content_length or 0,
                          may_see_leases(req))
        send_json(resp, falcon.HTTP_200 if task["duplicate"] else falcon.HTTP_201, task)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = v.query_params(req, LIST_PARAMS)
        status = params.get("status")
        if status is None:
            raise invalid("status", "status is required", code="missing_field")
        if status not in v.TASK_STATUSES:
            raise invalid("status", f"status must be one of {', '.join(v.TASK_STATUSES)}")
        task_type = v.opt_text(params, "type", fields.TASK_TYPE) if params.get("type") else None
        limit_text = params.get("limit", "100")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= v.MAX_LIST_LIMIT:
            raise invalid("limit", f"limit must be an integer from 1 to {v.MAX_LIST_LIMIT}")
        queue = v.opt_text(params, "queue", fields.QUEUE_NAME) if params.get("queue") else None
        cursor = params.get("cursor") or None
        if cursor is not None and len(cursor) > v.MAX_CURSOR_CHARS:
            raise invalid("cursor", "cursor is not one this API returned")
        query = {
            "op": "list", "status": status, "type": task_type, "limit": int(limit_text),
            "cursor": cursor,
        }
        if queue is not None:
            query["queue"] = queue
        value = self._deps.read(query)
        show_lease = may_see_leases(req)
        tasks = [render_task(t, show_lease) for t in value.get("tasks", [])]
        send_json(resp, falcon.HTTP_200, {"tasks": tasks, "next_cursor": value.get("next_cursor")})


class TaskBatch:
    """``POST /tasks/batch``: 1 to 1,000 tasks in one command (one Raft entry)."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps
        self._limits = QueueLimits(lambda query: deps.read(query, stale=True))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = v.read_json_body(req, self._deps.config.max_body_bytes)
        v.check_keys(body, frozenset({"tasks"}), ("tasks",))
        items = body["tasks"]
        if not isinstance(items, list) or not 1 <= len(items) <= v.MAX_BATCH_TASKS:
            raise invalid("tasks", f"tasks must be a list of 1 to {v.MAX_BATCH_TASKS} tasks")
        ids = self._deps.new_ids(len(items))
        tasks = [new_task_plain(item, self._deps, f"tasks[{i}].", ids[i])
                 for i, item in enumerate(items)]
        check_message_sizes(self._limits, tasks, [f"tasks[{i}]." for i in range(len(tasks))])
        rendered = _enqueue(self._deps, tasks, req.content_length or 0, may_see_leases(req))
        send_json(resp, falcon.HTTP_201, {"tasks": rendered})


class TaskLease:
    """``POST /tasks/lease``: lease the next visible task(s), optionally waiting for one."""

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps
        # wait_seconds is HTTP's own field (how long this request may wait, not a command's).
        self._wait_ms = IntRule(0, deps.config.max_wait_ms)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        deps = self._deps
        body = v.read_json_body(req, deps.config.max_body_bytes)
        v.check_keys(body, LEASE_FIELDS, ("worker_id",))
        wait_ms = v.opt_seconds_ms(body, "wait_seconds", self._wait_ms) or 0
        max_tasks = v.opt_field_int(body, "max_tasks", fields.LEASE_MAX_TASKS)
        cmd = {
            "op": "lease",
            "worker_id": v.opt_text(body, "worker_id", fields.WORKER_ID),
            "types": v.opt_types(body),
            "max_tasks": max_tasks or 1,
            "lease_ms": v.opt_seconds_ms(body, "lease_seconds", fields.LEASE_MS),
        }
        queues = v.opt_queues(body)
        if queues is not None:
            cmd["queues"] = queues
        # A long poll holds a waitress thread: beyond the gate's places it is answered at once,
        # without a command (longpoll.py), so that long polls never hold every thread.
        tasks = deps.lease(cmd, wait_ms)
        if tasks is None:
            resp.status = falcon.HTTP_204
            resp.set_header(WAIT_REFUSED_HEADER, "refused; too many long polls parked")
            resp.set_header("Retry-After", str(POLL_RETRY_AFTER_S))
            return
        if not tasks:
            resp.status = falcon.HTTP_204
            return
        show_lease = may_see_leases(req)
        rendered = [render_task(t, show_lease) for t in tasks]
        send_json(resp, falcon.HTTP_200, {"tasks": rendered} if max_tasks else rendered[0])


class TaskItem:
    """``GET /tasks/{id}``; with ``?wait=SECONDS`` a long poll, answered as soon as the task is
    finished (completed, dead or cancelled), or at the end of the wait with the task as it is.
    The Raft process parks the read and looks again on every apply (dqueue/node/queries.py);
    beyond the long-poll gate's places it is answered at once, with ``Dqueue-Wait: refused``.
    """

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def on_get(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        query = {"op": "get", "id": v.task_id(id)}
        wait_ms = wait_param_ms(req.get_param("wait"), self._deps.config.max_wait_ms)
        task, refused = self._deps.read_waiting(query, wait_ms)
        if refused and task is not None and task.get("status") not in FINISHED:
            # Only an unfinished task's answer says so: the client waits before it asks again.
            resp.set_header(WAIT_REFUSED_HEADER, "refused; too many long polls parked")
            resp.set_header("Retry-After", str(POLL_RETRY_AFTER_S))
        if task is None:
            raise ApiError(falcon.HTTP_404, "not_found", f"no task {id}", field="id")
        send_json(resp, falcon.HTTP_200, render_task(task, may_see_leases(req)))


def wait_param_ms(text: str | None, max_wait_ms: int) -> int:
    """The ``wait`` query parameter (seconds, fractions allowed) in milliseconds, cut to
    ``max_wait_ms``; 0 when absent.

    Raises:
        ApiError: 400 naming ``wait`` when it is not a number of seconds of 0 or more.
    """
    if text is None or text == "":
        return 0
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise invalid("wait", "wait must be a number of seconds, 0 or more")
    return min(max_wait_ms, math.ceil(seconds * 1000))


class _TaskAction:
    """Base of the ``POST /tasks/{id}/<action>`` resources: one command, the task back."""

    fields: frozenset[str] = frozenset()
    required: tuple[str, ...] = ()

    def __init__(self, deps: ApiDeps) -> None:
        self._deps = deps

    def build(self, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The plain command for this action."""
        raise NotImplementedError

    def counted(self, task: dict[str, Any]) -> None:
        """What follows a successful action (the dead-letter log line); nothing by default."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        task_id = v.task_id(id)
        body = v.read_json_body(req, self._deps.config.max_body_bytes)
        v.check_keys(body, self.fields, self.required)
        task = self._deps.command(self.build(task_id, body))["task"]
        self.counted(task)
        send_json(resp, falcon.HTTP_200, render_task(task, may_see_leases(req)))


def _lease_holder(task_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": task_id,
        "worker_id": v.opt_text(body, "worker_id", fields.WORKER_ID),
        "token": lease_token(body, "lease_token"),
    }


class TaskAck(_TaskAction):
    """``POST /tasks/{id}/ack``: the lease holder completes the task."""

    fields = ACK_FIELDS
    required = ("worker_id",)

    def build(self, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        cmd = {"op": "ack", **_lease_holder(task_id, body)}
        result = body.get("result")
        if result is not None:
            problem = result_problem(result, self._deps.config.max_result_bytes)
            if problem is not None:
                raise invalid("result", problem)
            cmd["result"] = result
        return cmd


class TaskNack(_TaskAction):
    """``POST /tasks/{id}/nack``: the lease holder failed; retry later or dead-letter."""

    fields = NACK_FIELDS
    required = ("worker_id",)

    def build(self, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        # The other fields first: a bad one is named (400) before a missing token (409).
        reason = v.opt_text(body, "reason", fields.REASON)
        traceback = v.opt_text(body, "traceback", fields.TRACEBACK)
        dead_letter = bool(v.opt_bool(body, "dead_letter"))
        retry_delay_ms = v.opt_field_int(body, "retry_delay_ms", fields.DELAY_MS)
        cmd = {"op": "nack", **_lease_holder(task_id, body), "reason": reason,
               "dead_letter": dead_letter}
        if traceback is not None:
            cmd["traceback"] = traceback
        if retry_delay_ms is not None:
            cmd["retry_delay_ms"] = retry_delay_ms
        return cmd

    def counted(self, task: dict[str, Any]) -> None:
        if task.get("status") == "dead":
            log_event(logger, logging.INFO, "task_dead_lettered", task_id=task.get("id"),
                      type=task.get("type"), attempts=task.get("attempts"))


class TaskRelease(_TaskAction):
    """``POST /tasks/{id}/release``: the lease holder hands the task back unstarted (pending
    now, its attempt not counted)."""

    fields = RELEASE_FIELDS
    required = ("worker_id",)

    def build(self, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"op": "release", **_lease_holder(task_id, body)}

    def counted(self, task: dict[str, Any]) -> None:
        log_event(logger, logging.INFO, "task_released", task_id=task.get("id"),
                  type=task.get("type"), attempts=task.get("attempts"))


class TaskExtend(_TaskAction):
    """``POST /tasks/{id}/extend``: the lease holder extends its lease."""

    fields = EXTEND_FIELDS
    required = ("worker_id",)

    def build(self, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        lease_ms = v.opt_seconds_ms(body, "lease_seconds", fields.LEASE_MS)
        return {"op": "extend", **_lease_holder(task_id, body), "lease_ms": lease_ms}


class TaskCancel(_TaskAction):
    """``POST /tasks/{id}/cancel``: cancel a pending task."""

    def build(self, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"op": "cancel", "id": task_id}
