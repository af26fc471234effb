"""The message groups of a FIFO queue: which task of each group may be leased now.

A FIFO queue (its name ends in ``.fifo``, as in SQS) delivers the tasks of one message group in
log order and one at a time: a task is leased only once every earlier task of its group is
completed, dead, cancelled or moved, and never while another task of its group is leased or
waiting for its retry. ``QueueState`` keeps the rule by indexing only each group's head: a task
of a FIFO queue is in the queue's ready index if and only if it heads its group, is pending and
is visible. Tasks without a group (``None``) form one group, the queue's own.
"""

from __future__ import annotations

import contextlib
from collections import deque

from dqueue.queue.task import Task


class FifoGroups:
    """Each group's pending and leased tasks, oldest first (the head is the one in service).

    Invariant: a task is in the deque of its ``group`` exactly while it is pending or leased in
    this queue; a group with no such task has no deque (memory follows the live groups).
    """

    __slots__ = ("groups",)

    def __init__(self) -> None:
        self.groups: dict[str | None, deque[Task]] = {}

    def join(self, task: Task) -> bool:
        """Append ``task`` to its group (it is newer than every task there); return whether
        it heads the group."""
        members = self.groups.get(task.group)
        if members is None:
            self.groups[task.group] = deque((task,))
            return True
        members.append(task)
        return False

    def is_head(self, task: Task) -> bool:
        """Whether ``task`` heads its group (the only task of it that may be leased)."""
        members = self.groups.get(task.group)
        return members is not None and members[0] is task

    def leave(self, task: Task) -> Task | None:
        """Take ``task`` out of its group (nothing if it is not in it); return the group's new
        head when ``task`` headed it, else None."""
        members = self.groups.get(task.group)
        if members is None:
            return None
        if members[0] is task:
            members.popleft()
            if not members:
                del self.groups[task.group]
                return None
            return members[0]
        with contextlib.suppress(ValueError):  # not in it: nothing to do
            members.remove(task)  # a cancelled or purged task behind the head: O(group)
        return None
