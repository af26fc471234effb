"""Safety invariants of Raft (figure 3 of the paper), checked after every step of a simulation.

The checker keeps a global record of every entry any member ever persisted and of every index
any member ever committed, and compares each member against it incrementally, so a check
costs time in proportion to what changed.
"""

from __future__ import annotations

from dqueue.raft import Entry, EntryType, Raft, Ready, Role, Snapshot


class InvariantViolation(AssertionError):
    """A safety property failed.

    Attributes:
        kind: short name of the property (e.g. ``election_safety``).
        detail: what was seen.
    """

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def encode_values(values: list[bytes]) -> bytes:
    """The simulator's state machine snapshot: its values joined by commas."""
    return b",".join(values)


def decode_values(data: bytes) -> list[bytes]:
    """Inverse of ``encode_values``."""
    return data.split(b",") if data else []


class Checker:
    """Cluster-wide invariants.

    Attributes:
        leaders: term -> the member that led it (Election Safety).
        seen: (index, term) -> (entry, term of the entry before it) for every entry any
            member persisted (Log Matching).
        committed: index -> entry for every index any member committed (State Machine
            Safety, and no committed entry changes).
        acked: values a client saw committed (applied somewhere).
    """

    def __init__(self) -> None:
        self.leaders: dict[int, str] = {}
        self.seen: dict[tuple[int, int], tuple[Entry, int | None]] = {}
        self.committed: dict[int, Entry] = {}
        self.acked: set[bytes] = set()
        self.max_commit = 0

    def check_leader(self, raft: Raft) -> None:
        """Election Safety and Leader Completeness (Raft sections 5.2 and 5.4)."""
        if raft.role is not Role.LEADER:
            return
        term = raft.current_term
        known = self.leaders.get(term)
        if known is None:
            self.leaders[term] = raft.id
            self.check_leader_completeness(raft)
        elif known != raft.id:
            raise InvariantViolation("election_safety",
                                     f"term {term} has leaders {known} and {raft.id}")

    def check_leader_completeness(self, raft: Raft) -> None:
        """A new leader's log holds every committed entry (Raft section 5.4.1)."""
        log = raft.log
        if self.max_commit > log.last_index():
            raise InvariantViolation(
                "leader_completeness",
                f"{raft.id} leads term {raft.current_term} with last index "
                f"{log.last_index()} < committed {self.max_commit}")
        for index in range(log.snapshot_index + 1, self.max_commit + 1):
            entry = self.committed.get(index)
            if entry is not None and log.term(index) != entry.term:
                raise InvariantViolation(
                    "leader_completeness",
                    f"{raft.id} leads term {raft.current_term} without committed "
                    f"entry {index}/{entry.term} (has term {log.term(index)})")

    def check_persisted(self, raft: Raft, ready: Ready) -> None:
        """Log Matching (Raft section 5.3): one entry per (index, term), same predecessor."""
        log = raft.log
        seen = self.seen
        for entry in ready.entries:
            prev_term = log.term(entry.index - 1)
            key = (entry.index, entry.term)
            known = seen.get(key)
            if known is None:
                seen[key] = (entry, prev_term)
                continue
            known_entry, known_prev = known
            if known_entry != entry or (
                    prev_term is not None and known_prev is not None and prev_term != known_prev):
                raise InvariantViolation(
                    "log_matching",
                    f"{raft.id} holds {entry} after term {prev_term}; another member held "
                    f"{known_entry} after term {known_prev}")

    def check_commit(self, raft: Raft, old_commit: int) -> None:
        """Committed entries never change, and commit never goes backwards (figure 3)."""
        log = raft.log
        new_commit = log.committed
        if new_commit < old_commit:
            raise InvariantViolation("commit_monotonic",
                                     f"{raft.id} commit {old_commit} -> {new_commit}")
        committed = self.committed
        for index in range(max(old_commit, log.snapshot_index) + 1, new_commit + 1):
            entry = log.entries[index - log.snapshot_index - 1]
            known = committed.get(index)
            if known is None:
                committed[index] = entry
            elif known != entry:
                raise InvariantViolation(
                    "committed_entry_changed",
                    f"{raft.id} committed {entry} at {index}; {known} was committed there")
        self.max_commit = max(self.max_commit, new_commit)

    def check_snapshot(self, node_id: str, snapshot: Snapshot) -> None:
        """A snapshot installed from the leader holds exactly the committed values."""
        index = snapshot.meta.index
        expected = []
        for i in range(1, index + 1):
            entry = self.committed.get(i)
            if entry is None:
                raise InvariantViolation("snapshot",
                                         f"{node_id} got a snapshot at {index} over unknown {i}")
            if entry.type is EntryType.NORMAL:
                expected.append(entry.data)
        if decode_values(snapshot.data) != expected:
            raise InvariantViolation("snapshot", f"{node_id} snapshot at {index} differs "
                                     "from the committed entries")

    def check_applied(self, node_id: str, applied_index: int, entries: tuple[Entry, ...]) -> None:
        """State Machine Safety (Raft section 5.4.3): no two members apply different entries
        at one index; entries apply in order, each exactly once."""
        committed = self.committed
        for entry in entries:
            if entry.index != applied_index + 1:
                raise InvariantViolation("applied_order",
                                         f"{node_id} applied {entry.index} after {applied_index}")
            applied_index = entry.index
            known = committed.get(entry.index)
            if known != entry:
                raise InvariantViolation(
                    "state_machine_safety",
                    f"{node_id} applied {entry} at {entry.index}; committed there: {known}")
            if entry.type is EntryType.NORMAL:
                self.acked.add(entry.data)
