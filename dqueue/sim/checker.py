"""Safety invariants of Raft (figure 3 of the paper), checked after every step of a simulation.

The checker keeps a global record of every entry any member ever persisted and of every index
any member ever committed, and compares each member against it incrementally, so a check
costs time in proportion to what changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from dqueue.queue import QueueState
from dqueue.raft import (
    Entry,
    EntryType,
    Message,
    MessageType,
    PersistedState,
    Raft,
    Ready,
    Role,
    Snapshot,
)
from dqueue.sim.machine import SimStateMachine


class SimDiskLike(Protocol):
    """What the checker reads of a member's disk."""

    state: PersistedState


def _stores(state: PersistedState, index: int, term: int) -> bool:
    """Whether a disk holds the entry (index, term), in its log or under its snapshot (a
    snapshot covers only committed entries, which match every leader's log)."""
    snapshot = state.snapshot
    if snapshot is not None and snapshot.meta.index >= index:
        return True
    entries = state.entries
    if not entries:
        return False
    offset = index - entries[0].index
    return 0 <= offset < len(entries) and entries[offset].term == term


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


class Checker:
    """Cluster-wide invariants.

    Attributes:
        leaders: term -> the member that led it (Election Safety).
        seen: (index, term) -> (entry, term of the entry before it) for every entry any
            member persisted (Log Matching).
        committed: index -> entry for every index any member committed (State Machine
            Safety, and no committed entry changes).
        acked: values a client saw committed (applied somewhere).
        duplicates_expected: a value applied twice on one member is counted in
            ``duplicates`` instead of failing the run (for a run that turns sessions off).
        duplicates: values applied a second time on a member (only when expected).
        promises: member -> (term, vote granted in it or None, highest index acknowledged
            in it) of the newest term the member sent a granted vote or an accepted append
            response in: what its disk must still hold when it crashes (Raft figure 2).

    Args:
        duplicates_expected: see the attribute.
    """

    def __init__(self, duplicates_expected: bool = False) -> None:
        self.leaders: dict[int, str] = {}
        self.seen: dict[tuple[int, int], tuple[Entry, int | None]] = {}
        self.committed: dict[int, Entry] = {}
        self.acked: set[bytes] = set()
        self.max_commit = 0
        self.duplicates_expected = duplicates_expected
        self.duplicates = 0
        self.promises: dict[str, tuple[int, str | None, int]] = {}

    def check_voter_majority(self, raft: Raft, disks: Mapping[str, SimDiskLike]) -> None:
        """A leader's commit index is stored on a majority of the VOTERS of the configuration
        in force on it (thesis 4.1); learners, and a leader that removed itself, never count
        (4.2.1, 4.2.2). Called on a leader that led the same term at its previous Ready, so
        every index it committed since was committed by counting in this term.

        A voter whose log a repair wiped (``catch_up_index`` at or above ``index``) counts as
        holding what it acknowledged before: the leader cannot know of the wipe, and the
        member's refusal to vote until it catches up is what keeps the entry (docs/raft.md,
        "Repair"; ``check_leader_completeness`` checks that it does)."""
        index = raft.log.committed
        term = raft.log.term(index)
        if index == 0 or term is None:
            return
        membership = raft.membership
        holding = 0
        for voter in membership.voters:
            disk = disks.get(voter)
            if disk is not None and (_stores(disk.state, index, term)
                                     or disk.state.catch_up_index >= index):
                holding += 1
        if holding < membership.quorum():
            raise InvariantViolation(
                "voter_majority", f"{raft.id} committed {index} (term {term}) stored on "
                f"{holding} of the voters {membership.voters}")

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
        """A snapshot installed from the leader holds exactly the state the committed entries
        up to its index build (values and client sessions)."""
        index = snapshot.meta.index
        machine = SimStateMachine()
        for i in range(1, index + 1):
            entry = self.committed.get(i)
            if entry is None:
                raise InvariantViolation("snapshot",
                                         f"{node_id} got a snapshot at {index} over unknown {i}")
            if entry.type is EntryType.NORMAL:
                machine.apply(i, entry.data)
        if machine.snapshot() != snapshot.data:
            raise InvariantViolation("snapshot", f"{node_id} snapshot at {index} differs "
                                     "from the committed entries")

    def check_value_applied(self, node_id: str, index: int, value: bytes,
                            duplicate: bool) -> None:
        """Every value a client proposes is unique, and client sessions answer its repeats
        (dissertation 6.3): a value applied a second time on one member executed a command
        twice."""
        self.acked.add(value)
        if not duplicate:
            return
        if not self.duplicates_expected:
            raise InvariantViolation("duplicate_apply",
                                     f"{node_id} applied {value!r} again at {index}")
        self.duplicates += 1

    def record_promise(self, msg: Message) -> None:
        """Note what a message that just left promises is on its sender's disk: a granted
        vote (5.2, one vote per term) or an accepted append (5.3, counted toward commit)."""
        kind = msg.type
        if msg.reject or (kind is not MessageType.REQUEST_VOTE_RESPONSE
                          and kind is not MessageType.APPEND_ENTRIES_RESPONSE):
            return
        sender = msg.sender
        term, vote, index = self.promises.get(sender, (0, None, 0))
        if msg.term > term:
            term, vote, index = msg.term, None, 0
        elif msg.term < term:
            return
        if kind is MessageType.REQUEST_VOTE_RESPONSE:
            vote = msg.to
        else:
            index = max(index, msg.index)
        self.promises[sender] = (term, vote, index)

    def check_promises(self, node_id: str, disk: PersistedState) -> None:
        """At a crash: the disk holds every promise the member's messages made (Raft figure
        2: persistent state is updated on stable storage before responding to RPCs)."""
        promise = self.promises.get(node_id)
        if promise is None:
            return
        term, vote, index = promise
        hard = disk.hard_state
        if hard.term < term:
            raise InvariantViolation("promise_lost", f"{node_id} answered in term {term} but "
                                     f"its disk holds term {hard.term}")
        if hard.term > term:
            return  # a newer term: its log may have been rewritten since, legitimately
        if vote is not None and hard.vote != vote:
            raise InvariantViolation("promise_lost", f"{node_id} granted its term {term} vote "
                                     f"to {vote}; its disk holds vote {hard.vote}")
        last = disk.entries[-1].index if disk.entries else 0
        if disk.snapshot is not None:
            last = max(last, disk.snapshot.meta.index)
        if last < index:
            raise InvariantViolation("promise_lost", f"{node_id} acknowledged entries up to "
                                     f"{index} in term {term}; its disk ends at {last}")

    def forget_promises(self, node_id: str) -> None:
        """A repair wiped the member's log: it knowingly breaks its promises, and the repair
        rule (docs/raft.md, "Repair") keeps it from voting until they hold again."""
        self.promises.pop(node_id, None)

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


def check_queue(node_id: str, queue: QueueState) -> None:
    """The queue state's reads agree with each other: each queue's counts by status are a
    recount of the tasks listed in it, and they add up to the totals by status (a task is
    counted in exactly its own queue)."""
    stats = queue.stats()
    totals = dict.fromkeys(stats["by_status"], 0)
    for name, counts in stats["by_queue"].items():
        for status, count in counts.items():
            listed = queue.list_tasks(status, limit=1_000, queue=name)
            tasks = listed["tasks"]
            while listed["next_cursor"] is not None:
                listed = queue.list_tasks(status, limit=1_000, queue=name,
                                          cursor=listed["next_cursor"])
                tasks += listed["tasks"]
            if len(tasks) != count or any(task["queue"] != name for task in tasks):
                raise InvariantViolation("queue_counts", f"{node_id} counts {count} {status} "
                                         f"tasks in {name} but lists {len(tasks)}")
            totals[status] += count
    if totals != stats["by_status"]:
        raise InvariantViolation("queue_counts", f"{node_id}: by queue {totals}, by status "
                                 f"{stats['by_status']}")
