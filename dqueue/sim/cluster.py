"""N Raft members in one thread: disks, a toy state machine, crashes and restarts.

Each member's Ready is handled as the node handles it, by the same rule
(``dqueue.raft.ready_plan.plan_ready``) in the same order: early sends (a leader's appends and
heartbeats), apply-first (a leader's committed entries), the write (skipped when the Ready only
moves the commit index: the disk then keeps the older commit index, as the node's store does),
the remaining sends, restore and apply, advance. A crash throws away everything in memory; a
restart rebuilds the member from its disk only, as after a power cut. Crashes may also strike
inside a Ready, between those steps (``ReadyFaults``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from dqueue.raft import (
    ConfChange,
    ConfChangeKind,
    Entry,
    EntryType,
    HardState,
    Membership,
    Message,
    MessageType,
    PersistedState,
    ProposalDropped,
    Raft,
    RaftConfig,
    ReadState,
    Ready,
    Role,
)
from dqueue.raft.membership import decode_conf_entry
from dqueue.raft.ready_plan import plan_ready
from dqueue.sim.checker import Checker, InvariantViolation
from dqueue.sim.machine import SimStateMachine, encode_proposal
from dqueue.sim.network import LinkFaults, SimNetwork


@dataclass(frozen=True, slots=True)
class ReadyFaults:
    """Chances of a crash inside a Ready, per Ready where the point exists.

    Attributes:
        before_write: after the early sends and the leader's apply-first, before the write
            (per Ready that needs a write): the Ready's entries, hard state and snapshot are
            lost, its early messages are out.
        after_write: after the write, before the remaining sends (per written Ready with
            messages left): what the messages would have promised is on disk, they are lost.
        after_vote: right after a granted vote left (per Ready that grants a vote): the vote
            was written and sent, then the member crashes.
    """

    before_write: float = 0.0
    after_write: float = 0.0
    after_vote: float = 0.0


class SimDisk:
    """What one member has on stable storage; survives crashes.

    Attributes:
        writes: Readies written.
        skipped_writes: Readies that only moved the commit index and were not written (the
            stored commit index then lags the member's, as in the node's store).
    """

    def __init__(self) -> None:
        self.state = PersistedState()
        self.writes = 0
        self.skipped_writes = 0

    def save(self, ready: Ready, hard_state: HardState | None = None) -> None:
        """Persist a Ready's snapshot, entries and hard state as one atomic write.

        Args:
            ready: the Ready.
            hard_state: the newest hard state to write, when it is not the Ready's own (a
                commit index left unwritten by earlier Readies goes with this write).
        """
        old = self.state
        self.writes += 1
        if hard_state is None:
            hard_state = ready.hard_state
        hard = hard_state if hard_state is not None else old.hard_state
        if hard.commit < old.hard_state.commit:
            raise InvariantViolation("commit_monotonic",
                                     f"persisted commit {old.hard_state.commit} -> {hard.commit}")
        snapshot = old.snapshot
        entries = old.entries
        if ready.snapshot is not None:
            snapshot = ready.snapshot
            entries = [e for e in entries if e.index > snapshot.meta.index]
        if ready.entries:
            first = ready.entries[0].index
            if entries and entries[0].index < first:
                entries = entries[:first - entries[0].index]
            elif entries:
                entries = []
            entries = entries + list(ready.entries)
        self.state = PersistedState(hard, snapshot, entries, old.catch_up_index,
                                    old.catch_up_term)

    def skip(self) -> None:
        """A Ready that needs no write (``ReadyPlan.needs_write`` off): nothing is stored."""
        self.skipped_writes += 1

    def wipe(self) -> None:
        """What a repair leaves (node/store.py ``Store.repair``): no log, no snapshot; term
        and vote kept, commit 0, the old last index as the catch-up index and the term as
        the catch-up term."""
        old = self.state
        last = old.entries[-1].index if old.entries else (
            old.snapshot.meta.index if old.snapshot is not None else 0)
        hard = old.hard_state
        self.state = PersistedState(HardState(hard.term, hard.vote, 0), None, [],
                                    max(last, old.catch_up_index), hard.term)

    def caught_up(self) -> None:
        """The core cleared its catch-up index: the node clears the stored one."""
        if self.state.catch_up_index:
            old = self.state
            self.state = PersistedState(old.hard_state, old.snapshot, old.entries, 0, None)

    def compact(self, raft: Raft) -> None:
        """Store the snapshot the member just took and drop the log behind it."""
        snapshot = raft.log.snapshot
        if snapshot is None:
            return
        old = self.state
        entries = [e for e in old.entries if e.index > snapshot.meta.index]
        self.state = PersistedState(old.hard_state, snapshot, entries, old.catch_up_index,
                                    old.catch_up_term)


class SimNode:
    """One member's volatile side: the Raft core and the state machine."""

    def __init__(self, raft: Raft, machine: SimStateMachine, applied: int) -> None:
        self.raft = raft
        self.machine = machine
        self.applied = applied
        # Entries above this commit index have not been compared with the global record yet.
        self.checked_commit = applied
        # The newest hard state not written yet (only its commit index differs from the
        # stored one); it goes with the next write, or is lost in a crash (Raft figure 2).
        self.unsaved_hard: HardState | None = None
        # The term this member led in at its last Ready (0: it did not lead).
        self.led_term = 0
        self.majority_checked = 0

    @property
    def values(self) -> list[bytes]:
        """The values applied, in order."""
        return self.machine.values


