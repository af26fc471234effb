"""The enqueue command's handler: new tasks into their queues, all or nothing.

A plain function of the state (``QueueState`` registers it in its handler table), as the
maintenance handlers are; it is the most frequent command, so the common shapes (one task; a
batch of fresh ids without idempotency keys) take short paths. Deterministic: time only from
``state.clock_ms`` (Raft paper section 5.3).
"""

from __future__ import annotations

import sys
from heapq import heappush
from typing import TYPE_CHECKING, Any

from dqueue.queue import admission, commands
from dqueue.queue.outcomes import Outcome
from dqueue.queue.outcomes import fail as _fail
from dqueue.queue.outcomes import ok as _ok
from dqueue.queue.queue_admin import QUEUE_NOT_FOUND, QueueRecord
from dqueue.queue.task import Task, TaskStatus, task_from_fields

if TYPE_CHECKING:
    from dqueue.queue.state import QueueState

_PENDING = TaskStatus.PENDING
# What a handler returns when ``apply`` was told that nobody reads the outcome.
UNANSWERED: Outcome = {"ok": True, "value": None}


def _no_queue(new: commands.NewTask, position: int) -> Outcome:
    return _fail(QUEUE_NOT_FOUND, f"tasks[{position}].queue: no queue {new.queue}; create it "
                                  f"first (PUT /queues/{new.queue})")


def _refused_here(state: QueueState, new: commands.NewTask, position: int) -> Outcome | None:
    """Why ``new`` cannot go to its queue (missing; a group outside a FIFO queue), or None."""
    record = state._queues.get(new.queue)
    if record is None:
        return _no_queue(new, position)
    if new.group is not None and record.groups is None:
        return _fail("invalid", f"tasks[{position}].group: only a FIFO queue (a name ending "
                                f"in .fifo) takes a group; {new.queue} is not one")
    return None


def enqueue(state: QueueState, cmd: commands.Enqueue, index: int) -> Outcome:
    """Add the tasks of ``cmd`` in order; repeats of a live idempotency key are duplicates."""
    new_tasks = cmd.tasks
    if len(new_tasks) == 1:
        return _enqueue_one(state, new_tasks[0])
    if len(new_tasks) > state.config.max_batch:
        return _fail("invalid", f"tasks: at most {state.config.max_batch} per enqueue")
    for position, new in enumerate(new_tasks):
        refused = _refused_here(state, new, position)
        if refused is not None:
            return refused
    ids = {new.id for new in new_tasks}
    if (len(ids) == len(new_tasks) and state._tasks.keys().isdisjoint(ids)
            and all(new.idempotency_key is None for new in new_tasks)):
        # The common batch: fresh distinct ids and no keys, so nothing can repeat; only the
        # depth bounds can refuse it (whole).
        full = _refuse_beyond_depth(state, new_tasks)
        if full is not None:
            return full
        if not state._reply:
            for new in new_tasks:
                _create(state, new)
            return UNANSWERED
        tasks = [_create(state, new).to_plain() for new in new_tasks]
        return _ok({"tasks": tasks, "duplicates": [False] * len(tasks)})
    clock_ms = state.clock_ms
    dedup = state._dedup
    # Validate the whole batch before changing anything: all or nothing.
    originals: list[Task | None] = []
    new_keys: dict[str, int] = {}
    new_ids: set[str] = set()
    fresh: list[commands.NewTask] = []
    for position, new in enumerate(new_tasks):
        key = new.idempotency_key
        original = None
        if key is not None:
            if key in new_keys:
                first = new_tasks[new_keys[key]]
                if not admission.same_body(first, retries_of(state, first), new,
                                           retries_of(state, new)):
                    return admission.key_reused(key, f"tasks[{position}].",
                                                position=new_keys[key])
                originals.append(None)  # duplicate of an earlier task of this batch
                continue
            entry = dedup.get(key)
            if entry is not None and entry[1] > clock_ms:
                original = state._tasks.get(entry[0])
            if original is not None and not admission.same_body(
                    original, original.max_retries, new, retries_of(state, new)):
                return admission.key_reused(key, f"tasks[{position}].", original.id)
        if original is None:
            if new.id in state._tasks or new.id in new_ids:
                return _fail("invalid", f"tasks[{position}].id: task {new.id} exists")
            new_ids.add(new.id)
            fresh.append(new)
            if key is not None:
                new_keys[key] = position
        originals.append(original)
    full = _refuse_beyond_depth(state, fresh)
    if full is not None:
        return full
    tasks: list[dict[str, Any]] = []
    duplicates: list[bool] = []
    for position, new in enumerate(new_tasks):
        original = originals[position]
        key = new.idempotency_key
        if original is None and key is not None and new_keys[key] != position:
            original = state._tasks[dedup[key][0]]
        if original is not None:
            tasks.append(original.to_plain())
            duplicates.append(True)
        else:
            tasks.append(_create(state, new).to_plain())
            duplicates.append(False)
    return _ok({"tasks": tasks, "duplicates": duplicates})


