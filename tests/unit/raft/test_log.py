"""RaftLog: append, conflict handling, commit and compaction (Raft sections 5.3, 7)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqueue.raft import Entry, Membership, Snapshot, SnapshotMeta
from dqueue.raft.log import LogInvariantError, RaftLog
from tests.depth import examples


def entries(*terms: int, start: int = 1) -> list[Entry]:
    return [Entry(start + i, t, data=b"%d" % (start + i)) for i, t in enumerate(terms)]


def test_empty_log_has_sentinel_zero():
    log = RaftLog(None, [], 0)
    assert (log.last_index(), log.last_term(), log.term(0)) == (0, 0, 0)
    assert log.term(1) is None


def test_up_to_date_compares_last_term_then_length():
    """Raft section 5.4.1."""
    log = RaftLog(None, entries(1, 2, 2), 0)
    assert log.is_up_to_date(1, 3)
    assert log.is_up_to_date(3, 2)
    assert not log.is_up_to_date(2, 2)
    assert not log.is_up_to_date(9, 1)


def test_maybe_append_rejects_on_missing_prev():
    """Raft figure 2, AppendEntries receiver step 2."""
    log = RaftLog(None, entries(1, 1), 0)
    assert log.maybe_append(2, 2, 0, tuple(entries(2, start=3))) is None
    assert log.maybe_append(3, 1, 0, ()) is None


def test_maybe_append_deletes_conflicting_suffix_only():
    """Raft figure 2 step 3: delete a conflicting entry and all that follow it."""
    log = RaftLog(None, entries(1, 1, 1, 1), 0)
    new = tuple(entries(1, 2, start=2))
    assert log.maybe_append(1, 1, 0, new) == 3
    assert [e.term for e in log.entries] == [1, 1, 2]


def test_maybe_append_keeps_longer_matching_log():
    """A stale, shorter AppendEntries must not truncate entries that match (Raft 5.3)."""
    log = RaftLog(None, entries(1, 1, 1, 1), 0)
    assert log.maybe_append(1, 1, 0, tuple(entries(1, start=2))) == 2
    assert log.last_index() == 4


def test_follower_commit_is_min_of_leader_commit_and_last_new():
    """Raft figure 2 step 5."""
    log = RaftLog(None, entries(1, 1, 1, 1), 0)
    log.maybe_append(1, 1, 10, tuple(entries(1, start=2)))
    assert log.committed == 2


def test_committed_entries_cannot_be_overwritten():
    log = RaftLog(None, entries(1, 1), 2)
    with pytest.raises(LogInvariantError):
        log.append(entries(2, start=2))


def test_find_conflict_by_term_skips_whole_terms():
    log = RaftLog(None, entries(1, 1, 3, 3, 3, 5, 5), 0)
    assert log.find_conflict_by_term(7, 4) == (5, 3)
    assert log.find_conflict_by_term(7, 2) == (2, 1)
    assert log.find_conflict_by_term(7, 0) == (0, 0)
    assert log.find_conflict_by_term(99, 5) == (7, 5)


def test_slice_respects_byte_bound_but_sends_one_entry_at_least():
    log = RaftLog(None, [Entry(1, 1, data=b"x" * 10), Entry(2, 1, data=b"y" * 10)], 0)
    assert len(log.slice(1, 3, max_bytes=15)) == 1
    assert len(log.slice(1, 3, max_bytes=5)) == 1
    assert len(log.slice(1, 3, max_bytes=20)) == 2


def test_stable_to_ignores_an_overwritten_ready():
    log = RaftLog(None, [], 0)
    log.append(entries(1, 1))
    old_last = log.entries[-1]
    log.append(entries(2, start=2))
    log.stable_to(old_last.index, old_last.term)
    assert log.stable_index == 0 and log.unstable_from == 1
    log.stable_to(2, 2)
    assert log.stable_index == 2 and log.unstable_entries() == []


def test_compact_keeps_entries_after_snapshot_and_term_lookup():
    log = RaftLog(None, entries(1, 1, 2, 2), 4)
    log.applied_to(3)
    log.compact(Snapshot(SnapshotMeta(3, 2, Membership(("a",)), 0), b"s"))
    assert (log.snapshot_index, log.first_index(), log.last_index()) == (3, 4, 4)
    assert log.term(3) == 2 and log.term(2) is None
    with pytest.raises(LogInvariantError):
        log.slice(3, 5)


def test_compact_beyond_applied_is_refused():
    log = RaftLog(None, entries(1, 1), 2)
    with pytest.raises(LogInvariantError):
        log.compact(Snapshot(SnapshotMeta(2, 1, Membership(("a",)), 0), b""))


def test_restore_replaces_log_and_resumes_apply_after_snapshot():
    log = RaftLog(None, entries(1, 1, 1), 1)
    snapshot = Snapshot(SnapshotMeta(10, 4, Membership(("a",)), 0), b"s")
    log.restore(snapshot)
    assert (log.last_index(), log.last_term(), log.committed) == (10, 4, 10)
    assert not log.has_next_committed()
    log.snapshot_persisted(snapshot)
    assert log.applied == 10


def test_restart_drops_entries_covered_by_snapshot():
    snapshot = Snapshot(SnapshotMeta(2, 1, Membership(("a",)), 0), b"s")
    log = RaftLog(snapshot, entries(1, 1, 1), 3)
    assert log.entries == entries(1, start=3) and log.applied == 2 and log.committed == 3


def test_restart_refuses_gapped_entries():
    with pytest.raises(LogInvariantError):
        RaftLog(None, [Entry(1, 1), Entry(3, 1)], 0)


def test_restart_drops_stale_suffix_left_behind_by_a_restored_snapshot():
    """The node drops stored entries only up to a received snapshot's index; entries above
    it with lower terms belong to the replaced log and must not count (Raft 5.4.1)."""
    snapshot = Snapshot(SnapshotMeta(3, 7, Membership(("a",)), 0), b"s")
    log = RaftLog(snapshot, entries(5, 5, 5, start=4), 3)
    assert log.entries == [] and (log.last_index(), log.last_term()) == (3, 7)
    kept = RaftLog(snapshot, entries(7, 8, start=4), 3)
    assert kept.last_index() == 5


def naive_append(terms: list[int], prev_index: int, prev_term: int,
                 new_terms: list[int]) -> bool:
    """Raft figure 2's AppendEntries receiver, literally, on a list of terms."""
    if prev_index > len(terms) or (prev_index > 0 and terms[prev_index - 1] != prev_term):
        return False
    if prev_index == 0 and prev_term != 0:
        return False
    for offset, term in enumerate(new_terms):
        index = prev_index + 1 + offset
        if index <= len(terms) and terms[index - 1] != term:
            del terms[index - 1:]
        if index > len(terms):
            terms.append(term)
    return True


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 4),
                          st.lists(st.integers(1, 4), max_size=4)), max_size=12))
def test_maybe_append_matches_naive_model(calls):
    log = RaftLog(None, [], 0)
    terms: list[int] = []
    for prev_index, prev_term, new_terms in calls:
        new = tuple(Entry(prev_index + 1 + i, t) for i, t in enumerate(new_terms))
        accepted = log.maybe_append(prev_index, prev_term, 0, new) is not None
        assert accepted == naive_append(terms, prev_index, prev_term, new_terms)
        assert [e.term for e in log.entries] == terms
