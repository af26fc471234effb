"""Read-only views of the queue state's indexes: counts, paged listings, lease readiness.

``QueueState`` keeps every task in ``by_status[status][type][id]`` and in its time heaps; these
functions read them and never change them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from dqueue.queue.backoff import backoff_ms
from dqueue.queue.commands import InvalidCommand
from dqueue.queue.heaps import NEVER_MS, iter_due
from dqueue.queue.task import Task, TaskStatus

if TYPE_CHECKING:
    from dqueue.queue.queue_admin import QueueRecord
    from dqueue.queue.state import QueueState

ByStatus = dict[TaskStatus, dict[str, dict[str, Task]]]
TimeHeap = list[tuple[int, int, int, Task]]
_PENDING, _LEASED = TaskStatus.PENDING, TaskStatus.LEASED


def stats(by_status: ByStatus, clock_ms: int) -> dict[str, Any]:
    """Return counts by status, by type and status, and the cluster clock."""
    totals = {status.value: 0 for status in TaskStatus}
    by_type: dict[str, dict[str, int]] = {}
    for status, members_by_type in by_status.items():
        for task_type, members in members_by_type.items():
            if not members:
                continue
            totals[status.value] += len(members)
            counts = by_type.get(task_type)
            if counts is None:
                counts = by_type[task_type] = {s.value: 0 for s in TaskStatus}
            counts[status.value] = len(members)
    return {"by_status": totals, "by_type": dict(sorted(by_type.items())), "clock_ms": clock_ms}


def dead_tasks(by_status: ByStatus, task_type: str | None,
               queue: str | None = None) -> list[Task]:
    """The dead tasks of ``task_type`` (None: of every type) in ``queue`` (None: any)."""
    dead = by_status[TaskStatus.DEAD]
    if task_type is not None:
        found = list(dead.get(task_type, {}).values())
    else:
        found = [task for members in dead.values() for task in members.values()]
    return found if queue is None else [task for task in found if task.queue == queue]


def list_tasks(by_status: ByStatus, status: str, task_type: str | None, limit: int,
               cursor: str | None, queue: str | None = None) -> dict[str, Any]:
    """List tasks of one status (and type, and queue) in enqueue order, ``limit`` at a time.

    Costs O(m log limit) for the m tasks of that status and type.

    Raises:
        InvalidCommand: on a bad status, limit or cursor.
    """
    try:
        wanted = TaskStatus(status)
    except ValueError:
        raise InvalidCommand("status", f"status must be one of "
                                       f"{', '.join(s.value for s in TaskStatus)}") from None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1_000:
        raise InvalidCommand("limit", "limit must be an integer from 1 to 1000")
    after = -1
    if cursor is not None:
        if not isinstance(cursor, str) or not cursor.isdigit():
            raise InvalidCommand("cursor", "cursor must come from a previous listing")
        after = int(cursor)
    members_by_type = by_status[wanted]
    if task_type is not None:
        groups: Iterable[dict[str, Task]] = [members_by_type.get(task_type, {})]
    else:
        groups = members_by_type.values()
    candidates = (t for members in groups for t in members.values()
                  if t.seq > after and (queue is None or t.queue == queue))
    page = heapq.nsmallest(limit + 1, candidates, key=lambda t: t.seq)
    next_cursor = str(page[limit - 1].seq) if len(page) > limit else None
    return {"tasks": [t.to_plain() for t in page[:limit]], "next_cursor": next_cursor}


def state_has_visible(state: QueueState, types: Iterable[str] | None, now_ms: int,
                      names: tuple[str, ...]) -> bool:
    """``QueueState.has_visible``: ``has_visible`` over the queues ``names``, with the rate
    limits in budget at ``max(now_ms, clock_ms)`` only (rate_limits.py): a parked long poll
    wakes when budget returns, not only when a task arrives. True when a queue is missing."""
    queues = state._queues
    if any(name not in queues for name in names):
        return True
    at_ms = max(now_ms, state.clock_ms)
    book = state.rate_limits
    records = {name: queues[name] for name in names if not book.queue_out(queues[name], at_ms)}
    return has_visible(records, state._delayed, state._leases, at_ms, types, now_ms, queues,
                       book.blocked_types(at_ms) if book.types else None)


def next_deadline_ms(state: QueueState) -> int | None:
    """``QueueState.next_deadline_ms``: the earliest lease expiry, delayed visibility,
    schedule slot, worker expiry or return of a spent rate limit's budget; None when nothing
    waits."""
    times = [heap[0][0] for heap in (state._leases, state._delayed) if heap]
    times += [due for due in (state.schedules.due_ms, state.workers.due_ms) if due < NEVER_MS]
    budget_ms = state.rate_limits.next_budget_ms(state._queues, state.clock_ms)
    if budget_ms is not None:
        times.append(budget_ms)
    return min(times) if times else None


def has_visible(records: Mapping[str, QueueRecord], delayed: TimeHeap, leases: TimeHeap,
                clock_ms: int, types: Iterable[str] | None, now_ms: int,
                every: Mapping[str, QueueRecord] | None = None,
                blocked: frozenset[str] | None = None) -> bool:
    """Whether a lease of ``types`` (None: any) from the queues ``records`` applied at
    ``now_ms`` would get a task.

    Args:
        records: The lease's queues, by name.
        every: All the queues, by name (None: ``records``): a lease of another queue that
            expires with its retries spent moves its task into one of ``records`` when that
            is the queue's dead-letter target.
        delayed: The ``(visible_at_ms, seq, epoch, task)`` heap of delayed pending tasks.
        leases: The ``(expires_at_ms, seq, epoch, task)`` heap of leases.
        clock_ms: The cluster clock such a lease would see: ``max(now_ms, clock_ms)``.
        types: The lease's types, None for any.
        now_ms: The lease's time.
        blocked: Types whose rate limit has no budget at ``clock_ms`` (None: none).
    """
    wanted = None if types is None else set(types)
    if blocked and wanted is not None:
        wanted -= blocked
        if not wanted:
            return False
    if blocked and wanted is None:
        # Any type but the spent ones: a predicate instead of a set of types.
        def takes(task_type: str) -> bool:
            return task_type not in blocked
        if any(takes(t) for record in records.values() for t in record.ready.count):
            return True
    else:
        def takes(task_type: str) -> bool:
            return wanted is None or task_type in wanted
        if any(record.ready.has_any(wanted) for record in records.values()):
            return True
    for _, _, epoch, task in iter_due(delayed, now_ms):
        record = records.get(task.queue)
        if (record is not None and task.status is _PENDING and task.epoch == epoch
                and takes(task.type)
                and (record.groups is None or record.groups.may_lease(task))):
            return True
    # A lease expiring by now_ms makes its task visible if its backoff has run out too, or
    # at once in its queue's dead-letter target when its retries are spent; in a FIFO queue
    # it also unblocks its group, whose head may be another task (fifo.py).
    homes = records if every is None else every
    for expires_at_ms, _, epoch, task in iter_due(leases, now_ms):
        if task.status is not _LEASED or task.epoch != epoch:
            continue
        record = records.get(task.queue)
        retried = task.attempts <= task.max_retries
        retry_at_ms = (expires_at_ms + backoff_ms(record.config, task.id, task.attempts)
                       if retried and record is not None else None)
        if record is not None and record.groups is not None:
            head = record.groups.head_after_expiry(task, retry_at_ms, clock_ms)
            if head is not None and takes(head.type):
                return True
        elif (retry_at_ms is not None and retry_at_ms <= clock_ms
              and takes(task.type)):
            return True
        if retried or not takes(task.type):
            continue
        home = homes.get(task.queue)
        target = None if home is None else records.get(home.settings.dead_letter_queue or "")
        if target is not None and (target.groups is None or target.groups.would_head(task)):
            return True
    return False

