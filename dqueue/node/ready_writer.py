"""The Raft process's write of each Ready, by the plan of ``dqueue.raft.ready_plan``.

It remembers the term and vote last written (``plan_ready`` needs them: a Ready that changes
either is written before any of its messages leaves) and the newest hard state whose commit
index alone was not written (it goes with the next write, and at a clean stop:
docs/raft-process.md, "Storage").
"""

from __future__ import annotations

import time

from dqueue.node.codec import stored_hard_state, stored_snapshot
from dqueue.node.histogram import Histogram
from dqueue.node.store import Store, StoredHardState
from dqueue.raft import HardState, Ready, Role
from dqueue.raft.ready_plan import ReadyPlan, plan_ready


class ReadyWriter:
    """Plans and writes Readies to one store.

    Args:
        store: the node's store.
        stored: the hard state the store held at start, or None.
        counters: the process's counters; ``fsync_total`` and ``entries_persisted_total`` move.
        persist_ms: observes the duration of each synced Ready write.
        batch_entries: observes the entries per written Ready (the group commit size).
    """

    def __init__(self, store: Store, stored: StoredHardState | None, counters: dict[str, int],
                 persist_ms: Histogram, batch_entries: Histogram) -> None:
        self.store = store
        self.counters = counters
        # Term and vote last written: a Ready that changes them must be synced before sending.
        self.stored_term, self.stored_vote = (stored.term, stored.vote) if stored else (0, None)
        # The core's newest hard state when only its commit index differs from the stored one.
        self.unsaved_hard: HardState | None = None
        self.persist_ms = persist_ms
        self.batch_entries = batch_entries

    def plan(self, rd: Ready, role: Role) -> ReadyPlan:
        """The plan of ``rd`` for a member in ``role`` (``plan_ready``)."""
        return plan_ready(rd, role, self.stored_term, self.stored_vote)

    def write(self, rd: Ready, plan: ReadyPlan) -> None:
        """Write ``rd`` in one synced transaction if the plan needs it; otherwise keep its
        hard state (only the commit index moved) for the next write."""
        if rd.hard_state is not None:
            self.unsaved_hard = rd.hard_state
        if not plan.needs_write:
            return
        started = time.perf_counter()
        saved_hard, self.unsaved_hard = self.unsaved_hard, None
        self.store.save(
            entries=rd.entries,
            hard_state=stored_hard_state(saved_hard),
            snapshot=stored_snapshot(rd.snapshot) if rd.snapshot is not None else None,
        )
        self.counters["fsync_total"] += 1
        self.persist_ms.observe((time.perf_counter() - started) * 1000.0)
        if rd.entries:
            self.batch_entries.observe(len(rd.entries))
            self.counters["entries_persisted_total"] += len(rd.entries)
        if saved_hard is not None:
            self.stored_term, self.stored_vote = saved_hard.term, saved_hard.vote

    def flush(self) -> None:
        """At a clean stop: write the newest commit index, if it was not written."""
        if self.unsaved_hard is not None:
            self.store.save(hard_state=stored_hard_state(self.unsaved_hard))
            self.unsaved_hard = None
