"""Producers on the worker gateway: the ``enqueue`` and ``enqueue_batch`` requests.

Pure: no socket, no clock. The gateway (``gateway.py``) turns a producer's request into the
same ``enqueue`` command ``POST /tasks`` and ``POST /tasks/batch`` propose, validated by the
same code (``dqueue.api.tasks.new_task_plain``, on the queue's field rules), and answers it with
``enqueued`` once the command is committed and applied (docs/worker-protocol.md). The only
difference from the HTTP body is the delay: ``delay_ms`` (milliseconds, like every duration of
this protocol) instead of ``delay_seconds``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from dqueue.api import validation as v
from dqueue.api.deps import new_task_ids
from dqueue.api.errors import ApiError
from dqueue.api.tasks import ENQUEUE_FIELDS, new_task_plain
from dqueue.api.worker_requests import RequestError
from dqueue.protocol.errors import ErrorCode
from dqueue.protocol.kinds import WorkerKind
from dqueue.queue import fields

if TYPE_CHECKING:
    from dqueue.api.deps import ApiDeps

# The fields of one task over the gateway: HTTP's, with ``delay_ms`` for ``delay_seconds``.
TASK_KEYS = (ENQUEUE_FIELDS - {"delay_seconds"}) | {"delay_ms"}
_ENQUEUE_KEYS = TASK_KEYS | {"rid"}
_BATCH_KEYS = frozenset({"rid", "tasks"})
# Every task id is drawn here and given to ``new_task_plain``, which then never reads its
# ``deps`` (the id source is all it would use them for).
_IDS_GIVEN = cast("ApiDeps", None)


def enqueue_command_of(kind: bytes, body: dict[str, Any], body_bytes: int,
                       max_body_bytes: int) -> dict[str, Any]:
    """Validate a producer request; return its ``enqueue`` command.

    Args:
        kind: ``enqueue`` or ``enqueue_batch``.
        body: the decoded request body (a map).
        body_bytes: the size of the encoded body, refused beyond ``max_body_bytes`` (the
            HTTP API's ``api.max_body_bytes``) as ``body_too_large``.
        max_body_bytes: the node's limit.

    Raises:
        RequestError: naming the bad field (``tasks[3].priority``), with the HTTP API's codes.
    """
    if body_bytes > max_body_bytes:
        raise RequestError(ErrorCode.BODY_TOO_LARGE,
                           f"the body is {body_bytes} bytes, more than the {max_body_bytes} "
                           "this node accepts", "body")
    try:
        if kind == WorkerKind.ENQUEUE:
            v.check_keys(body, _ENQUEUE_KEYS, ("type",))
            [task_id] = new_task_ids(1)
            return {"op": "enqueue", "tasks": [_task_plain(body, "", task_id)]}
        v.check_keys(body, _BATCH_KEYS, ("tasks",))
        items = body["tasks"]
        if not isinstance(items, list) or not 1 <= len(items) <= fields.MAX_BATCH:
            raise RequestError(ErrorCode.INVALID_FIELD,
                               f"tasks must be a list of 1 to {fields.MAX_BATCH} tasks", "tasks")
        ids = new_task_ids(len(items))
        tasks = []
        for index, item in enumerate(items):
            prefix = f"tasks[{index}]."
            if not isinstance(item, dict):
                raise RequestError(ErrorCode.INVALID_FIELD, f"tasks[{index}] must be a map",
                                   f"tasks[{index}]")
            v.check_keys(item, TASK_KEYS, ("type",), prefix)
            tasks.append(_task_plain(item, prefix, ids[index]))
        return {"op": "enqueue", "tasks": tasks}
    except ApiError as exc:
        raise RequestError(exc.code, exc.message, exc.field) from None


def _task_plain(body: dict[str, Any], prefix: str, task_id: str) -> dict[str, Any]:
    """The ``NewTask`` plain form of one task whose keys are already checked."""
    delay_ms = v.opt_field_int(body, "delay_ms", fields.DELAY_MS, prefix)
    if "rid" in body or "delay_ms" in body:
        body = {name: value for name, value in body.items() if name not in ("rid", "delay_ms")}
    task = new_task_plain(body, _IDS_GIVEN, prefix, task_id)
    if delay_ms is not None:
        task["delay_ms"] = delay_ms
    return task


def enqueued_body(rid: Any, value: dict[str, Any]) -> dict[str, Any] | None:
    """The ``enqueued`` reply of a committed enqueue command's value; None if unreadable.

    Each task is the plain form with ``duplicate`` (its idempotency key was seen: the first
    task is returned). A duplicate that is leased shows only its lease's expiry: the token and
    holder are what an ack needs, and a producer is not the lease holder (as over HTTP without
    the ``consume`` role).
    """
    tasks, duplicates = value.get("tasks"), value.get("duplicates")
    if not (isinstance(tasks, list) and isinstance(duplicates, list)
            and len(tasks) == len(duplicates) and all(isinstance(t, dict) for t in tasks)):
        return None
    out = []
    for task, duplicate in zip(tasks, duplicates, strict=True):
        task = {**task, "duplicate": bool(duplicate)}
        lease = task.get("lease")
        if isinstance(lease, dict):
            task["lease"] = {"expires_at_ms": lease.get("expires_at_ms")}
        out.append(task)
    return {"rid": rid, "tasks": out}
