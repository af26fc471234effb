"""ReadyWriter: each Ready written as its plan says, the commit index alone kept for later."""

from __future__ import annotations

from dqueue.node.histogram import Histogram
from dqueue.node.ready_writer import ReadyWriter
from dqueue.node.store import Store, StoredHardState
from dqueue.raft import Entry, EntryType, HardState, Ready, Role


def _writer(tmp_path) -> tuple[ReadyWriter, Store, dict[str, int]]:
    store = Store(str(tmp_path))
    counters = {"fsync_total": 0, "entries_persisted_total": 0}
    buckets = (1, 10, 100)
    writer = ReadyWriter(store, None, counters, Histogram(buckets), Histogram(buckets))
    return writer, store, counters


def test_a_new_term_and_vote_are_written_and_then_known_as_stored(tmp_path):
    writer, store, counters = _writer(tmp_path)
    ready = Ready(hard_state=HardState(2, "n2", 0))
    plan = writer.plan(ready, Role.FOLLOWER)
    assert plan.needs_write and plan.term_or_vote_changed
    writer.write(ready, plan)
    assert store.load().hard_state == StoredHardState(2, "n2", 0)
    assert (writer.stored_term, writer.stored_vote) == (2, "n2") and counters["fsync_total"] == 1
    # The same term and vote again: a leader's plan may now send early.
    assert not writer.plan(Ready(hard_state=HardState(2, "n2", 1)), Role.LEADER).needs_write
    store.close()


def test_a_commit_index_alone_goes_with_the_next_write_or_the_flush(tmp_path):
    writer, store, counters = _writer(tmp_path)
    entry = Entry(1, 1, EntryType.NORMAL, b"x")
    first = Ready(hard_state=HardState(1, None, 0), entries=(entry,))
    writer.write(first, writer.plan(first, Role.FOLLOWER))
    commit_only = Ready(hard_state=HardState(1, None, 1))
    writer.write(commit_only, writer.plan(commit_only, Role.FOLLOWER))
    assert counters["fsync_total"] == 1 and store.load().hard_state.commit == 0
    writer.flush()
    assert store.load().hard_state == StoredHardState(1, None, 1)
    assert counters["entries_persisted_total"] == 1
    store.close()
