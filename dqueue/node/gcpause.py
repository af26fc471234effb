"""Keep the cyclic garbage collector's pauses short however many tasks the queue holds.

CPython's collector visits every tracked object of the generation it collects, and its oldest
generation ends up holding nearly every task of the queue state. With a million tasks queued
one full collection took 0.8 s on the 2-core test machine: longer than an election timeout.
The leader stopped sending heartbeats for that long, its followers elected another leader, and
filling a million-task backlog (``bench/bench_backlog.py``) went through five elections and
failed commands.

The policy here: once the young generations have moved survivors into the oldest generation
``promotions`` times, collect the oldest generation (what is not frozen: only what survived
since the previous time) and freeze what survives it with ``gc.freeze``. Frozen objects sit
in the permanent generation, which no collection visits again, so each full collection walks
a bounded number of objects, not the whole queue. They are still freed by reference counting
when nothing refers to them (a task acked and pruned, an entry compacted away). Only a
reference cycle among frozen objects would never be freed: the queue state forms none
(``tests/unit/queue/test_no_cycles.py``), and the process's own long-lived objects live as long
as it does.

Building or loading a snapshot runs with the collector paused (``paused_gc``): both create
millions of long-lived containers at once, and each full collection triggered on the way would
walk the whole state again (measured: half the restore time at 200,000 tasks). Nothing they
allocate forms a cycle, so pausing loses nothing. The policy lives here, in the node, and not in
the queue core: the collector never changes what the state machine computes.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager

# Survivor batches (collections of the middle generation) between two runs; CPython's own
# default for a full collection is 10. Each batch is at most a few thousand objects: with one,
# a run took 2 to 10 ms under 4,000 commands/s on the 2-core test machine (5 to 20 ms with two,
# half as often).
DEFAULT_PROMOTIONS = 1


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector inside the block; leave it as it was afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class OldObjectFreezer:
    """Runs the policy; call ``maybe_collect`` often (every tick), it is cheap when idle.

    Args:
        promotions: collections of the middle generation that trigger a run.
    """

    def __init__(self, promotions: int = DEFAULT_PROMOTIONS) -> None:
        if promotions < 1:
            raise ValueError("promotions must be at least 1")
        self.promotions = promotions

    def collect_and_freeze(self) -> float:
        """Collect everything not frozen, freeze the survivors; return the milliseconds taken."""
        started = time.perf_counter()
        gc.collect()
        gc.freeze()
        return (time.perf_counter() - started) * 1000.0

    def maybe_collect(self) -> float | None:
        """Run when enough survivors reached the oldest generation; the milliseconds, or None."""
        # get_count()[2]: collections of generation 1 since the last of generation 2.
        if gc.get_count()[2] < self.promotions:
            return None
        return self.collect_and_freeze()

    @staticmethod
    def frozen_objects() -> int:
        """How many objects the permanent generation holds."""
        return gc.get_freeze_count()
