"""Commands of committed log entries, read back without checking every field again.

Every item in the log passed ``commands.command_from_plain`` before it was appended, so the
frequent ops are rebuilt here on the cheap (``commands.new_task_unchecked`` and friends); the
rest go through the validating parser.
"""

from __future__ import annotations

from typing import Any

from dqueue.queue.commands import (
    AckBatch,
    Command,
    Enqueue,
    Extend,
    Lease,
    ack_unchecked,
    command_from_plain,
    new_task_unchecked,
)
from dqueue.queue.fields import DEFAULT_QUEUE


def command_from_log(obj: Any) -> Command:
    """The command of an item of a committed log entry.

    Every item in the log passed ``command_from_plain`` before it was appended (the leader's own
    proposals, and ``entry_is_applicable`` for an entry a follower forwarded), so the frequent
    ops (enqueue, lease, ack, ack_batch, extend) are rebuilt here without checking every field
    again on every member: that would double a follower's cost of applying an enqueue. For any
    plain command that ``command_from_plain`` accepts the result is equal; other ops, and
    anything without the expected shape, go through ``command_from_plain``
    (tests/unit/queue/test_commands.py checks both on generated values, valid or not).

    Raises:
        InvalidCommand: an item that is not a command (never expected in a healthy log).
    """
    op = obj.get("op") if type(obj) is dict else None
    try:
        now_ms = obj.get("now_ms") or 0
        if op == "enqueue":
            return Enqueue(tasks=tuple([
                new_task_unchecked(t["id"], t["type"], t.get("payload"),
                                   t.get("priority") or 0, t.get("max_retries"),
                                   t.get("idempotency_key"), t.get("delay_ms"),
                                   t.get("queue") or DEFAULT_QUEUE, t.get("group"))
                for t in obj["tasks"]]), now_ms=now_ms)
        if op == "ack":
            return ack_unchecked(obj["id"], obj["worker_id"], obj.get("token"), now_ms,
                                 obj.get("result"))
        if op == "ack_batch":
            return AckBatch(items=tuple([
                ack_unchecked(a["id"], a["worker_id"], a.get("token"), now_ms, a.get("result"))
                for a in obj["items"]]), now_ms=now_ms)
        if op == "lease":
            types, queues = obj.get("types"), obj.get("queues")
            return Lease(worker_id=obj["worker_id"],
                         types=None if types is None else tuple(types),
                         max_tasks=obj.get("max_tasks") or 1, lease_ms=obj.get("lease_ms"),
                         nonce=obj.get("nonce"),
                         queues=None if queues is None else tuple(queues), now_ms=now_ms)
        if op == "extend":
            return Extend(id=obj["id"], worker_id=obj["worker_id"], token=obj.get("token"),
                          lease_ms=obj.get("lease_ms"), now_ms=now_ms)
    except (KeyError, TypeError, AttributeError):
        pass  # not the shape the leader writes: let the validating parser name the problem
    return command_from_plain(obj)
