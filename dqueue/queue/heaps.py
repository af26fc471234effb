"""Helpers over ``heapq`` lists whose entries are tuples keyed by their first item."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: The due time of a book with nothing due (schedules, workers): greater than any clock.
NEVER_MS = 1 << 62


def iter_due(heap: list[tuple[Any, ...]], limit: int) -> Iterator[tuple[Any, ...]]:
    """Yield, in no particular order, every entry of ``heap`` whose key is <= ``limit``.

    Walks only the part of the heap tree that is due (a child is never smaller than its
    parent), so it costs O(k) for k due entries, without popping anything.
    """
    stack = [0] if heap else []
    size = len(heap)
    while stack:
        i = stack.pop()
        entry = heap[i]
        if entry[0] > limit:
            continue  # heap order: nothing below this entry is due either
        yield entry
        for child in (2 * i + 1, 2 * i + 2):
            if child < size:
                stack.append(child)
