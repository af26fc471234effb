"""The Raft log as the core sees it: a snapshot, the entries after it, and two cursors.

Invariants kept by every method (Raft figure 2 and section 5.3):
- ``entries`` are contiguous, the first at ``snapshot_index + 1``;
- ``applied <= committed <= last_index()``;
- ``stable_index`` (last index known to be on disk) ``<= last_index()``;
- no entry at or below ``committed`` is ever truncated or replaced.
"""

from __future__ import annotations

from dqueue.raft.types import Entry, Snapshot


class LogInvariantError(AssertionError):
    """A caller asked the log to break one of its invariants: a bug, never input."""


class RaftLog:
    """Entries, snapshot position, commit and apply cursors of one member.

    Attributes:
        snapshot: the latest snapshot this member holds (saved by the app or received),
            or None; the log below it is compacted.
        pending_snapshot: a snapshot received from the leader and not yet handed out in a
            Ready; it replaces the log when restored.
        entries: the entries after the snapshot, contiguous.
        committed: commit_index (Raft figure 2); never decreases.
        applied: last_applied; the index of the last entry handed out to be applied.
        stable_index: the last index known to be persisted (for the leader's own vote on
            commit: its entries count only once on disk).
    """

    def __init__(self, snapshot: Snapshot | None, entries: list[Entry], commit: int) -> None:
        self.snapshot = snapshot
        self.pending_snapshot: Snapshot | None = None
        self.snapshot_index = snapshot.meta.index if snapshot else 0
        self.snapshot_term = snapshot.meta.term if snapshot else 0
        # A restart may find entries the snapshot already covers (the node compacts lazily);
        # keep only those after it so the contiguity invariant holds.
        kept: list[Entry] = []
        previous_term = self.snapshot_term
        for entry in entries:
            if entry.index <= self.snapshot_index:
                continue
            if entry.index != self.snapshot_index + 1 + len(kept):
                raise LogInvariantError("persisted entries are not contiguous after the snapshot")
            if entry.term < previous_term:
                # Terms never decrease along a log. A lower term right after a snapshot is
                # a leftover of the log a snapshot from the leader replaced (the node drops
                # stored entries only up to the snapshot's index): an entry after a
                # committed one of term T has a term >= T (Raft 5.4 Leader Completeness),
                # so this whole suffix is stale. Keeping it would make this log look less
                # up to date than it is and let it vote for a candidate lacking committed
                # entries (Raft 5.4.1).
                break
            previous_term = entry.term
            kept.append(entry)
        self.entries = kept
        self.stable_index = self.last_index()
        # Invariant: committed <= last_index; a persisted commit beyond the stored log would
        # be a storage bug, so clamp rather than trust it.
        self.committed = max(self.snapshot_index, min(commit, self.last_index()))
        # After a restart the state machine is rebuilt from the snapshot, then re-applies.
        self.applied = self.snapshot_index
        # Entries handed out for persisting are at indexes > this; reset by truncation.
        self.unstable_from = self.last_index() + 1

    def last_index(self) -> int:
        """Index of the last entry, or of the snapshot when the log after it is empty."""
        entries = self.entries
        return entries[-1].index if entries else self.snapshot_index

    def last_term(self) -> int:
        """Term of the last entry (Raft section 5.4.1 compares logs by it)."""
        entries = self.entries
        return entries[-1].term if entries else self.snapshot_term

    def first_index(self) -> int:
        """Index of the first entry still kept (it may not exist yet when the log is empty)."""
        return self.snapshot_index + 1

    def term(self, index: int) -> int | None:
        """Term of the entry at ``index``, or None when compacted away or not yet written."""
        if index == self.snapshot_index:
            return self.snapshot_term
        if index < self.snapshot_index or index > self.last_index():
            return None
        return self.entries[index - self.snapshot_index - 1].term

    def match_term(self, index: int, term: int) -> bool:
        """True when this log has an entry at ``index`` with ``term`` (Raft section 5.3)."""
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft section 5.4.1: a log with a later last term, or the same and at least as
        long, is at least as up to date as ours."""
        my_term = self.last_term()
        return last_term > my_term or (last_term == my_term and last_index >= self.last_index())

    def slice(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries with ``lo <= index < hi``, cut at ``max_bytes`` of data (one at least).

        Raises LogInvariantError when ``lo`` is compacted.
        """
        if lo <= self.snapshot_index:
            raise LogInvariantError(f"slice from {lo} below snapshot {self.snapshot_index}")
        hi = min(hi, self.last_index() + 1)
        if lo >= hi:
            return []
        base = self.snapshot_index + 1
        out = self.entries[lo - base:hi - base]
        if max_bytes is None:
            return out
        size = 0
        for count, entry in enumerate(out):
            size += len(entry.data)
            if size > max_bytes and count > 0:
                return out[:count]
        return out

    def append(self, entries: list[Entry]) -> int:
        """Append ``entries`` that start right after the last index, or overwrite a suffix.

        The overwritten suffix must be above ``committed`` (Raft section 5.3: committed
        entries are never replaced). Returns the new last index.
        """
        if not entries:
            return self.last_index()
        first = entries[0].index
        if first <= self.committed:
            raise LogInvariantError(f"overwrite at {first} below commit {self.committed}")
        if first > self.last_index() + 1:
            raise LogInvariantError(f"gap: append at {first} after {self.last_index()}")
        keep = first - self.snapshot_index - 1
        if keep < len(self.entries):
            del self.entries[keep:]
            # The truncated suffix may have been persisted; the new entries replace it on disk.
            self.stable_index = min(self.stable_index, first - 1)
        self.unstable_from = min(self.unstable_from, first)
        self.entries.extend(entries)
        return self.last_index()

    def find_conflict(self, entries: tuple[Entry, ...] | list[Entry]) -> int:
        """Index of the first of ``entries`` this log lacks or holds with another term, or 0."""
        for entry in entries:
            if not self.match_term(entry.index, entry.term):
                return entry.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The last index at or below ``index`` whose term is ``<= term``, with its term.

        Fast log backtracking (Raft section 5.3, the "optimization" paragraph): every entry
        above the returned index has a term greater than ``term``, so it cannot match the
        other log, and a whole term is skipped per round trip.
        """
        index = min(index, self.last_index())
        while index > self.snapshot_index:
            entry_term = self.entries[index - self.snapshot_index - 1].term
            if entry_term <= term:
                return index, entry_term
            index -= 1
        return index, self.snapshot_term if index == self.snapshot_index else 0

    def maybe_append(self, prev_index: int, prev_term: int, leader_commit: int,
                     entries: tuple[Entry, ...]) -> int | None:
        """The follower side of AppendEntries (Raft figure 2, receiver steps 2 to 5).

        Returns the index of the last new entry, or None when the log has no entry at
        ``prev_index`` with ``prev_term`` (the consistency check fails).
        """
        if not self.match_term(prev_index, prev_term):
            return None
        last_new = prev_index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            # Step 3: delete a conflicting entry and all that follow it; step 4: append.
            self.append(list(entries[conflict - prev_index - 1:]))
        # Step 5: commit_index = min(leader_commit, index of last new entry).
        self.commit_to(min(leader_commit, last_new))
        return last_new

    def commit_to(self, index: int) -> bool:
        """Raise ``committed`` to ``index``; never lowers it. Returns True when it moved."""
        if index <= self.committed:
            return False
        if index > self.last_index():
            raise LogInvariantError(f"commit {index} beyond last index {self.last_index()}")
        self.committed = index
        return True

    def unstable_entries(self) -> list[Entry]:
        """Entries not yet handed out to be persisted."""
        if self.unstable_from > self.last_index():
            return []
        return self.slice(self.unstable_from, self.last_index() + 1)

    def stable_to(self, index: int, term: int) -> None:
        """The node persisted entries up to ``index`` (with ``term`` at it)."""
        # A Ready's entries may have been overwritten since it was pulled (a new leader);
        # only a matching term proves that what is on disk is what the log holds now.
        if not self.match_term(index, term):
            return
        self.stable_index = max(self.stable_index, index)
        self.unstable_from = max(self.unstable_from, index + 1)

    def has_next_committed(self) -> bool:
        """True when entries are committed but not yet handed out to be applied."""
        return self.committed > self.applied and self.pending_snapshot is None

    def next_committed(self) -> list[Entry]:
        """Committed entries not yet applied, in order (Raft figure 2, last_applied rule)."""
        if not self.has_next_committed():
            return []
        return self.slice(self.applied + 1, self.committed + 1)

    def applied_to(self, index: int) -> None:
        """The state machine applied up to ``index``. Invariant: applied <= committed."""
        if index > self.committed or index < self.applied:
            raise LogInvariantError(f"applied {index} outside [{self.applied}, {self.committed}]")
        self.applied = index

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole log by a snapshot received from the leader (Raft section 7)."""
        self.snapshot = snapshot
        self.pending_snapshot = snapshot
        self.snapshot_index = snapshot.meta.index
        self.snapshot_term = snapshot.meta.term
        self.entries = []
        self.committed = snapshot.meta.index
        self.stable_index = snapshot.meta.index
        self.unstable_from = snapshot.meta.index + 1

    def snapshot_persisted(self, snapshot: Snapshot) -> None:
        """The node persisted and restored ``snapshot``: apply resumes after it."""
        if self.pending_snapshot is snapshot:
            self.pending_snapshot = None
            self.applied = max(self.applied, snapshot.meta.index)

    def compact(self, snapshot: Snapshot) -> None:
        """Drop entries up to ``snapshot.meta.index``; the app already saved the snapshot."""
        index = snapshot.meta.index
        if index <= self.snapshot_index:
            return
        if index > self.applied:
            raise LogInvariantError(f"compact at {index} beyond applied {self.applied}")
        del self.entries[:index - self.snapshot_index]
        self.snapshot = snapshot
        self.snapshot_index = index
        self.snapshot_term = snapshot.meta.term
