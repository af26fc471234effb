"""Simulated clients with sessions: each command has a unique value and a sequence number, and
is re-sent (same client id and seq) until it is seen committed.

A client re-sends a command not seen committed within ``retry_ticks``, and every command in
flight as soon as a new leader is known, as the node's follower re-sends forwarded proposals
(Raft dissertation 6.3: retries are safe because the state machine answers a repeat from its
session table). Its ``first_unanswered`` tells the state machine which outcomes it may drop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from dqueue.sim.cluster import Cluster
from dqueue.sim.machine import value_key


@dataclass(slots=True)
class _Command:
    """One command in flight: its value, when and under which leader it was last sent."""

    value: bytes
    sent_at: int
    leader: str | None


@dataclass(slots=True)
class SimClient:
    """One client: its id, next sequence number and commands not yet seen committed.

    Attributes:
        client_id: the session's client id.
        next_seq: the sequence number of the next new command.
        in_flight: seq -> command, in seq order.
    """

    client_id: str
    next_seq: int = 1
    in_flight: dict[int, _Command] = field(default_factory=dict)

    def first_unanswered(self) -> int:
        """The lowest seq whose outcome the client has not seen (dissertation 6.3)."""
        return next(iter(self.in_flight), self.next_seq)


class SimClients:
    """The clients of one run.

    Args:
        count: number of clients.
        retry_ticks: a command not seen committed this long after it was sent is re-sent.
        max_in_flight: a client with this many commands in flight sends no new one.
    """

    def __init__(self, count: int, retry_ticks: int, max_in_flight: int) -> None:
        self.clients = [SimClient(f"c{i}") for i in range(1, count + 1)]
        self.retry_ticks = retry_ticks
        self.max_in_flight = max_in_flight
        self.retries = 0
        self.leader: str | None = None

    def propose(self, cluster: Cluster, rng: random.Random, value: bytes) -> bool:
        """A random client sends a new command ``value`` to a random live member; False (and
        nothing sent) when that client has ``max_in_flight`` commands in flight or no member
        is up."""
        alive = cluster.alive()
        client = rng.choice(self.clients)
        if not alive or len(client.in_flight) >= self.max_in_flight:
            return False
        seq = client.next_seq
        client.next_seq += 1
        client.in_flight[seq] = _Command(value, cluster.now, cluster.leader())
        cluster.propose(rng.choice(alive), value,
                        (client.client_id, seq, client.first_unanswered()))
        return True

    def retry(self, cluster: Cluster, rng: random.Random) -> None:
        """Forget commands seen committed; re-send those overdue or sent before the newest
        leader was known."""
        acked = cluster.checker.acked
        leader = cluster.leader()
        new_leader = leader is not None and leader != self.leader
        if leader is not None:
            self.leader = leader
        now = cluster.now
        for client in self.clients:
            in_flight = client.in_flight
            for seq in [s for s, c in in_flight.items() if value_key(c.value) in acked]:
                del in_flight[seq]
            for seq, command in in_flight.items():
                if not (new_leader and command.leader != leader) and (
                        now - command.sent_at < self.retry_ticks):
                    continue
                alive = cluster.alive()
                if not alive:
                    return
                command.sent_at, command.leader = now, leader
                self.retries += 1
                # The same seq: a repeat the state machine answers instead of applying.
                cluster.propose(rng.choice(alive), command.value,
                                (client.client_id, seq, client.first_unanswered()))

    def in_flight(self) -> int:
        """Commands sent and not seen committed."""
        return sum(len(c.in_flight) for c in self.clients)


class QueueWorkload:
    """The queue commands the simulated clients send (issue 15: named and FIFO queues).

    The first four commands create ``dlq`` and ``jobs`` (whose dead tasks move to ``dlq``, and
    whose leases a rate limit of 50 a second of cluster time bounds, so that members that
    replayed and members that restored a snapshot must agree on its bucket too),
    then ``dlq.fifo`` and ``orders.fifo`` (a FIFO queue whose dead tasks move to ``dlq.fifo``,
    keeping their group and sequence number); after them the clients enqueue into ``default``,
    ``jobs`` and ``orders.fifo`` (in message groups), lease from them, ack or nack what the
    leader shows leased (a worker that got the lease's answer), and move dead letters back: a
    moved FIFO task goes back into its group at its enqueue place, the path on which members
    that replayed and members that restored a snapshot once leased different tasks. Commands
    may commit out of order (an enqueue into ``jobs`` before it exists is refused, the same
    way on every member). Draws come from the workload's own ``random.Random``, so that the
    fault schedule of a seed does not depend on it.

    Args:
        rng: the workload's randomness, seeded from the run's seed.
    """

    QUEUES = ("default", "jobs", "orders.fifo")
    GROUPS = ("g1", "g2")
    _CREATE = (
        {"op": "create_queue", "name": "dlq"},
        {"op": "create_queue", "name": "jobs", "settings": {
            "lease_ms": 30, "max_retries": 1, "max_depth": 20, "dead_letter_queue": "dlq",
            "rate_limit": "50/s"}},
        {"op": "create_queue", "name": "dlq.fifo"},
        {"op": "create_queue", "name": "orders.fifo", "settings": {
            "lease_ms": 30, "max_retries": 1, "dead_letter_queue": "dlq.fifo"}},
    )

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def command(self, number: int, cluster: Cluster) -> dict[str, Any]:
        """The plain queue command of the client value ``number`` (1, 2, ... in order)."""
        rng = self.rng
        if number <= len(self._CREATE):
            return dict(self._CREATE[number - 1])
        roll = rng.random()
        if roll < 0.35:
            tasks = []
            for position in range(rng.choice((1, 1, 2))):
                task: dict[str, Any] = {"id": f"t{number}.{position}",
                                        "type": rng.choice(("a", "b")),
                                        "priority": rng.randrange(2)}
                queue = rng.choice(self.QUEUES)
                if queue != "default":
                    task["queue"] = queue
                if queue.endswith(".fifo"):
                    task["group"] = rng.choice(self.GROUPS)
                tasks.append(task)
            return {"op": "enqueue", "tasks": tasks}
        if roll < 0.95:
            held = self._leased(cluster)
            if held and roll >= 0.65:
                task = rng.choice(held)
                lease = task["lease"]
                op = "ack" if rng.random() < 0.7 else "nack"
                return {"op": op, "id": task["id"], "worker_id": lease["worker_id"],
                        "token": lease["token"]}
            dead_letters = rng.random()
            queues = (["dlq"] if dead_letters < 0.05 else ["dlq.fifo"] if dead_letters < 0.1
                      else list(self.QUEUES))
            return {"op": "lease", "worker_id": f"w{rng.randrange(2)}",
                    "max_tasks": rng.randint(1, 3), "queues": queues,
                    "nonce": f"{number:032x}"}
        return {"op": "move_tasks", "source": rng.choice(("dlq", "dlq.fifo")), "max_tasks": 5}

    @staticmethod
    def _leased(cluster: Cluster) -> list[dict[str, Any]]:
        """The leased tasks the leader shows (oldest first, at most 20): the answers a worker
        got to its leases. None without a leader."""
        leader = cluster.leader()
        node = None if leader is None else cluster.nodes[leader]
        if node is None:
            return []
        page: list[dict[str, Any]] = node.machine.queue.list_tasks("leased", limit=20)["tasks"]
        return page
