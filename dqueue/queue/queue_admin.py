"""The named queues inside the state machine: each queue's record, and the handlers of the
commands of ``queues.py`` (create, update, delete, purge, move).

Each queue has its own ready index (``ReadyIndex``), so a lease from one queue never looks at
another's tasks, its effective settings (``queues.effective_config``) and its counts by status.
Handlers are plain functions of the state, like ``maintenance.py``'s: deterministic, time only
from ``state.clock_ms`` (Raft paper section 5.3).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from dqueue.queue import queues
from dqueue.queue.config import QueueConfig
from dqueue.queue.fields import DEFAULT_QUEUE, FIFO_DEDUP_WINDOW_MS, FIFO_SUFFIX, InvalidCommand
from dqueue.queue.fifo import FifoGroups
from dqueue.queue.outcomes import Outcome, fail, ok
from dqueue.queue.queues import QueueSettings
from dqueue.queue.ready import ReadyIndex
from dqueue.queue.task import Task, TaskStatus

if TYPE_CHECKING:
    from dqueue.queue.state import QueueState

QUEUE_NOT_FOUND = "queue_not_found"
QUEUE_EXISTS = "queue_exists"
_STATUS_VALUES = tuple(status.value for status in TaskStatus)
# Statuses a purge of a queue removes: the work not done yet, and the dead.
_PURGED = (TaskStatus.PENDING, TaskStatus.LEASED, TaskStatus.DEAD)


class QueueRecord:
    """One named queue as the state holds it.

    Invariants kept by ``QueueState``: ``counts[s]`` is the number of tasks of this queue with
    status ``s`` (by value); ``ready`` indexes exactly this queue's visible pending tasks (of
    a FIFO queue, those that head their group: ``fifo.py``); ``config`` is ``effective_config``
    of the cluster's settings in force and ``settings``; ``groups`` is set exactly for a FIFO
    queue (its name ends in ``.fifo``).
    """

    __slots__ = ("config", "counts", "created_at_ms", "groups", "name", "ready", "settings",
                 "updated_at_ms")

    def __init__(self, name: str, settings: QueueSettings, cluster: QueueConfig,
                 now_ms: int) -> None:
        self.name = name
        self.settings = settings
        self.groups = FifoGroups() if name.endswith(FIFO_SUFFIX) else None
        self.refresh(cluster)
        self.created_at_ms = self.updated_at_ms = now_ms
        self.ready = ReadyIndex()
        self.counts: dict[str, int] = dict.fromkeys(_STATUS_VALUES, 0)

    def refresh(self, cluster: QueueConfig) -> None:
        """Recompute ``config`` from the cluster's settings in force and this queue's own (a
        FIFO queue deduplicates for SQS's five minutes)."""
        config = queues.effective_config(cluster, self.settings)
        if self.groups is not None:
            config = dataclasses.replace(config, dedup_window_ms=FIFO_DEDUP_WINDOW_MS)
        self.config = config

    def depth(self) -> int:
        """Tasks pending (delayed included) or leased in this queue."""
        counts = self.counts
        return counts["pending"] + counts["leased"]

    def to_plain(self) -> dict[str, Any]:
        """The queue as reads show it: name, settings, times and counts by status."""
        return {"name": self.name, "settings": self.settings.to_plain(),
                "created_at_ms": self.created_at_ms, "updated_at_ms": self.updated_at_ms,
                "counts": dict(self.counts)}

    def to_snapshot(self) -> list[Any]:
        """``[name, settings, created_at_ms, updated_at_ms]`` (counts and indexes are rebuilt)."""
        return [self.name, self.settings.to_plain(), self.created_at_ms, self.updated_at_ms]


def _missing(name: str, field: str = "name") -> Outcome:
    return fail(QUEUE_NOT_FOUND, f"{field}: no queue {name}; create it first "
                                 f"(PUT /queues/{name})")


def create_queue(state: QueueState, cmd: queues.CreateQueue, index: int) -> Outcome:
    """Create a queue; a repeat with equal settings is answered ``created: false``."""
    existing = state._queues.get(cmd.name)
    if existing is not None:
        if existing.settings == cmd.settings:
            return ok({"queue": existing.to_plain(), "created": False})
        return fail(QUEUE_EXISTS, f"name: queue {cmd.name} exists with other settings; "
                                  f"change them with PATCH /queues/{cmd.name}")
    refused = _check_target(state, cmd.name, cmd.settings)
    if refused is not None:
        return refused
    record = state._queues[cmd.name] = QueueRecord(cmd.name, cmd.settings, state.config,
                                                   state.clock_ms)
    return ok({"queue": record.to_plain(), "created": True})


def _check_target(state: QueueState, name: str, settings: QueueSettings) -> Outcome | None:
    """Refuse a dead-letter target that is the queue itself or does not exist."""
    target = settings.dead_letter_queue
    if target is None:
        return None
    if target == name:
        return fail("invalid", "settings.dead_letter_queue: a queue cannot be its own "
                               "dead-letter queue")
    if target not in state._queues:
        return _missing(target, "settings.dead_letter_queue")
    return None


def update_queue(state: QueueState, cmd: queues.UpdateQueue, index: int) -> Outcome:
    """Change the given settings of a queue (the others are kept)."""
    record = state._queues.get(cmd.name)
    if record is None:
        return _missing(cmd.name)
    try:
        settings = queues.check_settings(queues.changes_to_plain(cmd.changes), "changes.",
                                         base=record.settings)
    except InvalidCommand as exc:  # each change was valid alone, not with the others
        return fail("invalid", str(exc))
    refused = _check_target(state, cmd.name, settings)
    if refused is not None:
        return refused
    retention_changed = settings.retention_ms != record.settings.retention_ms
    record.settings = settings
    record.refresh(state.config)
    record.updated_at_ms = state.clock_ms
    if retention_changed:
        state._rebuild_finished()
    return ok({"queue": record.to_plain()})


def delete_queue(state: QueueState, cmd: queues.DeleteQueue, index: int) -> Outcome:
    """Delete a queue and all its tasks, of every status (SQS DeleteQueue)."""
    if cmd.name == DEFAULT_QUEUE:
        return fail("invalid", f"name: the queue {DEFAULT_QUEUE} always exists; purge it "
                               f"instead")
    if cmd.name not in state._queues:
        return _missing(cmd.name)
    doomed = [task for task in state._tasks.values() if task.queue == cmd.name]
    for task in doomed:
        _drop(state, task)
    del state._queues[cmd.name]
    return ok({"count": len(doomed)})


def purge_queue(state: QueueState, cmd: queues.PurgeQueue, index: int) -> Outcome:
    """Remove the pending, leased and dead tasks of a queue (SQS PurgeQueue)."""
    if cmd.name not in state._queues:
        return _missing(cmd.name)
    doomed = [task for task in state._tasks.values()
              if task.queue == cmd.name and task.status in _PURGED]
    for task in doomed:
        _drop(state, task)
    return ok({"count": len(doomed)})


def _drop(state: QueueState, task: Task) -> None:
    """Remove a task of any status, out of every index (heap entries go stale)."""
    state._queues[task.queue].ready.discard(task)
    task.epoch += 1  # every heap entry of the task is stale from now on
    state._remove(task)


def move_tasks(state: QueueState, cmd: queues.MoveTasks, index: int) -> Outcome:
    """Move pending or dead tasks out of a queue, oldest first: to ``destination``, or each
    back to the queue it was dead-lettered from (SQS StartMessageMoveTask)."""
    if cmd.source not in state._queues:
        return _missing(cmd.source, "source")
    if cmd.destination is not None and cmd.destination not in state._queues:
        return _missing(cmd.destination, "destination")
    if cmd.destination == cmd.source:
        return fail("invalid", "destination: must differ from source")
    moved = 0
    for task in list(state._tasks.values()):  # insertion order is seq order
        if moved >= cmd.max_tasks:
            break
        if task.queue != cmd.source or task.status not in (TaskStatus.PENDING, TaskStatus.DEAD):
            continue
        target = cmd.destination if cmd.destination is not None else task.source_queue
        if target is None or target not in state._queues or target == cmd.source:
            continue
        state._move(task, target, None)
        moved += 1
    return ok({"count": moved})


def list_queues(state: QueueState, prefix: str | None = None) -> list[dict[str, Any]]:
    """Every queue (whose name starts with ``prefix``), by name."""
    return [record.to_plain() for name, record in sorted(state._queues.items())
            if prefix is None or name.startswith(prefix)]


def get_queue(state: QueueState, name: str) -> dict[str, Any] | None:
    """One queue's settings, counts by status and dead-letter sources, or None."""
    record = state._queues.get(name)
    if record is None:
        return None
    plain = record.to_plain()
    plain["dead_letter_sources"] = dead_letter_sources(state, name)
    return plain


def dead_letter_sources(state: QueueState, name: str) -> list[str]:
    """Names of the queues whose dead-letter target is ``name``, sorted."""
    return sorted(other for other, record in state._queues.items()
                  if record.settings.dead_letter_queue == name)
