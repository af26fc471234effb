"""The nemesis: injects one fault at a time on a fixed schedule and heals it.

Every ``interval_s`` the leader is killed with SIGKILL (the seed's chaos test); half-way between
two leader kills comes the next fault of a rotation: a SIGSTOP pause of a random node, an
isolation of a random node (link down), a kill of a follower, a peer-only cut of the leader
(clients still reach it), and a crash and restart of every node. Each fault is healed before the
next one starts, and is recorded as a ``start`` and a ``stop`` event.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Callable

from dqueue.chaos import netns
from dqueue.chaos.history import EventType, HistoryWriter, Op
from dqueue.testing.processes import NodeProcess, find_leader
from dqueue.testing.waits import wait_until


class Fault(enum.StrEnum):
    """The kinds of fault the nemesis knows."""

    KILL_LEADER = "kill-leader"
    KILL_FOLLOWER = "kill-follower"
    PAUSE = "pause"
    PARTITION = "partition"          # isolate one node from everyone
    PARTITION_PEERS = "partition-peers"  # cut the leader from its peers, not from clients
    RESTART_ALL = "restart-all"


ROTATION = (Fault.PAUSE, Fault.PARTITION, Fault.KILL_FOLLOWER, Fault.PARTITION_PEERS,
            Fault.RESTART_ALL)


class Nemesis(threading.Thread):
    """Runs the schedule until ``stopping`` is set, then heals everything.

    ``abort`` also cuts the fault in progress short (an interrupted run).
    """

    def __init__(self, nodes: list[NodeProcess], topology: netns.Topology | None,
                 history: HistoryWriter, rng: random.Random, interval_s: float = 10.0,
                 hold_s: float = 3.0, faults: tuple[Fault, ...] = ROTATION,
                 kill_leader: bool = True) -> None:
        super().__init__(name="nemesis", daemon=True)
        self.nodes, self.topology, self.history, self.rng = nodes, topology, history, rng
        self.interval_s, self.hold_s = interval_s, hold_s
        self.faults, self.kill_leader = faults, kill_leader
        self.stopping = threading.Event()
        self.abort = threading.Event()
        self.errors: list[str] = []

    def by_id(self, node_id: str) -> NodeProcess:
        """The node with this id."""
        return next(node for node in self.nodes if node.id == node_id)

    def run(self) -> None:
        """Alternate leader kills and the rotation: fault ``k`` starts ``k * interval_s / 2``
        after the first one (or as soon as the previous fault healed, when that is later)."""
        slot_s = self.interval_s / 2
        started = time.monotonic() + 1.0
        rotation = 0
        slot = 0
        while not self.stopping.wait(max(0.0, started + slot * slot_s - time.monotonic())):
            if self.kill_leader and slot % 2 == 0:
                fault: Fault | None = Fault.KILL_LEADER
            elif self.faults:
                fault = self.faults[rotation % len(self.faults)]
                rotation += 1
            else:
                fault = None
            slot += 1
            if fault is None:
                continue
            try:
                self.inject(fault)
            except Exception as exc:  # a failed fault must not end the run: record it
                self.errors.append(f"{fault.value}: {exc}")
                self.history.record("nemesis", EventType.INFO, Op.NEMESIS,
                                    {"fault": fault.value, "phase": "error"}, str(exc))
        self.heal_all()

    def inject(self, fault: Fault) -> None:
        """Start one fault, hold it ``hold_s``, heal it.

        A fault aimed at the leader waits up to ``hold_s`` for one (the cluster may still be
        recovering from the previous fault) and is skipped, and recorded so, if none shows up.
        """
        leader = find_leader(self.nodes)
        if leader is None and fault in (Fault.KILL_LEADER, Fault.PARTITION_PEERS):
            leader = wait_until(lambda: find_leader(self.nodes), self.hold_s, 0.1)
            if leader is None:
                self.history.record("nemesis", EventType.INFO, Op.NEMESIS,
                                    {"fault": fault.value, "phase": "skipped"}, "no leader")
                return
        others = [n.id for n in self.nodes if n.id != leader]
        if fault is Fault.KILL_LEADER:
            assert leader is not None
            self._around(fault, leader, self.by_id(leader).kill, self.by_id(leader).start)
        elif fault is Fault.KILL_FOLLOWER:
            target = self.rng.choice(others)
            self._around(fault, target, self.by_id(target).kill, self.by_id(target).start)
        elif fault is Fault.PAUSE:
            target = self.rng.choice([n.id for n in self.nodes])
            self._around(fault, target, self.by_id(target).pause, self.by_id(target).resume)
        elif fault is Fault.PARTITION:
            target = self.rng.choice([n.id for n in self.nodes])
            self._network(fault, target, netns.isolate)
        elif fault is Fault.PARTITION_PEERS:
            assert leader is not None
            self._network(fault, leader, netns.cut_peers)
        elif fault is Fault.RESTART_ALL:
            def kill_all() -> None:
                for node in self.nodes:
                    node.kill()

            def start_all() -> None:
                for node in self.nodes:
                    node.start()

            self._around(fault, "all", kill_all, start_all, hold_s=1.0)

    def _network(self, fault: Fault, target: str,
                 cut: Callable[[netns.Topology, str], None]) -> None:
        topology = self.topology
        if topology is None:
            raise RuntimeError("partitions need network namespaces")
        self._around(fault, target, lambda: cut(topology, target),
                     lambda: netns.heal(topology, target), hold_s=self.hold_s * 2)

    def _around(self, fault: Fault, target: str, start: Callable[[], None],
                stop: Callable[[], None], hold_s: float | None = None) -> None:
        self.history.record("nemesis", EventType.INFO, Op.NEMESIS,
                            {"fault": fault.value, "node": target, "phase": "start"})
        start()
        try:
            # A fault started is held its full time even when the run is ending, so that a
            # short run still sees every fault it scheduled; only ``abort`` cuts it short.
            self.abort.wait(self.hold_s if hold_s is None else hold_s)
        finally:
            stop()
            self.history.record("nemesis", EventType.INFO, Op.NEMESIS,
                                {"fault": fault.value, "node": target, "phase": "stop"})

    def heal_all(self) -> None:
        """Resume paused nodes, start dead ones, undo every cut."""
        for node in self.nodes:
            if node.paused:
                node.resume()
            if not node.is_running():
                node.start()
        if self.topology is not None:
            netns.heal(self.topology)
        self.history.record("nemesis", EventType.INFO, Op.NEMESIS, {"phase": "healed"})
