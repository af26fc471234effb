"""What an enqueue must satisfy besides its fields: the depth bound and idempotency-key reuse.

Pure functions of the queue state's values (no clock, no I/O), used by ``QueueState._enqueue``.
"""

from __future__ import annotations

from typing import Any

from dqueue.queue.commands import NewTask
from dqueue.queue.task import Task, TaskStatus

Outcome = dict[str, Any]
QUEUE_FULL = "queue_full"
IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
# The statuses that count towards the depth: tasks still to be done.
DEPTH_STATUSES = (TaskStatus.PENDING, TaskStatus.LEASED)


def same_value(a: Any, b: Any) -> bool:
    """Equal plain values of equal types all the way down (``1 == 1.0 == True`` in Python, not
    here), without recursion (payloads may nest deeply)."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        kind = type(x)
        if kind is not type(y):
            return False
        if kind is dict:
            if x.keys() != y.keys():
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif kind is list:
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif x != y:
            return False
    return True


def same_body(first: Task | NewTask, first_retries: int, new: NewTask, new_retries: int) -> bool:
    """Whether ``new`` repeats the enqueue of ``first`` (a task, or an earlier task of the same
    batch): the same queue, type, payload (equal values of equal types), priority and max_retries
    (each resolved: an omitted one is the default in force). The delay is not compared: a
    client retrying a delayed enqueue may count its delay down (docs/http-api.md)."""
    return (first.type == new.type and first.priority == new.priority
            and first.queue == new.queue and first.group == new.group
            and first_retries == new_retries
            and same_value(first.payload, new.payload))


def key_reused(key: str, prefix: str, task_id: str | None = None,
               position: int | None = None) -> Outcome:
    """The refusal of an enqueue that reuses a live idempotency key with another body: the key
    of task ``task_id``, or of the batch's own item at ``position``."""
    field = f"{prefix}idempotency_key"
    user = f"task {task_id}" if task_id is not None else f"tasks[{position}] of this batch"
    outcome: Outcome = {"ok": False, "code": IDEMPOTENCY_KEY_REUSED, "field": field,
                        "message": f"{field}: key {key!r} is used by {user} with another body"}
    if task_id is not None:
        outcome["task_id"] = task_id
    return outcome


def depth(by_status: dict[TaskStatus, dict[str, dict[str, Task]]]) -> int:
    """Tasks pending (delayed included) or leased."""
    return sum(len(members) for status in DEPTH_STATUSES
               for members in by_status[status].values())


def beyond_depth(current: int, adding: int, max_depth: int) -> Outcome | None:
    """``queue_full`` when ``adding`` tasks to ``current`` would pass ``max_depth`` (0: no
    bound), else None. Adding none (only duplicates) is never refused, even when a lowered
    ``max_depth`` is already passed."""
    if not max_depth or not adding or current + adding <= max_depth:
        return None
    return {"ok": False, "code": QUEUE_FULL, "max_depth": max_depth,
            "message": f"the queue holds {current} tasks; {adding} more would pass "
                       f"max_depth {max_depth}"}
