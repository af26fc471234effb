"""N Raft members in one thread: disks, a toy state machine, crashes and restarts.

Each member's Ready is handled exactly as docs/internals.md section 1 asks of the node:
persist (snapshot, entries, hard state), send, restore and apply, advance. A crash throws away
everything in memory; a restart rebuilds the member from its disk only, as after a power cut.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from dqueue.raft import (
    Entry,
    EntryType,
    HardState,
    PersistedState,
    ProposalDropped,
    Raft,
    RaftConfig,
    ReadState,
    Ready,
    Role,
)
from dqueue.sim.checker import Checker, InvariantViolation, decode_values, encode_values
from dqueue.sim.network import LinkFaults, SimNetwork


class SimDisk:
    """What one member has on stable storage; survives crashes."""

    def __init__(self) -> None:
        self.state = PersistedState()

    def save(self, ready: Ready) -> None:
        """Persist a Ready's snapshot, entries and hard state as one atomic write."""
        old = self.state
        hard = ready.hard_state if ready.hard_state is not None else old.hard_state
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
        self.state = PersistedState(hard, snapshot, entries, old.catch_up_index)

    def wipe(self) -> None:
        """What a repair leaves (node/store.py ``Store.repair``): no log, no snapshot; term
        and vote kept, commit 0, and the old last index as the catch-up index."""
        old = self.state
        last = old.entries[-1].index if old.entries else (
            old.snapshot.meta.index if old.snapshot is not None else 0)
        hard = old.hard_state
        self.state = PersistedState(HardState(hard.term, hard.vote, 0), None, [],
                                    max(last, old.catch_up_index))

    def caught_up(self) -> None:
        """The core cleared its catch-up index: the node clears the stored one."""
        if self.state.catch_up_index:
            old = self.state
            self.state = PersistedState(old.hard_state, old.snapshot, old.entries, 0)

    def compact(self, raft: Raft) -> None:
        """Store the snapshot the member just took and drop the log behind it."""
        snapshot = raft.log.snapshot
        if snapshot is None:
            return
        old = self.state
        entries = [e for e in old.entries if e.index > snapshot.meta.index]
        self.state = PersistedState(old.hard_state, snapshot, entries, old.catch_up_index)


class SimNode:
    """One member's volatile side: the Raft core and the state machine (a list of values)."""

    def __init__(self, raft: Raft, values: list[bytes], applied: int) -> None:
        self.raft = raft
        self.values = values
        self.applied = applied
        # Entries above this commit index have not been compared with the global record yet.
        self.checked_commit = applied


class Cluster:
    """Members ``n1..nN``, their disks and the network between them.

    Args:
        size: number of members.
        rng: the one source of randomness of the whole run.
        faults: per-message faults of the network.
        snapshot_every: a member compacts after this many applied entries (0: never).
        trace: keep a line per event in ``events``.
        raft_options: extra RaftConfig fields (election_ticks, snapshot_chunk_bytes, ...).
    """

    def __init__(self, size: int, rng: random.Random, faults: LinkFaults | None = None,
                 snapshot_every: int = 0, trace: bool = False,
                 raft_options: dict[str, object] | None = None) -> None:
        self.ids = tuple(f"n{i}" for i in range(1, size + 1))
        self.rng = rng
        self.network = SimNetwork(rng, faults or LinkFaults())
        self.snapshot_every = snapshot_every
        self.raft_options = dict(raft_options or {})
        self.trace = trace
        self.events: list[str] = []
        self.checker = Checker()
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
        config = RaftConfig(node_id, self.ids, **self.raft_options)  # type: ignore[arg-type]
        raft = Raft(config, random.Random(self.rng.getrandbits(64)), state)
        values: list[bytes] = []
        applied = 0
        if state.snapshot is not None:
            values = decode_values(state.snapshot.data)
            applied = state.snapshot.meta.index
        return SimNode(raft, values, applied)

    def crash(self, node_id: str) -> None:
        """Power cut: everything not on the disk is gone."""
        if self.nodes[node_id] is not None:
            self.log_event(f"crash {node_id}")
            self.nodes[node_id] = None

    def restart(self, node_id: str) -> None:
        """Boot a crashed member from its disk."""
        if self.nodes[node_id] is None:
            self.log_event(f"restart {node_id}")
            self.nodes[node_id] = self._boot(node_id)

    def wipe(self, node_id: str) -> None:
        """Crash a member and repair its disk (its log and snapshot wiped, as after a corrupt
        record); it restarts with ``restart`` and must catch up before it votes again."""
        self.crash(node_id)
        self.disks[node_id].wipe()
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

    def propose(self, node_id: str, value: bytes) -> bool:
        """A client proposes ``value`` at ``node_id``; False when the core drops it."""
        node = self.nodes[node_id]
        if node is None:
            return False
        try:
            node.raft.propose(value)
        except ProposalDropped:
            return False
        self.log_event(f"propose {node_id} {value!r}")
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
        """Handle one Ready as the node runtime must, checking invariants on the way."""
        raft = node.raft
        checker = self.checker
        ready = raft.ready()
        checker.check_commit(raft, node.checked_commit)
        node.checked_commit = raft.log.committed
        checker.check_persisted(raft, ready)
        # 1. persist; 2. send.
        self.disks[node_id].save(ready)
        if ready.soft_state is not None and self.trace:
            self.log_event(f"{node_id} is {ready.soft_state.role.value} "
                           f"term={raft.current_term} leader={ready.soft_state.leader_id}")
        for msg in ready.messages:
            self.network.send(msg, self.now)
        # 3. restore the snapshot, apply committed entries, serve reads.
        if ready.snapshot is not None:
            checker.check_snapshot(node_id, ready.snapshot)
            node.values = decode_values(ready.snapshot.data)
            node.applied = ready.snapshot.meta.index
            self.log_event(f"{node_id} restored snapshot at {node.applied}")
        if ready.committed_entries:
            checker.check_applied(node_id, node.applied, ready.committed_entries)
            node.values.extend(e.data for e in ready.committed_entries
                               if e.type is EntryType.NORMAL)
            node.applied = ready.committed_entries[-1].index
        if ready.read_states:
            self.read_states[node_id].extend(ready.read_states)
        # 4. advance.
        raft.advance(ready)
        if not raft.catch_up_index:
            self.disks[node_id].caught_up()
        checker.check_leader(raft)
        if self.snapshot_every and node.applied - raft.log.snapshot_index >= self.snapshot_every:
            raft.compact(node.applied, encode_values(node.values))
            self.disks[node_id].compact(raft)

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
