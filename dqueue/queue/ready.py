"""The index of visible pending tasks: what a lease takes, best first.

Two kinds of heap keyed ``(-priority, seq)``: one over all types and one per type, sharing one
tuple per task, so a lease filtered by type never looks at other types' tasks (issue 3).
Deletion is lazy: an entry is live while its task is pending and the task's ``epoch`` equals
the entry's (``QueueState`` bumps the epoch whenever the task enters an index).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from heapq import heappop, heappush

from dqueue.queue.task import Task, TaskStatus

Entry = tuple[int, int, int, Task]

_PENDING = TaskStatus.PENDING
# A heap is rebuilt when it holds more than this many entries per live one (plus slack).
_STALE_FACTOR = 2
_STALE_SLACK = 64


def _is_live(entry: Entry) -> bool:
    return entry[3].status is _PENDING and entry[3].epoch == entry[2]


def _live_entries(heap: list[Entry]) -> list[Entry]:
    live = [entry for entry in heap if _is_live(entry)]
    heapq.heapify(live)
    return live


class ReadyIndex:
    """Pending tasks with ``visible_at_ms <= clock_ms``, by priority then log order.

    Invariant: ``count[t]`` is the number of live entries in the heap of type ``t`` (a type
    with none has neither a count nor a heap), and ``total`` their sum.
    """

    def __init__(self) -> None:
        self.all: list[Entry] = []
        self.by_type: dict[str, list[Entry]] = {}
        self.count: dict[str, int] = {}
        self.total = 0

    def push(self, task: Task) -> None:
        """Index a task that just became visible; its epoch was bumped by the caller."""
        task_type = task.type
        # One tuple shared by both heaps; (-priority, seq) orders them (DESIGN section 3).
        entry = (-task.priority, task.seq, task.epoch, task)
        heappush(self.all, entry)
        heap = self.by_type.get(task_type)
        if heap is None:
            heap = self.by_type[task_type] = []
        heappush(heap, entry)
        counts = self.count
        count = counts[task_type] = counts.get(task_type, 0) + 1
        self.total += 1
        # Stale entries (left by leases taken through the other heap) are dropped when they
        # outnumber live ones: amortized O(1) per push, memory O(live entries).
        if len(heap) > _STALE_FACTOR * count + _STALE_SLACK:
            self.by_type[task_type] = _live_entries(heap)
        if len(self.all) > _STALE_FACTOR * self.total + _STALE_SLACK:
            self.all = _live_entries(self.all)

    def leave(self, task: Task) -> None:
        """Account for a visible task leaving the index (its entries go stale)."""
        count = self.count[task.type] - 1
        if count:
            self.count[task.type] = count
        else:  # no live entry is left in this type's heap: drop it whole
            del self.count[task.type]
            del self.by_type[task.type]
        self.total -= 1

    def heaps_for(self, types: tuple[str, ...] | None) -> list[list[Entry]]:
        """The heaps a lease of ``types`` (None: any type) takes from."""
        if types is None:
            return [self.all]
        if len(types) == 1:
            return [self.by_type[types[0]]] if types[0] in self.count else []
        return [self.by_type[t] for t in sorted(set(types)) if t in self.count]

    @staticmethod
    def pop(heaps: list[list[Entry]]) -> Task | None:
        """Pop the best live task of ``heaps`` (the caller then calls ``leave``), or None."""
        if len(heaps) == 1:
            heap = heaps[0]
        else:
            heap = None
            for candidate in heaps:
                while candidate and not _is_live(candidate[0]):
                    heappop(candidate)
                if candidate and (heap is None or candidate[0] < heap[0]):
                    heap = candidate
            if heap is None:
                return None
        while heap:
            entry = heappop(heap)
            if _is_live(entry):
                return entry[3]
        return None

    def has_any(self, types: Iterable[str] | None) -> bool:
        """Whether a task of ``types`` (None: any) is visible now."""
        if types is None:
            return self.total > 0
        return any(t in self.count for t in types)

    def load(self, tasks: Iterable[Task]) -> None:
        """Index visible tasks at once into an empty index (restore): O(n) with heapify."""
        entries = [(-task.priority, task.seq, task.epoch, task) for task in tasks]
        by_type = self.by_type
        for entry in entries:
            heap = by_type.get(entry[3].type)
            if heap is None:
                heap = by_type[entry[3].type] = []
            heap.append(entry)
        self.all = entries
        self.count = {task_type: len(heap) for task_type, heap in by_type.items()}
        self.total = len(entries)
        for heap in (self.all, *by_type.values()):
            heapq.heapify(heap)
