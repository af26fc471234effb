"""The message groups of a FIFO queue: which task of each group may be leased now.

A FIFO queue (its name ends in ``.fifo``, as in SQS) delivers the tasks of one message group in
enqueue order (``seq``) and one at a time: a task is leased only when it is the oldest pending
or leased task of its group and no task of its group is leased. A task that comes back into a
group (a redrive, or a dead letter moved into its target) takes its place by ``seq``, in front
of younger tasks: it keeps its sequence number, as SQS's moved messages do.

Every rule here is a function of the group's tasks and their statuses alone, never of the order
in which they joined: a member that restores a snapshot (which holds tasks, not groups) must
index exactly the tasks that a member which replayed the log indexes. ``QueueState`` keeps the
rule by indexing only leasable heads: a task of a FIFO queue is in the queue's ready index if
and only if it heads its group, is pending and visible, and no task of its group is leased.
Tasks without a group (``None``) form one group, the queue's own.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dqueue.queue.task import Task, TaskStatus

if TYPE_CHECKING:
    from dqueue.queue.ready import ReadyIndex

_PENDING = TaskStatus.PENDING
_LEASED = TaskStatus.LEASED


class FifoGroups:
    """Each group's pending and leased tasks in ``seq`` order, and the one a lease holds.

    Invariants: a task is in the deque of its ``group`` exactly while it is pending or leased
    in this queue, and each deque is sorted by ``seq``; a group with no such task has neither
    a deque nor a holder (memory follows the live groups). ``holders[g]`` is the task of group
    ``g`` leased last; the group is blocked while that task is still leased (a lease is only
    ever granted to an unblocked group's head, so at most one task of a group is leased).
    """

    __slots__ = ("groups", "holders")

    def __init__(self) -> None:
        self.groups: dict[str | None, deque[Task]] = {}
        self.holders: dict[str | None, Task] = {}

    def join(self, task: Task) -> Task | None:
        """Put ``task`` into its group at its ``seq`` place (the back for a new task, O(1)).

        Returns the group's former head when ``task`` went in front of it (the caller takes
        that one out of the ready index: it no longer heads its group), else None.
        """
        members = self.groups.get(task.group)
        if members is None:
            self.groups[task.group] = deque((task,))
            return None
        place = len(members)
        seq = task.seq
        while place and members[place - 1].seq > seq:  # only a re-entering task walks back
            place -= 1
        if place == len(members):
            members.append(task)
            return None
        members.insert(place, task)
        return members[1] if place == 0 else None

    def rejoin(self, task: Task, ready: ReadyIndex) -> None:
        """Put a task that comes back (a redrive, a move) into its group at its ``seq`` place;
        a head it displaces leaves the ready index (the caller then makes ``task`` pending,
        which offers the group's head)."""
        displaced = self.join(task)
        if displaced is not None:
            ready.discard(displaced)

    def is_blocked(self, group: str | None) -> bool:
        """Whether a task of ``group`` is leased (no other one may be, until it is done)."""
        holder = self.holders.get(group)
        # A holder that went back to pending (a retry, a release) stays in its group: it
        # no longer blocks. One that left the group was dropped from holders by ``leave``.
        return holder is not None and holder.status is _LEASED

    def may_lease(self, task: Task) -> bool:
        """Whether ``task``, pending and visible, may be in the ready index: it heads its
        group and the group is not blocked."""
        members = self.groups.get(task.group)
        return (members is not None and members[0] is task
                and not self.is_blocked(task.group))

    def note_lease(self, task: Task) -> None:
        """Record that ``task`` (its group's head) was leased: its group is blocked."""
        self.holders[task.group] = task

    def leave(self, task: Task) -> None:
        """Take ``task`` out of its group (nothing if it is not in it)."""
        group = task.group
        members = self.groups.get(group)
        if members is None:
            return
        if self.holders.get(group) is task:
            del self.holders[group]
        if members[0] is task:
            members.popleft()
        else:
            with contextlib.suppress(ValueError):  # not in it: nothing to do
                members.remove(task)  # a cancelled or purged task behind the head: O(group)
        if not members:
            del self.groups[group]
            self.holders.pop(group, None)

    def offer(self, group: str | None, ready: ReadyIndex, clock_ms: int) -> None:
        """Index the head of ``group`` if it may be leased now and is not indexed yet (after
        a task of the group left it, went back to pending, or came back into it)."""
        members = self.groups.get(group)
        if members is None:
            return
        head = members[0]
        if (head.status is _PENDING and head.visible_at_ms <= clock_ms
                and not self.is_blocked(group) and not ready.holds(head)):
            head.epoch += 1  # the epoch changes whenever a task enters an index
            ready.push(head)

    def head_after_expiry(self, task: Task, retry_at_ms: int | None,
                          clock_ms: int) -> Task | None:
        """The task a lease could take from ``task``'s group once ``task``'s lease expires
        (it then retries, visible at ``retry_at_ms``, or leaves the group when None), or
        None if the group would offer nothing at ``clock_ms``. For ``has_visible``."""
        for member in self.groups.get(task.group, ()):
            if member is task:
                if retry_at_ms is None:
                    continue  # dead, or moved to its dead-letter target: the next one heads
                return task if retry_at_ms <= clock_ms else None
            if member.status is not _PENDING:
                return None  # leased: still blocks the group
            return member if member.visible_at_ms <= clock_ms else None
        return None

    def would_head(self, task: Task) -> bool:
        """Whether ``task``, moved into this queue now, would head an unblocked group."""
        members = self.groups.get(task.group)
        return not members or (members[0].seq > task.seq and not self.is_blocked(task.group))

    def leasable_heads(self, clock_ms: int) -> Iterator[Task]:
        """The heads that may be leased at ``clock_ms`` (a restore indexes exactly these)."""
        for group, members in self.groups.items():
            head = members[0]
            if (head.status is _PENDING and head.visible_at_ms <= clock_ms
                    and not self.is_blocked(group)):
                yield head
