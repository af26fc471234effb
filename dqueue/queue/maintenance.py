"""The queue's maintenance commands: cancel, redrive, purge, and configure (replicated settings).

Handlers of ``QueueState.apply`` (``state.py`` registers them in its handler table), kept here
so that ``state.py`` holds the frequent commands and the indexes they share. Each is a plain
function of the state, the command and its index, deterministic like every handler: it reads
time only from ``state.clock_ms`` (Raft paper section 5.3: members apply the same log to the
same state).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dqueue.queue import commands, reads
from dqueue.queue.outcomes import Outcome, fail, ok
from dqueue.queue.queue_admin import QUEUE_NOT_FOUND
from dqueue.queue.task import Task, TaskStatus

if TYPE_CHECKING:
    from dqueue.queue.state import QueueState


def _task_in(state: QueueState, task_id: str, status: TaskStatus, verb: str) -> Task | Outcome:
    """The task ``task_id`` if it has ``status``, else the failure naming why not."""
    task = state._tasks.get(task_id)
    if task is None:
        return fail("not_found", f"id: no task {task_id}")
    if task.status is not status:
        return fail("invalid_state", f"id: task {task_id} is {task.status.value}, "
                                     f"only a {status.value} task can be {verb}")
    return task


def _seq_of(task: Task) -> int:
    return task.seq


def cancel(state: QueueState, cmd: commands.Cancel, index: int) -> Outcome:
    """Cancel a pending task (it is retained, then pruned, as any finished task)."""
    task = _task_in(state, cmd.id, TaskStatus.PENDING, "cancelled")
    if not isinstance(task, Task):
        return task
    state._queues[task.queue].ready.discard(task)
    task.updated_at_ms = state.clock_ms
    state._finish(task, TaskStatus.CANCELLED)
    return ok({"task": task.to_plain()})


def redrive(state: QueueState, cmd: commands.Redrive, index: int) -> Outcome:
    """Make dead tasks (one by id, those of a type and/or a queue, or all) pending again,
    attempts reset, in their own queue."""
    if cmd.id is not None:
        task = _task_in(state, cmd.id, TaskStatus.DEAD, "redriven")
        if not isinstance(task, Task):
            return task
        targets = [task]
    else:
        if cmd.queue is not None and cmd.queue not in state._queues:
            return fail(QUEUE_NOT_FOUND, f"queue: no queue {cmd.queue}")
        # In log order, so that every member walks them alike (a FIFO group puts each back
        # at its seq place whatever the order: fifo.py).
        targets = sorted(reads.dead_tasks(state._by_status, cmd.type, cmd.queue),
                         key=_seq_of)
    for task in targets:
        task.attempts = 0
        task.updated_at_ms = state.clock_ms
        task.visible_at_ms = state.clock_ms
        state._set_status(task, TaskStatus.PENDING)
        record = state._queues[task.queue]
        if record.groups is not None:
            record.groups.rejoin(task, record.ready)  # at its seq place (fifo.py)
        state._make_pending(task)
    return ok({"count": len(targets)})


def purge(state: QueueState, cmd: commands.Purge, index: int) -> Outcome:
    """Remove dead tasks (those of a type and/or a queue, or all)."""
    if cmd.queue is not None and cmd.queue not in state._queues:
        return fail(QUEUE_NOT_FOUND, f"queue: no queue {cmd.queue}")
    targets = reads.dead_tasks(state._by_status, cmd.type, cmd.queue)
    for task in targets:
        state._remove(task)
    return ok({"count": len(targets)})


def configure(state: QueueState, cmd: commands.Configure, index: int) -> Outcome:
    """Replace the settings in force for the commands after this one."""
    retention_changed = cmd.settings.retention_ms != state.config.retention_ms
    state.config = cmd.settings
    for record in state._queues.values():  # a queue follows the cluster where it chose not
        record.refresh(cmd.settings)
    if retention_changed:
        state._rebuild_finished()
    return ok({})