class Cluster:
    """Members ``n1..nN``, their disks and the network between them.

    Args:
        size: number of members.
        rng: the one source of randomness of the whole run.
        faults: per-message faults of the network.
        snapshot_every: a member compacts after this many applied entries (0: never).
        trace: keep a line per event in ``events``.
        raft_options: extra RaftConfig fields (election_ticks, snapshot_chunk_bytes, ...).
        ready_faults: chances of a crash inside a Ready (none by default).
        duplicates_expected: count values applied twice instead of failing (``Checker``).
        spares: members ``n{size+1}..`` started to join (``RaftConfig(members=())``): no
            configuration until a leader adds them (``add_member``).
        crash_closes_connections: a crash closes the member's connections (as a killed
            process's), which the members that can reach it see (``Raft.peer_lost``).
    """

    def __init__(self, size: int, rng: random.Random, faults: LinkFaults | None = None,
                 snapshot_every: int = 0, trace: bool = False,
                 raft_options: dict[str, object] | None = None,
                 ready_faults: ReadyFaults | None = None,
                 duplicates_expected: bool = False, spares: int = 0,
                 crash_closes_connections: bool = True) -> None:
        # Every id that may ever run; the first ``size`` are the bootstrap voters.
        self.ids = tuple(f"n{i}" for i in range(1, size + spares + 1))
        self.bootstrap = self.ids[:size]
        # Members whose removal committed: down for good, never added again (a new member
        # always gets a new id, as the node requires).
        self.retired: set[str] = set()
        self.conf_changes: dict[str, int] = {}
        self.added: set[str] = set()
        # Members whose REMOVE entry some member applied (so committed): retire_removed.
        self.removal_committed: set[str] = set()
        self.last_membership = Membership(self.bootstrap)
        self.rng = rng
        self.network = SimNetwork(rng, faults or LinkFaults())
        self.crash_closes_connections = crash_closes_connections
        self.snapshot_every = snapshot_every
        self.raft_options = dict(raft_options or {})
        self.trace = trace
        self.events: list[str] = []
        self.checker = Checker(duplicates_expected)
        self.ready_faults = ready_faults or ReadyFaults()
        self.ready_crashes: dict[str, int] = {"before_write": 0, "after_write": 0,
                                              "after_vote": 0}
        # Session sequence numbers of the anonymous client behind ``propose`` without one.
        self.anonymous_seq = 0
        self.disks = {i: SimDisk() for i in self.ids}
        self.nodes: dict[str, SimNode | None] = {i: self._boot(i) for i in self.ids}
        self.now = 0
        self.read_states: dict[str, list[ReadState]] = {i: [] for i in self.ids}
        self.delivered_by_type: dict[str, int] = {}
        self.rounds_per_tick = 4
        self.wipes = 0

    # ----------------------------------------------------------------- lifecycle

    def _boot(self, node_id: str) -> SimNode:
        state = self.disks[node_id].state
        members = self.bootstrap if node_id in self.bootstrap else ()
        config = RaftConfig(node_id, members, **self.raft_options)  # type: ignore[arg-type]
        raft = Raft(config, random.Random(self.rng.getrandbits(64)), state)
        machine = SimStateMachine()
        applied = 0
        if state.snapshot is not None:
            machine = SimStateMachine.restore(state.snapshot.data)
            applied = state.snapshot.meta.index
        return SimNode(raft, machine, applied)

    def crash(self, node_id: str) -> None:
        """Power cut: everything not on the disk is gone."""
        if self.nodes[node_id] is not None:
            self.log_event(f"crash {node_id}")
            self.nodes[node_id] = None
            self.checker.check_promises(node_id, self.disks[node_id].state)
            self._connections_closed(node_id)

    def _connections_closed(self, node_id: str) -> None:
        """The crashed member's connections close: every member that could reach it sees
        it (the node's socket monitor, ``Raft.peer_lost``); one cut off from it does not."""
        if not self.crash_closes_connections:
            return
        blocked = self.network.blocked
        for other, node in self.nodes.items():
            if node is not None and (other, node_id) not in blocked:
                node.raft.peer_lost(node_id)

    def restart(self, node_id: str) -> None:
        """Boot a crashed member from its disk (a retired one stays down)."""
        if self.nodes[node_id] is None and node_id not in self.retired:
            self.log_event(f"restart {node_id}")
            self.nodes[node_id] = self._boot(node_id)

    def wipe(self, node_id: str) -> None:
        """Crash a member and repair its disk (its log and snapshot wiped, as after a corrupt
        record); it restarts with ``restart`` and must catch up before it votes again."""
        self.crash(node_id)
        self.disks[node_id].wipe()
        self.checker.forget_promises(node_id)
        self.wipes += 1
        self.log_event(f"wipe {node_id} catch_up={self.disks[node_id].state.catch_up_index}")

    def alive(self) -> list[str]:
        """Ids of the members that are up, in order."""
        return [i for i in self.ids if self.nodes[i] is not None]

    def raft(self, node_id: str) -> Raft:
        """The core of a live member."""
        node = self.nodes[node_id]
        if node is None:
            raise KeyError(f"{node_id} is down")
        return node.raft

    # ----------------------------------------------------------------- driving

    def log_event(self, text: str) -> None:
        """Record an event line when tracing."""
        if self.trace:
            self.events.append(f"t={self.now} {text}")

    def propose(self, node_id: str, value: bytes,
                session: tuple[str, int, int] | None = None) -> bool:
        """A client proposes ``value`` at ``node_id``; False when the core drops it.

        Args:
            node_id: the member asked.
            value: the value; unique per command (the checker counts applications per value).
            session: ``(client_id, seq, first_unanswered)`` of the command (a retry repeats
                them); by default each call is a new command of one anonymous client.
        """
        node = self.nodes[node_id]
        if node is None:
            return False
        if session is None:
            self.anonymous_seq += 1
            session = ("anon", self.anonymous_seq, 0)
        client_id, seq, first_unanswered = session
        try:
            node.raft.propose(encode_proposal(client_id, seq, first_unanswered, self.now,
                                              value))
        except ProposalDropped:
            return False
        self.log_event(f"propose {node_id} {value!r} {client_id}/{seq}")
        return True

    def tick(self) -> None:
        """One tick: every live member ticks, then messages flow until quiet (bounded)."""
        self.now += 1
        for node_id in self.ids:
            node = self.nodes[node_id]
            if node is not None:
                node.raft.tick()
        self.process_all()
        for _ in range(self.rounds_per_tick):
            if not self.deliver():
                break
            self.process_all()

    def deliver(self) -> bool:
        """Deliver the messages due now; returns True when any were."""
        messages = self.network.due(self.now)
        if not messages:
            return False
        nodes = self.nodes
        counts = self.delivered_by_type
        for msg in messages:
            node = nodes.get(msg.to)
            if node is None:
                continue
            name = msg.type.name
            counts[name] = counts.get(name, 0) + 1
            if self.trace:
                self.log_event(f"deliver {msg.sender}->{msg.to} {name} term={msg.term} "
                               f"index={msg.index} log_term={msg.log_term} "
                               f"entries={len(msg.entries)} commit={msg.commit} "
                               f"reject={msg.reject}")
            node.raft.step(msg)
        return True

    def process_all(self) -> None:
        """Handle every live member's Ready, in id order."""
        for node_id in self.ids:
            node = self.nodes[node_id]
            if node is not None and node.raft.has_ready():
                self.process_ready(node_id, node)

    def process_ready(self, node_id: str, node: SimNode) -> None:
        """Handle one Ready as the node does (``dqueue/node/process.py`` ``_handle_ready``),
        by the same plan and in the same order, checking invariants on the way; a
        ``ReadyFaults`` crash may end it between two steps."""
        raft = node.raft
        checker = self.checker
        disk = self.disks[node_id]
        ready = raft.ready()
        checker.check_commit(raft, node.checked_commit)
        node.checked_commit = raft.log.committed
        checker.check_persisted(raft, ready)
        if ready.soft_state is not None and self.trace:
            self.log_event(f"{node_id} is {ready.soft_state.role.value} "
                           f"term={raft.current_term} leader={ready.soft_state.leader_id}")
        stored = disk.state.hard_state
        plan = plan_ready(ready, raft.role, stored.term, stored.vote)
        # 1. early sends (a leader's appends and heartbeats), a leader's apply-first. A crash
        # before the write may strike only where something happened before it (otherwise it
        # is a crash between ticks).
        send = self.send
        for msg in plan.early:
            send(msg)
        if plan.apply_first:
            self._apply(node_id, node, ready)
        if ready.hard_state is not None:
            node.unsaved_hard = ready.hard_state
        faults = self.ready_faults
        # 2. the write, or none for a commit-only change.
        if plan.needs_write:
            if faults.before_write and (plan.early or plan.apply_first) and (
                    self.rng.random() < faults.before_write):
                self._crash_in_ready(node_id, "before_write")
                return
            disk.save(ready, node.unsaved_hard)
            node.unsaved_hard = None
        else:
            disk.skip()
        # 3. the remaining sends.
        if plan.late and plan.needs_write and faults.after_write and (
                self.rng.random() < faults.after_write):
            self._crash_in_ready(node_id, "after_write")
            return
        for msg in plan.late:
            send(msg)
        # A granted vote is on disk before it leaves (figure 2): a crash right after it must
        # not let this member vote again in the term.
        if faults.after_vote and any(m.type is MessageType.REQUEST_VOTE_RESPONSE and not m.reject
                                     for m in plan.late) and self.rng.random() < faults.after_vote:
            self._crash_in_ready(node_id, "after_vote")
            return
        # 4. restore the snapshot, apply committed entries, serve reads.
        if ready.snapshot is not None:
            checker.check_snapshot(node_id, ready.snapshot)
            node.machine = SimStateMachine.restore(ready.snapshot.data)
            node.applied = ready.snapshot.meta.index
            self.log_event(f"{node_id} restored snapshot at {node.applied}")
        if ready.committed_entries and not plan.apply_first:
            self._apply(node_id, node, ready)
        if ready.read_states:
            self.read_states[node_id].extend(ready.read_states)
        # 5. advance.
        raft.advance(ready)
        if not raft.catch_up_index:
            disk.caught_up()
        checker.check_leader(raft)
        if raft.role is Role.LEADER:
            if node.led_term == raft.current_term and raft.log.committed > node.majority_checked:
                checker.check_voter_majority(raft, self.disks)
            node.majority_checked = raft.log.committed
            node.led_term = raft.current_term
        else:
            node.led_term = 0
        if self.snapshot_every and node.applied - raft.log.snapshot_index >= self.snapshot_every:
            raft.compact(node.applied, node.machine.snapshot())
            disk.compact(raft)

    def _apply(self, node_id: str, node: SimNode, ready: Ready) -> None:
        """Apply a Ready's committed entries to the member's state machine."""
        checker = self.checker
        checker.check_applied(node_id, node.applied, ready.committed_entries)
        machine = node.machine
        for entry in ready.committed_entries:
            if entry.type is EntryType.NORMAL:
                applied = machine.apply(entry.index, entry.data)
                if applied is not None:
                    checker.check_value_applied(node_id, entry.index, *applied)
            elif entry.type is EntryType.CONF_CHANGE:
                change = decode_conf_entry(entry.data)[0]
                if change.kind is ConfChangeKind.REMOVE:
                    self.removal_committed.add(change.node_id)
        node.applied = ready.committed_entries[-1].index

    def send(self, msg: Message) -> None:
        """Put a message of a Ready on the network, noting what it promises."""
        self.checker.record_promise(msg)
        self.network.send(msg, self.now)

    def _crash_in_ready(self, node_id: str, point: str) -> None:
        """A crash inside a Ready, at ``point``: everything not yet written is lost."""
        self.ready_crashes[point] += 1
        self.log_event(f"crash {node_id} inside a Ready: {point}")
        self.nodes[node_id] = None
        self.checker.check_promises(node_id, self.disks[node_id].state)
        self._connections_closed(node_id)

    # ----------------------------------------------------------------- membership

    def change_membership(self, leader: str, change: ConfChange) -> bool:
        """Propose ``change`` at ``leader``; False when the core refuses it now."""
        node = self.nodes[leader]
        if node is None or change.node_id in self.retired:
            return False
        try:
            node.raft.propose_conf_change(change)
        except (ProposalDropped, ValueError):
            return False
        if change.kind is ConfChangeKind.ADD_LEARNER:
            self.added.add(change.node_id)
        name = change.kind.name.lower()
        self.conf_changes[name] = self.conf_changes.get(name, 0) + 1
        self.log_event(f"conf change at {leader}: {name} {change.node_id}")
        return True

    def retire_removed(self) -> None:
        """Members whose removal committed stop for good (the node exits).

        Known by the committed REMOVE entry itself (some member applied it): a committed
        entry stays in every later leader's log (Raft 5.4.3, Leader Completeness), and ids are
        never added again, so the member can never be in a configuration again. Not by its
        absence from a leader's configuration: a stale leader of an older term (still leading
        on its side of a partition) has never heard of a member added since, and retiring
        that member left it, down for good, in the configuration of every later leader (seed
        274 of --membership: a learner added at t=38 and retired at t=39).
        """
        for node_id in self.ids:
            if node_id in self.removal_committed and node_id not in self.retired:
                self.retired.add(node_id)
                self.crash(node_id)
                self.log_event(f"retire {node_id}")

    def configurations(self) -> list[Membership]:
        """The configuration in force on every member that may run again: a live member's,
        and for a member that is down the one it restarts with (from its disk alone). A
        member with none yet (a spare not added) has nothing to count and is left out.

        Any of them may be the one a future leader counts majorities in (thesis 4.1: a
        configuration is in force once appended, committed or not), so a fault that needs
        a healthy majority must leave one in each of them (``can_spare``).
        """
        found: list[Membership] = []
        for node_id in self.ids:
            node = self.nodes[node_id]
            if node is not None:
                m = node.raft.membership
            elif node_id in self.retired:
                continue
            else:
                members = self.bootstrap if node_id in self.bootstrap else ()
                # A throwaway Random: reading a disk must not move the run's one Random.
                m = Raft(RaftConfig(node_id, members), random.Random(0),
                         self.disks[node_id].state).membership
            if m.voters and m not in found:
                found.append(m)
        return found

    def can_spare(self, more: int = 0, configs: list[Membership] | None = None) -> bool:
        """Whether a leader can still be elected in every configuration of ``configs``
        (default ``configurations()``) with ``more`` of its voters stopped on top of the
        members catching up after a repair (``repairing``): those neither vote nor campaign
        until a leader refills their log (docs/raft.md, "Repair"), so each configuration
        needs a quorum of voters outside them (Raft 5.2, thesis 4.1)."""
        repairing = self.repairing()
        for m in configs if configs is not None else self.configurations():
            healthy = sum(1 for v in m.voters if v not in repairing)
            if healthy - more < m.quorum():
                return False
        return True

    def repairing(self) -> set[str]:
        """Members whose disk holds a catch-up index (repaired, not caught up yet)."""
        return {i for i, d in self.disks.items() if d.state.catch_up_index}

    def ever_member(self, node_id: str) -> bool:
        """Whether ``node_id`` was ever in a configuration (bootstrap or added)."""
        return node_id in self.bootstrap or node_id in self.added

    def membership(self) -> Membership:
        """The configuration in force on the leader of the highest term, or the last one
        seen on a leader when none leads now (the bootstrap voters at first)."""
        leader = self.leader()
        if leader is not None:
            self.last_membership = self.raft(leader).membership
        return self.last_membership

    def members(self) -> tuple[str, ...]:
        """Voters and learners of ``membership()``."""
        return self.membership().members()

    # ----------------------------------------------------------------- scenario helpers

    def run(self, ticks: int) -> None:
        """Tick ``ticks`` times."""
        for _ in range(ticks):
            self.tick()

    def run_until(self, predicate: Callable[[], bool], max_ticks: int) -> int:
        """Tick until ``predicate()`` holds; return the ticks taken or raise TimeoutError."""
        for taken in range(max_ticks + 1):
            if predicate():
                return taken
            self.tick()
        raise TimeoutError(f"condition not reached in {max_ticks} ticks")

    def leaders(self) -> list[str]:
        """Live members that think they lead, in id order."""
        return [i for i in self.alive() if self.raft(i).role is Role.LEADER]

    def leader(self) -> str | None:
        """The leader of the highest term among live members, if any."""
        best: tuple[int, str] | None = None
        for node_id in self.leaders():
            term = self.raft(node_id).current_term
            if best is None or term > best[0]:
                best = (term, node_id)
        return best[1] if best else None

    def wait_leader(self, max_ticks: int = 500, among: tuple[str, ...] | None = None) -> str:
        """Tick until one member (of ``among``, if given) leads with a quorum's support."""
        def found() -> bool:
            leader = self.leader()
            return leader is not None and (among is None or leader in among) and all(
                self.raft(i).leader_id == leader
                for i in (among or tuple(self.alive())) if self.nodes[i] is not None)
        self.run_until(found, max_ticks)
        leader = self.leader()
        assert leader is not None
        return leader

    def values(self, node_id: str) -> list[bytes]:
        """The state machine of a live member."""
        node = self.nodes[node_id]
        if node is None:
            raise KeyError(f"{node_id} is down")
        return node.values

    def log_entries(self, node_id: str) -> list[Entry]:
        """The entries a live member holds after its snapshot."""
        return list(self.raft(node_id).log.entries)
