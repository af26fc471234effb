"""iter_due walks only the due part of a heap."""

from __future__ import annotations

import heapq
import random

from dqueue.queue.heaps import iter_due


def test_yields_exactly_the_due_entries() -> None:
    rng = random.Random(7)
    for _ in range(50):
        heap: list[tuple[int, int]] = []
        for i in range(rng.randrange(0, 60)):
            heapq.heappush(heap, (rng.randrange(0, 100), i))
        limit = rng.randrange(-1, 101)
        assert sorted(iter_due(heap, limit)) == sorted(e for e in heap if e[0] <= limit)


def test_empty_heap() -> None:
    assert list(iter_due([], 10)) == []