def _enqueue_one(state: QueueState, new: commands.NewTask) -> Outcome:
    """The common single-task enqueue, without the batch bookkeeping."""
    record = state._queues.get(new.queue)
    if record is None or new.group is not None:
        refused = _refused_here(state, new, 0)
        if refused is not None:
            return refused
        assert record is not None
    key = new.idempotency_key
    if key is not None:
        entry = state._dedup.get(key)
        if entry is not None and entry[1] > state.clock_ms:
            original = state._tasks.get(entry[0])
            if original is not None:
                if not admission.same_body(original, original.max_retries, new,
                                           retries_of(state, new)):
                    return admission.key_reused(key, "", original.id)
                return _ok({"tasks": [original.to_plain()], "duplicates": [True]})
    if new.id in state._tasks:
        return _fail("invalid", f"tasks[0].id: task {new.id} exists")
    if state.config.max_depth or record.settings.max_depth:
        full = _refuse_beyond_depth(state, (new,))
        if full is not None:
            return full
    task = _create(state, new, record)
    if not state._reply:
        return UNANSWERED
    return {"ok": True, "value": {"tasks": [task.to_plain()], "duplicates": [False]}}


def retries_of(state: QueueState, new: commands.NewTask) -> int:
    """The ``max_retries`` a new task gets: its own, else its queue's (the queue exists)."""
    if new.max_retries is not None:
        return new.max_retries
    return state._queues[new.queue].config.max_retries


def _refuse_beyond_depth(state: QueueState,
                         adding: tuple[commands.NewTask, ...] | list[commands.NewTask],
                         ) -> Outcome | None:
    """``queue_full`` when the tasks ``adding`` would pass the cluster's ``max_depth`` or a
    queue's. Invariant kept: every depth <= its bound after every enqueue (a batch that does
    not fit is refused whole)."""
    if state.config.max_depth:
        full = admission.beyond_depth(admission.depth(state._by_status), len(adding),
                                      state.config.max_depth)
        if full is not None:
            return full
    by_queue: dict[str, int] = {}
    for new in adding:
        by_queue[new.queue] = by_queue.get(new.queue, 0) + 1
    for name, count in by_queue.items():
        record = state._queues[name]
        if record.settings.max_depth:
            full = admission.beyond_depth(record.depth(), count, record.settings.max_depth)
            if full is not None:
                full["queue"] = name
                return full
    return None


def _create(state: QueueState, new: commands.NewTask,
            record: QueueRecord | None = None) -> Task:
    """Add a new pending task (its id is free, its queue exists) and index it."""
    if record is None:
        record = state._queues[new.queue]
    clock_ms = state.clock_ms
    task_type = sys.intern(new.type)  # one str object per type while tasks use it
    key = new.idempotency_key
    max_retries = record.config.max_retries if new.max_retries is None else new.max_retries
    delay_ms = record.settings.delay_ms if new.delay_ms is None else new.delay_ms
    # Task(...) field for field; a function call is cheaper than a class call in 3.11.
    task = task_from_fields(new.id, task_type, new.payload, new.priority, max_retries, 0,
                            _PENDING, key, clock_ms, clock_ms, clock_ms + delay_ms,
                            None, None, None, None, state._next_seq, None, None, record.name,
                            None, new.group)
    state._next_seq += 1
    state._tasks[new.id] = task
    enqueued = state._events.enqueued
    count_key = (task_type, record.name)
    enqueued[count_key] = enqueued.get(count_key, 0) + 1
    pending = state._by_status[_PENDING]
    members = pending.get(task_type)
    if members is None:
        members = pending[task_type] = {}
    members[new.id] = task
    record.counts["pending"] += 1
    task.epoch = 1
    # FIFO (fifo.py): a task behind its group's head, or in a blocked group, waits in the
    # group, not in the index (it is the newest: it joins at the back).
    groups = record.groups
    if groups is not None:
        groups.join(task)
    head = groups is None or groups.may_lease(task)
    if delay_ms:
        heappush(state._delayed, (task.visible_at_ms, task.seq, 1, task))
    elif head:
        record.ready.push(task)
    if key is not None:
        expires_at_ms = clock_ms + record.config.dedup_window_ms
        state._dedup[key] = (new.id, expires_at_ms)
        heappush(state._dedup_heap, (expires_at_ms, key))
    return task
