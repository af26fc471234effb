"""A small in-process network of Raft members for unit tests (no faults, no randomness).

Each member's Ready is handled the way the node must: persist, send, apply, advance. Links can
be cut to isolate members; messages on a cut link are dropped.
"""

from __future__ import annotations

import random

from dqueue.raft import Entry, EntryType, Message, PersistedState, Raft, RaftConfig
from dqueue.sim import SimDisk


class Net:
    """Members ``n1..nN`` wired together in one thread."""

    def __init__(self, size: int = 3, seed: int = 1, **config: object) -> None:
        self.ids = tuple(f"n{i}" for i in range(1, size + 1))
        self.config = config
        self.seed = seed
        self.disks = {i: SimDisk() for i in self.ids}
        self.nodes = {i: self._build(i, None) for i in self.ids}
        self.applied: dict[str, list[Entry]] = {i: [] for i in self.ids}
        self.read_states: dict[str, list] = {i: [] for i in self.ids}
        self.cut: set[tuple[str, str]] = set()
        self.sent: list[Message] = []
        self.inbox: list[Message] = []

    def _build(self, node_id: str, persisted: PersistedState | None) -> Raft:
        config = RaftConfig(node_id, self.ids, **self.config)  # type: ignore[arg-type]
        return Raft(config, random.Random(f"{self.seed}-{node_id}"), persisted)

    def restart(self, node_id: str) -> None:
        """Rebuild a member from its disk only, as after a power cut."""
        self.nodes[node_id] = self._build(node_id, self.disks[node_id].state)
        self.applied[node_id] = []

    def isolate(self, node_id: str) -> None:
        for other in self.ids:
            if other != node_id:
                self.cut.add((node_id, other))
                self.cut.add((other, node_id))

    def heal(self) -> None:
        self.cut.clear()

    def process_ready(self, node_id: str) -> bool:
        node = self.nodes[node_id]
        if not node.has_ready():
            return False
        ready = node.ready()
        self.disks[node_id].save(ready)
        self.sent.extend(ready.messages)
        self.inbox.extend(ready.messages)
        self.applied[node_id].extend(e for e in ready.committed_entries
                                     if e.type is EntryType.NORMAL)
        self.read_states[node_id].extend(ready.read_states)
        node.advance(ready)
        return True

    def settle(self, max_rounds: int = 1000) -> None:
        """Handle Readies and deliver messages until the network is quiet."""
        for _ in range(max_rounds):
            busy = False
            for node_id in self.ids:
                busy |= self.process_ready(node_id)
            inbox, self.inbox = self.inbox, []
            for msg in inbox:
                busy = True
                if (msg.sender, msg.to) not in self.cut:
                    self.nodes[msg.to].step(msg)
            if not busy:
                return
        raise AssertionError("network did not settle")

    def tick(self, node_id: str | None = None, count: int = 1) -> None:
        for _ in range(count):
            for i in (node_id,) if node_id else self.ids:
                self.nodes[i].tick()
            self.settle()

    def elect(self, node_id: str) -> None:
        """Time ``node_id`` out until it leads (the others are far from their timeouts)."""
        node = self.nodes[node_id]
        for _ in range(100):
            if node.role.value == "leader":
                return
            node.tick()
            self.settle()
        raise AssertionError(f"{node_id} did not become leader")

    def leader(self) -> str | None:
        leaders = [i for i in self.ids if self.nodes[i].role.value == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def values(self, node_id: str) -> list[bytes]:
        return [e.data for e in self.applied[node_id]]
