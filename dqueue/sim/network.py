"""A simulated network for the Raft simulator: seeded drops, duplicates, delays, cuts.

Time is the simulator's integer tick. Every decision comes from the one ``random.Random``
the simulator owns, so a seed replays exactly.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

from dqueue.raft import Message


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """Per-message fault probabilities.

    Attributes:
        drop: chance that a message is lost.
        duplicate: chance that a message is delivered twice.
        delay: chance that a message is held back 1 to ``max_delay_ticks`` ticks (messages
            overtake each other, so this also reorders).
        max_delay_ticks: longest hold-back.
    """

    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    max_delay_ticks: int = 0


class SimNetwork:
    """Messages in flight, ordered by delivery tick then send order.

    Attributes:
        blocked: directed links ``(sender, to)`` that lose every message (partitions).
        faults: the current per-message faults; the simulator may swap them.
        delivered, dropped: counters, for tests that bound message traffic.
    """

    def __init__(self, rng: random.Random, faults: LinkFaults) -> None:
        self.rng = rng
        self.faults = faults
        self.blocked: set[tuple[str, str]] = set()
        self.in_flight: list[tuple[int, int, Message]] = []
        self.seq = 0
        self.sent = 0
        self.delivered = 0
        self.dropped = 0

    def send(self, msg: Message, now: int) -> None:
        """Put ``msg`` on the wire at tick ``now``, applying the link faults."""
        self.sent += 1
        faults = self.faults
        rng = self.rng
        if faults.drop and rng.random() < faults.drop:
            self.dropped += 1
            return
        copies = 2 if faults.duplicate and rng.random() < faults.duplicate else 1
        for _ in range(copies):
            at = now
            if faults.delay and rng.random() < faults.delay:
                at += rng.randint(1, faults.max_delay_ticks)
            self.seq += 1
            heapq.heappush(self.in_flight, (at, self.seq, msg))

    def due(self, now: int) -> list[Message]:
        """Remove and return the messages deliverable at ``now``; cut links lose theirs."""
        out = []
        in_flight = self.in_flight
        blocked = self.blocked
        while in_flight and in_flight[0][0] <= now:
            msg = heapq.heappop(in_flight)[2]
            if blocked and (msg.sender, msg.to) in blocked:
                self.dropped += 1
                continue
            out.append(msg)
        self.delivered += len(out)
        return out

    def isolate(self, node_id: str, others: tuple[str, ...]) -> None:
        """Cut every link to and from ``node_id``."""
        for other in others:
            if other != node_id:
                self.blocked.add((node_id, other))
                self.blocked.add((other, node_id))

    def partition(self, groups: list[list[str]]) -> None:
        """Replace all cuts: members of different groups cannot talk."""
        self.blocked = set()
        for group in groups:
            for other_group in groups:
                if other_group is group:
                    continue
                for a in group:
                    for b in other_group:
                        self.blocked.add((a, b))

    def heal(self) -> None:
        """Restore every link."""
        self.blocked = set()
